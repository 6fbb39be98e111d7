"""Scratch PostgreSQL databases: created next to a given one, dropped when done.

For benchmarks and tests that must not touch data they did not create.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse


def with_database(url: str, database: str) -> str:
    """``url`` pointing at ``database`` on the same server."""
    return urlparse(url)._replace(path=f"/{database}").geturl()


@contextmanager
def throwaway_database(url: str, prefix: str = "arbx_tmp_") -> Iterator[str]:
    """A new database beside the one ``url`` names (its URL), dropped afterwards."""
    import adbc_driver_postgresql.dbapi as adbc

    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    admin = adbc.connect(url, autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        yield with_database(url, name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
