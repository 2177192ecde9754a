"""Bookings: the portal's log against the legacy reservations, and attendance against both.

Keys follow the spec: a portal action is matched to the legacy by (child, activity, day)
through the portal person's ``legacy_person_id``; a legacy row that came from the portal
also carries the booking id (``REF_PORTAIL``). Actions younger than the propagation grace
(portal → legacy takes up to 15 minutes) are not judged yet.
"""

from __future__ import annotations

import pandas as pd

from pipelines.reconcile import days
from pipelines.reconcile.data import TownData
from pipelines.reconcile.rules import day_fr, evidence, findings, record, rule

#: portal actions younger than this (before ``as_of``) may not have reached the legacy yet
PROPAGATION_GRACE = pd.Timedelta(hours=1)

PORTAL = "Portail"
LEGACY = "Logiciel métier"


def _portal_values(r: dict) -> dict:
    return {"action": r.get("action"), "activité": r.get("activity_code"),
            "jour": day_fr(r.get("day")), "famille": r.get("household_id"),
            "fait le (UTC)": r.get("made_at")}


def _settled(td: TownData, actions: pd.DataFrame) -> pd.DataFrame:
    return actions[actions["made_at"] <= td.now() - PROPAGATION_GRACE]


def _by_ref(td: TownData) -> pd.DataFrame:
    """Legacy reservations that name a portal booking (REF_PORTAIL)."""
    r = days.reservations(td)
    r = r[r["portal_ref"].notna()]
    return r.rename(columns={"portal_ref": "booking_id", "day": "legacy_day",
                             "activity_code": "legacy_activity_code",
                             "reservation_id": "legacy_reservation_id",
                             "state": "legacy_state", "person_id": "legacy_person",
                             "household_id": "legacy_household_id"})[
        ["booking_id", "legacy_reservation_id", "legacy_day", "legacy_activity_code",
         "legacy_state", "legacy_person", "legacy_household_id"]]


def _booked_for_family(td: TownData) -> pd.DataFrame:
    r = days.reservations(td)
    return r.loc[r["state"] == "RESA", [*days.DAY_KEY, "household_id"]]


def _misplaced(td: TownData) -> pd.DataFrame:
    """Portal bookings whose legacy row (by REF_PORTAIL) is on another day or activity."""
    def build(td):
        last = days.portal_last_actions(td)
        books = _settled(td, last[last["action"] == "book"])
        m = books.merge(_by_ref(td), on="booking_id", how="inner")
        # another day, another activity, or the other family's enrolment (separated parents)
        other = ((m["legacy_day"] != m["day"]) | (m["legacy_activity_code"] != m["activity_code"])
                 | (m["household_id"].notna()
                    & (m["legacy_household_id"] != m["household_id"]).fillna(False)))
        m = m[other]
        return days.mark(m, _booked_for_family(td), "booked",
                         on=[*days.DAY_KEY, "household_id"])
    return td.cached("misplaced_bookings", build)


@rule("bookings", "booking_wrong_day_or_activity",
      "Réservations — reportée sur un autre jour ou une autre activité", ("booking_id",),
      truth_key=lambda d: (d["portal_booking_id"],))
def wrong_day_or_activity(td: TownData) -> pd.DataFrame:
    m = _misplaced(td)
    m = m[~m["booked"]]  # the right day is booked anyway: nothing to fix
    return findings(
        m, ["booking_id"], severity="error", service=None,
        message=lambda r: (f"La réservation du portail pour le {day_fr(r['day'])} "
                           f"({r['activity_code']}, famille {r['household_id']}) a été saisie "
                           f"au logiciel le {day_fr(r['legacy_day'])} "
                           f"({r['legacy_activity_code']}, famille {r['legacy_household_id']})."),
        suggestion=lambda r: (f"Déplacer la réservation {r['legacy_reservation_id']} au "
                              f"{day_fr(r['day'])} sur {r['activity_code']} dans le logiciel."),
        evidence=lambda r: evidence(
            record(f"{PORTAL} — réservation {r['booking_id']}", _portal_values(r)),
            record(f"{LEGACY} — RESERVATION {r['legacy_reservation_id']}",
                   {"activité": r["legacy_activity_code"], "jour": day_fr(r["legacy_day"]),
                    "famille": r["legacy_household_id"], "état": r["legacy_state"]}),
            expected="Le même jour et la même activité dans les deux systèmes."))


