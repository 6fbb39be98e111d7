"""Shared fixtures: real PostgreSQL and Redis when present, throwaway state per run.

Service tests skip when a server is unreachable, except under ARBX_REQUIRE_SERVICES=1
(CI), where an unreachable server is a failure. We only ever drop the database and the
Redis keys this run created.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import anyio._core._fileio  # noqa: F401 - see below
import pytest
from warehouse_cleanup import drop_arbx_schema

from arbx_dagster.storage.cache import Cache, MemoryCache, RedisCache
from arbx_dagster.storage.databases import throwaway_database
from arbx_dagster.storage.migrations import migrate
from arbx_dagster.storage.warehouse import DuckDBWarehouse, PostgresWarehouse, Warehouse

# anyio is a pytest plugin, so pytest rewrites its modules on import; anyio imports its
# file module lazily, in a worker thread (Starlette's FileResponse), and CPython 3.11 can
# fail ast.parse run in two threads at once ("AST constructor recursion depth mismatch").
# Importing it here, on the main thread, takes it off that path.

POSTGRES_ADMIN_URL = os.environ.get(
    "ARBX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("ARBX_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS_DIR = Path(os.environ.get("ARBX_DATASETS_DIR", REPO_ROOT.parent / "shared" / "datasets"))


def services_required() -> bool:
    return os.environ.get("ARBX_REQUIRE_SERVICES", "") not in ("", "0", "false")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def _unavailable(what: str) -> None:
    message = f"{what} is not reachable"
    if services_required():
        pytest.fail(f"{message} and ARBX_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database created for this test session, dropped after."""
    if not _reachable(POSTGRES_ADMIN_URL, 5432):
        _unavailable(f"PostgreSQL at {POSTGRES_ADMIN_URL}")
    with throwaway_database(POSTGRES_ADMIN_URL, prefix="arbx_test_") as url:
        yield url


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A database of its own for one test (e.g. a whole Dagster deployment), dropped after."""
    if not _reachable(POSTGRES_ADMIN_URL, 5432):
        _unavailable(f"PostgreSQL at {POSTGRES_ADMIN_URL}")
    with throwaway_database(POSTGRES_ADMIN_URL, prefix="arbx_test_") as url:
        yield url


@pytest.fixture
def postgres_warehouse(postgres_url: str) -> Iterator[Warehouse]:
    """A migrated warehouse on the session's database, emptied of ArbX tables after use."""
    warehouse = PostgresWarehouse(postgres_url)
    migrate(warehouse)
    yield warehouse
    drop_arbx_schema(warehouse)
    warehouse.close()


@pytest.fixture
def duckdb_warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    migrate(warehouse)
    yield warehouse
    warehouse.close()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    """Run a test on both engines: the same SQL must mean the same thing on each."""
    fixture = "duckdb_warehouse" if request.param == "duckdb" else "postgres_warehouse"
    return request.getfixturevalue(fixture)


@pytest.fixture
def redis_url() -> str:
    if not _reachable(REDIS_URL, 6379):
        _unavailable(f"Redis at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
def redis_cache(redis_url: str) -> Iterator[Cache]:
    """A Redis cache under a key prefix unique to this test; only those keys are removed."""
    cache = RedisCache(redis_url, prefix=f"arbx-test:{uuid.uuid4().hex[:8]}:")
    yield cache
    cache.delete_matching("*")
    cache.close()


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest) -> Cache:
    """Run a test on both caches: the in-process one must behave like Redis."""
    if request.param == "memory":
        return MemoryCache(prefix="arbx-test:")
    return request.getfixturevalue("redis_cache")


def _dataset(name: str) -> Path:
    path = DATASETS_DIR / name
    if not (path / "dataset.json").exists():
        pytest.skip(f"benchmark dataset not found at {path} (set ARBX_DATASETS_DIR)")
    return path


@pytest.fixture(scope="session")
def abt_buy_dir() -> Path:
    return _dataset("abt_buy")


@pytest.fixture(scope="session")
def wdc_computers_dir() -> Path:
    """A dataset of labelled pairs only (``"tables": false``)."""
    return _dataset("wdc_computers")


@pytest.fixture
def alert_receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A local webhook receiver; ARBX_ALERT_URLS points every alert at its /alerts path."""
    from webhook_receiver import WebhookReceiver

    with WebhookReceiver() as receiver:
        monkeypatch.setenv("ARBX_ALERT_URLS", receiver.url("/alerts"))
        yield receiver
