"""Small warehouse helpers shared by flags, decisions, accounts and validations.

``town_transaction`` is the one way stewardship code writes: a transaction that
holds the town's stewardship lock, so a decision taken while the nightly run
refreshes flags waits for it (or the other way round) instead of interleaving.
PostgreSQL: a transaction-scoped advisory lock per town. SQLite: ``BEGIN
IMMEDIATE`` (the database's single writer lock, taken up front so a transaction
never reads, then fails to upgrade to a write).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from pipelines.loading import utcnow
from schemas import tables

SYSTEM_AUTHOR = "guichet"


def dumps(obj) -> str:
    """Canonical JSON text (sorted keys, accents kept, dates as ISO)."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, default=_default)


def _default(v):
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


def loads(text):
    """Parsed JSON text; None for NULL (or a pandas NA)."""
    if isinstance(text, (dict, list)):
        return text
    if not isinstance(text, (str, bytes)) or text == "":
        return None
    return json.loads(text)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _lock_key(town: str) -> int:
    """A signed 64-bit advisory-lock key for the town's stewardship data."""
    h = hashlib.sha256(f"guichet-stewardship:{town}".encode()).digest()
    return int.from_bytes(h[:8], "big", signed=True)


def lock_town(conn: sa.Connection, town: str) -> None:
    """Take the town's stewardship lock for the rest of ``conn``'s transaction.

    On SQLite, call it before anything else in the transaction (it starts the
    transaction with BEGIN IMMEDIATE); later calls in the same transaction are no-ops.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(town)})
        return
    if conn.dialect.name == "sqlite":
        dbapi = conn.connection.dbapi_connection
        if not dbapi.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def town_transaction(engine: sa.Engine, town: str) -> Iterator[sa.Connection]:
    """A transaction holding the town's stewardship lock; committed on success."""
    with engine.connect() as conn:
        try:
            lock_town(conn, town)
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise


def next_id(conn: sa.Connection, table: str, column: str, town: str) -> int:
    """A fresh integer id of a town's table (callers hold the town lock)."""
    t = tables.table(table)
    cur = conn.execute(sa.select(sa.func.max(t.c[column])).where(t.c.town == town)).scalar()
    return int(cur or 0) + 1


def audit(conn: sa.Connection, town: str, author: str, action: str, message: str, *,
          flag_key: str | None = None, decision_id: int | None = None,
          run_id: str | None = None) -> int:
    """Append one entry to the audit log (callers hold the town lock); its id."""
    return audit_many(conn, town, [{"author": author, "action": action, "message": message,
                                        "flag_key": flag_key, "decision_id": decision_id,
                                        "run_id": run_id}])[0]


def audit_many(conn: sa.Connection, town: str, entries: list[dict]) -> list[int]:
    """Append entries to the audit log, in order (callers hold the town lock)."""
    if not entries:
        return []
    first = next_id(conn, "audit_log", "audit_id", town)
    now = utcnow()
    rows = [{"town": town, "audit_id": first + i, "at": e.get("at") or now,
             "author": e["author"], "action": e["action"], "flag_key": e.get("flag_key"),
             "decision_id": e.get("decision_id"), "run_id": e.get("run_id"),
             "message": e.get("message")} for i, e in enumerate(entries)]
    conn.execute(sa.insert(tables.table("audit_log")), rows)
    return [r["audit_id"] for r in rows]


def run_started_at(conn: sa.Connection, town: str, run_id: str) -> dt.datetime | None:
    """When a load run started (what a run's findings can be no newer than)."""
    t = tables.table("load_run")
    return conn.execute(sa.select(t.c.started_at).where(t.c.town == town, t.c.run_id == run_id)
                        ).scalar()


def as_datetime(v) -> dt.datetime | None:
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        return v
    return dt.datetime.fromisoformat(str(v))


STEWARDSHIP_TABLES = ("flag", "steward_decision", "audit_log", "steward_user",
                      "steward_session", "validation_result")
_checked: set[str] = set()


def ensure_schema(engine: sa.Engine) -> None:
    """Bring the stewardship tables of an older warehouse to the current definition.

    Warehouses created before the stewardship tables had their present columns
    hold them empty: an empty table whose columns differ is dropped and created
    again. A non-empty one that differs is an error (it needs a real migration).
    Checked once per process and warehouse.
    """
    key = engine.url.render_as_string(hide_password=True)
    if key in _checked:
        return
    insp = sa.inspect(engine)
    present = set(insp.get_table_names())
    for name in STEWARDSHIP_TABLES:
        t = tables.table(name)
        if name not in present:
            t.create(engine, checkfirst=True)
            continue
        have = {c["name"] for c in insp.get_columns(name)}
        if have == set(t.columns.keys()):
            continue
        with engine.begin() as conn:
            n = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            if n:
                raise RuntimeError(f"warehouse table {name} has an older definition and holds "
                                   f"{n} rows: migrate it before using this version")
            conn.execute(sa.text(f"DROP TABLE {name}"))
        t.create(engine)
    _checked.add(key)
