"""The warehouse: one small facade over an embedded DuckDB file or a PostgreSQL server.

Everything above this module speaks Polars frames and portable SQL (``$1``-style
parameters, ``INSERT … ON CONFLICT`` upserts), so the same code and the same migrations
run on both engines. Bulk paths only: frames travel as Arrow (DuckDB registers them,
PostgreSQL receives them through ADBC's binary COPY), never as row-by-row INSERTs.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class WarehouseError(RuntimeError):
    """A warehouse operation failed; the message says which and why."""


def _ident(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise WarehouseError(f"refusing unsafe SQL identifier {name!r}")
    return name


def _same_key(key: Sequence[str], left: str = "s", right: str = "t") -> str:
    """``left.c = right.c AND ...`` over the ``key`` columns: a join condition."""
    return " AND ".join(f"{left}.{_ident(c)} = {right}.{_ident(c)}" for c in key)


@dataclass(frozen=True)
class TableColumn:
    """One column of a warehouse table, as the engine describes it."""

    name: str
    type: str
    nullable: bool


class Warehouse(ABC):
    """Engine-neutral access to the ArbX tables."""

    engine: str

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0

    # -- engine specifics -------------------------------------------------------------
    @abstractmethod
    def _run(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> pa.Table: ...

    @abstractmethod
    def _stage(self, table: pa.Table) -> str:
        """Make ``table`` queryable under a temporary name and return that name."""

    @abstractmethod
    def _unstage(self, name: str) -> None: ...

    @abstractmethod
    def _begin(self) -> None: ...

    @abstractmethod
    def _commit(self) -> None: ...

    @abstractmethod
    def _rollback(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def describe(self) -> str:
        """Where the data lives, without secrets."""

    def fingerprint_sql(self, columns: Sequence[str]) -> str:
        """A SQL expression hashing ``columns`` of a row into text: equal values, equal
        hash (what a later run compares to tell which rows changed)."""
        return f"md5(CAST(ROW({', '.join(columns)}) AS TEXT))"

    # -- public API -------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        """Group several operations atomically; nested calls join the outer one."""
        with self._lock:
            outermost = self._depth == 0
            if outermost:
                self._begin()
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outermost:
                    self._rollback()
                raise
            self._depth -= 1
            if outermost:
                self._commit()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.transaction():
            self._run(sql, params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        with self._lock:
            frame = pl.from_arrow(self._fetch(sql, params))
        assert isinstance(frame, pl.DataFrame)
        return _utc(frame)

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        frame = self.query(sql, params)
        return frame.item(0, 0) if frame.height else None

    def table_exists(self, table: str) -> bool:
        return bool(
            self.scalar(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_name = $1 AND table_schema = current_schema()",
                [table],
            )
        )

    def columns(self, table: str) -> list[TableColumn]:
        """The table's columns in order, typed as the engine names them (lower case)."""
        frame = self.query(
            "SELECT column_name, lower(data_type) AS data_type, is_nullable = 'YES' AS nullable "
            "FROM information_schema.columns "
            "WHERE table_name = $1 AND table_schema = current_schema() "
            "ORDER BY ordinal_position",
            [table],
        )
        return [TableColumn(*row) for row in frame.iter_rows()]

    def qualified_name(self, table: str) -> str:
        """``database.schema.table``: where the table lives, for catalogues and lineage."""
        database, schema = self.query("SELECT current_database(), current_schema()").row(0)
        return f"{database}.{schema}.{_ident(table)}"

    def upsert(
        self,
        table: str,
        frame: pl.DataFrame,
        key: Sequence[str],
        *,
        update: Sequence[str] | None = None,
    ) -> int:
        """Insert ``frame`` or update the rows whose ``key`` already exists.

        Duplicate keys inside ``frame`` keep their last occurrence, so a batch with
        repeated rows lands once. ``update`` limits which columns an existing row takes
        from the new data (default: every non-key column in ``frame``).
        """
        if frame.is_empty():
            return 0
        frame = frame.unique(subset=list(key), keep="last", maintain_order=True)
        self._upsert_unique(table, frame, key, update)
        return frame.height

    def _upsert_unique(
        self, table: str, frame: pl.DataFrame, key: Sequence[str], update: Sequence[str] | None
    ) -> None:
        """:meth:`upsert` of a frame whose keys are distinct: ``INSERT ... ON CONFLICT``."""
        columns = [_ident(c) for c in frame.columns]
        key_sql = ", ".join(_ident(k) for k in key)
        updatable = [c for c in (update if update is not None else columns) if c not in key]
        if updatable:
            assignments = ", ".join(f"{c} = excluded.{c}" for c in updatable)
            conflict = f"ON CONFLICT ({key_sql}) DO UPDATE SET {assignments}"
        else:
            conflict = f"ON CONFLICT ({key_sql}) DO NOTHING"
        column_sql = ", ".join(columns)
        with self.transaction(), self._staged(_to_arrow(frame)) as stage:
            self._run(
                f"INSERT INTO {_ident(table)} ({column_sql}) "
                f"SELECT {column_sql} FROM {stage} {conflict}"
            )
            self._after_bulk_write(table, frame.height)

    def replace(
        self,
        table: str,
        frame: pl.DataFrame,
        *,
        where: str = "TRUE",
        params: Sequence[Any] = (),
    ) -> int:
        """Atomically delete the rows matching ``where`` and insert ``frame`` instead.

        Used for derived tables (and, later, whole partitions): re-running replaces,
        never duplicates.
        """
        with self.transaction():
            self._run(f"DELETE FROM {_ident(table)} WHERE {where}", params)
            return self.insert(table, frame)

    def query_with(self, sql: str, frame: pl.DataFrame, params: Sequence[Any] = ()) -> pl.DataFrame:
        """``sql`` with ``frame`` staged under the table name ``{staged}`` stands for: a
        query over the rows matching a batch of keys, in one statement."""
        with self.transaction(), self._staged(_to_arrow(frame)) as stage:
            return self.query(sql.format(staged=stage), params)

    def keyed_rows_sql(self, table: str, staged: str, key: Sequence[str]) -> str:
        """A subquery: the rows of ``table`` whose ``key`` columns match a row of the table
        named ``staged`` (e.g. ``{staged}`` of :meth:`query_with`; its keys distinct).

        A plain join, which PostgreSQL plans from its statistics: rewritten as ``EXISTS`` or
        as a join with ``DISTINCT`` keys, it took index lookups the key is not a prefix of
        (``raw_prices`` is keyed by retailer, time, sku): 16 s for 1,000 listings' raw rows
        at a million, against 2 s."""
        return f"(SELECT t.* FROM {_ident(table)} AS t JOIN {staged} AS k ON {_same_key(key, 'k')})"

    def delete_keys(self, table: str, keys: pl.DataFrame) -> None:
        """Delete the rows of ``table`` whose values in ``keys``' columns match a row of
        ``keys`` (one bulk statement against the staged keys, not one per row)."""
        if keys.is_empty():
            return
        match = _same_key(keys.columns)
        with self.transaction(), self._staged(_to_arrow(keys)) as stage:
            self._run(
                f"DELETE FROM {_ident(table)} AS t "
                f"WHERE EXISTS (SELECT 1 FROM {stage} AS s WHERE {match})"
            )

    def insert(self, table: str, frame: pl.DataFrame) -> int:
        """Append ``frame`` (tables without a natural key: logs, events)."""
        if frame.is_empty():
            return 0
        with self.transaction():
            self._insert_staged(table, _to_arrow(frame))
            self._after_bulk_write(table, frame.height)
        return frame.height

    def _after_bulk_write(self, table: str, rows: int) -> None:  # noqa: B027 (optional hook)
        """Called after ``rows`` rows were written into ``table`` in one statement: an engine
        whose planner needs fresh statistics refreshes them (nothing to do by default)."""

    def append_new(self, table: str, frame: pl.DataFrame, key: Sequence[str]) -> int:
        """Bulk-load rows whose ``key`` the table does not hold yet (the caller knows,
        e.g. a time window nothing has landed in): no conflict handling, so PostgreSQL
        can COPY straight into the table instead of into a staging copy first. Duplicate
        keys inside ``frame`` keep their last occurrence, as in :meth:`upsert`."""
        if frame.is_empty():
            return 0
        frame = frame.unique(subset=list(key), keep="last", maintain_order=True)
        with self.transaction():
            self._copy_into(table, _to_arrow(frame))
            self._after_bulk_write(table, frame.height)
        return frame.height

    def _copy_into(self, table: str, rows: pa.Table) -> None:
        """The engine's fastest bulk path into ``table`` (no conflict handling)."""
        self._insert_staged(table, rows)

    def _insert_staged(self, table: str, rows: pa.Table) -> None:
        columns = ", ".join(_ident(c) for c in rows.column_names)
        with self._staged(rows) as stage:
            self._run(f"INSERT INTO {_ident(table)} ({columns}) SELECT {columns} FROM {stage}")

    @contextmanager
    def _staged(self, rows: pa.Table) -> Iterator[str]:
        """``rows`` under a temporary name for one statement. When the statement fails,
        its error is the one raised (the aborted transaction's complaints about the
        clean-up are not)."""
        name = self._stage(rows)
        try:
            yield name
        except BaseException:
            with suppress(Exception):
                self._unstage(name)
            raise
        self._unstage(name)

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _to_arrow(frame: pl.DataFrame) -> pa.Table:
    # Null-typed columns (all values missing) have no SQL type: send them as text.
    frame = frame.with_columns(pl.col(pl.Null).cast(pl.String))
    return frame.to_arrow()


