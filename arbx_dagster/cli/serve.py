"""``arbx serve``: the service API, live events, webhooks and the dashboard on uvicorn."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator

import typer

from arbx_dagster.settings import Settings


def _issue_key(name: str) -> None:
    from arbx_dagster.service.auth import issue_key
    from arbx_dagster.storage.migrations import migrate
    from arbx_dagster.storage.warehouse import WarehouseError, open_warehouse

    settings = Settings.from_env()
    try:
        with open_warehouse(settings.postgres_url, settings.duckdb_path) as warehouse:
            migrate(warehouse)
            key = issue_key(warehouse, name)
    except WarehouseError as exc:
        typer.echo(f"Cannot issue a key: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"API key {name!r} (shown once; only its hash is stored):\n{key}")


@contextlib.contextmanager
def _shared_metrics(workers: int) -> Iterator[str | None]:
    """A fresh ``PROMETHEUS_MULTIPROC_DIR`` for the workers, set before they start.

    With several workers each one writes its metric samples there and every scrape merges
    them (one count for the service, whichever worker answers). The directory must not
    hold samples of an earlier run: a directory of our own is made and removed at exit; a
    directory given in the environment (a deployment's choice) is kept, but emptied of
    sample files first, as prometheus_client requires. One worker needs none.
    """
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        os.makedirs(given, exist_ok=True)
        for stale in glob.glob(os.path.join(given, "*.db")):
            os.remove(stale)
        yield given
        return
    if workers == 1:
        yield None
        return
    path = tempfile.mkdtemp(prefix="arbx-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path  # inherited by the spawned workers
    try:
        yield path
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(path, ignore_errors=True)


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Worker processes (share state via Redis)."),
    proxy_headers: bool = typer.Option(
        False,
        help="Trust X-Forwarded-For/-Proto from ARBX_FORWARDED_ALLOW_IPS (behind a proxy).",
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
    issue_key: str = typer.Option(
        None, "--issue-key", metavar="NAME", help="Create an API key named NAME, print it, exit."
    ),
) -> None:
    """Serve the REST API (/openapi.json), SSE updates, signed webhooks, pipeline control
    and the live dashboard at / (embedded defaults, or PostgreSQL/Redis when configured)."""
    if issue_key:
        _issue_key(issue_key)
        return
    import uvicorn

    from arbx_dagster.service.config import ServiceConfigError, ServiceSettings

    try:
        service = ServiceSettings.from_env()
    except ServiceConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    base = service.base
    os.environ.setdefault("ARBX_HOME", str(base.home))  # workers resolve the same state
    if workers > 1 and not base.redis_url:
        typer.echo(
            "warning: several workers without ARBX_REDIS_URL do not share rate limits, "
            "caches or idempotency claims; set ARBX_REDIS_URL for production.",
            err=True,
        )
    if not service.api_keys:
        typer.echo(
            "note: ARBX_API_KEYS is not set; /api/* accepts only keys from the api_keys table "
            "(create one with `arbx serve --issue-key NAME`).",
            err=True,
        )
    typer.echo(
        f"ArbX service on http://{host}:{port} · warehouse {base.warehouse_engine} · "
        f"cache {'redis' if base.redis_url else 'in-process'} · Dagster {service.dagster_url}"
    )
    with _shared_metrics(workers):
        uvicorn.run(
            "arbx_dagster.service.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=proxy_headers,
            forwarded_allow_ips=os.environ.get("ARBX_FORWARDED_ALLOW_IPS", "127.0.0.1"),
            log_level=log_level,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
