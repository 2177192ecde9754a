"""Idempotent, transactional loading into the warehouse.

Raw versions and quarantine rows are keyed by content hash (inserting them
again is a no-op); core rows are compared by ``row_hash`` so only new or
changed rows are written; watermarks move in the same transaction as the core
rows they cover. Re-running a night therefore changes nothing, and a crash
leaves the previous state intact.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from typing import Self

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines import bulk
from pipelines.bulk import bulk_execute, bulk_insert
from schemas.fields import FIELDS
from schemas.tables import BY_NAME


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_run_id() -> str:
    return utcnow().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


# ----------------------------------------------------------------- runs
def start_run(engine: sa.Engine, town: str, dagster_run_id: str | None = None,
              run_id: str | None = None) -> str:
    run_id = run_id or new_run_id()
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO load_run (town, run_id, dagster_run_id, started_at, status) "
            "VALUES (:t, :r, :d, :s, 'running')"),
            {"t": town, "r": run_id, "d": dagster_run_id, "s": utcnow()})
    return run_id


def finish_run(engine: sa.Engine, town: str, run_id: str, status: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE load_run SET finished_at = :f, status = :s "
                             "WHERE town = :t AND run_id = :r"),
                     {"f": utcnow(), "s": status, "t": town, "r": run_id})


# ----------------------------------------------------------- watermarks
def get_watermark(engine_or_conn, town: str, source: str, entity: str) -> str | None:
    q = sa.text("SELECT value FROM watermark WHERE town = :t AND source = :s AND entity = :e")
    params = {"t": town, "s": source, "e": entity}
    if isinstance(engine_or_conn, sa.Engine):
        with engine_or_conn.connect() as conn:
            return conn.execute(q, params).scalar()
    return engine_or_conn.execute(q, params).scalar()


def set_watermark(conn: sa.Connection, town: str, source: str, entity: str,
                  value: str, run_id: str) -> None:
    conn.execute(sa.text("DELETE FROM watermark WHERE town = :t AND source = :s AND entity = :e"),
                 {"t": town, "s": source, "e": entity})
    conn.execute(sa.text("INSERT INTO watermark (town, source, entity, value, run_id, updated_at) "
                         "VALUES (:t, :s, :e, :v, :r, :u)"),
                 {"t": town, "s": source, "e": entity, "v": value, "r": run_id, "u": utcnow()})


# ------------------------------------------------------------------ raw
def payload_hashes(payloads: pd.Series) -> pd.Series:
    """SHA-256 (first 128 bits, hex) of each text."""
    return pd.Series([hashlib.sha256(p.encode("utf-8", "surrogatepass")).hexdigest()[:32]
                      for p in payloads.tolist()], index=payloads.index, dtype=object)


def records_to_payloads(df: pd.DataFrame) -> pd.Series:
    """Each row as compact JSON text (the raw layer keeps it verbatim)."""
    if df.empty:
        return pd.Series([], dtype=object, index=df.index)
    text = df.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
    lines = text.rstrip("\n").split("\n")
    return pd.Series(lines, index=df.index, dtype=object)


def land_raw(conn: sa.Connection, town: str, run_id: str, source: str, entity: str,
             source_keys: pd.Series, payloads: pd.Series) -> int:
    """Keep every new version of the extracted records (a chunk of them, in the caller's
    transaction); return how many were new."""
    if len(payloads) == 0:
        return 0
    keys = source_keys.astype(object).where(source_keys.notna(), "?").astype(str)
    prefix = f"{source}\x00{entity}\x00"
    df = pd.DataFrame({
        "town": town, "source": source, "entity": entity, "source_key": keys.values,
        "content_hash": payload_hashes(prefix + keys + "\x00" + payloads.astype(str)).values,
        "run_id": run_id, "extracted_at": utcnow(), "payload": payloads.values,
    })
    return bulk_insert(conn, "raw_record", df, ignore_conflicts=True)


# ----------------------------------------------------------- quarantine
def write_quarantine(conn: sa.Connection, town: str, run_id: str, source: str, entity: str,
                     q: pd.DataFrame) -> int:
    """Quarantine rows (source_key, reason, payload); the same record is kept once."""
    if q.empty:
        return 0
    df = pd.DataFrame({
        "town": town, "source": source, "entity": entity,
        "source_key": q["source_key"].astype(object).where(q["source_key"].notna(), None).values,
        # keyed by place and content: two identical bad lines of one file are two rows
        "content_hash": payload_hashes(q["source_key"].astype(str) + "\x00"
                                       + q["payload"].astype(str)).values,
        "reason": q["reason"].astype(str).values,
        "payload": q["payload"].astype(str).values,
        "run_id": run_id, "resolved_run_id": None,
    })
    bulk_insert(conn, "quarantine", df, ignore_conflicts=True)
    return len(df)


def resolve_quarantine(conn: sa.Connection, town: str, run_id: str, source: str, entity: str,
                       loaded_keys: pd.Series) -> int:
    """Mark open quarantine rows resolved once a valid version of the same record loaded."""
    open_keys = read_frame(
        conn, "SELECT DISTINCT source_key FROM quarantine WHERE town = ? AND source = ? "
        "AND entity = ? AND resolved_run_id IS NULL AND source_key IS NOT NULL",
        [town, source, entity])["source_key"]
    if open_keys.empty:  # the usual case: nothing open, no key set to build
        return 0
    hit = sorted(set(loaded_keys.dropna().astype(str)[lambda k: k.isin(set(open_keys))]))
    bulk_execute(conn, "UPDATE quarantine SET resolved_run_id = ? WHERE town = ? AND source = ? "
                 "AND entity = ? AND source_key = ? AND resolved_run_id IS NULL",
                 [(run_id, town, source, entity, k) for k in hit])
    return len(hit)


# ----------------------------------------------------------------- core
@dataclass
class CoreCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    def __iadd__(self, other: CoreCounts) -> Self:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.deleted += other.deleted
        return self


def row_hashes(df: pd.DataFrame) -> pd.Series:
    """Content hash of canonical rows: deterministic across runs and processes
    (pandas' fixed-key SipHash of every column, as decimal text)."""
    if df.empty:
        return pd.Series([], dtype=object, index=df.index)
    return pd.util.hash_pandas_object(df, index=False).astype(str)


class TableStatistics:
    """Keeps PostgreSQL's statistics of a table in step with a big load.

    Each chunk's key lookup is planned from the table's statistics. A table loaded for
    the first time has none, and PostgreSQL then reads every row of the town for each
    list of keys (the default town's 110,628 portal bookings: 99 s to load, 3.8 s with
    this). So whenever a load has doubled the table since the planner last looked, it is
    analysed again, inside the load's transaction (ANALYZE sees the rows the transaction
    wrote): a few times per big table, a sample each time. SQLite plans key lookups by
    its indexes alone and needs nothing."""

    def __init__(self, conn: sa.Connection, table: str):
        self.conn, self.table, self.written = conn, table, 0
        self.on = conn.dialect.name == "postgresql"
        self.known = 0
        if self.on:
            n = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
                                     (table,)).scalar()
            self.known = max(int(n or 0), 0)

    def wrote(self, n: int) -> None:
        if not self.on or not n:
            return
        self.written += n
        if self.written >= max(self.known, 10_000):
            self.conn.exec_driver_sql(f"ANALYZE {self.table}")
            self.known += self.written
            self.written = 0


