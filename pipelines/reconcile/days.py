"""The day-level views the booking, attendance and billing rules share.

Every legacy row about a child's day (reservation, attendance check, invoice line) is
keyed by enrolment; the portal speaks of a portal person, an activity code and a day.
These helpers bring them to one key, (legacy person, activity code, day), because a
child of separated parents may hold one enrolment per family in the same activity and
SOURCES.md matches a cancellation "by (child, activity, day)".
"""

from __future__ import annotations

import pandas as pd

from pipelines.reconcile.data import TownData

DAY_KEY = ["person_id", "activity_code", "day"]


def enrolments(td: TownData) -> pd.DataFrame:
    """Enrolments with their activity's code, service, notice and required documents."""
    def build(td):
        act = td["activity"][["activity_id", "activity_code", "service", "capacity",
                              "cancel_notice_hours", "required_documents", "label"]]
        return td["enrolment"].merge(act, on="activity_id", how="left")
    return td.cached("enrolments", build)


def with_enrolment(df: pd.DataFrame, td: TownData,
                   cols=("person_id", "household_id", "activity_code", "activity_id",
                         "service", "cancel_notice_hours")) -> pd.DataFrame:
    enr = enrolments(td)[["enrolment_id", *cols]]
    return df.merge(enr, on="enrolment_id", how="left")


def reservations(td: TownData) -> pd.DataFrame:
    return td.cached("reservations", lambda td: with_enrolment(td["reservation"], td))


def attendance(td: TownData) -> pd.DataFrame:
    return td.cached("attendance", lambda td: with_enrolment(td["attendance"], td))


def booked_days(td: TownData) -> pd.DataFrame:
    """(person, activity, day) with at least one legacy reservation in state RESA."""
    def build(td):
        r = reservations(td)
        return r.loc[r["state"] == "RESA", DAY_KEY].drop_duplicates()
    return td.cached("booked_days", build)


def booked_enrolment_days(td: TownData) -> pd.DataFrame:
    """(enrolment, day) with a legacy reservation in state RESA: what bills a family."""
    def build(td):
        r = td["reservation"]
        return r.loc[r["state"] == "RESA", ["enrolment_id", "day"]].drop_duplicates()
    return td.cached("booked_enrolment_days", build)


def portal_last_actions(td: TownData) -> pd.DataFrame:
    """The portal's latest action per (legacy person, activity, day), by instant then id.

    Only persons linked to a legacy person (``legacy_person_id``) can be compared.
    """
    def build(td):
        b = td["portal_booking"].merge(
            td["portal_person"][["portal_person_id", "legacy_person_id"]],
            on="portal_person_id", how="left")
        b = b[b["legacy_person_id"].notna()].rename(columns={"legacy_person_id": "person_id"})
        # the family the account acts for (separated parents each book for their weeks)
        fam = td["portal_account"][["account_id", "legacy_family_code"]].merge(
            td["household"][["household_id", "family_code"]],
            left_on="legacy_family_code", right_on="family_code", how="inner")
        b = b.merge(fam[["account_id", "household_id"]], on="account_id", how="left")
        b = b.sort_values(["made_at", "booking_id"])
        return b.drop_duplicates(DAY_KEY, keep="last").reset_index(drop=True)
    return td.cached("portal_last_actions", build)


def notice_deadline(day: pd.Series, hours: pd.Series) -> pd.Series:
    """00:00 Europe/Paris of the day minus the notice, as naive UTC."""
    midnight = pd.to_datetime(day).dt.tz_localize("Europe/Paris", ambiguous="NaT",
                                                  nonexistent="shift_forward")
    deadline = midnight - pd.to_timedelta(hours.fillna(0).astype("int64"), unit="h")
    return deadline.dt.tz_convert("UTC").dt.tz_localize(None)


def mark(df: pd.DataFrame, other: pd.DataFrame, name: str, on=DAY_KEY) -> pd.DataFrame:
    """``df`` with a boolean column ``name``: whether its key is in ``other``."""
    keys = other[on].drop_duplicates()
    keys[name] = True
    out = df.merge(keys, on=on, how="left")
    out[name] = out[name].fillna(False).astype(bool)
    return out
