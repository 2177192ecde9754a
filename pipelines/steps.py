"""The sync of one town as plain functions: extract → stage → core.

Dagster assets (``pipelines.assets``) are thin wiring around these, and
``run_town`` chains them without Dagster for tests and benchmarks. Each step
returns a small object that the next step takes; nothing here knows about
Dagster.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from connectors.legacy import LegacyDatabase, overlap_start
from connectors.portal import instant_key, open_portal, parse_instant
from connectors.treasury import open_drop
from pipelines import bulk, loading, spool
from pipelines.bulk import bulk_execute, bulk_insert
from pipelines.config import Config, TownConfig
from pipelines.purges import flag_purges
from pipelines.spool import SOURCE_KEY, Spool
from schemas.fields import FIELDS
from schemas.legacy import LEGACY_ENTITIES, legacy_source_key, stage_legacy
from schemas.portal import PORTAL_COLLECTIONS, portal_source_key, stage_portal
from schemas.staging import Staged
from schemas.tables import BY_NAME

LEGACY = "legacy"
PORTAL = "portal"
TREASURY = "treasury"


@dataclass
class Town:
    """What every step needs: the town's sources and the warehouse."""

    config: TownConfig
    engine: sa.Engine
    landing_dir: Path
    run_id: str

    @property
    def code(self) -> str:
        return self.config.code

    @property
    def spool_dir(self) -> Path:
        """Where this run of the town spools its chunks between steps."""
        return spool.root(self.landing_dir) / self.code / self.run_id

    def spool(self, source: str, entity: str, step: str) -> Spool:
        return Spool.new(self.spool_dir / f"{source}.{entity}.{step}")


@dataclass
class Extracted:
    source: str
    entity: str
    spool: Spool | None  # the rows read, chunk by chunk (treasury: None, see ``files``)
    rows_read: int
    new_versions: int = 0
    watermark: str | None = None  # value to commit with the core load
    present: pd.DataFrame | None = None  # keys still at the source (purge detection)
    files: list = field(default_factory=list)  # treasury: treasury_file rows to record
    seconds: float = 0.0
    invoice_ids: list[int] | None = None  # FACTURE: the invoices read (LIGNE_FACTURE follows)

    def release(self) -> None:
        """Drop the rows once staged: a Dagster run's in-memory IO keeps every step's
        output to the end of the run."""
        if self.spool is not None:
            self.spool.drop()
        self.present = None


@dataclass
class StagedBatch:
    source: str
    entity: str
    staged: dict[str, Spool]  # core table -> its staged rows (the main table first)
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    watermark: str | None
    present: pd.DataFrame | None
    files: list
    seconds: float = 0.0
    loaded_into: set = field(default_factory=set)  # core tables written from it so far

    @property
    def released(self) -> bool:
        return not self.staged and self.present is None


def mark_loaded(table: str, batches: list[StagedBatch]) -> None:
    """``table`` is loaded from ``batches``: a batch drops its staged rows once every core
    table it feeds is loaded (the run keeps the object itself to its end)."""
    for b in batches:
        b.loaded_into.add(table)
        if b.loaded_into >= set(b.staged):
            for sp in b.staged.values():
                sp.drop()
            b.staged, b.present = {}, None