def upsert_core(conn: sa.Connection, town: str, run_id: str, table: str, rows: pd.DataFrame,
                *, present: pd.DataFrame | None = None, scope: str | None = None,
                statistics: TableStatistics | None = None) -> CoreCounts:
    """Insert new rows, replace changed ones, leave identical ones untouched.

    ``rows`` is compared with the warehouse ``bulk.CHUNK_ROWS`` at a time (memory
    stays flat); a key seen twice keeps its last row. ``present``: when given, the
    primary keys (without town) that still exist at the source; core rows of this town
    outside it (and matching ``scope``, a SQL condition) are marked deleted by this run.
    ``statistics``: shared by the calls that load one table chunk by chunk.
    """
    pk = BY_NAME[table].key_columns
    counts = CoreCounts()
    statistics = statistics or TableStatistics(conn, table)
    n = bulk.CHUNK_ROWS
    for i in range(0, len(rows), n):
        c = _upsert_chunk(conn, town, run_id, table, rows.iloc[i:i + n], scope)
        statistics.wrote(c.inserted + c.updated)
        counts += c
    if present is not None:
        counts.deleted += mark_absent(conn, town, run_id, table, present[pk], scope=scope)
    return counts


def _upsert_chunk(conn: sa.Connection, town: str, run_id: str, table: str,
                  rows: pd.DataFrame, scope: str | None) -> CoreCounts:
    spec = BY_NAME[table]
    pk = spec.key_columns
    data_cols = [c for c in spec.data_columns if c != "town"]
    counts = CoreCounts()
    rows = rows[data_cols].copy()
    if rows.duplicated(subset=pk, keep="last").any():
        rows = rows.drop_duplicates(subset=pk, keep="last")
    rows["row_hash"] = row_hashes(rows[data_cols]).values
    existing = _existing(conn, town, table, pk, rows, scope)
    _align_keys(pk, existing, rows)
    # compare on the keys and hashes only (a left merge keeps the rows' order: the
    # result lines up with ``rows``)
    m = rows[[*pk, "row_hash"]].merge(existing, on=pk, how="left", suffixes=("", "_old"),
                                      indicator=True)
    is_new = (m["_merge"] == "left_only").to_numpy()
    changed = ~is_new & ((m["row_hash"] != m["row_hash_old"])
                         | m["deleted_run_id"].notna()).to_numpy()
    counts.inserted = int(is_new.sum())
    counts.updated = int(changed.sum())
    counts.unchanged = int(len(m) - counts.inserted - counts.updated)
    if counts.updated:
        _delete_keys(conn, table, town, pk, rows.loc[changed, pk])
    sel = is_new | changed
    if sel.any():
        first = m["first_run_id"].to_numpy(dtype=object)[sel]
        write = rows if sel.all() else rows.loc[sel].copy()  # rows is this function's copy
        write["first_run_id"] = [run_id if n or pd.isna(f) else f
                                 for n, f in zip(is_new[sel], first)]
        write["last_run_id"] = run_id
        write["deleted_run_id"] = None
        write["town"] = town
        bulk_insert(conn, table, write)  # columns by name: town, data columns, lineage
    return counts