@rule("bookings", "booking_not_propagated", "Réservations — réservation du portail absente "
      "du logiciel", ("booking_id",), truth_key=lambda d: (d["portal_booking_id"],))
def not_propagated(td: TownData) -> pd.DataFrame:
    last = days.portal_last_actions(td)
    books = _settled(td, last[last["action"] == "book"])
    books = days.mark(books, days.booked_days(td), "booked")
    miss = books[~books["booked"] & ~books["booking_id"].isin(set(_misplaced(td)["booking_id"]))]
    miss = _with_enrolled(td, miss)
    return findings(
        miss, ["booking_id"], severity="error",
        service=lambda r: r.get("service"),
        message=lambda r: (f"Réservation faite sur le portail pour le {day_fr(r['day'])} "
                           f"({r['activity_code']}) absente des réservations du logiciel."),
        suggestion=lambda r: (f"Saisir la réservation du {day_fr(r['day'])} sur "
                              f"{r['activity_code']} pour l'individu {r['person_id']}."),
        evidence=lambda r: evidence(
            record(f"{PORTAL} — réservation {r['booking_id']}", _portal_values(r)),
            record(f"{LEGACY} — individu {r['person_id']}",
                   {"activité": r["activity_code"], "jour": day_fr(r["day"]),
                    "état": "aucune réservation"}),
            expected="Une réservation 'RESA' pour ce jour dans le logiciel."))


def _with_enrolled(td: TownData, df: pd.DataFrame) -> pd.DataFrame:
    """Add the service of the activity (for the queue's filter)."""
    act = td["activity"][["activity_code", "service"]].drop_duplicates("activity_code")
    return df.drop(columns=[c for c in ("service",) if c in df]).merge(
        act, on="activity_code", how="left")


@rule("bookings", "cancellation_not_applied", "Réservations — annulation du portail non "
      "appliquée", ("booking_id",), truth_key=lambda d: (d["portal_booking_id"],))
def cancellation_not_applied(td: TownData) -> pd.DataFrame:
    last = days.portal_last_actions(td)
    cancels = _settled(td, last[last["action"] == "cancel"])
    r = days.reservations(td)
    # applied when a reservation of that child, activity and day was cancelled at or after
    # the portal's action (a child booked twice, on two enrolments, keeps the other one)
    done = r.loc[(r["state"] == "ANNUL") & r["cancelled_at"].notna(),
                 [*days.DAY_KEY, "cancelled_at"]].merge(
        cancels[[*days.DAY_KEY, "made_at"]], on=days.DAY_KEY)
    done = done[done["cancelled_at"] >= done["made_at"] - pd.Timedelta(minutes=1)]
    cancels = days.mark(cancels, done, "applied")
    cancels = cancels[~cancels["applied"]]
    still = r.loc[r["state"] == "RESA", [*days.DAY_KEY, "reservation_id"]]
    m = cancels.merge(still.drop_duplicates(days.DAY_KEY), on=days.DAY_KEY, how="inner")
    m = _with_enrolled(td, m)
    return findings(
        m, ["booking_id"], severity="error", service=lambda r: r.get("service"),
        message=lambda r: (f"Annulation faite sur le portail pour le {day_fr(r['day'])} "
                           f"({r['activity_code']}) : la réservation {r['reservation_id']} "
                           "est toujours active dans le logiciel."),
        suggestion=lambda r: (f"Annuler la réservation {r['reservation_id']} dans le logiciel "
                              "(date d'annulation : celle du portail) et vérifier la facture."),
        evidence=lambda r: evidence(
            record(f"{PORTAL} — annulation {r['booking_id']}", _portal_values(r)),
            record(f"{LEGACY} — RESERVATION {r['reservation_id']}",
                   {"activité": r["activity_code"], "jour": day_fr(r["day"]), "état": "RESA"}),
            expected="La réservation annulée ('ANNUL') dans le logiciel."))


@rule("bookings", "no_show", "Présences — absence non justifiée d'un enfant réservé",
      ("attendance_id",), truth_key=lambda d: (d["pointage_id"],))
