"""Billing: invoice lines against the days booked, cancelled and attended.

The spec's rule: a day is billed when it is booked and not cancelled in time and not an
excused absence, or when the child was present without booking. Day lines are compared
by (child, activity, day); flat monthly lines (music school, no day) are not day-based.
"""

from __future__ import annotations

import pandas as pd

from pipelines.reconcile import days
from pipelines.reconcile.data import TownData
from pipelines.reconcile.rules import day_fr, euros, evidence, findings, record, rule

LEGACY = "Logiciel métier"


def day_lines(td: TownData) -> pd.DataFrame:
    """Lines of live invoices that bill a day, with their invoice and activity."""
    def build(td):
        inv = td["invoice"][["invoice_id", "invoice_number", "state", "household_id"]]
        lines = td["invoice_line"]
        lines = lines[lines["day"].notna()].merge(inv.rename(columns={
            "household_id": "invoice_household_id"}), on="invoice_id", how="inner")
        lines = lines[lines["state"] != "A"]  # a cancelled invoice owes nothing
        return days.with_enrolment(lines, td)
    return td.cached("day_lines", build)


def _line_values(r: dict) -> dict:
    return {"facture": r["invoice_number"], "jour": day_fr(r["day"]),
            "activité": r["activity_code"], "montant": euros(r["amount_cents"])}


@rule("billing", "billed_despite_timely_cancellation",
      "Facturation — jour facturé malgré une annulation dans les délais", ("line_id",),
      truth_key=lambda d: (d["line_id"],))
def billed_despite_timely_cancellation(td: TownData) -> pd.DataFrame:
    lines = day_lines(td)
    r = days.reservations(td)
    cancelled = r[r["state"] == "ANNUL"].copy()
    cancelled["deadline"] = days.notice_deadline(cancelled["day"],
                                                 cancelled["cancel_notice_hours"])
    timely = cancelled[cancelled["cancelled_at"].notna()
                       & (cancelled["cancelled_at"] <= cancelled["deadline"])]
    timely = timely[[*days.DAY_KEY, "reservation_id", "cancelled_at", "deadline"]]
    m = lines.merge(timely.drop_duplicates(days.DAY_KEY), on=days.DAY_KEY, how="inner")
    m = days.mark(m, days.booked_days(td), "booked")  # booked again on another enrolment
    a = days.attendance(td)
    m = days.mark(m, a[a["status"] == "P"], "present")
    m = m[~m["booked"] & ~m["present"]]
    return findings(
        m, ["line_id"], severity="error", service=lambda r: r.get("service"),
        message=lambda r: (f"Le {day_fr(r['day'])} ({r['activity_code']}) est facturé "
                           f"({euros(r['amount_cents'])}, facture {r['invoice_number']}) alors "
                           "que la famille a annulé dans les délais."),
        suggestion=lambda r: (f"Émettre un avoir de {euros(r['amount_cents'])} sur la facture "
                              f"{r['invoice_number']}."),
        evidence=lambda r: evidence(
            record(f"{LEGACY} — LIGNE_FACTURE {r['line_id']}", _line_values(r)),
            record(f"{LEGACY} — RESERVATION {r['reservation_id']}",
                   {"jour": day_fr(r["day"]), "état": "ANNUL",
                    "annulée le (UTC)": r["cancelled_at"],
                    "limite (UTC)": r["deadline"]}),
            expected="Un jour annulé avant la limite n'est pas facturé."))


@rule("billing", "billed_never_booked", "Facturation — jour facturé jamais réservé ni pointé",
      ("line_id",), truth_key=lambda d: (d["line_id"],))
def billed_never_booked(td: TownData) -> pd.DataFrame:
    lines = day_lines(td)
    # per enrolment: the other parent's booking of the same day does not bill this family
    on = ["enrolment_id", "day"]
    m = days.mark(lines, td["reservation"], "reserved", on=on)  # whatever its state
    m = days.mark(m, td["attendance"], "checked", on=on)
    m = m[~m["reserved"] & ~m["checked"]]
    return findings(
        m, ["line_id"], severity="error", service=lambda r: r.get("service"),
        message=lambda r: (f"Le {day_fr(r['day'])} ({r['activity_code']}) est facturé "
                           f"({euros(r['amount_cents'])}, facture {r['invoice_number']}) sans "
                           "réservation ni pointage ce jour-là."),
        suggestion=lambda r: (f"Vérifier auprès du service ; sans présence, émettre un avoir de "
                              f"{euros(r['amount_cents'])}."),
        evidence=lambda r: evidence(
            record(f"{LEGACY} — LIGNE_FACTURE {r['line_id']}", _line_values(r)),
            record(f"{LEGACY} — réservations et pointages",
                   {"jour": day_fr(r["day"]), "réservation": "aucune", "pointage": "aucun"}),
            expected="Un jour facturé est réservé ou pointé présent."))


@rule("billing", "invoice_total_mismatch", "Facturation — total de la facture différent de la "
      "somme des lignes", ("invoice_id",), truth_key=lambda d: (d["invoice_id"],))
def invoice_total_mismatch(td: TownData) -> pd.DataFrame:
    inv = td["invoice"]
    sums = td["invoice_line"].groupby("invoice_id")["amount_cents"].sum().rename("lines_cents")
    m = inv.merge(sums.reset_index(), on="invoice_id", how="left")
    m["lines_cents"] = m["lines_cents"].fillna(0).astype("int64")
    m = m[m["amount_cents"].notna() & (m["amount_cents"] != m["lines_cents"])].copy()
    m["gap"] = m["amount_cents"] - m["lines_cents"]
    return findings(
        m, ["invoice_id"], severity="error",
        message=lambda r: (f"Facture {r['invoice_number']} : total {euros(r['amount_cents'])}, "
                           f"somme des lignes {euros(r['lines_cents'])} (écart "
                           f"{euros(r['gap'])})."),
        suggestion=lambda r: ("Corriger le total de la facture (ou les lignes) dans le "
                              f"logiciel : la somme des lignes est {euros(r['lines_cents'])}."),
        evidence=lambda r: evidence(
            record(f"{LEGACY} — FACTURE {r['invoice_number']}",
                   {"total": euros(r["amount_cents"]), "état": r["state"]}),
            record(f"{LEGACY} — LIGNE_FACTURE (somme)", {"total": euros(r["lines_cents"])}),
            expected="Total = somme des lignes."))