def _existing(conn: sa.Connection, town: str, table: str, pk: list[str], rows: pd.DataFrame,
              scope: str | None) -> pd.DataFrame:
    """Key, hash and lineage of the warehouse rows that share the chunk's first key column:
    one range query when the chunk is dense in an integer key (a source read in key
    order), else lists of values; never the whole table."""
    select = (f"SELECT {', '.join(pk)}, row_hash, first_run_id, deleted_run_id FROM {table} "
              f"WHERE town = ?{f' AND {scope}' if scope else ''}")
    first = pk[0]
    values = rows[first].dropna()
    if values.empty:
        return read_frame(conn, f"{select} AND 1 = 0", [town])
    if FIELDS[first].type == "integer":
        ints = pd.to_numeric(values)
        lo, hi = int(ints.min()), int(ints.max())
        if hi - lo < 4 * len(ints) + 1_000:
            return read_frame(conn, f"{select} AND {first} BETWEEN ? AND ?", [town, lo, hi])
    if FIELDS[first].type == "date":
        values = pd.to_datetime(values).dt.date
    keys = [_plain(v) for v in values.unique().tolist()]
    parts = [read_frame(conn, f"{select} AND {first} IN ({', '.join('?' * len(c))})", [town, *c])
             for c in _chunks(keys, 900)]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]




def _chunks(values: list, n: int):
    for i in range(0, len(values), n):
        yield values[i:i + n]


def read_frame(conn: sa.Connection, sql: str, params: list) -> pd.DataFrame:
    """A query's rows as a DataFrame, straight from the DBAPI cursor (``?`` placeholders)."""
    cur = conn.connection.driver_connection.cursor()
    try:
        cur.execute(bulk.for_driver(conn, sql), tuple(params))
        cols = [d[0] for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=cols, dtype=object)
    finally:
        cur.close()


