"""Report marts and reports on a tiny hand-built warehouse, on SQLite and PostgreSQL.

Every expected figure below is computed by hand from the rows inserted (see the comments
next to them): invoices split on services, money by channel, what is still owed and how
late, cash-flow by payment month, direct-debit rejects, attendance counts and rates,
weekly logins, processing-time median and 90th percentile, service levels.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from connectors.warehouse import make_engine
from pipelines.bulk import bulk_insert
from pipelines.reports import build
from pipelines.reports.finance import verify_town
from pipelines.reports.marts import NO_DATA, build_marts, read_mart, spread

TOWN = "44190"
D = dt.date


def _rows(conn, table: str, rows: list[dict]) -> None:
    bulk_insert(conn, table, pd.DataFrame([{"town": TOWN, **r} for r in rows]))


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def seed(engine: sa.Engine) -> None:
    """Two activities, six enrolments, five invoices, six payments, a transfer, logins and
    five requests. The reference day is 2025-12-20 (the freshest portal row)."""
    with engine.begin() as conn:
        _rows(conn, "portal_account", [{"account_id": "acc-1",
                                        "source_updated_at": _ts("2025-12-20 10:00")}])
        _rows(conn, "activity", [
            {"activity_id": 1, "activity_code": "RESTO-A", "service": "RESTO",
             "site": "École A", "capacity": 3},
            {"activity_id": 2, "activity_code": "PERI-A", "service": "PERI", "site": "École A",
             "capacity": 2}])
        _rows(conn, "enrolment", [
            {"enrolment_id": e, "household_id": h, "person_id": p, "activity_id": a,
             "state": "V"} for e, h, p, a in
            [(1, 10, 100, 1), (2, 10, 100, 2), (3, 20, 200, 1), (4, 30, 300, 1),
             (5, 40, 400, 1), (6, 50, 500, 1)]])
        _rows(conn, "person", [{"person_id": 100, "first_name": "Zoé", "last_name": "Quéméner"}])
        # ---------------------------------------------------------------- invoices
        inv = [  # id, number, period, due, header, state
            (1, "2025090000001", "202509", D(2025, 11, 2), 1000, "E"),
            (2, "2025090000002", "202509", D(2025, 11, 2), 500, "E"),
            (3, "2025100000003", "202510", D(2025, 12, 4), 301, "A"),
            (4, "2025100000004", "202510", D(2025, 12, 4), 1001, "T"),
            (5, "2025100000005", "202510", D(2025, 12, 4), 250, "E"),  # no line at all
        ]
        _rows(conn, "invoice", [{"invoice_id": i, "invoice_number": n, "household_id": 10,
                                 "period": p, "due_on": d, "amount_cents": a, "state": s}
                                for i, n, p, d, a, s in inv])
        _rows(conn, "invoice_line", [
            {"line_id": 1, "invoice_id": 1, "enrolment_id": 1, "amount_cents": 600},  # RESTO
            {"line_id": 2, "invoice_id": 1, "enrolment_id": 2, "amount_cents": 400},  # PERI
            {"line_id": 3, "invoice_id": 2, "enrolment_id": 3, "amount_cents": 500},  # RESTO
            {"line_id": 4, "invoice_id": 3, "enrolment_id": 3, "amount_cents": 301},  # RESTO
            {"line_id": 5, "invoice_id": 4, "enrolment_id": 1, "amount_cents": 500},  # RESTO
            {"line_id": 6, "invoice_id": 4, "enrolment_id": 2, "amount_cents": 500},  # PERI
        ])
        # ---------------------------------------------------------------- payments
        pay = [  # id, source, channel, status, cents, paid_on, op, reason
            ("payfip:a", "payfip", "online_card", "paid", 1000, D(2025, 10, 10), "a", None),
            ("caisse:1", "caisse", "cash", "paid", 200, D(2025, 10, 15), "1", None),
            ("caisse:2", "caisse", "cash", "paid", 300, D(2025, 11, 20), "2", None),
            ("caisse:3", "caisse", "cheque", "paid", 80, D(2025, 11, 20), "3", None),
            ("prlv:m:x", "prlv", "direct_debit", "rejected", 500, D(2025, 11, 5), "x", "AM04"),
            ("payfip:b", "payfip", "online_card", "refused", 1000, D(2025, 10, 9), "b", None),
            ("portal:b", "portal", "online_card", "refused", 1000, D(2025, 10, 9), "b", None),
        ]
        _rows(conn, "payment", [{"payment_id": i, "source": s, "channel": c, "status": st,
                                 "amount_cents": a, "paid_on": d, "operation_ref": o,
                                 "reject_reason": r} for i, s, c, st, a, d, o, r in pay])
        _rows(conn, "bank_statement", [{"statement_id": "st1", "account": "ACC"}])
        _rows(conn, "bank_operation", [{"operation_id": "st1:1", "statement_id": "st1", "seq": 1,
                                        "booked_on": D(2025, 11, 10), "amount_cents": 150,
                                        "label": "VIR SEPA DUPONT", "entry_number": "0001"}])
        _rows(conn, "allocation", [
            {"allocation_id": f"{p}>{n}", "payment_id": p, "invoice_number": n,
             "amount_cents": a, "method": "test"} for p, n, a in
            [("payfip:a", "2025090000001", 1000), ("caisse:1", "2025090000002", 200),
             ("vir:ACC:0001", "2025090000002", 150), ("caisse:2", "2025100000004", 300)]])
        _rows(conn, "reconciliation_run", [
            {"run_id": "r1", "reconciled_at": _ts("2025-10-31 01:00"), "received_cents": 1000,
             "allocated_cents": 900, "unallocated_cents": 100, "open_flags": 3},
            {"run_id": "r2", "reconciled_at": _ts("2025-11-30 23:30"),  # 1 Dec in Paris
             "received_cents": 1730, "allocated_cents": 1650, "unallocated_cents": 80,
             "open_flags": 1}])
        # ---------------------------------------------------------------- attendance
        res = [  # id, enrolment, day, state, origin
            (1, 1, D(2025, 9, 1), "RESA", "PORTAIL"), (2, 3, D(2025, 9, 1), "RESA", "AUTO"),
            (3, 4, D(2025, 9, 1), "RESA", "GUICHET"), (4, 5, D(2025, 9, 1), "ANNUL", "PORTAIL"),
            (5, 2, D(2025, 9, 1), "RESA", "AUTO"), (6, 1, D(2025, 9, 2), "RESA", "PORTAIL"),
            (7, 1, D(2025, 9, 8), "RESA", "AUTO")]
        _rows(conn, "reservation", [{"reservation_id": i, "enrolment_id": e, "day": d,
                                     "state": s, "origin": o} for i, e, d, s, o in res])
        att = [(1, 1, D(2025, 9, 1), "P"), (2, 3, D(2025, 9, 1), "AI"),
               (3, 4, D(2025, 9, 1), "AJ"), (4, 6, D(2025, 9, 1), "P"),  # 6: never booked
               (5, 2, D(2025, 9, 1), "P"), (6, 1, D(2025, 9, 2), "P")]
        _rows(conn, "attendance", [{"attendance_id": i, "enrolment_id": e, "day": d,
                                    "status": s} for i, e, d, s in att])
        # ---------------------------------------------------------------- portal usage
        logins = [{"day": D(2025, 9, 1) + dt.timedelta(days=k), "space": "famille",
                   "count": 10} for k in range(7)]
        logins += [{"day": D(2025, 9, 8), "space": "famille", "count": 5},
                   {"day": D(2025, 9, 3), "space": "citoyens", "count": 3}]
        _rows(conn, "login_stat", logins)
        req = [  # id, procedure, state, submitted, decided
            ("r1", "ACTE_NAISSANCE", "accepte", "2025-09-01 08:00", "2025-09-03 08:00"),  # 2 d
            ("r2", "ACTE_NAISSANCE", "refuse", "2025-09-02 08:00", "2025-09-12 08:00"),  # 10 d
            ("r3", "ACTE_NAISSANCE", "accepte", "2025-09-05 00:00", "2025-09-09 12:00"),  # 4.5
            ("r4", "ACTE_NAISSANCE", "en_instruction", "2025-09-10 08:00", None),  # 101 d open
            ("r5", "SUBVENTION_ASSOCIATION", "en_construction", "2025-09-10 08:00", None)]
        _rows(conn, "procedure_request", [
            {"request_id": i, "procedure": p, "state": s, "submitted_at": _ts(a),
             "decided_at": _ts(b) if b else None, "service": "ETAT_CIVIL"}
            for i, p, s, a, b in req])


def _build(engine):
    return build_marts(engine, TOWN, service_levels={"SUBVENTION_ASSOCIATION": 60})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tiny(request, tmp_path_factory):
    """The seeded warehouse with its marts, once per backend (tests only read it, or
    rebuild the marts after changing them)."""
    if request.param == "sqlite":
        url, server = f"sqlite:///{tmp_path_factory.mktemp('tiny') / 'wh.sqlite'}", None
    else:
        server = request.getfixturevalue("pg_server")
        url = server.create("guichet_rep")
    engine = make_engine(url)
    try:
        seed(engine)
        yield engine, _build(engine)
    finally:
        engine.dispose()
        if server is not None:
            server.drop(url)


def _by(df: pd.DataFrame, *keys) -> dict:
    return {tuple(r[k] for k in keys): r for r in df.to_dict("records")}


def test_spread_gives_every_cent_to_one_part_and_one_item():
    shares = pd.DataFrame({"k": [1, 1, 1], "p": ["a", "b", "c"], "weight": [1, 1, 1]})
    amounts = pd.DataFrame({"k": [1, 1], "i": ["x", "y"], "cents": [50, 50]})
    out = spread(shares, amounts, key="k", part="p", item="i")
    got = out.pivot_table(index="p", columns="i", values="cents", aggfunc="sum", fill_value=0)
    # 100 cents on thirds: cumulative rounding 33 | 34 | 33 (33.3 -> 33, 66.7 -> 67)
    assert got.sum(axis=1).to_dict() == {"a": 33, "b": 34, "c": 33}
    assert got.sum(axis=0).to_dict() == {"x": 50, "y": 50}
    assert got.loc["b"].to_dict() == {"x": 17, "y": 17}  # cents 33..66


def test_finance_mart_hand_computed(tiny):
    engine, built = tiny
    assert built.reference_day == D(2025, 12, 20)
    fm = _by(read_mart(engine, "mart_finance_month", TOWN), "month", "service")
    assert set(fm) == {("2025-09", "PERI"), ("2025-09", "RESTO"), ("2025-10", "PERI"),
                       ("2025-10", "RESTO"), ("2025-10", "AUTRE")}
    # invoice 1 (1000, paid online) = PERI 400 + RESTO 600
    p9 = fm[("2025-09", "PERI")]
    assert (p9["invoices"], p9["invoiced_cents"], p9["collected_online_card_cents"],
            p9["outstanding_cents"]) == (0, 400, 400, 0)  # counted under RESTO (600 > 400)
    # RESTO 09: 600 of invoice 1 + invoice 2 (500: 200 cash, 150 transfer, 150 owed,
    # due 2 Nov: 48 days late on 20 Dec)
    r9 = fm[("2025-09", "RESTO")]
    assert (r9["invoices"], r9["lines_cents"], r9["invoiced_cents"]) == (2, 1100, 1100)
    assert (r9["collected_online_card_cents"], r9["collected_cash_cents"],
            r9["collected_transfer_cents"], r9["collected_cents"]) == (600, 200, 150, 950)
    assert (r9["outstanding_cents"], r9["overdue_31_60_cents"]) == (150, 150)
    # invoice 4 (T, 1001 on lines 500/500, 300 cash): PERI owns cents [0, 501), RESTO
    # [501, 1001); cash is laid first [0, 300), what is owed [300, 1001); 16 days late
    p10 = fm[("2025-10", "PERI")]
    assert (p10["invoiced_cents"], p10["lines_cents"], p10["collected_cash_cents"],
            p10["outstanding_cents"], p10["overdue_0_30_cents"]) == (501, 500, 300, 201, 201)
    assert (p10["invoices"], p10["treasury_invoices"], p10["treasury_cents"],
            p10["treasury_outstanding_cents"]) == (1, 1, 501, 201)  # 500/500: PERI < RESTO
    # RESTO 10: cancelled invoice 3 (301) + 500 owed of invoice 4
    r10 = fm[("2025-10", "RESTO")]
    assert (r10["invoices"], r10["cancelled_invoices"], r10["invoiced_cents"],
            r10["cancelled_cents"], r10["collected_cents"], r10["outstanding_cents"],
            r10["treasury_cents"]) == (1, 1, 801, 301, 0, 500, 500)
    assert r10["treasury_invoices"] == 0
    # invoice 5 has no line: its 250 stay visible as AUTRE
    o10 = fm[("2025-10", "AUTRE")]
    assert (o10["invoiced_cents"], o10["lines_cents"], o10["outstanding_cents"],
            o10["overdue_0_30_cents"]) == (250, 0, 250, 250)
    # the billed view adds up to the invoice headers and the allocation table
    total = sum(r["invoiced_cents"] for r in fm.values())
    assert total == 1000 + 500 + 301 + 1001 + 250
    v = verify_town(engine, TOWN)
    assert {k: v[k] for k in ("channels", "identity", "ageing", "receipts", "views")} == \
        dict.fromkeys(("channels", "identity", "ageing", "receipts", "views"), 0)
    assert v["collected_cents"] == 1650 and v["received_cents"] == 1730


def test_cash_flow_rejects_and_failed_attempts(tiny):
    engine, _ = tiny
    rm = _by(read_mart(engine, "mart_receipts_month", TOWN), "month", "channel")
    assert (rm[("2025-10", "online_card")]["received_cents"],
            rm[("2025-10", "online_card")]["failed_card_attempts"]) == (1000, 1)  # b once
    cheque = rm[("2025-11", "cheque")]
    assert (cheque["received_cents"], cheque["allocated_cents"], cheque["unallocated_cents"],
            cheque["payments_unallocated"]) == (80, 0, 80, 1)
    assert rm[("2025-11", "transfer")]["allocated_cents"] == 150
    dd = rm[("2025-11", "direct_debit")]
    assert (dd["received_cents"], dd["rejected_debits"], dd["rejected_debit_cents"]) == \
        (0, 1, 500)
    rej = read_mart(engine, "mart_debit_reject", TOWN)
    assert rej[["month", "reject_reason", "payments", "amount_cents"]].values.tolist() == \
        [["2025-11", "AM04", 1, 500]]


def test_the_asset_check_sees_a_broken_mart(tiny):
    engine, _ = tiny
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE mart_finance_month SET collected_cash_cents = "
                             "collected_cash_cents + 7 WHERE month = '2025-10' AND "
                             "service = 'PERI'"))
        conn.execute(sa.text("UPDATE mart_receipts_month SET unallocated_cents = 0"))
    try:
        v = verify_town(engine, TOWN)
        assert v["channels"] == 7 and v["identity"] == 0 and v["receipts"] == 80
        rep = build("finance", engine, TOWN, "2025-09", "2025-11")
        assert any(c.startswith("Somme des canaux = encaissé : ÉCART de 0,07")
                   for c in rep.checks)
    finally:
        _build(engine)  # the next tests read the true marts
    assert verify_town(engine, TOWN)["channels"] == 0


def test_finance_report(tiny):
    engine, _ = tiny
    rep = build("finance", engine, TOWN, "2025-09", "2025-12")
    s = rep.sheet("Synthèse mensuelle").frame.set_index("month")
    assert list(s.index) == ["2025-09", "2025-10", "2025-11", "2025-12"]
    assert s.loc["2025-09", "collection_rate"] == pytest.approx(1350 / 1500)
    assert (s.loc["2025-10", "invoiced_net_cents"], s.loc["2025-10", "outstanding_cents"]) == \
        (1001 + 250, 201 + 500 + 250)
    assert s.loc["2025-11", "invoiced_cents"] == 0
    assert (s.loc["2025-09", "invoices"], s.loc["2025-10", "invoices"]) == (2, 3)
    assert rep.sheet("Transmis au Trésor").frame.set_index("month").loc[
        "2025-10", "treasury_invoices"] == 1
    ch = rep.sheet("Encaissé par canal").frame.set_index("month")
    assert ch.loc["2025-09", "collected_transfer_cents"] == 150
    nights = rep.sheet("Rapprochement par nuit").frame
    assert nights["day"].tolist() == [D(2025, 10, 31), D(2025, 12, 1)]
    assert nights["rate"].tolist() == pytest.approx([0.9, 1650 / 1730])
    assert rep.checks[0] == "Somme des canaux = encaissé : vérifié (16,50\u00a0€)."
    assert all("vérifié" in c for c in rep.checks)
    # the month asked narrows every sheet
    only = build("finance", engine, TOWN, "2025-10", "2025-10")
    assert only.sheet("Par service").frame["month"].unique().tolist() == ["2025-10"]
    assert only.sheet("Rejets de prélèvement").frame.empty


def test_attendance_mart_and_report(tiny):
    engine, _ = tiny
    day = _by(read_mart(engine, "mart_attendance_day", TOWN), "day", "activity_code")
    r = day[(D(2025, 9, 1), "RESTO-A")]
    assert (r["booked"], r["booked_portal"], r["booked_desk"], r["booked_standing"],
            r["cancelled_bookings"], r["present"], r["excused"], r["unexcused"],
            r["present_without_booking"], r["capacity"], r["week"]) == \
        (3, 1, 1, 1, 1, 2, 1, 1, 1, 3, "2025-W36")
    assert day[(D(2025, 9, 8), "RESTO-A")]["present"] == 0
    rep = build("attendance", engine, TOWN, "2025-09", "2025-09")
    svc = rep.sheet("Synthèse par service").frame.set_index("service")
    # RESTO: 5 booked on 3 open days of 3 places; 1 no-show; 1 desk, 2 standing, 2 online
    assert svc.loc["RESTO", "capacity_total"] == 9
    assert svc.loc["RESTO", "occupancy"] == pytest.approx(5 / 9)
    assert svc.loc["RESTO", "no_show_rate"] == pytest.approx(1 / 5)
    assert (svc.loc["RESTO", "share_portal"], svc.loc["RESTO", "share_desk"],
            svc.loc["RESTO", "share_standing"]) == pytest.approx((2 / 5, 1 / 5, 2 / 5))
    wk = rep.sheet("Par site et semaine").frame
    w36 = wk[(wk["service"] == "RESTO") & (wk["week"] == "2025-W36")].iloc[0]
    assert (w36["booked"], w36["present"], w36["capacity_total"]) == (4, 3, 6)
    assert w36["occupancy"] == pytest.approx(4 / 6)
    empty = build("attendance", engine, TOWN, "2025-10", "2025-10")
    assert empty.sheet("Par site et jour").frame.empty and empty.checks == [NO_DATA]


def test_usage_marts_and_report(tiny):
    engine, _ = tiny
    weeks = _by(read_mart(engine, "mart_portal_week", TOWN), "week", "space")
    assert (weeks[("2025-W36", "famille")]["logins"],
            weeks[("2025-W36", "famille")]["days_reported"]) == (70, 7)
    assert weeks[("2025-W37", "famille")]["days_reported"] == 1
    req = read_mart(engine, "mart_request", TOWN).set_index("request_id")
    assert req.loc["r1", "processing_minutes"] == 2 * 1440
    assert pd.isna(req.loc["r4", "processing_minutes"])
    # r2 decided in 10 days for 7; r4 open 101 days; r5 open 101 days for 60 (configured)
    assert req["beyond_sla"].to_dict() == {"r1": False, "r2": True, "r3": False, "r4": True,
                                           "r5": True}
    rep = build("usage", engine, TOWN, "2025-09", "2025-09")
    lg = rep.sheet("Connexions par semaine").frame.set_index("week")
    assert (lg.loc["2025-W36", "famille"], lg.loc["2025-W36", "citoyens"],
            lg.loc["2025-W36", "total"]) == (70, 3, 73)
    pr = rep.sheet("Démarches").frame.set_index("procedure")
    acte = pr.loc["ACTE_NAISSANCE"]
    assert (acte["submitted"], acte["accepte"], acte["refuse"], acte["en_instruction"],
            acte["decided"], acte["beyond_sla"], acte["sla_days"]) == (4, 2, 1, 1, 3, 2, 7)
    # processing times 2, 4.5 and 10 days: median 4.5, p90 = 4.5 + 0.8 x 5.5 = 8.9
    assert acte["median_days"] == pytest.approx(4.5)
    assert acte["p90_days"] == pytest.approx(8.9)


def test_no_child_in_any_report(tiny):
    engine, _ = tiny
    forbidden = {"person_id", "enrolment_id", "household_id", "first_name", "last_name",
                 "account_id", "request_id", "portal_person_id"}
    for kind in ("finance", "attendance", "usage"):
        rep = build(kind, engine, TOWN, "2025-09", "2025-12")
        assert rep.sheets and rep.checks
        for sheet in rep.sheets:
            assert not forbidden & set(sheet.frame.columns), (kind, sheet.name)
            text = sheet.frame.astype(str).to_string()
            assert "Zoé" not in text and "Quéméner" not in text
            for col in sheet.columns:
                assert col.definition and col.header, (sheet.name, col.name)
        for chart in rep.charts:
            frame = rep.sheet(chart.sheet).frame
            assert chart.x in frame.columns and set(chart.series) <= set(frame.columns)
