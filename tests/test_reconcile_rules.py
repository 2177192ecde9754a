"""Hand-built cases for the booking, attendance, billing, document and procedure rules:
one positive and one negative case per rule, so a regression names the rule it broke."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.reconcile import billing, bookings, documents, procedures
from pipelines.reconcile.data import from_frames

AS_OF = "2026-03-20 12:00"  # naive UTC
NOTICE = 48


def world(**over):
    """A town with one family (1), one child (10) enrolled at the canteen (enrolment 100),
    an account linked to the family with the child (per-1); every table can be replaced."""
    base = {
        "household": [{"household_id": 1, "family_code": "F00000001", "name": "DUPONT"},
                   {"household_id": 2, "family_code": "F00000002", "name": "MARTIN"}],
        "person": [{"person_id": 10, "last_name": "DUPONT", "first_name": "Léa"}],
        "membership": [{"household_id": 1, "person_id": 10, "role": "child"}],
        "activity": [{"activity_id": 5, "activity_code": "RESTO-A", "service": "RESTO",
                   "capacity": 2, "cancel_notice_hours": NOTICE,
                   "required_documents": "ASSURANCE;JUSTIF_DOMICILE", "label": "Cantine A"}],
        "enrolment": [{"enrolment_id": 100, "household_id": 1, "person_id": 10, "activity_id": 5,
                    "start_on": "2025-09-01", "end_on": "2026-07-03", "state": "V"}],
        "portal_account": [{"account_id": "acc-1", "legacy_family_code": "F00000001",
                         "status": "active"}],
        "portal_person": [{"portal_person_id": "per-1", "account_id": "acc-1", "role": "child",
                        "legacy_person_id": 10}],
    }
    base.update(over)
    return from_frames("44190", AS_OF, **base)


def resa(rid, day, state="RESA", enrolment=100, origin="AUTO", ref=None, cancelled_at=None):
    return {"reservation_id": rid, "enrolment_id": enrolment, "day": day, "state": state,
            "origin": origin, "portal_ref": ref, "cancelled_at": cancelled_at}


def book(bid, day, action="book", made_at="2026-03-01 10:00", person="per-1",
         activity="RESTO-A"):
    return {"booking_id": bid, "account_id": "acc-1", "portal_person_id": person,
            "activity_code": activity, "day": day, "action": action, "made_at": made_at,
            "source_updated_at": made_at}


def check(aid, day, status, enrolment=100):
    return {"attendance_id": aid, "enrolment_id": enrolment, "day": day, "status": status}


def ids(findings, col):
    return sorted(findings[col].tolist()) if len(findings) else []


# ------------------------------------------------------------------ bookings
def test_booking_not_propagated():
    td = world(portal_booking=[book("b1", "2026-03-10"), book("b2", "2026-03-12")],
               reservation=[resa(1, "2026-03-12", origin="PORTAIL", ref="b2")])
    f = bookings.not_propagated(td)
    assert ids(f, "booking_id") == ["b1"]
    assert "10/03/2026" in f.loc[0, "message"] and f.loc[0, "evidence"]["records"]


def test_booking_too_recent_is_not_judged_yet():
    td = world(portal_booking=[book("b1", "2026-03-25", made_at="2026-03-20 11:50")])
    assert bookings.not_propagated(td).empty


def test_booking_cancelled_in_legacy_then_booked_again_on_portal_is_not_propagated():
    td = world(portal_booking=[book("b1", "2026-03-10", "book", "2026-03-01 10:00"),
                               book("c1", "2026-03-10", "cancel", "2026-03-02 10:00"),
                               book("b2", "2026-03-10", "book", "2026-03-03 10:00")],
               reservation=[resa(1, "2026-03-10", state="ANNUL", origin="PORTAIL", ref="b1",
                                 cancelled_at="2026-03-02 10:00")])
    assert ids(bookings.not_propagated(td), "booking_id") == ["b2"]


def test_cancellation_not_applied():
    td = world(portal_booking=[book("c1", "2026-03-10", "cancel"),
                               book("c2", "2026-03-12", "cancel")],
               reservation=[resa(1, "2026-03-10"), resa(2, "2026-03-12", state="ANNUL")])
    f = bookings.cancellation_not_applied(td)
    assert ids(f, "booking_id") == ["c1"]
    assert "1" in f.loc[0, "suggestion"]


def test_booking_wrong_day_and_wrong_family():
    enrol = [{"enrolment_id": 100, "household_id": 1, "person_id": 10, "activity_id": 5,
              "start_on": "2025-09-01", "end_on": "2026-07-03", "state": "V"},
             {"enrolment_id": 200, "household_id": 2, "person_id": 10, "activity_id": 5,
              "start_on": "2025-09-01", "end_on": "2026-07-03", "state": "V"}]
    td = world(enrolment=enrol,
               portal_booking=[book("b1", "2026-03-10"), book("b2", "2026-03-12"),
                               book("b3", "2026-03-13")],
               reservation=[resa(1, "2026-03-11", origin="PORTAIL", ref="b1"),
                            resa(2, "2026-03-12", origin="PORTAIL", ref="b2", enrolment=200),
                            resa(3, "2026-03-13", origin="PORTAIL", ref="b3")])
    f = bookings.wrong_day_or_activity(td)
    assert ids(f, "booking_id") == ["b1", "b2"]  # another day; the other parent's enrolment
    # neither is reported again as "not propagated"
    assert bookings.not_propagated(td).empty


def test_no_show_only_when_booked_and_not_cancelled():
    td = world(reservation=[resa(1, "2026-03-10"), resa(2, "2026-03-12"),
                            resa(3, "2026-03-13", state="ANNUL")],
               attendance=[check(11, "2026-03-10", "AI"), check(12, "2026-03-12", "AJ"),
                           check(13, "2026-03-13", "AI")])
    assert ids(bookings.no_show(td), "attendance_id") == [11]


def test_no_show_after_a_portal_cancellation_is_the_cancellation_flag():
    td = world(reservation=[resa(1, "2026-03-10")],
               portal_booking=[book("c1", "2026-03-10", "cancel")],
               attendance=[check(11, "2026-03-10", "AI")])
    assert bookings.no_show(td).empty
    assert ids(bookings.cancellation_not_applied(td), "booking_id") == ["c1"]


def test_present_without_booking():
    td = world(reservation=[resa(1, "2026-03-10")],
               portal_booking=[book("b9", "2026-03-16")],
               attendance=[check(11, "2026-03-10", "P"), check(12, "2026-03-12", "P"),
                           check(13, "2026-03-16", "P")])
    # 10th booked; 16th booked on the portal (the not-propagated flag covers it)
    assert ids(bookings.present_without_booking(td), "attendance_id") == [12]


def test_over_capacity():
    enrol = [{"enrolment_id": 100 + i, "household_id": 1, "person_id": 10 + i,
              "activity_id": 5, "start_on": "2025-09-01", "end_on": None, "state": "V"}
             for i in range(3)]
    td = world(enrolment=enrol, reservation=[
        resa(1, "2026-03-10", enrolment=100), resa(2, "2026-03-10", enrolment=101),
        resa(3, "2026-03-10", enrolment=102), resa(4, "2026-03-12", enrolment=100),
        resa(5, "2026-03-12", enrolment=101), resa(6, "2026-03-12", state="ANNUL",
                                                   enrolment=102)])
    f = bookings.over_capacity(td)
    assert [(r.activity_id, str(r.day)) for r in f.itertuples()] == [(5, "2026-03-10")]
    assert "3 réservations pour 2 places" in f.loc[0, "message"]


# ------------------------------------------------------------------- billing
def invoice(inv_id=900, amount=860, state="E"):
    return {"invoice_id": inv_id, "invoice_number": f"2026030{inv_id:06d}", "household_id": 1,
            "period": "202603", "amount_cents": amount, "state": state}


def line(lid, day, inv_id=900, amount=430, enrolment=100):
    return {"line_id": lid, "invoice_id": inv_id, "enrolment_id": enrolment, "day": day,
            "quantity": 1, "unit_price_cents": amount, "amount_cents": amount}


def test_billed_despite_timely_cancellation_uses_the_notice_before_paris_midnight():
    # day 2026-03-10: midnight Paris = 2026-03-09 23:00 UTC; 48 h before = 03-07 23:00 UTC
    td = world(reservation=[
        resa(1, "2026-03-10", state="ANNUL", cancelled_at="2026-03-07 23:00:00"),  # timely
        resa(2, "2026-03-12", state="ANNUL", cancelled_at="2026-03-09 23:00:01")],  # late
        invoice=[invoice()], invoice_line=[line(1, "2026-03-10"), line(2, "2026-03-12")])
    f = billing.billed_despite_timely_cancellation(td)
    assert ids(f, "line_id") == [1]
    assert "4,30 €" in f.loc[0, "suggestion"]


def test_cancelled_invoice_is_not_flagged():
    td = world(reservation=[resa(1, "2026-03-10", state="ANNUL",
                                 cancelled_at="2026-03-01 10:00")],
               invoice=[invoice(state="A")], invoice_line=[line(1, "2026-03-10")])
    assert billing.billed_despite_timely_cancellation(td).empty


def test_billed_never_booked():
    td = world(reservation=[resa(1, "2026-03-10")],
               attendance=[check(11, "2026-03-12", "P")],
               invoice=[invoice(amount=1290)],
               invoice_line=[line(1, "2026-03-10"), line(2, "2026-03-12"),
                             line(3, "2026-03-13"), {**line(4, None), "day": None}])
    assert ids(billing.billed_never_booked(td), "line_id") == [3]


def test_invoice_total_mismatch():
    td = world(invoice=[invoice(900, amount=960), invoice(901, amount=430)],
               invoice_line=[line(1, "2026-03-10", 900), line(2, "2026-03-12", 900),
                             line(3, "2026-03-13", 901)])
    f = billing.invoice_total_mismatch(td)
    assert ids(f, "invoice_id") == [900]
    assert "1,00 €" in f.loc[0, "message"]


# ----------------------------------------------------------------- documents
def doc(did, dtype, person=10, household=1, vf="2025-09-01", vu="2026-08-31",
        source="legacy", **kw):
    return {"document_id": did, "source": source, "household_id": household,
            "person_id": person, "document_type": dtype, "valid_from": vf, "valid_until": vu,
            **kw}


def test_document_missing_or_expired():
    td = world(document=[doc("legacy:1", "ASSURANCE", vu="2026-03-19"),
                         doc("legacy:2", "JUSTIF_DOMICILE", person=None)])
    f = documents.missing_or_expired(td)
    assert [(r.enrolment_id, r.document_type) for r in f.itertuples()] == [(100, "ASSURANCE")]
    assert "19/03/2026" in f.loc[0, "message"]  # expired, with its end date


def test_child_document_held_in_the_other_parents_file_counts():
    td = world(document=[doc("legacy:1", "ASSURANCE", household=2),
                         doc("legacy:2", "JUSTIF_DOMICILE", person=None)])
    assert documents.missing_or_expired(td).empty


def test_family_document_of_another_family_does_not_count():
    td = world(document=[doc("legacy:1", "ASSURANCE"),
                         doc("legacy:2", "JUSTIF_DOMICILE", person=None, household=2)])
    f = documents.missing_or_expired(td)
    assert f["document_type"].tolist() == ["JUSTIF_DOMICILE"]
    assert "absent" in f.loc[0, "message"]


def test_upload_accepted_not_in_piece():
    up = {"source": "portal", "household": None, "person": None, "account_id": "acc-1",
              "portal_person_id": "per-1"}
    td = world(document=[
        doc("portal:d1", "ASSURANCE", review="accepted", **up),
        doc("portal:d2", "VACCINS", vf="2019-01-01", vu=None, review="accepted", **up),
        doc("portal:d3", "CERTIF_MEDICAL", review="pending", **up),
        doc("legacy:5", "VACCINS", vf="2019-01-01", vu=None)])
    assert ids(documents.upload_not_in_piece(td), "document_id") == ["portal:d1"]


# ---------------------------------------------------------------- procedures
def request(rid, procedure, state, submitted, number=None, **kw):
    return {"request_id": rid, "request_number": number or f"GNK-{rid}",
            "procedure": procedure, "state": state, "submitted_at": submitted,
            "account_id": "acc-1", "service": "ETAT_CIVIL", **kw}


def test_request_stuck_beyond_its_service_level():
    td = world(procedure_request=[
        request("r1", "ACTE_NAISSANCE", "en_instruction", "2026-03-12 11:00"),  # 8 days > 7
        request("r2", "ACTE_NAISSANCE", "en_construction", "2026-03-14 11:00"),  # 6 days
        request("r3", "ACTE_NAISSANCE", "accepte", "2026-01-01 11:00"),
        request("r4", "INSCRIPTION_CRECHE", "en_instruction", "2026-01-01 11:00")])  # 78 < 90
    assert ids(procedures.request_stuck(td), "request_id") == ["r1"]


def test_service_levels_are_configurable():
    td = world(procedure_request=[
        request("r4", "INSCRIPTION_CRECHE", "en_instruction", "2026-01-01 11:00")])
    td.memo["service_levels"] = {"INSCRIPTION_CRECHE": 60}
    assert ids(procedures.request_stuck(td), "request_id") == ["r4"]


def test_accepted_enrolment_without_inscription():
    fields = '{"child_first_name": "Léa", "child_last_name": "Dupont", "activity_code": "RESTO-A"}'
    enrol = [{"enrolment_id": 100, "household_id": 1, "person_id": 10, "activity_id": 5,
              "start_on": "2025-09-01", "end_on": None, "state": "V",
              "request_number": "GNK-r1"}]
    td = world(enrolment=enrol, procedure_request=[
        request("r1", "INSCRIPTION_PERISCOLAIRE", "accepte", "2025-06-01", fields=fields),
        request("r2", "INSCRIPTION_PERISCOLAIRE", "accepte", "2025-06-01", fields=fields,
                decided_at="2025-06-10 09:00"),
        request("r3", "INSCRIPTION_PERISCOLAIRE", "refuse", "2025-06-01"),
        request("r4", "INSCRIPTION_LISTE_ELECTORALE", "accepte", "2025-06-01")])
    f = procedures.accepted_without_inscription(td)
    assert ids(f, "request_id") == ["r2"]
    assert "Léa Dupont" in f.loc[0, "message"] and "10/06/2025" in f.loc[0, "message"]


@pytest.mark.parametrize("func", [bookings.not_propagated, bookings.no_show,
                                  billing.billed_never_booked, documents.missing_or_expired,
                                  procedures.request_stuck, bookings.over_capacity])
def test_rules_on_an_empty_town_find_nothing(func):
    assert len(func(from_frames("44190", AS_OF))) == 0


def test_findings_frames_have_the_flag_contract():
    td = world(reservation=[resa(1, "2026-03-10")], attendance=[check(11, "2026-03-10", "AI")])
    f = bookings.no_show(td)
    assert {"attendance_id", "message", "severity", "suggestion", "evidence"} <= set(f.columns)
    assert isinstance(f.loc[0, "evidence"], dict)
    assert pd.notna(f.loc[0, "message"])


def test_cancellation_applied_to_one_of_two_bookings_of_the_same_day_is_applied():
    enrol = [{"enrolment_id": 100, "household_id": 1, "person_id": 10, "activity_id": 5,
              "start_on": "2025-09-01", "end_on": None, "state": "V"},
             {"enrolment_id": 101, "household_id": 1, "person_id": 10, "activity_id": 5,
              "start_on": "2026-01-01", "end_on": None, "state": "V"}]
    td = world(enrolment=enrol,
               portal_booking=[book("c1", "2026-03-10", "cancel", "2026-03-05 09:00")],
               reservation=[resa(1, "2026-03-10", state="ANNUL", enrolment=100,
                                 cancelled_at="2026-03-05 09:00:00"),
                            resa(2, "2026-03-10", enrolment=101)])
    assert bookings.cancellation_not_applied(td).empty
    # an older cancellation of the other row does not count
    td = world(enrolment=enrol,
               portal_booking=[book("c1", "2026-03-10", "cancel", "2026-03-05 09:00")],
               reservation=[resa(1, "2026-03-10", state="ANNUL", enrolment=100,
                                 cancelled_at="2026-02-01 09:00:00"),
                            resa(2, "2026-03-10", enrolment=101)])
    assert ids(bookings.cancellation_not_applied(td), "booking_id") == ["c1"]
