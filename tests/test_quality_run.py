"""The quality step of a nightly run on a simulated town, on both warehouse backends:
the suites find exactly the defects the town injected, flags are stable across runs,
decisions survive the next sync, and decisions taken while a run is in progress are
neither lost nor half-applied."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import sqlalchemy as sa
from helpers import town_config

from connectors.warehouse import make_engine
from pipelines.steps import run_town
from quality import flags, store
from quality.checks import run_quality
from quality.decisions import decide

TOWN = "44190"


def truth(town_dir, cls):
    rows = [json.loads(line) for line in (town_dir / "truth.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("kind") == "defect" and r.get("class") == cls]


def open_flags(engine, rule=None):
    with engine.connect() as conn:
        return flags.list_flags(conn, TOWN, flags.Filters(status="open", rule=rule), limit=10_000)


def test_nightly_quality_flags_decisions_and_a_concurrent_steward(warehouse_url, town_dir,
                                                                   tmp_path):
    cfg = town_config(warehouse_url, {TOWN: town_dir}, tmp_path / "landing")
    engine = make_engine(warehouse_url)
    r1 = run_town(cfg, TOWN, engine)["run_id"]
    out = run_quality(engine, TOWN, r1, report_dir=tmp_path / "reports")
    assert out["structural_failures"] == 0
    assert out["report"].exists() and "core.bank_statement" in out["report"].read_text()

    # exactly the injected defects that a suite can see, and nothing else
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT statement_id, account || '|' || closing_on, file_name FROM bank_statement "
            "WHERE town = :t"), {"t": TOWN}).all()
    statements = {r[0]: r[1] for r in rows}
    # (a statement whose file was quarantined for a bad checksum is not in the warehouse)
    unbalanced = {f"{d['account']}|{d['closing_on']}" for d in truth(
        town_dir, "statement_unbalanced")} & set(statements.values())
    # a statement one of whose operation lines was quarantined does not add up either
    damaged = {d["file"].rsplit("/", 1)[1] for d in truth(town_dir, "treasury_malformed_line")}
    short = {r[1] for r in rows if r[2] in damaged}
    flagged = {statements[f["entity_ids"]["statement_id"]]
               for f in open_flags(engine, "gx.bank_statement.balanced")}
    assert unbalanced and unbalanced <= flagged <= unbalanced | short
    mismatched = {d["invoice_id"] for d in truth(town_dir, "invoice_total_mismatch")}
    invoice_flags = open_flags(engine, "gx.invoice.amount_matches_lines")
    assert {f["entity_ids"]["invoice_id"] for f in invoice_flags} == mismatched
    assert {f["rule"] for f in open_flags(engine)} == {"gx.bank_statement.balanced",
                                                       "gx.invoice.amount_matches_lines"}
    n_flags = len(open_flags(engine))
    assert out["flags"]["opened"] == n_flags

    # a steward accepts the suggested amount of the invoice (the sum of its lines)
    inv = invoice_flags[0]
    invoice_id = inv["entity_ids"]["invoice_id"]
    decide(engine, TOWN, inv["flag_key"], "accept", author="marie", reason="lignes vérifiées")
    lines_total = int(inv["fix"]["value"])

    def invoice_amount():
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT amount_cents FROM invoice WHERE town = :t AND "
                                        "invoice_id = :i"), {"t": TOWN, "i": invoice_id}).scalar()

    assert invoice_amount() == lines_total
    # the source changes the invoice again (its due date): the next load rewrites the row
    legacy = sqlite3.connect(town_dir / "legacy.sqlite")
    legacy.execute("UPDATE FACTURE SET DATE_ECHEANCE = '20260930', "
                   "DATE_MAJ = '2030-01-01 00:00:00' WHERE ID_FACTURE = ?", (invoice_id,))
    legacy.commit()
    legacy.close()

    # the next night runs while a steward works through the statement flags
    result, errors = {}, []

    def nightly():
        try:
            r2 = run_town(cfg, TOWN, engine)["run_id"]
            result["run"] = r2
            result["quality"] = run_quality(engine, TOWN, r2, report_dir=tmp_path / "reports")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    started = store.utcnow()
    t = threading.Thread(target=nightly)
    t.start()
    while True:  # wait until the run is registered, so every decision comes after its start
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT COUNT(*) FROM load_run WHERE town = :t AND "
                                    "started_at >= :s"), {"t": TOWN, "s": started}).scalar():
                break
        time.sleep(0.02)
    decided = []
    for f in open_flags(engine, "gx.bank_statement.balanced"):
        decided.append(decide(engine, TOWN, f["flag_key"], "fixed_at_source", author="paul",
                              reason="relevé corrigé demandé à la banque"))
        time.sleep(0.05)
    t.join(300)
    assert not errors, errors
    q = result["quality"]

    # nothing duplicated, nothing lost: every decision stored once, audited, in force
    with engine.connect() as conn:
        n_decisions = conn.execute(sa.text("SELECT COUNT(*) FROM steward_decision")).scalar()
        n_audited = conn.execute(sa.text(
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('accept', 'fixed_at_source')")
        ).scalar()
        assert conn.execute(sa.text("SELECT COUNT(*) FROM flag")).scalar() == n_flags
    assert n_decisions == n_audited == len(decided) + 1
    assert q["flags"]["opened"] == 0
    # the run read the sources before those decisions: it must not reopen their flags
    assert open_flags(engine, "gx.bank_statement.balanced") == []
    with engine.connect() as conn:
        statuses = {f["flag_key"]: (f["status"], f["resolution"]) for f in flags.list_flags(
            conn, TOWN, flags.Filters(status=None), limit=10_000)}
    assert statuses[inv["flag_key"]] == ("resolved", "accept")
    assert all(v == ("resolved", "fixed_at_source") for k, v in statuses.items()
               if k.startswith("gx.bank_statement.balanced"))
    # the accepted amount survived the sync that brought the source's amount back
    assert invoice_amount() == lines_total
    engine.dispose()
