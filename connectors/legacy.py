"""Read-only access to the legacy registration and billing database.

Works whatever the engine folded table and column names to (reflects and
compares case-insensitively), streams in chunks, and opens the session
read-only wherever the database allows it. Rows come out as DataFrames with
upper-case column names and values exactly as the driver returns them.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator

import pandas as pd
import sqlalchemy as sa

CHUNK_ROWS = 50_000
# Re-read this much before the watermark: late commits, same-second updates,
# and the autumn clock change (DATE_MAJ is local time).
OVERLAP = dt.timedelta(hours=2)


def _read_only(engine: sa.Engine) -> None:
    name = engine.dialect.name

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ARG001
        cur = dbapi_conn.cursor()
        if name in ("mysql", "mariadb"):
            cur.execute("SET SESSION TRANSACTION READ ONLY")
        elif name == "postgresql":
            cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cur.close()


def open_legacy(url: str) -> sa.Engine:
    """An engine on the legacy database that refuses writes where it can."""
    u = sa.engine.make_url(url)
    if u.drivername.startswith("sqlite") and u.database and u.database != ":memory:":
        path = u.database
        return sa.create_engine(
            "sqlite://", creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                                         check_same_thread=False))
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(u)
    _read_only(engine)
    return engine


def overlap_start(watermark: str | None) -> str | None:
    """The DATE_MAJ text from which to re-read, given the last watermark."""
    if not watermark:
        return None
    try:
        t = dt.datetime.strptime(watermark[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return watermark
    return (t - OVERLAP).strftime("%Y-%m-%d %H:%M:%S")


class LegacyDatabase:
    """One legacy database, reached by a SQLAlchemy URL."""

    def __init__(self, url: str, chunk_rows: int = CHUNK_ROWS):
        self.url = url
        self.engine = open_legacy(url)
        self.chunk_rows = chunk_rows
        self._tables: dict[str, sa.Table] = {}

    def table(self, name: str) -> sa.Table:
        """The reflected table whose name matches ``name`` case-insensitively."""
        key = name.upper()
        if key not in self._tables:
            names = {n.upper(): n for n in sa.inspect(self.engine).get_table_names()}
            if key not in names:
                raise LookupError(f"legacy table {name} not found at {self._safe_url()}; "
                                  f"tables there: {sorted(names)}")
            self._tables[key] = sa.Table(names[key], sa.MetaData(), autoload_with=self.engine)
        return self._tables[key]

    def _safe_url(self) -> str:
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def column(self, table: sa.Table, name: str) -> sa.Column:
        for c in table.columns:
            if c.name.upper() == name.upper():
                return c
        raise LookupError(f"column {name} not in legacy table {table.name}")

    def _stream(self, select: sa.Select) -> Iterator[pd.DataFrame]:
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(select)
            cols = [c.upper() for c in result.keys()]
            while True:
                batch = result.fetchmany(self.chunk_rows)
                if not batch:
                    break
                # object dtype keeps driver values as they are (an int column with a NULL
                # must not turn into floats, or the raw payload would depend on the chunk)
                yield pd.DataFrame([tuple(r) for r in batch], columns=cols, dtype=object)

    def read(self, name: str, since: str | None = None) -> Iterator[pd.DataFrame]:
        """Rows changed since the DATE_MAJ text ``since`` (all rows when None)."""
        t = self.table(name)
        sel = sa.select(t)
        if since is not None:
            sel = sel.where(self.column(t, "DATE_MAJ") >= since)
        yield from self._stream(sel)

    def read_where_in(self, name: str, column: str, values: list) -> Iterator[pd.DataFrame]:
        """Rows whose ``column`` is one of ``values`` (chunked IN lists)."""
        t = self.table(name)
        col = self.column(t, column)
        for i in range(0, len(values), 5000):
            yield from self._stream(sa.select(t).where(col.in_(values[i:i + 5000])))

    def keys(self, name: str, key_columns: tuple[str, ...]) -> pd.DataFrame:
        """Every primary key present now: how purges are noticed."""
        t = self.table(name)
        cols = [self.column(t, c) for c in key_columns]
        frames = list(self._stream(sa.select(*cols)))
        if not frames:
            return pd.DataFrame(columns=[c.upper() for c in key_columns])
        return pd.concat(frames, ignore_index=True)

    def dispose(self) -> None:
        self.engine.dispose()