# ------------------------------------------------------------ extract
def extract_legacy(town: Town, entity: str, invoices: Extracted | None = None) -> Extracted:
    """Rows changed since the watermark (with an overlap), landed in the raw layer and
    spooled chunk by chunk as they are read."""
    t0 = time.perf_counter()
    spec = LEGACY_ENTITIES[entity]
    db = LegacyDatabase(town.config.legacy_url, chunk_rows=bulk.CHUNK_ROWS)
    out = town.spool(LEGACY, entity, "extract")
    new, dm_max, ids = 0, "", set()
    try:
        wm = loading.get_watermark(town.engine, town.code, LEGACY, entity)
        if spec.has_date_maj:
            chunks = db.read(entity, overlap_start(wm), spec.primary_key)
        elif wm is None or invoices is None:
            chunks = db.read(entity, key_columns=spec.primary_key)  # first load
        else:  # LIGNE_FACTURE has no DATE_MAJ: re-read the lines of invoices that moved
            chunks = db.read_where_in(entity, "ID_FACTURE", invoices.invoice_ids or [])
        # each chunk lands in the raw layer as it comes (one transaction) and goes to
        # the spool: the table is never in memory whole
        with town.engine.begin() as conn:
            for chunk in chunks:
                keys = legacy_source_key(entity, chunk)
                new += loading.land_raw(conn, town.code, town.run_id, LEGACY, entity,
                                        keys, loading.records_to_payloads(chunk))
                chunk["source_key"] = keys.values
                if spec.has_date_maj:
                    dm = chunk["DATE_MAJ"].dropna().astype(str).str.rstrip()
                    dm_max = max(dm_max, dm.max() if len(dm) else "")
                if entity == "FACTURE":
                    ids.update(pd.to_numeric(chunk["ID_FACTURE"], errors="coerce")
                               .dropna().astype("int64").tolist())
                out.append(chunk)
        present = db.keys(entity, spec.primary_key)
    finally:
        db.dispose()
    if not out.chunks_written:  # nothing changed: an empty chunk carries the columns
        out.append(pd.DataFrame(columns=[*spec.columns, "source_key"]))
    if spec.has_date_maj:
        new_wm = max(wm or "", dm_max) or None
    else:
        new_wm = (invoices.watermark if invoices is not None else None) or wm or "loaded"
    present = present.rename(columns=str.upper)
    return Extracted(LEGACY, entity, out, out.rows, new, new_wm, present,
                     seconds=time.perf_counter() - t0,
                     invoice_ids=sorted(ids) if entity == "FACTURE" else None)


def extract_portal(town: Town, collection: str) -> Extracted:
    """Items updated since the watermark (inclusive), landed in the raw layer and spooled
    ``bulk.CHUNK_ROWS`` at a time."""
    t0 = time.perf_counter()
    wm = loading.get_watermark(town.engine, town.code, PORTAL, collection)
    since = parse_instant(wm) if wm else None
    src = open_portal(town.config.portal_base, town.config.portal_token)
    out = town.spool(PORTAL, collection, "extract")
    recs: list = []
    latest, new = since, 0

    def land(conn) -> int:
        frame = pd.DataFrame(recs, columns=["source_key", "line_no", "payload", "item"])
        # a line that is no JSON object has no key of its own: its place stands for it
        frame["source_key"] = frame["source_key"].where(frame["source_key"].notna(),
                                                        "line:" + frame["line_no"].astype(str))
        out.append(frame)
        recs.clear()
        return loading.land_raw(conn, town.code, town.run_id, PORTAL, collection,
                                frame["source_key"], frame["payload"])

    with town.engine.begin() as conn:
        for raw in src.items(collection, since):
            key = portal_source_key(collection, raw.item) if isinstance(raw.item, dict) else None
            recs.append((key, raw.line_no, raw.payload, raw.item))
            t = instant_key(raw.item)
            if t is not None and (latest is None or t > latest):
                latest = t
            if len(recs) >= bulk.CHUNK_ROWS:
                new += land(conn)
        if recs or not out.chunks_written:
            new += land(conn)
    new_wm = latest.astimezone(dt.UTC).isoformat() if latest is not None else wm
    return Extracted(PORTAL, collection, out, out.rows, new, new_wm, None,
                     seconds=time.perf_counter() - t0)


