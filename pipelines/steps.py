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
from pipelines import loading
from pipelines.bulk import bulk_execute, bulk_insert
from pipelines.config import Config, TownConfig
from pipelines.purges import flag_purges
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


@dataclass
class Extracted:
    source: str
    entity: str
    frame: pd.DataFrame
    rows_read: int
    new_versions: int = 0
    watermark: str | None = None  # value to commit with the core load
    present: pd.DataFrame | None = None  # keys still at the source (purge detection)
    files: list = field(default_factory=list)  # treasury: treasury_file rows to record
    seconds: float = 0.0
    invoice_ids: list[int] | None = None  # FACTURE: the invoices read (LIGNE_FACTURE follows)

    def release(self) -> None:
        """Drop the rows once staged: a Dagster run's in-memory IO keeps every step's
        output to the end of the run, so a town would otherwise hold all its tables."""
        self.frame = self.frame.iloc[0:0]
        self.present = None


@dataclass
class StagedBatch:
    source: str
    entity: str
    staged: dict[str, Staged]  # core table -> staged rows
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
            b.staged, b.present = {}, None


# ------------------------------------------------------------ extract
def extract_legacy(town: Town, entity: str, invoices: Extracted | None = None) -> Extracted:
    """Rows changed since the watermark (with an overlap), landed in the raw layer."""
    t0 = time.perf_counter()
    spec = LEGACY_ENTITIES[entity]
    db = LegacyDatabase(town.config.legacy_url)
    parts, new, dm_max = [], 0, ""
    try:
        wm = loading.get_watermark(town.engine, town.code, LEGACY, entity)
        if spec.has_date_maj:
            chunks = db.read(entity, overlap_start(wm), spec.primary_key)
        elif wm is None or invoices is None:
            chunks = db.read(entity, key_columns=spec.primary_key)  # first load
        else:  # LIGNE_FACTURE has no DATE_MAJ: re-read the lines of invoices that moved
            chunks = db.read_where_in(entity, "ID_FACTURE", invoices.invoice_ids or [])
        # each chunk lands in the raw layer as it comes (one transaction): the JSON
        # payloads and their hashes are never all in memory at once
        with town.engine.begin() as conn:
            for chunk in chunks:
                keys = legacy_source_key(entity, chunk)
                new += loading.land_raw_rows(conn, town.code, town.run_id, LEGACY, entity,
                                             keys, loading.records_to_payloads(chunk))
                chunk["source_key"] = keys.values
                if spec.has_date_maj:
                    dm = chunk["DATE_MAJ"].dropna().astype(str).str.rstrip()
                    dm_max = max(dm_max, dm.max() if len(dm) else "")
                parts.append(chunk)
        present = db.keys(entity, spec.primary_key)
    finally:
        db.dispose()
    frame = (pd.concat(parts, ignore_index=True) if parts
             else pd.DataFrame(columns=[*spec.columns, "source_key"]))
    del parts
    if spec.has_date_maj:
        new_wm = max(wm or "", dm_max) or None
    else:
        new_wm = (invoices.watermark if invoices is not None else None) or wm or "loaded"
    present = present.rename(columns=str.upper)
    ids = sorted({int(v) for v in pd.to_numeric(frame["ID_FACTURE"], errors="coerce").dropna()}) \
        if entity == "FACTURE" else None
    return Extracted(LEGACY, entity, frame, len(frame), new, new_wm, present,
                     seconds=time.perf_counter() - t0, invoice_ids=ids)


