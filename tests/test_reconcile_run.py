"""The reconciliation end to end on a synced simulated town, on both warehouse backends:
links, allocations and flags written once, re-runs changing nothing, money conserved,
steward decisions holding, and the accuracy measured against the town's ground truth."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from helpers import core_digest, count, town_config

from connectors.warehouse import make_engine
from pipelines import loading
from pipelines.cli import main
from pipelines.reconcile import evaluate
from pipelines.reconcile.rules import all_rules
from pipelines.reconcile.run import reconcile_town
from pipelines.steps import run_town
from quality.decisions import decide
from quality.frames import read_table


@pytest.fixture
def reconciled(warehouse_url, town_dir, tmp_path):
    cfg = town_config(warehouse_url, {"44190": town_dir}, tmp_path / "landing")
    engine = make_engine(warehouse_url)
    run = run_town(cfg, "44190", engine)["run_id"]
    res = reconcile_town(engine, "44190", run)
    yield engine, res, town_dir
    engine.dispose()


def test_reconciliation_writes_links_allocations_and_flags(reconciled):
    engine, res, _ = reconciled
    assert res.money_conserved and res.money["received_cents"] > 0
    assert res.links == count(engine, "SELECT COUNT(*) FROM crosswalk WHERE town = '44190'")
    assert res.allocations == count(engine, "SELECT COUNT(*) FROM allocation")
    assert res.links > 0 and res.allocations > 0
    with engine.connect() as conn:
        flagged = {r for (r,) in conn.execute(sa.text(
            "SELECT DISTINCT rule FROM flag WHERE rule LIKE 'rec.%'"))}
    assert "rec.bookings.no_show" in flagged and "rec.billing.invoice_total_mismatch" in flagged
    assert set(res.findings) == set(all_rules())
    with engine.connect() as conn:
        night = conn.execute(sa.text("SELECT received_cents, allocated_cents, "
                                     "unallocated_cents, open_flags FROM reconciliation_run")
                             ).one()
    assert night[0] == res.money["received_cents"] == night[1] + night[2]
    assert night[3] == count(
        engine, "SELECT COUNT(*) FROM flag WHERE status = 'open' AND rule LIKE 'rec.%'")


def test_rerun_changes_nothing(reconciled):
    engine, _, _ = reconciled
    before = core_digest(engine)
    with engine.connect() as conn:
        flags_before = conn.execute(sa.text(
            "SELECT flag_key, status, evidence_hash FROM flag ORDER BY flag_key")).all()
    again = reconcile_town(engine, "44190", loading.start_run(engine, "44190"))
    assert core_digest(engine) == before  # crosswalk and allocations keep their run
    assert again.flags.opened == 0 and again.flags.auto_resolved == 0
    assert again.flags.reopened == 0
    with engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT flag_key, status, evidence_hash FROM flag ORDER BY flag_key")).all() \
            == flags_before


def test_a_dismissed_reconciliation_flag_stays_dismissed(reconciled):
    engine, _, _ = reconciled
    with engine.connect() as conn:
        key = conn.execute(sa.text("SELECT flag_key FROM flag WHERE rule = "
                                   "'rec.bookings.no_show' ORDER BY flag_key")).scalar()
    decide(engine, "44190", key, "dismiss", author="agent", reason="justificatif reçu")
    reconcile_town(engine, "44190", loading.start_run(engine, "44190"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM flag WHERE flag_key = :k"),
                            {"k": key}).scalar() == "dismissed"


def test_accuracy_against_the_ground_truth(reconciled):
    engine, _, town_dir = reconciled
    truth = evaluate.read_truth(town_dir / "truth.jsonl")
    with engine.connect() as conn:
        scores = evaluate.class_scores(truth, evaluate.found_from_flags(conn, "44190"))
        links = evaluate.identity_scores(truth, read_table(conn, "44190", "crosswalk"))
        alloc = evaluate.allocation_scores(truth, read_table(conn, "44190", "allocation"))
    present = {k: s for k, s in scores.items() if s.truth}
    assert len(present) >= 20  # the small town has most classes
    for name, s in present.items():  # the targets of the default and the 10x towns
        assert s.precision >= 0.99 and s.recall >= 0.97, (name, s.as_dict())
    for name, s in links.items():
        assert s.precision >= 0.99 and s.recall >= 0.97, (name, s.as_dict())
    assert alloc["cent_recall"] >= 0.99 and alloc["cent_precision"] >= 0.99, alloc


def test_evaluate_command_prints_scores_and_fails_under_a_threshold(reconciled, capsys,
                                                                    monkeypatch, tmp_path):
    engine, _, town_dir = reconciled
    url = engine.url.render_as_string(hide_password=False)
    args = ["evaluate", "--town", "44190", "--warehouse-url", url,
            "--truth", str(town_dir / "truth.jsonl")]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["classes"]["invoice_total_mismatch"]["recall"] == 1.0
    assert main([*args, "--fail-under", "1.01"]) == 1
    assert "FAIL" in capsys.readouterr().err
    assert main(["evaluate", "--town", "44190", "--warehouse-url", url,
                 "--truth", str(tmp_path / "missing.jsonl")]) == 2


def test_evaluation_leaves_out_what_no_data_can_show():
    """A desk receipt naming nobody and quoting nothing cannot be tied to an invoice: the
    case defects resting on it (its own, and the double payment of its invoice) are
    counted neither as expected nor as extra; a quarantined line likewise."""
    def pay(pid, invoice, **kw):
        return {"kind": "payment", "payment_id": pid, "invoice_number": invoice,
                "channel": "caisse", "received_cents": 1000, "reference_case": "exact",
                "payer_named": True, **kw}

    def defect(cls, pid, invoice):
        return {"kind": "defect", "class": cls, "payment_id": pid, "invoice_number": invoice}

    truth = [
        pay("CAISSE-2026-000001", "I1", reference_case="none", payer_named=False),
        pay("CAISSE-2026-000002", "I1"),  # the double: its invoice's other receipt is blind
        pay("CAISSE-2026-000003", "I2"),
        pay("CAISSE-2026-000004", "I2"),  # a double anyone can see
        pay("CAISSE-2026-000005", "I3", reference_case="none", payer_named=False),
        pay("CAISSE-2026-000006", "I4", reference_case="none"),  # named: seeable
        pay("CAISSE-2026-000007", "I5", source_malformed=True),
        defect("payment_double", "CAISSE-2026-000002", "I1"),
        defect("payment_double", "CAISSE-2026-000004", "I2"),
        defect("payment_overpayment", "CAISSE-2026-000005", "I3"),
        defect("payment_no_reference", "CAISSE-2026-000005", "I3"),
        defect("payment_overpayment", "CAISSE-2026-000006", "I4"),
        defect("payment_partial", "CAISSE-2026-000007", "I5"),
    ]
    found = {"rec.payments.payment_double": {("caisse:2026-000002",), ("caisse:2026-000004",)},
             "rec.payments.payment_overpayment": {("caisse:2026-000005",)},
             "rec.payments.payment_partial": {("caisse:2026-000007",)}}
    s = evaluate.class_scores(truth, found)
    assert (s["payment_double"].truth, s["payment_double"].hits,
            s["payment_double"].found, s["payment_double"].not_counted) == (1, 1, 1, 1)
    assert (s["payment_overpayment"].truth, s["payment_overpayment"].found,
            s["payment_overpayment"].not_counted) == (1, 0, 1)
    assert s["payment_overpayment"].recall == 0.0  # the named one was missed
    assert s["payment_no_reference"].truth == 1  # a blind receipt does lack its reference
    assert (s["payment_partial"].truth, s["payment_partial"].found,
            s["payment_partial"].not_counted) == (0, 0, 1)