def extract_treasury(town: Town) -> Extracted:
    """New files of the drop (by content), copied to the landing area."""
    from schemas.treasury.dispatch import file_kind

    t0 = time.perf_counter()
    wm = loading.get_watermark(town.engine, town.code, TREASURY, "files")
    since = dt.date.fromisoformat(wm) if wm else None
    with town.engine.connect() as conn:
        known = dict(conn.execute(sa.text("SELECT sha256, status FROM treasury_file "
                                          "WHERE town = :t"), {"t": town.code}).all())
    files, seen, latest = [], {}, since  # seen: sha256 -> position in files
    drop = open_drop(town.config.treasury_root, key_file=town.config.treasury_key_file,
                     known_hosts=town.config.treasury_known_hosts)
    for f in drop.files(since):
        latest = max(latest, f.folder_day) if latest else f.folder_day
        sha = f.sha256
        mismatch = f.sidecar_mismatch()
        if known.get(sha) == "loaded":
            continue  # the same content delivered again, under this or another name
        if known.get(sha) == "quarantined" and mismatch:
            continue  # still refused, for the same reason
        if sha in seen and (mismatch or not files[seen[sha]]["reason"]):
            continue
        # new content, or content refused for its sidecar and re-delivered with a
        # correct one (the bank's usual fix), earlier in this run or in a past one
        dest = town.landing_dir / town.code / f"{f.folder_day:%Y/%m/%d}" / f"{sha[:12]}_{f.name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            tmp = dest.with_suffix(dest.suffix + ".tmp")
            tmp.write_bytes(f.data)
            tmp.replace(dest)
        entry = {"town": town.code, "sha256": sha, "file_name": f.name,
                 "folder_day": f.folder_day, "size_bytes": len(f.data),
                 "format": file_kind(f.name), "landed_path": str(dest),
                 "status": "loaded", "reason": mismatch, "run_id": town.run_id}
        if sha in seen:  # the refused delivery of this run gives way to the good one
            files[seen[sha]] = entry
        else:
            seen[sha] = len(files)
            files.append(entry)
    return Extracted(TREASURY, "files", None, len(files), len(files),
                     latest.isoformat() if latest else wm, None, files,
                     seconds=time.perf_counter() - t0)


# -------------------------------------------------------------- stage
def stage(town: Town, ext: Extracted) -> StagedBatch:
    """Parse and validate, chunk by chunk; rejected rows go to quarantine now, with
    their reason, and the canonical rows to one spool per core table."""
    t0 = time.perf_counter()
    if ext.source == TREASURY:
        return _stage_treasury(town, ext, t0)
    tables: dict[str, Spool] = {}
    loaded = quarantined = 0
    with town.engine.begin() as conn:
        for chunk in ext.spool.chunks():
            staged = _stage_chunk(ext.source, ext.entity, chunk)
            q = staged.quarantine.copy()
            q["payload"] = _payloads_of(ext.source, chunk, q["source_key"])
            loading.write_quarantine(conn, town.code, town.run_id, ext.source, ext.entity, q)
            loaded += len(staged.rows)
            quarantined += len(staged.quarantine)
            parts = {staged.table: staged.rows.assign(**{SOURCE_KEY: staged.source_keys.values}),
                     **staged.extra}
            for name, rows in parts.items():
                if name not in tables:
                    tables[name] = town.spool(ext.source, ext.entity, f"stage.{name}")
                tables[name].append(rows)
    return StagedBatch(ext.source, ext.entity, tables, ext.rows_read, loaded, quarantined,
                       ext.watermark, ext.present, [], time.perf_counter() - t0)


def _stage_chunk(source: str, entity: str, chunk: pd.DataFrame) -> Staged:
    return (stage_legacy if source == LEGACY else stage_portal)(entity, chunk)


def _payloads_of(source: str, chunk: pd.DataFrame, keys: pd.Series) -> list[str]:
    """The raw text of the quarantined records (only those: this is not the hot path)."""
    if keys.empty:
        return []
    rows = chunk[chunk["source_key"].isin(set(keys))]
    text = (loading.records_to_payloads(rows.drop(columns=["source_key"])) if source == LEGACY
            else rows["payload"])  # a portal line is kept as it came
    by_key = dict(zip(rows["source_key"], text))
    return [by_key.get(k, "") for k in keys]


