"""Fast bulk writes of DataFrames into warehouse tables, on SQLite and PostgreSQL.

SQLite gets one ``executemany`` of plain tuples (the stored text formats are
the ones SQLAlchemy reads back); PostgreSQL gets ``COPY``. The benchmark's
"raw insert" baseline writes text tuples the same two ways, so the ratio it prints
compares like with like.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from schemas.fields import FIELDS


def _column_values(series: pd.Series, logical: str, sqlite: bool) -> list:
    """One column as a list of DBAPI-ready values (None for missing)."""
    if logical == "datetime":
        s = pd.to_datetime(series)
        out = s.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        return out.astype(object).where(s.notna(), None).tolist()
    if logical == "date":
        return [v if v is None or isinstance(v, str) else (None if pd.isna(v) else v.isoformat())
                for v in series.astype(object).where(series.notna(), None).tolist()]
    if logical == "boolean":
        vals = series.astype(object).where(series.notna(), None).tolist()
        if sqlite:
            return [None if v is None else int(bool(v)) for v in vals]
        return [None if v is None else bool(v) for v in vals]
    if logical == "integer":
        return pd.array(series, dtype="Int64").to_numpy(dtype=object, na_value=None).tolist()
    return series.astype(object).where(series.notna(), None).tolist()


#: rows handled at a time, from the source read through the spools to the core upsert and
#: the DBAPI tuples written (a million-row table is never held whole)
CHUNK_ROWS = 50_000


def to_tuples(df: pd.DataFrame, columns: list[str], sqlite: bool) -> list[tuple]:
    cols = [_column_values(df[c], FIELDS[c].type, sqlite) for c in columns]
    return list(zip(*cols)) if cols else []


def _tuple_chunks(df: pd.DataFrame, columns: list[str], sqlite: bool):
    n = CHUNK_ROWS  # read at call time: a test sets it small
    for i in range(0, len(df), n):
        yield to_tuples(df.iloc[i:i + n], columns, sqlite)


def bulk_insert(conn: sa.Connection, table: str, df: pd.DataFrame,
                *, ignore_conflicts: bool = False) -> int:
    """Insert every row of ``df`` (columns named as the table's) into ``table``;
    return how many rows were inserted (conflicting ones are skipped when asked)."""
    if df.empty:
        return 0
    columns = list(df.columns)
    sqlite = conn.dialect.name == "sqlite"
    collist = ", ".join(columns)
    if sqlite:
        verb = "INSERT OR IGNORE" if ignore_conflicts else "INSERT"
        marks = ", ".join("?" for _ in columns)
        before = conn.connection.driver_connection.total_changes
        for rows in _tuple_chunks(df, columns, sqlite):
            conn.exec_driver_sql(f"{verb} INTO {table} ({collist}) VALUES ({marks})", rows)
        return conn.connection.driver_connection.total_changes - before
    raw = conn.connection.driver_connection
    target = table
    with raw.cursor() as cur:
        if ignore_conflicts:
            target = f"_tmp_{table}"
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {target} "
                        f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
            cur.execute(f"TRUNCATE {target}")
        with cur.copy(f"COPY {target} ({collist}) FROM STDIN") as copy:
            for rows in _tuple_chunks(df, columns, sqlite):
                for r in rows:
                    copy.write_row(r)
        if not ignore_conflicts:
            return len(df)
        cur.execute(f"INSERT INTO {table} ({collist}) SELECT {collist} FROM {target} "
                    f"ON CONFLICT DO NOTHING")
        inserted = cur.rowcount
        cur.execute(f"DROP TABLE {target}")
        return inserted


def bulk_execute(conn: sa.Connection, sql: str, params: list[tuple]) -> None:
    """executemany of a statement written with ``?`` placeholders, on either backend."""
    if not params:
        return
    conn.exec_driver_sql(for_driver(conn, sql), params)


def for_driver(conn: sa.Connection, sql: str) -> str:
    """SQL written with ``?`` placeholders, as the DBAPI driver of ``conn`` wants it."""
    return sql if conn.dialect.name == "sqlite" else sql.replace("?", "%s")