def read_current(conn: sa.Connection, town: str, name: str,
                 columns: list[str] | None = None, *,
                 where: tuple[str, list] | None = None) -> pd.DataFrame:
    """The town's live rows of a table (``columns``, default all but town; ``where``: an
    extra parameterised condition and its values), straight from the DBAPI cursor a
    chunk at a time and typed column by column (millions of rows: no per-row Python
    conversion, never every row as a tuple): integers Int64, dates and instants
    datetime64 (naive UTC), booleans, text as string with repeated texts shared."""
    spec = BY_NAME[name]
    cols = list(columns) if columns else [c for c in spec.data_columns if c != "town"]
    sql = f"SELECT {', '.join(cols)} FROM {name} WHERE town = ?"
    params: list = [town]
    if spec.layer == "core":
        sql += " AND deleted_run_id IS NULL"
    if where:
        sql += f" AND ({where[0]})"
        params += list(where[1])
    shared = SharedText()
    parts = [_typed(chunk.reindex(columns=cols), shared)
             for chunk in iter_frames(conn, sql, params)]
    if not parts:
        return _typed(pd.DataFrame(columns=cols, dtype=object), shared)
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def _typed(df: pd.DataFrame, shared: SharedText) -> pd.DataFrame:
    """One chunk of warehouse rows typed by its columns' fields."""
    for c in df.columns:
        kind = FIELDS[c].type
        if kind == "integer":
            df[c] = pd.to_numeric(df[c]).astype("Int64")
        elif kind in ("date", "datetime"):
            first = df[c].dropna().head(1).tolist()
            df[c] = pd.to_datetime(df[c], errors="coerce", format="ISO8601") \
                if first and isinstance(first[0], str) else pd.to_datetime(df[c], errors="coerce")
            if getattr(df[c].dt, "tz", None) is not None:
                df[c] = df[c].dt.tz_convert("UTC").dt.tz_localize(None)
        elif kind == "boolean":
            df[c] = df[c].map(lambda v: None if v is None else bool(v)).astype("boolean")
        else:
            df[c] = pd.array(shared(c, df[c].to_numpy(dtype=object)), dtype="string")
    return df


class SharedText:
    """One Python object per distinct text of a column, across the chunks of a read.

    A DBAPI cursor returns a new ``str`` for every row, so a column of a few codes (a
    state, an activity code, a run id) costs some 60 bytes a row; sharing the object
    costs a pointer. Columns whose values are mostly distinct (identifiers) are left as
    they come: there is nothing to share.
    """

    def __init__(self) -> None:
        self._seen: dict[str, dict] = {}

    def __call__(self, column: str, values: np.ndarray) -> np.ndarray:
        codes, uniques = pd.factorize(values)  # missing values: code -1
        if len(uniques) * 2 > len(values):
            return values
        memo = self._seen.setdefault(column, {})
        objects = np.array([*(memo.setdefault(u, u) for u in uniques), None], dtype=object)
        return objects.take(codes)  # code -1 takes the trailing None


def prune_children(conn: sa.Connection, town: str, table: str, parent: str,
                   rows: pd.DataFrame) -> int:
    """Delete the children of the staged parents that the staged rows no longer have."""
    if rows.empty:
        return 0
    pk = BY_NAME[table].key_columns
    parents = [_plain(v) for v in rows[parent].dropna().unique().tolist()]
    parts = [read_frame(conn, f"SELECT {', '.join(pk)} FROM {table} WHERE town = ? "
                              f"AND {parent} IN ({', '.join('?' * len(c))})", [town, *c])
             for c in _chunks(parents, 900)]
    if not parts:
        return 0
    existing = pd.concat(parts, ignore_index=True)
    gone = existing[_outside(existing, _text_keys(rows[pk]))]
    _delete_keys(conn, table, town, pk, gone)
    return len(gone)


def _text_keys(df: pd.DataFrame) -> set[tuple]:
    """Each row's key as a tuple of texts (how keys of mixed types compare here)."""
    return set(df.astype(str).itertuples(index=False, name=None))


def _outside(df: pd.DataFrame, keys: set[tuple]) -> np.ndarray:
    """Whether each row's key (as ``_text_keys`` makes it) is not in ``keys``."""
    return np.array([k not in keys for k in df.astype(str).itertuples(index=False, name=None)],
                    dtype=bool)


def _align_keys(pk: list[str], *frames: pd.DataFrame) -> None:
    """Give the key columns of ``frames`` (read back from the database, staged, or from
    the source) one dtype each, so they compare equal (in place)."""
    for c in pk:
        kind = FIELDS[c].type
        for df in frames:
            if kind == "integer":
                df[c] = pd.to_numeric(df[c]).astype("Int64")
            elif kind == "date":
                df[c] = pd.to_datetime(df[c]).dt.date.astype(object)
            else:
                df[c] = df[c].astype("string")