def _stage_treasury(town: Town, ext: Extracted, t0: float) -> StagedBatch:
    from schemas.treasury.dispatch import parse_file

    out: dict[str, list] = {"payment": [], "bank_statement": [], "bank_operation": []}
    quarantine = []
    read = loaded = 0
    for f in ext.files:
        if f["reason"]:  # sidecar mismatch: the whole file is quarantined
            f["status"] = "quarantined"
            quarantine.append({"source_key": f"{f['file_name']}:file", "reason": f["reason"],
                               "payload": f"{f['file_name']} sha256={f['sha256']}"})
            read += 1
            continue
        parsed = parse_file(f["file_name"], Path(f["landed_path"]).read_bytes())
        for table, rows in parsed.tables.items():
            out.setdefault(table, []).extend(rows)
        for r in parsed.quarantine:
            quarantine.append({"source_key": f"{f['file_name']}:{r.locator}",
                               "reason": r.reason, "payload": r.raw})
        read += parsed.rows_read
        loaded += parsed.rows_read - len(parsed.quarantine)
        if parsed.rows_read and len(parsed.quarantine) == parsed.rows_read \
                and parsed.quarantine[0].locator == "file":
            f["status"] = "quarantined"
            f["reason"] = parsed.quarantine[0].reason
    q = pd.DataFrame(quarantine, columns=["source_key", "reason", "payload"])
    with town.engine.begin() as conn:
        loading.write_quarantine(conn, town.code, town.run_id, TREASURY, "files", q)
    tables = {}
    for name, rows in out.items():
        cols = [c for c in BY_NAME[name].data_columns if c != "town"]
        df = pd.DataFrame(rows).reindex(columns=cols)
        for c in cols:  # the parsers give aware local times; the warehouse keeps naive UTC
            if FIELDS[c].type == "datetime":
                df[c] = pd.to_datetime(df[c], utc=True).dt.tz_localize(None)
        tables[name] = town.spool(TREASURY, "files", f"stage.{name}")
        for part in spool.chunked(df):
            tables[name].append(part)
    return StagedBatch(TREASURY, "files", tables, read, loaded, len(q), ext.watermark, None,
                       ext.files, time.perf_counter() - t0)


# --------------------------------------------------------------- core
PURGE_SCOPE = {"document": "source = 'legacy'"}
# Core tables derived from a parent record (the parent key column): a parent staged
# again replaces its children, so a state that disappeared from the source goes too.
DERIVED_CHILDREN = {"procedure_state": "request_id"}


def load_core(town: Town, table: str, batches: list[StagedBatch]) -> dict:
    """Upsert one core table from its staged batches, chunk by chunk in one transaction,
    and move the watermarks of the batches whose main table this is."""
    t0 = time.perf_counter()
    totals = loading.CoreCounts()
    with town.engine.begin() as conn:
        statistics = loading.TableStatistics(conn, table)
        for b in batches:
            sp = b.staged.get(table)
            if sp is None:
                continue
            is_main = next(iter(b.staged)) == table
            scope = PURGE_SCOPE.get(table) if b.source == LEGACY else None
            c = loading.CoreCounts()
            for rows in sp.chunks():
                keys = rows.pop(SOURCE_KEY) if SOURCE_KEY in rows.columns else None
                c += loading.upsert_core(conn, town.code, town.run_id, table, rows, scope=scope,
                                         statistics=statistics)
                if table in DERIVED_CHILDREN:  # derived from a parent: replace per parent
                    c.deleted += loading.prune_children(conn, town.code, table,
                                                        DERIVED_CHILDREN[table], rows)
                if is_main and keys is not None and len(keys):
                    loading.resolve_quarantine(conn, town.code, town.run_id, b.source,
                                               b.entity, keys)
            if is_main and b.present is not None:
                c.deleted += loading.mark_absent(conn, town.code, town.run_id, table,
                                                 _present_keys(b.entity, b.present), scope=scope)
            totals += c
            if not is_main:
                continue
            if b.source == TREASURY:
                _record_files(conn, b.files)
                loading.resolve_quarantine(
                    conn, town.code, town.run_id, b.source, b.entity,
                    pd.Series([f"{f['file_name']}:file" for f in b.files
                               if f["status"] == "loaded"], dtype=object))
            loading.record_stats(conn, town.code, town.run_id, b.source, b.entity,
                                 read=b.rows_read, loaded=b.rows_loaded,
                                 quarantined=b.rows_quarantined, counts=c)
            if b.watermark:
                loading.set_watermark(conn, town.code, b.source, b.entity, b.watermark,
                                      town.run_id)
    if any(b.source == LEGACY and b.present is not None and next(iter(b.staged)) == table
           for b in batches):
        flag_purges(town.engine, town.code, town.run_id, table)
    return {"inserted": totals.inserted, "updated": totals.updated,
            "unchanged": totals.unchanged, "deleted": totals.deleted,
            "seconds": time.perf_counter() - t0}


def _present_keys(entity: str, present: pd.DataFrame) -> pd.DataFrame:
    """Map legacy primary keys (int64, from ``LegacyDatabase.keys``) to core keys; PIECE
    gets its prefix."""
    spec = LEGACY_ENTITIES[entity]
    core_pk = BY_NAME[spec.table].key_columns
    out = pd.DataFrame()
    for legacy_col, core_col in zip(spec.primary_key, core_pk):
        v = present[legacy_col].astype("Int64")
        out[core_col] = ("legacy:" + v.astype(str)) if core_col == "document_id" else v
    return out