def _utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Report every timestamp in UTC whatever the engine's session time zone."""
    tz_columns = [
        name
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    ]
    if not tz_columns:
        return frame
    return frame.with_columns(pl.col(tz_columns).dt.convert_time_zone("UTC"))


# Up to this many rows, a DuckDB upsert of whole rows deletes and inserts (``upsert``).
SMALL_BATCH_ROWS = 10_000


class DuckDBWarehouse(Warehouse):
    """Embedded default: a single DuckDB file under ``.arbx/``."""

    engine = "duckdb"

    def fingerprint_sql(self, columns: Sequence[str]) -> str:
        # DuckDB's own 64-bit hash is four times faster than md5 over a million rows.
        return f"CAST(hash({', '.join(columns)}) AS TEXT)"

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        import duckdb

        super().__init__()
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            raise WarehouseError(
                f"cannot open the DuckDB warehouse at {path}: {exc}. Another ArbX process "
                "may be writing to it; wait for it to finish or use PostgreSQL "
                "(ARBX_POSTGRES_URL) for concurrent access."
            ) from exc
        self._con.execute("SET TimeZone = 'UTC'")

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._con.execute(sql, list(params) if params else None)

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        relation = self._con.sql(sql, params=list(params) if params else None)
        return relation.to_arrow_table()

    def _stage(self, table: pa.Table) -> str:
        name = f"_stage_{uuid.uuid4().hex[:12]}"
        self._con.register(name, table)
        return name

    def _unstage(self, name: str) -> None:
        self._con.unregister(name)

    def replace(
        self,
        table: str,
        frame: pl.DataFrame,
        *,
        where: str = "TRUE",
        params: Sequence[Any] = (),
    ) -> int:
        """As :meth:`Warehouse.replace`, without deleting and re-inserting the same keys.

        DuckDB commits a transaction that deletes rows and inserts the same primary keys
        again very slowly (its key index: 40 s for 600k rows, against 0.4 s otherwise), so
        a table with a primary key, given every column, is replaced by deleting only the
        rows whose key is not in ``frame`` and upserting ``frame``: the same rows after.
        """
        key = self._primary_key(table)
        names = [c.name for c in self.columns(table)]
        if not key or frame.is_empty() or set(frame.columns) != set(names):
            return super().replace(table, frame, where=where, params=params)
        frame = frame.unique(subset=key, keep="last", maintain_order=True)
        match = _same_key(key)
        with self.transaction():
            with self._staged(_to_arrow(frame.select(key))) as stage:
                self._run(
                    f"DELETE FROM {_ident(table)} AS t WHERE ({where}) "
                    f"AND NOT EXISTS (SELECT 1 FROM {stage} AS s WHERE {match})",
                    params,
                )
            return self.upsert(table, frame, key)

    def _upsert_unique(
        self, table: str, frame: pl.DataFrame, key: Sequence[str], update: Sequence[str] | None
    ) -> None:
        """A small batch of whole rows is written as a delete of its keys and an insert.
        DuckDB's ``ON CONFLICT DO UPDATE`` (an update in place) costs about 0.6 s into a
        million-row table whatever the batch (0.57 s for 1,000 rows, 0.68 s for 20,000);
        deleting and inserting 1,000 rows costs 0.1 s, but its commit grows with the batch
        (0.5 s at 20,000, 7.5 s at 200,000)."""
        whole_rows = update is None and set(frame.columns) == {c.name for c in self.columns(table)}
        if not whole_rows or frame.height > SMALL_BATCH_ROWS:
            super()._upsert_unique(table, frame, key, update)
            return
        with self.transaction(), self._staged(_to_arrow(frame)) as stage:
            self._run(f"DELETE FROM {_ident(table)} AS t USING {stage} AS s WHERE {_same_key(key)}")
            columns = ", ".join(_ident(c) for c in frame.columns)
            self._run(f"INSERT INTO {_ident(table)} ({columns}) SELECT {columns} FROM {stage}")

    def keyed_rows_sql(self, table: str, staged: str, key: Sequence[str]) -> str:
        """As :meth:`Warehouse.keyed_rows_sql`, through the row ids: DuckDB reads a few rows
        of a million-row table by id in half the time a join reading every column takes
        (0.07 s against 0.14 s for 1,300 listings), the join itself reading only the key."""
        match = _same_key(key, "k")
        ids = f"SELECT t.rowid FROM {_ident(table)} AS t SEMI JOIN {staged} AS k ON {match}"
        return f"(SELECT * FROM {_ident(table)} WHERE rowid IN ({ids}))"

    def _primary_key(self, table: str) -> list[str]:
        rows = self.query(
            "SELECT constraint_column_names AS names FROM duckdb_constraints() "
            "WHERE table_name = $1 AND constraint_type = 'PRIMARY KEY' "
            "AND schema_name = current_schema()",
            [table],
        )
        return list(rows["names"][0]) if rows.height else []

    def _begin(self) -> None:
        self._con.execute("BEGIN TRANSACTION")

    def _commit(self) -> None:
        self._con.execute("COMMIT")

    def _rollback(self) -> None:
        self._con.execute("ROLLBACK")

    def close(self) -> None:
        self._con.close()

    def describe(self) -> str:
        return f"duckdb:{self.path}"


