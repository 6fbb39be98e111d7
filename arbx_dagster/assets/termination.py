"""Terminating a run must stop it, retry policy or not.

Under the in-process executor (ArbX's on DuckDB), Dagster answers an interrupted step that
has a retry policy with a retry (dagster-io/dagster#15026): a run terminated while
``raw_prices`` scrapes would wait, start the step again and scrape on while shown as
CANCELING. :func:`stops_when_terminated` keeps the retry for interrupts nobody asked for
(a preempted worker) and makes one that comes with a termination request final: the step
fails without retry, Dagster records the run as CANCELED, and open warehouse
transactions have been rolled back on the way out.
"""

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg

F = TypeVar("F", bound=Callable[..., Any])

TERMINATING = (dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED)


def stops_when_terminated(compute: F) -> F:
    """Wrap an asset function whose first parameter is its context (before ``@dg.asset``)."""

    @functools.wraps(compute)
    def wrapper(context: dg.AssetExecutionContext, *args: Any, **kwargs: Any) -> Any:
        try:
            return compute(context, *args, **kwargs)
        except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt):
            run = context.instance.get_run_by_id(context.run.run_id)
            if run is not None and run.status in TERMINATING:
                raise dg.Failure(
                    description="the run was terminated", allow_retries=False
                ) from None
            raise

    return wrapper  # type: ignore[return-value]
