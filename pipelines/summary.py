"""What a run did, read back from the warehouse (for the CLI and the benchmark)."""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.steps import core_sources


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
        quarantine = conn.execute(sa.text(
            "SELECT source, entity, reason, COUNT(*) AS rows FROM quarantine WHERE town = :t "
            "GROUP BY source, entity, reason ORDER BY COUNT(*) DESC, source, entity, reason"),
            {"t": town}).mappings().all()
        raw_versions = conn.execute(sa.text("SELECT COUNT(*) FROM raw_record WHERE town = :t"),
                                    {"t": town}).scalar()
        q_open = conn.execute(sa.text("SELECT COUNT(*) FROM quarantine WHERE town = :t AND "
                                      "resolved_run_id IS NULL"), {"t": town}).scalar()
    return {"entities": entities, "quarantine": [dict(r) for r in quarantine[:20]],
            "raw_versions": raw_versions, "quarantine_open": q_open}