# PostgreSQL: a statement that wrote this many rows into a table refreshes its statistics.
ANALYZE_AFTER_ROWS = 50_000


class PostgresWarehouse(Warehouse):
    """Production: PostgreSQL through ADBC (Arrow in, Arrow out, COPY for bulk loads)."""

    engine = "postgres"

    def fingerprint_sql(self, columns: Sequence[str]) -> str:
        # PostgreSQL's own 64-bit text hash: half md5's time over a million rows.
        return f"CAST(hashtextextended(CAST(ROW({', '.join(columns)}) AS TEXT), 0) AS TEXT)"

    def __init__(self, url: str) -> None:
        import adbc_driver_postgresql.dbapi as adbc

        super().__init__()
        self.url = url
        try:
            self._con = adbc.connect(url)
        except Exception as exc:  # the driver raises several unrelated types
            raise WarehouseError(f"cannot connect to PostgreSQL at {redact(url)}: {exc}") from exc
        self._cur = self._con.cursor()

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cur.execute(sql, tuple(params) if params else None)

    def _after_bulk_write(self, table: str, rows: int) -> None:
        # A table just filled (a full match replacing a million product matches) keeps the
        # statistics of what it held until autovacuum looks: the next queries over a few
        # keys were planned as scans of the whole table (an incremental match at 1M took
        # 7.9 s instead of 4.8 s). Sampling it again costs a fraction of a second.
        if rows >= ANALYZE_AFTER_ROWS:
            self._run(f"ANALYZE {_ident(table)}")

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        with self.transaction():
            self._cur.execute(sql, tuple(params) if params else None)
            return self._cur.fetch_arrow_table()

    def _stage(self, table: pa.Table) -> str:
        name = f"_stage_{uuid.uuid4().hex[:12]}"
        self._cur.adbc_ingest(name, table, mode="create", temporary=True)
        return name

    def _unstage(self, name: str) -> None:
        self._cur.execute(f"DROP TABLE IF EXISTS {name}")

    def _copy_into(self, table: str, rows: pa.Table) -> None:
        """Binary COPY straight into ``table``: it needs each column in the table's exact
        type, so columns are cast first; a type without a known Arrow twin (numeric, json)
        goes through the staged INSERT, where PostgreSQL casts."""
        types = self._column_types(table)
        wanted = [_COPY_TYPES.get(types.get(name, "")) for name in rows.column_names]
        if any(t is None for t in wanted):
            self._insert_staged(table, rows)
            return
        schema = pa.schema(list(zip(rows.column_names, wanted, strict=True)))
        self._cur.adbc_ingest(table, rows.cast(schema), mode="append")

    def _column_types(self, table: str) -> dict[str, str]:
        self._cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = $1 AND table_schema = current_schema()",
            (table,),
        )
        return dict(self._cur.fetchall())

    def _begin(self) -> None:
        # ADBC's DB-API connection is not autocommit: a transaction is always open.
        pass

    def _commit(self) -> None:
        self._con.commit()

    def _rollback(self) -> None:
        self._con.rollback()

    def close(self) -> None:
        self._cur.close()
        self._con.close()

    def describe(self) -> str:
        return f"postgres:{redact(self.url)}"


# PostgreSQL column types binary COPY accepts from these Arrow types.
_COPY_TYPES: dict[str, pa.DataType] = {
    "text": pa.large_string(),
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "smallint": pa.int16(),
    "boolean": pa.bool_(),
    "double precision": pa.float64(),
    "real": pa.float32(),
    "date": pa.date32(),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
}


def redact(url: str) -> str:
    """Hide the password in a connection URL so it can be logged."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def open_warehouse(postgres_url: str | None, duckdb_path: str | Path) -> Warehouse:
    """PostgreSQL when a URL is configured, the embedded DuckDB file otherwise."""
    if postgres_url:
        return PostgresWarehouse(postgres_url)
    return DuckDBWarehouse(duckdb_path)
