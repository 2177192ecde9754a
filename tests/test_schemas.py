"""The warehouse schema: one source of truth, created idempotently on both backends."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from connectors.warehouse import make_engine
from schemas.docs import render
from schemas.fields import FIELDS
from schemas.tables import METADATA, TABLES

ROOT = Path(__file__).resolve().parent.parent


def test_every_table_is_keyed_by_town_and_uses_defined_fields():
    for spec in TABLES:
        assert spec.primary_key[0] == "town", spec.name
        for c in spec.column_names:
            assert c in FIELDS, (spec.name, c)


def test_design_entities_all_have_a_table():
    names = {t.name for t in TABLES}
    for n in ("household", "person", "membership", "portal_account", "crosswalk", "activity",
              "enrolment", "reservation", "attendance", "invoice", "invoice_line", "payment",
              "allocation", "document", "procedure_request", "procedure_state", "association",
              "room_booking", "login_stat", "load_run", "watermark", "raw_record", "quarantine",
              "flag", "steward_decision", "audit_log"):
        assert n in names, n


def test_warehouse_doc_is_up_to_date():
    assert (ROOT / "docs" / "warehouse.md").read_text(encoding="utf-8") == render(), \
        "run `guichet docs` to regenerate docs/warehouse.md"


def test_tables_created_idempotently(warehouse_url):
    e1 = make_engine(warehouse_url)
    e2 = make_engine(warehouse_url)  # second start: nothing to create, nothing fails
    tables = set(sa.inspect(e2).get_table_names())
    assert set(METADATA.tables) <= tables
    if e1.dialect.name == "sqlite":
        with e1.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    e1.dispose()
    e2.dispose()
