"""What a run did, read back from the warehouse (for the CLI and the benchmark)."""

from __future__ import annotations

import re
from collections import Counter

import sqlalchemy as sa

from pipelines.steps import core_sources

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\b\d+(-\d+)?\b")
_HEX = re.compile(r"\b[0-9a-f]{8,}\b(\.\.\.)?")


def reason_class(reason: str) -> str:
    """A reason with its particular values blanked, so that like counts with like."""
    return _NUMBER.sub("N", _HEX.sub("…", _QUOTED.sub("'…'", reason))).strip()


def reason_classes(rows) -> list[dict]:
    """Quarantine rows counted by (source, entity, reason class); a row whose reason lists
    several problems counts once under each."""
    counts: Counter = Counter()
    for source, entity, reason in rows:
        # staging joins several problems of one row with "; "
        parts = str(reason).split("; ") if source in ("legacy", "portal") else [str(reason)]
        for part in parts:
            counts[(source, entity, reason_class(part))] += 1
    return [{"source": s, "entity": e, "reason": r, "rows": n}
            for (s, e, r), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def run_summary(engine: sa.Engine, town: str, run_id: str) -> dict:
    table_of: dict = {}  # (source, entity) -> the core table it mainly feeds
    for table, feeds in core_sources().items():
        for f in feeds:
            table_of.setdefault(f, table)
    p = {"t": town, "r": run_id}
    with engine.connect() as conn:
        stats = conn.execute(sa.text(
            "SELECT source, entity, rows_read, rows_loaded, rows_quarantined, rows_inserted, "
            "rows_updated, rows_deleted FROM load_stat WHERE town = :t AND run_id = :r "
            "ORDER BY source, entity"), p).mappings().all()
        entities = []
        for s in stats:
            table = table_of.get((s["source"], s["entity"]), "")
            core_rows = conn.execute(sa.text(
                f"SELECT COUNT(*) FROM {table} WHERE town = :t AND deleted_run_id IS NULL"),
                {"t": town}).scalar() if table else 0
            entities.append({**s, "table": table, "core_rows": core_rows})
        reasons = conn.execute(sa.text(
            "SELECT source, entity, reason FROM quarantine WHERE town = :t"), {"t": town}).all()
        raw_versions = conn.execute(sa.text("SELECT COUNT(*) FROM raw_record WHERE town = :t"),
                                    {"t": town}).scalar()
        q_open = conn.execute(sa.text("SELECT COUNT(*) FROM quarantine WHERE town = :t AND "
                                      "resolved_run_id IS NULL"), {"t": town}).scalar()
    return {"entities": entities, "quarantine": reason_classes(reasons)[:25],
            "raw_versions": raw_versions, "quarantine_open": q_open}
