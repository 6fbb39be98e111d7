"""The ArbX service: REST API, live events (SSE), signed webhooks, pipeline control and a
dashboard, on the same warehouse and Redis as the pipeline (``arbx serve``).

The pipeline announces events on the event log (``pipeline.announcements``, on
``storage.event_log``); the API serves them over SSE; see ``app.create_app``.
"""