def _delete_keys(conn, table, town, pk, keys: pd.DataFrame) -> None:
    cond = " AND ".join(f"{c} = ?" for c in pk)
    params = [(town, *[_plain(v) for v in r]) for r in keys.itertuples(index=False)]
    bulk_execute(conn, f"DELETE FROM {table} WHERE town = ? AND {cond}", params)


def iter_frames(conn: sa.Connection, sql: str, params: list, n: int | None = None):
    """A query's rows as DataFrames of ``n`` rows, never all at once (a server-side
    cursor on PostgreSQL; SQLite's cursor steps through the result)."""
    raw = conn.connection.driver_connection
    cur = raw.cursor() if conn.dialect.name == "sqlite" else \
        raw.cursor(name=f"guichet_{uuid.uuid4().hex[:12]}")
    try:
        cur.execute(bulk.for_driver(conn, sql), tuple(params))
        cols = None
        while True:
            batch = cur.fetchmany(n or bulk.CHUNK_ROWS)
            if cols is None:
                cols = [d[0] for d in cur.description]
            if not batch:
                return
            yield pd.DataFrame(batch, columns=cols, dtype=object)
    finally:
        cur.close()


def mark_absent(conn: sa.Connection, town: str, run_id: str, table: str,
                present: pd.DataFrame, *, scope: str | None = None) -> int:
    """Mark deleted the live core rows (matching ``scope``, a SQL condition) whose key
    is not in ``present``, the keys still at the source. The warehouse's keys are read
    a chunk at a time; an integer key is looked up in a sorted array (8 bytes a key)."""
    pk = BY_NAME[table].key_columns
    present = present[pk].copy()
    _align_keys(pk, present)
    if len(pk) == 1 and FIELDS[pk[0]].type == "integer":
        have = np.sort(present[pk[0]].dropna().to_numpy(dtype="int64"))

        def absent(chunk: pd.DataFrame) -> np.ndarray:
            v = chunk[pk[0]].to_numpy(dtype="int64")
            at = np.minimum(np.searchsorted(have, v), max(len(have) - 1, 0))
            return (have[at] != v) if len(have) else np.ones(len(v), dtype=bool)
    else:
        keys = _text_keys(present)

        def absent(chunk: pd.DataFrame) -> np.ndarray:
            return _outside(chunk, keys)
    where = f" AND {scope}" if scope else ""
    gone = []
    for chunk in iter_frames(conn, f"SELECT {', '.join(pk)} FROM {table} WHERE town = ? "
                                   f"AND deleted_run_id IS NULL{where}", [town]):
        _align_keys(pk, chunk)
        gone.append(chunk[absent(chunk)])
    gone = pd.concat(gone, ignore_index=True) if gone else pd.DataFrame(columns=pk)
    cond = " AND ".join(f"{c} = ?" for c in pk)
    bulk_execute(conn, f"UPDATE {table} SET deleted_run_id = ?, last_run_id = ? "
                 f"WHERE town = ? AND {cond}",
                 [(run_id, run_id, town, *[_plain(v) for v in r])
                  for r in gone.itertuples(index=False)])
    return len(gone)


def _plain(v):
    if v is pd.NA or v is None:
        return None
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def record_stats(conn: sa.Connection, town: str, run_id: str, source: str, entity: str,
                 *, read: int, loaded: int, quarantined: int, counts: CoreCounts) -> None:
    conn.execute(sa.text("DELETE FROM load_stat WHERE town = :t AND run_id = :r AND source = :s "
                         "AND entity = :e"), {"t": town, "r": run_id, "s": source, "e": entity})
    conn.execute(sa.text(
        "INSERT INTO load_stat (town, run_id, source, entity, rows_read, rows_loaded, "
        "rows_quarantined, rows_inserted, rows_updated, rows_deleted) VALUES "
        "(:t, :r, :s, :e, :rd, :ld, :q, :i, :u, :d)"),
        {"t": town, "r": run_id, "s": source, "e": entity, "rd": read, "ld": loaded,
         "q": quarantined, "i": counts.inserted, "u": counts.updated, "d": counts.deleted})

