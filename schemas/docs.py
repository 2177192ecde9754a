"""docs/warehouse.md, generated from the table definitions (the contract BI tools read)."""

from __future__ import annotations

from pathlib import Path

from schemas.fields import FIELDS
from schemas.tables import LINEAGE, TABLES

LAYERS = {
    "core": "Core: canonical entities with source lineage",
    "raw": "Raw: what was extracted, every version",
    "ops": "Operations: runs, watermarks, quarantine, flags and stewardship",
    "mart": "Marts: report tables a BI tool reads directly",
}

INTRO = """# Warehouse tables

Generated from `schemas/fields.py` and `schemas/tables.py` by `guichet docs`
(a test fails when this file is out of date). Every row carries its `town`
(INSEE code); towns never see each other's rows. Amounts are integer cents.
Timestamps are stored in UTC without an offset; dates are calendar days.

Core tables also carry lineage columns: `row_hash` (content hash, so a night
that changes nothing writes nothing), `first_run_id`, `last_run_id` and
`deleted_run_id` (set when the row disappeared from its source: purged rows are
marked, never silently kept or silently dropped). Read current rows with
`WHERE deleted_run_id IS NULL`.

Mart tables (`mart_*`) are rebuilt for the whole town by the nightly job (asset
`report_marts`, after `reconciliation`), in one transaction: they hold current
figures only, no lineage, and are keyed by town and their dimensions. How each
figure is computed is in docs/reports.md.
"""


def render() -> str:
    out = [INTRO]
    for layer, title in LAYERS.items():
        out.append(f"\n## {title}\n")
        for spec in (t for t in TABLES if t.layer == layer):
            out.append(f"\n### `{spec.name}`\n\n{spec.description}\n\n"
                       f"Primary key: ({', '.join(spec.primary_key)}).\n\n"
                       "| column | type | description |\n|---|---|---|\n")
            for c in spec.column_names:
                if c in LINEAGE and layer == "core":
                    continue
                desc = spec.description_of(c).replace("|", "\\|")
                out.append(f"| `{c}` | {FIELDS[c].type} | {desc} |\n")
    out.append("\n## Lineage columns of core tables\n\n| column | type | description |\n|---|---|---|\n")
    for c in LINEAGE:
        out.append(f"| `{c}` | {FIELDS[c].type} | {FIELDS[c].description} |\n")
    return "".join(out)


def write_warehouse_doc(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(), encoding="utf-8")
    return path
