"""The warehouse engine: SQLite (WAL) by default, PostgreSQL by URL.

Tables come from ``schemas.tables.METADATA`` and are created idempotently on
start. Nothing else in the project builds an engine for the warehouse.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from schemas.tables import METADATA

DEFAULT_URL = "sqlite:///var/warehouse.sqlite"


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA foreign_keys=OFF")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute("PRAGMA cache_size=-200000")
    cur.close()


def make_engine(url: str | None = None, *, create: bool = True) -> sa.Engine:
    """Open the warehouse and create its tables if they are missing."""
    url = normalise_url(url or DEFAULT_URL)
    kw: dict = {}
    if url.startswith("sqlite"):
        db = sa.engine.make_url(url).database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        kw["connect_args"] = {"timeout": 60}
    engine = sa.create_engine(url, **kw)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    if create:
        METADATA.create_all(engine, checkfirst=True)
    return engine


def is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"
