"""The ArbX service: REST API, live events (SSE), signed webhooks, pipeline control and a
dashboard, on the same warehouse and Redis as the pipeline (``arbx serve``).

The pipeline publishes events with :func:`arbx_dagster.service.events.publish_opportunity_events`
and :func:`arbx_dagster.service.events.publish_run_event`; see ``app.create_app``.
"""
