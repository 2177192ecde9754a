"""Read-only access to the legacy registration and billing database.

One code path for every way a town reaches it: an ODBC connection string or
DSN through pyodbc (``DRIVER={MariaDB Unicode};SERVER=...`` / ``DSN=legacy``),
or any SQLAlchemy URL (``mssql+pyodbc://``, ``mysql+pyodbc://``,
``postgresql://``, ``sqlite:///``), whose DBAPI connection is used directly.
Queries are plain parameterised SQL on unquoted names, so they work whatever the
engine folded names to; column names come back upper-cased. Results stream in
chunks: through a server-side cursor where the driver has one, and in pages ordered
by primary key (keyset pagination, inside one consistent snapshot) where the driver
holds a whole result in memory (MariaDB Connector/ODBC before 3.1.17 ignores
``NO_CACHE``). The session is made read-only wherever the database allows it.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterator

import pandas as pd
import sqlalchemy as sa

CHUNK_ROWS = 50_000
# Re-read this much before the watermark: late commits, same-second updates,
# and the autumn clock change (DATE_MAJ is local time).
OVERLAP = dt.timedelta(hours=2)
IN_LIST = 1000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LegacyError(Exception):
    pass


def is_odbc_string(url: str) -> bool:
    return "://" not in url and "=" in url


def overlap_start(watermark: str | None) -> str | None:
    """The DATE_MAJ text from which to re-read, given the last watermark."""
    if not watermark:
        return None
    try:
        t = dt.datetime.strptime(watermark[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return watermark
    return (t - OVERLAP).strftime("%Y-%m-%d %H:%M:%S")


def _odbc_options(connstr: str) -> str:
    """Streaming and read-only options of the drivers that have them."""
    low = connstr.lower()
    extra = []
    if "postgres" in low:  # psqlODBC: refuse writes; fetch with a cursor, not all at once
        for opt in ("ReadOnly=1", "UseDeclareFetch=1", "Fetch=10000"):
            if opt.split("=")[0].lower() + "=" not in low:
                extra.append(opt)
    elif ("mariadb" in low or "mysql" in low) and "no_cache=" not in low:
        extra.append("NO_CACHE=1")
    if not extra:
        return connstr
    return connstr.rstrip(";") + ";" + ";".join(extra)


def _backend_of(name: str) -> str:
    n = name.lower()
    for key, backend in (("maria", "mysql"), ("mysql", "mysql"), ("postgres", "postgresql"),
                         ("sqlite", "sqlite"), ("microsoft", "mssql"), ("sql server", "mssql")):
        if key in n:
            return backend
    return n


class LegacyDatabase:
    """One legacy database; every query read-only, parameterised and chunked."""

    def __init__(self, url: str, chunk_rows: int = CHUNK_ROWS):
        self.url = url
        self.chunk_rows = chunk_rows
        self._engine: sa.Engine | None = None
        self._raw = None
        self._conn = None
        self._driver_read_only = False
        #: the driver buffers whole results: read big tables page by page
        self.paged = False
        self.backend = ""
        self.paramstyle = "qmark"
        self._names: dict[str, str] = {}
        self._connect()

    # ------------------------------------------------------------ connection
    def _connect(self) -> None:
        if is_odbc_string(self.url):
            try:
                import pyodbc
            except ImportError as exc:
                raise LegacyError(f"ODBC connection string given but pyodbc cannot load: {exc} "
                                  "(install unixodbc and the database's ODBC driver)") from exc
            try:
                connstr = _odbc_options(self.url)
                self._conn = pyodbc.connect(connstr, autocommit=True)
            except pyodbc.Error as exc:
                raise LegacyError(f"ODBC connection to the legacy database failed: {exc}") from exc
            self.backend = _backend_of(self._conn.getinfo(pyodbc.SQL_DBMS_NAME))
            self._driver_read_only = "readonly=1" in connstr.lower().replace(" ", "")
            self.paramstyle = "qmark"
            self.paged = self.backend == "mysql"
        else:
            u = sa.engine.make_url(self.url)
            if u.drivername.startswith("sqlite") and u.database and u.database != ":memory:":
                path = u.database
                self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                             check_same_thread=False)
                self.backend, self.paramstyle = "sqlite", "qmark"
            else:
                if u.drivername in ("postgresql", "postgres"):
                    u = u.set(drivername="postgresql+psycopg")
                self._engine = sa.create_engine(u, poolclass=sa.pool.NullPool)
                self._raw = self._engine.raw_connection()  # keep it: closing it closes the DBAPI one
                self._conn = self._raw.driver_connection
                self.backend = _backend_of(self._engine.dialect.name)
                self.paramstyle = self._engine.dialect.dbapi.paramstyle
                if hasattr(self._conn, "autocommit"):
                    try:
                        self._conn.autocommit = True
                    except Exception:  # noqa: BLE001 - some drivers take it as a method
                        self._conn.autocommit(True)
        self._read_only()

    def _read_only(self) -> None:
        stmt = {"mysql": "SET SESSION TRANSACTION READ ONLY",
                "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
                }.get(self.backend)
        if self._driver_read_only:
            stmt = None  # psqlODBC's ReadOnly=1 already refuses everything, SET included
        if stmt:
            cur = self._conn.cursor()
            cur.execute(stmt)
            cur.close()

    def connection(self):
        """The DBAPI connection (read-only session)."""
        return self._conn

    def dispose(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        elif self._conn is not None:
            self._conn.close()
        self._conn = None
        if self._engine is not None:
            self._engine.dispose()

    # ---------------------------------------------------------------- names
    def _mark(self) -> str:
        return "?" if self.paramstyle == "qmark" else "%s"

    def _cursor(self):
        if self.backend == "postgresql" and self._engine is not None:
            self._n_cursors = getattr(self, "_n_cursors", 0) + 1  # server-side: bounded memory
            return self._conn.cursor(name=f"guichet_{self._n_cursors}", withhold=True)
        if self.backend == "mysql" and self._engine is not None:
            import pymysql.cursors

            return self._conn.cursor(pymysql.cursors.SSCursor)
        return self._conn.cursor()

    def table_name(self, name: str) -> str:
        """The table's name as the engine accepts it (unquoted, DDL case or lower case)."""
        key = name.upper()
        if key in self._names:
            return self._names[key]
        if not _NAME.match(name):
            raise LegacyError(f"not a table name: {name!r}")
        for candidate in (key, key.lower()):
            cur = self._conn.cursor()
            try:
                cur.execute(f"SELECT * FROM {candidate} WHERE 1 = 0")
                cur.fetchall()
            except Exception:  # noqa: BLE001, S112 - not under this name: try the next folding
                continue
            finally:
                cur.close()
            self._names[key] = candidate
            return candidate
        raise LegacyError(f"legacy table {name} not found (tried {key} and {key.lower()})")

    # ---------------------------------------------------------------- reads
    def _stream(self, sql: str, params: tuple = ()) -> Iterator[pd.DataFrame]:
        cur = self._cursor()
        try:
            cur.execute(sql, params) if params else cur.execute(sql)
            cols = [d[0].upper() for d in cur.description]
            while True:
                batch = cur.fetchmany(self.chunk_rows)
                if not batch:
                    break
                # object dtype keeps driver values as they are (an int column with a NULL
                # must not turn into floats, or the raw payload would depend on the chunk)
                yield pd.DataFrame([tuple(r) for r in batch], columns=cols, dtype=object)
        finally:
            cur.close()

    def _pages(self, select: str, where: str, params: tuple,
               key_columns: tuple[str, ...]) -> Iterator[pd.DataFrame]:
        """``select ... where`` in pages of ``chunk_rows`` ordered by the primary key, each
        page starting after the last key of the one before (never OFFSET), all in one
        consistent snapshot so that a row moved between pages is neither missed nor
        read twice."""
        keys = [c for c in key_columns if _NAME.match(c)]
        order = ", ".join(keys)
        m = self._mark()
        cur = self._conn.cursor()
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        try:
            last: tuple | None = None
            while True:
                conds, args = ([where], list(params)) if where else ([], [])
                if last is not None:  # (k1, k2) > (v1, v2), spelt out for every engine
                    ors = []
                    for i, k in enumerate(keys):
                        ors.append("(" + " AND ".join(
                            [f"{keys[j]} = {m}" for j in range(i)] + [f"{k} > {m}"]) + ")")
                        args += [*last[:i], last[i]]
                    conds.append("(" + " OR ".join(ors) + ")")
                sql = (f"{select}{' WHERE ' + ' AND '.join(conds) if conds else ''} "
                       f"ORDER BY {order} LIMIT {int(self.chunk_rows)}")
                n = 0
                for frame in self._stream(sql, tuple(args)):
                    n += len(frame)
                    last = tuple(frame.iloc[-1][[k.upper() for k in keys]])
                    yield frame
                if n < self.chunk_rows:
                    return
        finally:
            cur.execute("COMMIT")
            cur.close()

    def _select(self, select: str, where: str, params: tuple,
                key_columns: tuple[str, ...] | None) -> Iterator[pd.DataFrame]:
        if self.paged and key_columns:
            yield from self._pages(select, where, params, key_columns)
        else:
            yield from self._stream(f"{select} WHERE {where}" if where else select, params)

    def read(self, name: str, since: str | None = None,
             key_columns: tuple[str, ...] | None = None) -> Iterator[pd.DataFrame]:
        """Rows changed since the DATE_MAJ text ``since`` (all rows when None).
        ``key_columns`` (the primary key) lets a buffering driver read page by page."""
        t = self.table_name(name)
        where = "" if since is None else f"DATE_MAJ >= {self._mark()}"
        yield from self._select(f"SELECT * FROM {t}", where, () if since is None else (since,),
                                key_columns)

    def read_where_in(self, name: str, column: str, values: list) -> Iterator[pd.DataFrame]:
        """Rows whose ``column`` is one of ``values`` (chunked IN lists)."""
        t = self.table_name(name)
        if not _NAME.match(column):
            raise LegacyError(f"not a column name: {column!r}")
        for i in range(0, len(values), IN_LIST):
            part = tuple(values[i:i + IN_LIST])
            marks = ", ".join(self._mark() for _ in part)
            yield from self._stream(f"SELECT * FROM {t} WHERE {column} IN ({marks})", part)

    def keys(self, name: str, key_columns: tuple[str, ...]) -> pd.DataFrame:
        """Every primary key present now: how purges are noticed. The legacy keys are
        integers: kept as int64 columns (8 bytes a key, not a Python object each)."""
        t = self.table_name(name)
        cols = [c.upper() for c in key_columns if _NAME.match(c)]
        parts = [frame.astype("int64") for frame in
                 self._select(f"SELECT {', '.join(cols)} FROM {t}", "", (), tuple(cols))]
        if not parts:
            return pd.DataFrame({c: pd.Series([], dtype="int64") for c in cols})
        return pd.concat(parts, ignore_index=True)