def extract_portal(town: Town, collection: str) -> Extracted:
    """Items updated since the watermark (inclusive), landed in the raw layer."""
    t0 = time.perf_counter()
    wm = loading.get_watermark(town.engine, town.code, PORTAL, collection)
    since = parse_instant(wm) if wm else None
    src = open_portal(town.config.portal_base, town.config.portal_token)
    recs = []
    latest = since
    for raw in src.items(collection, since):
        key = portal_source_key(collection, raw.item) if isinstance(raw.item, dict) else None
        recs.append((key, raw.line_no, raw.payload, raw.item))
        t = instant_key(raw.item)
        if t is not None and (latest is None or t > latest):
            latest = t
    frame = pd.DataFrame(recs, columns=["source_key", "line_no", "payload", "item"])
    keys = frame["source_key"].where(frame["source_key"].notna(),
                                     "line:" + frame["line_no"].astype(str))
    new = loading.land_raw(town.engine, town.code, town.run_id, PORTAL, collection,
                           keys, frame["payload"])
    new_wm = latest.astimezone(dt.UTC).isoformat() if latest is not None else wm
    return Extracted(PORTAL, collection, frame, len(frame), new, new_wm, None,
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
    frame = pd.DataFrame(files, columns=["town", "sha256", "file_name", "folder_day",
                                         "size_bytes", "format", "landed_path", "status",
                                         "reason", "run_id"])
    return Extracted(TREASURY, "files", frame, len(frame), len(frame),
                     latest.isoformat() if latest else wm, None, files,
                     seconds=time.perf_counter() - t0)


# -------------------------------------------------------------- stage
def stage(town: Town, ext: Extracted) -> StagedBatch:
    """Parse and validate; rejected rows go to quarantine now, with their reason."""
    t0 = time.perf_counter()
    if ext.source == TREASURY:
        return _stage_treasury(town, ext, t0)
    if ext.source == LEGACY:
        staged = stage_legacy(ext.entity, ext.frame)
    else:
        frame = ext.frame.copy()
        frame["source_key"] = frame["source_key"].where(
            frame["source_key"].notna(), "line:" + frame["line_no"].astype(str))
        staged = stage_portal(ext.entity, frame)
    q = staged.quarantine.copy()
    q["payload"] = _payloads_of(ext, q["source_key"])
    with town.engine.begin() as conn:
        loading.write_quarantine(conn, town.code, town.run_id, ext.source, ext.entity, q)
    tables = {staged.table: staged}
    for name, extra in staged.extra.items():
        tables[name] = Staged(name, extra, staged.quarantine.iloc[0:0],
                              pd.Series([], dtype=object))
    return StagedBatch(ext.source, ext.entity, tables, ext.rows_read, len(staged.rows),
                       len(staged.quarantine), ext.watermark, ext.present, [],
                       time.perf_counter() - t0)


def _payloads_of(ext: Extracted, keys: pd.Series) -> list[str]:
    """The raw text of the quarantined records (only those: this is not the hot path)."""
    if keys.empty:
        return []
    frame = ext.frame
    if ext.source == LEGACY:
        rows = frame[frame["source_key"].isin(set(keys))]
        text = loading.records_to_payloads(rows.drop(columns=["source_key"]))
        by_key = dict(zip(rows["source_key"], text))
    else:
        k = frame["source_key"].where(frame["source_key"].notna(),
                                      "line:" + frame["line_no"].astype(str))
        by_key = dict(zip(k, frame["payload"]))
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
        tables[name] = Staged(name, df, q.iloc[0:0][["source_key", "reason"]],
                              pd.Series([], dtype=object))
    return StagedBatch(TREASURY, "files", tables, read, loaded, len(q), ext.watermark, None,
                       ext.files, time.perf_counter() - t0)


# --------------------------------------------------------------- core
PURGE_SCOPE = {"document": "source = 'legacy'"}
# Core tables derived from a parent record (the parent key column): a parent staged
# again replaces its children, so a state that disappeared from the source goes too.
DERIVED_CHILDREN = {"procedure_state": "request_id"}


def load_core(town: Town, table: str, batches: list[StagedBatch]) -> dict:
    """Upsert one core table from its staged batches, in one transaction, and move
    the watermarks of the batches whose main table this is."""
    t0 = time.perf_counter()
    totals = loading.CoreCounts()
    with town.engine.begin() as conn:
        for b in batches:
            st = b.staged.get(table)
            if st is None:
                continue
            is_main = next(iter(b.staged)) == table
            present = None
            if b.present is not None and is_main:
                present = _present_keys(b.entity, b.present)
            scope = PURGE_SCOPE.get(table) if b.source == LEGACY else None
            c = loading.upsert_core(conn, town.code, town.run_id, table, st.rows,
                                    present=present, scope=scope)
            if table in DERIVED_CHILDREN:  # rows derived from a parent: replace per parent
                c.deleted += loading.prune_children(conn, town.code, table,
                                                    DERIVED_CHILDREN[table], st.rows)
            totals.inserted += c.inserted
            totals.updated += c.updated
            totals.unchanged += c.unchanged
            totals.deleted += c.deleted
            if not is_main:
                continue
            if len(st.source_keys):
                loading.resolve_quarantine(conn, town.code, town.run_id, b.source, b.entity,
                                           st.source_keys)
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
    core_pk = [c for c in BY_NAME[spec.table].primary_key if c != "town"]
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


def run_town(config: Config, code: str, engine: sa.Engine, *, progress=None) -> dict:
    """The whole nightly sync of one town without Dagster (same steps, same order)."""
    run_id = loading.start_run(engine, code)
    town = open_town(config, code, engine, run_id)
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
    return report
