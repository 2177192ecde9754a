"""The report marts on a synced and reconciled simulated town (60 households), on both
warehouse backends: the finance identity holds to the cent and agrees with the core
tables, the weekly family logins are plausible, the open requests beyond their service
level are the ones the reconciliation flags, and a rebuild changes nothing."""

from __future__ import annotations

import json

import pytest
from helpers import count, town_config

from connectors.warehouse import make_engine
from pipelines.reconcile.run import reconcile_town
from pipelines.reports import build
from pipelines.reports.finance import GAPS, verify_town
from pipelines.reports.marts import build_marts, read_mart
from pipelines.steps import run_town

TOWN = "44190"


@pytest.fixture
def town(warehouse_url, town_dir, tmp_path):
    cfg = town_config(warehouse_url, {TOWN: town_dir}, tmp_path / "landing")
    engine = make_engine(warehouse_url)
    run = run_town(cfg, TOWN, engine)["run_id"]
    res = reconcile_town(engine, TOWN, run)
    built = build_marts(engine, TOWN)
    yield engine, res, built, json.loads((town_dir / "town.json").read_text())
    engine.dispose()


def test_marts_and_reports_of_a_simulated_town(town):
    engine, res, built, info = town
    v = verify_town(engine, TOWN)
    assert {k: v[k] for k in GAPS} == dict.fromkeys(GAPS, 0)
    # the marts add up to the core tables and to the night's money
    assert v["invoiced_cents"] == count(
        engine, "SELECT SUM(amount_cents) FROM invoice WHERE town = :t "
                "AND deleted_run_id IS NULL", t=TOWN)
    assert v["collected_cents"] == res.money["allocated_cents"] > 0
    assert v["received_cents"] == res.money["received_cents"]
    assert v["unallocated_cents"] == res.money["unallocated_cents"]
    assert v["outstanding_cents"] > 0 and v["cancelled_cents"] >= 0
    # family-space logins: ~1.1 per household and school week (docs/simulated-town.md)
    weeks = read_mart(engine, "mart_portal_week", TOWN)
    fam = weeks[(weeks["space"] == "famille") & (weeks["days_reported"] == 7)]["logins"]
    assert len(fam) > 30
    assert 0.5 * info["households"] <= fam.median() <= 2 * info["households"]
    # open requests beyond their level = the reconciliation's stuck requests
    req = read_mart(engine, "mart_request", TOWN)
    stuck = req[req["beyond_sla"] & req["processing_minutes"].isna()]
    assert len(stuck) == res.findings["rec.procedures.request_stuck"]
    day = read_mart(engine, "mart_attendance_day", TOWN)
    assert day["booked"].sum() == count(
        engine, "SELECT COUNT(*) FROM reservation WHERE town = :t AND state = 'RESA' "
                "AND deleted_run_id IS NULL", t=TOWN)
    assert day["present"].sum() > 0.9 * day["booked"].sum()
    # a rebuild replaces the rows: same content, no duplicate
    before = {n: read_mart(engine, n, TOWN).to_dict("records") for n in built.rows}
    again = build_marts(engine, TOWN)
    assert again.rows == built.rows
    assert {n: read_mart(engine, n, TOWN).to_dict("records") for n in built.rows} == before
    # the three reports of the school year: every figure checked, nothing off
    for kind in ("finance", "attendance", "usage"):
        rep = build(kind, engine, TOWN, "2025-09", "2026-06")
        assert rep.sheets and all(len(s.frame) for s in rep.sheets[:3]), kind
        assert not any("ÉCART" in c for c in rep.checks), rep.checks
    fin = build("finance", engine, TOWN, "2025-09", "2026-06")
    nights = fin.sheet("Rapprochement par nuit").frame
    # the reconciliation ran "today", outside the simulated school year
    assert nights.empty or nights["rate"].between(0, 1).all()
    svc = build("attendance", engine, TOWN, "2025-09", "2026-06").sheet(
        "Synthèse par service").frame.set_index("service")
    assert {"RESTO", "PERI"} <= set(svc.index)
    assert (svc["occupancy"].dropna() <= 1.5).all() and (svc["no_show_rate"] < 0.1).all()
