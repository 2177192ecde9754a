"""Writes the simulated legacy registration and billing database.

The tables are created by executing ``demo/legacy_schema.sql`` as-is, statement by
statement (comments removed, since one of them contains a ';'). Rows go in through the raw
DB-API cursor with ``executemany`` in large batches (unquoted upper-case table names work on
SQLite, MariaDB and PostgreSQL alike, whatever the engine's case folding).
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from .world import COLUMNS, PRIMARY_KEYS, TABLE_ORDER

DDL_PATH = Path(__file__).with_name("legacy_schema.sql")
BATCH = 20_000


def ddl_statements(text: str | None = None) -> list[str]:
    """The CREATE TABLE statements of the schema file, in order."""
    if text is None:
        text = DDL_PATH.read_text(encoding="utf-8")
    no_comments = "\n".join(re.sub(r"--.*$", "", line) for line in text.splitlines())
    return [s.strip() for s in no_comments.split(";") if s.strip()]


def ensure_database(url: str) -> None:
    """Create the MariaDB/PostgreSQL database named in ``url`` when it does not exist."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend not in ("mysql", "mariadb", "postgresql") or not u.database:
        return
    if backend == "postgresql":
        server = u.set(database="postgres")
        eng = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        try:
            with eng.connect() as c:
                exists = c.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": u.database}
                ).scalar()
                if not exists:
                    c.exec_driver_sql(f'CREATE DATABASE "{u.database}" ENCODING \'UTF8\'')
        finally:
            eng.dispose()
    else:
        server = u.set(database="")
        eng = sa.create_engine(server)
        try:
            with eng.connect() as c:
                c.exec_driver_sql(
                    f"CREATE DATABASE IF NOT EXISTS `{u.database}` "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
                c.commit()
        finally:
            eng.dispose()


def make_engine(url: str) -> sa.Engine:
    u = make_url(url)
    if u.get_backend_name() in ("mysql", "mariadb") and "charset" not in u.query:
        u = u.update_query_dict({"charset": "utf8mb4"})
    return sa.create_engine(u)


class LegacySink:
    """Buffered writes to the legacy database: inserts, full-row updates by primary key,
    deletes. ``flush`` sends them in batches; ``close`` commits."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.raw = self.engine.raw_connection()
        style = self.engine.dialect.paramstyle
        self.mark = "?" if style == "qmark" else "%s"
        self.ins: dict[str, list] = {t: [] for t in TABLE_ORDER}
        self.upd: dict[str, list] = {t: [] for t in TABLE_ORDER}
        self.dele: dict[str, list] = {t: [] for t in TABLE_ORDER}
        self.counts = {t: {"inserted": 0, "updated": 0, "deleted": 0} for t in TABLE_ORDER}
        self._sql_cache: dict[tuple[str, str], str] = {}

    # schema ------------------------------------------------------------
    def recreate_tables(self) -> None:
        cur = self.raw.cursor()
        if self.engine.dialect.name == "sqlite":
            cur.execute("PRAGMA synchronous = OFF")
        for table in reversed(TABLE_ORDER):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        for stmt in ddl_statements():
            cur.execute(stmt)
        self.raw.commit()
        cur.close()

    # buffering -------------------------------------------------------------
    def insert(self, table: str, row: tuple) -> None:
        buf = self.ins[table]
        buf.append(row)
        if len(buf) >= BATCH:
            self._flush_inserts(table)

    def maybe_flush(self) -> None:
        """Flush the insert buffers that grew large (hot loops append to them directly)."""
        for table, buf in self.ins.items():
            if len(buf) >= BATCH:
                self._flush_inserts(table)

    def update(self, table: str, row: tuple) -> None:
        self.upd[table].append(row)

    def delete(self, table: str, key: tuple) -> None:
        self.dele[table].append(key)

    def _sql(self, kind: str, table: str) -> str:
        k = (kind, table)
        s = self._sql_cache.get(k)
        if s is None:
            cols = COLUMNS[table]
            pk = PRIMARY_KEYS[table]
            m = self.mark
            if kind == "ins":
                s = (f"INSERT INTO {table} ({', '.join(cols)}) "
                     f"VALUES ({', '.join([m] * len(cols))})")
            elif kind == "upd":
                sets = ", ".join(f"{c} = {m}" for c in cols if c not in pk)
                where = " AND ".join(f"{c} = {m}" for c in pk)
                s = f"UPDATE {table} SET {sets} WHERE {where}"
            else:
                where = " AND ".join(f"{c} = {m}" for c in pk)
                s = f"DELETE FROM {table} WHERE {where}"
            self._sql_cache[k] = s
        return s

    def _flush_inserts(self, table: str) -> None:
        rows = self.ins[table]
        if not rows:
            return
        cur = self.raw.cursor()
        sql = self._sql("ins", table)
        for i in range(0, len(rows), BATCH):
            cur.executemany(sql, rows[i:i + BATCH])
        cur.close()
        self.counts[table]["inserted"] += len(rows)
        rows.clear()

    def flush(self) -> None:
        for table in TABLE_ORDER:
            self._flush_inserts(table)
        cur = self.raw.cursor()
        for table in TABLE_ORDER:
            rows = self.upd[table]
            if rows:
                cols = COLUMNS[table]
                pk = PRIMARY_KEYS[table]
                idx_set = [i for i, c in enumerate(cols) if c not in pk]
                idx_pk = [cols.index(c) for c in pk]
                params = [tuple(r[i] for i in idx_set) + tuple(r[i] for i in idx_pk)
                          for r in rows]
                sql = self._sql("upd", table)
                for i in range(0, len(params), BATCH):
                    cur.executemany(sql, params[i:i + BATCH])
                self.counts[table]["updated"] += len(rows)
                self.upd[table] = []
            keys = self.dele[table]
            if keys:
                cur.executemany(self._sql("del", table), keys)
                self.counts[table]["deleted"] += len(keys)
                self.dele[table] = []
        cur.close()

    def commit(self) -> None:
        self.flush()
        self.raw.commit()

    def close(self) -> None:
        try:
            self.raw.close()
        finally:
            self.engine.dispose()