def _record_files(conn: sa.Connection, files: list[dict]) -> None:
    """Record the files taken; a content refused before and taken now is replaced."""
    if not files:
        return
    bulk_execute(conn, "DELETE FROM treasury_file WHERE town = ? AND sha256 = ? "
                       "AND status = 'quarantined'",
                 [(f["town"], f["sha256"]) for f in files if f["status"] == "loaded"])
    bulk_insert(conn, "treasury_file", pd.DataFrame(files), ignore_conflicts=True)


# ----------------------------------------------------------- the graph
LEGACY_ORDER = ["FAMILLE", "INDIVIDU", "RATTACHEMENT", "ACTIVITE", "INSCRIPTION", "RESERVATION",
                "POINTAGE", "FACTURE", "LIGNE_FACTURE", "PIECE"]


def core_sources() -> dict[str, list[tuple[str, str]]]:
    """Core table -> the (source, entity) batches that feed it."""
    out: dict[str, list[tuple[str, str]]] = {}
    for e in LEGACY_ORDER:
        out.setdefault(LEGACY_ENTITIES[e].table, []).append((LEGACY, e))
    for c, spec in PORTAL_COLLECTIONS.items():
        out.setdefault(spec.table, []).append((PORTAL, c))
    out.setdefault("procedure_state", []).append((PORTAL, "requests"))
    for t in ("payment", "bank_statement", "bank_operation"):
        out.setdefault(t, []).append((TREASURY, "files"))
    return out


def open_town(config: Config, code: str, engine: sa.Engine, run_id: str) -> Town:
    return Town(config.town(code), engine, Path(config.landing_dir), run_id)


def clear_stale_spools(town: Town) -> None:
    """At the start of a run: drop the spools of the town's runs that are not running."""
    with town.engine.connect() as conn:
        running = set(conn.execute(sa.text("SELECT run_id FROM load_run WHERE town = :t "
                                           "AND status = 'running'"), {"t": town.code}).scalars())
    spool.clear_stale(town.spool_dir.parent, running)


def run_town(config: Config, code: str, engine: sa.Engine, *, progress=None) -> dict:
    """The whole nightly sync of one town without Dagster (same steps, same order)."""
    run_id = loading.start_run(engine, code)
    town = open_town(config, code, engine, run_id)
    clear_stale_spools(town)
    report: dict = {"run_id": run_id, "extract": {}, "stage": {}, "core": {}}
    batches: dict[tuple[str, str], StagedBatch] = {}
    todo = [(LEGACY, e) for e in LEGACY_ORDER] + [(PORTAL, c) for c in PORTAL_COLLECTIONS] \
        + [(TREASURY, "files")]
    status = "failed"
    pending = core_sources()
    try:
        invoices = None
        for i, (src, ent) in enumerate(todo):
            if progress:
                progress(f"{src}.{ent}", i, len(todo))
            if src == LEGACY:
                ext = extract_legacy(town, ent, invoices)
                if ent == "FACTURE":
                    invoices = ext
            elif src == PORTAL:
                ext = extract_portal(town, ent)
            else:
                ext = extract_treasury(town)
            b = stage(town, ext)
            report["extract"][f"{src}.{ent}"] = {"read": ext.rows_read, "new": ext.new_versions,
                                                 "seconds": ext.seconds}
            ext.release()  # keep memory to one entity at a time
            batches[(src, ent)] = b
            report["stage"][f"{src}.{ent}"] = {"loaded": b.rows_loaded,
                                               "quarantined": b.rows_quarantined,
                                               "seconds": b.seconds}
            # load every core table whose feeds are all staged, then drop what is done
            for table, feeds in pending.items():
                if table not in report["core"] and all(f in batches for f in feeds):
                    fed = [batches[f] for f in feeds]
                    report["core"][table] = load_core(town, table, fed)
                    mark_loaded(table, fed)
            for key in [k for k, b in batches.items() if b.released]:
                del batches[key]
        status = "success"
    finally:
        loading.finish_run(engine, code, run_id, status)
        spool.clear(town.spool_dir)
    return report