def no_show(td: TownData) -> pd.DataFrame:
    a = days.attendance(td)
    ai = a[a["status"] == "AI"]
    ai = days.mark(ai, days.booked_enrolment_days(td), "booked", on=["enrolment_id", "day"])
    last = days.portal_last_actions(td)
    ai = days.mark(ai, last[last["action"] == "cancel"], "cancelled_on_portal")
    # the legacy day of a booking entered on the wrong day: that flag explains the absence
    wrong = _misplaced(td)[["legacy_person", "legacy_day", "legacy_activity_code"]].rename(
        columns={"legacy_person": "person_id", "legacy_day": "day",
                 "legacy_activity_code": "activity_code"})
    ai = days.mark(ai, wrong, "misplaced")
    m = ai[ai["booked"] & ~ai["cancelled_on_portal"] & ~ai["misplaced"]]
    return findings(
        m, ["attendance_id"], severity="info", service=lambda r: r.get("service"),
        message=lambda r: (f"Enfant réservé le {day_fr(r['day'])} ({r['activity_code']}) et "
                           "absent sans justificatif."),
        suggestion="Contacter la famille ; le jour reste facturé sauf justificatif (passer le "
                   "pointage en 'AJ').",
        evidence=lambda r: evidence(
            record(f"{LEGACY} — POINTAGE {r['attendance_id']}",
                   {"activité": r["activity_code"], "jour": day_fr(r["day"]),
                    "pointage": "AI", "réservé": "oui"})))


@rule("bookings", "present_without_booking", "Présences — enfant présent sans réservation",
      ("attendance_id",), truth_key=lambda d: (d["pointage_id"],))
def present_without_booking(td: TownData) -> pd.DataFrame:
    a = days.attendance(td)
    p = a[(a["status"] == "P") & ~a["service"].isin(["SCOL"])]
    # per enrolment: a child of separated parents checked in on one family's enrolment
    # while booked on the other's is billed twice
    p = days.mark(p, days.booked_enrolment_days(td), "booked", on=["enrolment_id", "day"])
    last = days.portal_last_actions(td)
    p = days.mark(p, last[last["action"] == "book"], "booked_on_portal",
                  on=[*days.DAY_KEY, "household_id"])
    m = p[~p["booked"] & ~p["booked_on_portal"]]
    return findings(
        m, ["attendance_id"], severity="warning", service=lambda r: r.get("service"),
        message=lambda r: (f"Enfant pointé présent le {day_fr(r['day'])} ({r['activity_code']}) "
                           "sans réservation, ni au logiciel ni sur le portail."),
        suggestion="Vérifier le pointage ; s'il est juste, le jour est facturé (présence sans "
                   "réservation) et la famille peut être rappelée aux règles de réservation.",
        evidence=lambda r: evidence(
            record(f"{LEGACY} — POINTAGE {r['attendance_id']}",
                   {"activité": r["activity_code"], "jour": day_fr(r["day"]), "pointage": "P",
                    "réservation": "aucune"})))


@rule("bookings", "over_capacity", "Capacité — jour au-delà du nombre de places",
      ("activity_id", "day"), truth_key=lambda d: (d["activity_id"], d["day"]))
def over_capacity(td: TownData) -> pd.DataFrame:
    r = days.reservations(td)
    n = (r[r["state"] == "RESA"].groupby(["activity_id", "day"]).size()
         .rename("booked").reset_index())
    act = td["activity"][["activity_id", "activity_code", "capacity", "service"]]
    n = n.merge(act, on="activity_id", how="inner")
    m = n[n["capacity"].notna() & (n["booked"] > n["capacity"])].copy()
    m["day"] = m["day"].dt.date
    return findings(
        m, ["activity_id", "day"], severity="warning", service=lambda r: r.get("service"),
        message=lambda r: (f"{r['activity_code']} le {day_fr(r['day'])} : {r['booked']} "
                           f"réservations pour {r['capacity']} places."),
        suggestion="Ouvrir des places (encadrement) ou proposer une liste d'attente ; vérifier "
                   "la capacité saisie dans le logiciel.",
        evidence=lambda r: evidence(
            record(f"{LEGACY} — ACTIVITE {r['activity_code']}",
                   {"jour": day_fr(r["day"]), "réservations": r["booked"],
                    "capacité": r["capacity"]}),
            expected="Réservations ≤ capacité."))
