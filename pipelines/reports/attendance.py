"""Attendance report for the service managers, and its mart ``mart_attendance_day``.

Per activity and day: reservations booked (by origin: portal, desk, standing) and
cancelled, attendance checks (present, excused, unexcused), presences without a booking,
and the activity's capacity. Only counts: no child, no person id, no name ever leaves the
SQL ``GROUP BY`` that computes them. The report aggregates the mart by service, site, day
and ISO week; rates are ratios of sums (never averages of daily rates).
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from pipelines.loading import read_frame
from pipelines.reports.finance import SERVICE_FR
from pipelines.reports.formatting import integer
from pipelines.reports.marts import NO_DATA, month_of, ratio, read_mart, town_name, week_of
from pipelines.reports.model import Chart, Column, Report, Sheet, months

MART = "mart_attendance_day"
COUNTS = ("booked", "booked_portal", "booked_desk", "booked_standing", "cancelled_bookings",
          "present", "excused", "unexcused", "present_without_booking")

_ENROLMENT = ("JOIN enrolment e ON e.town = x.town AND e.enrolment_id = x.enrolment_id "
              "AND e.deleted_run_id IS NULL")

BOOKINGS_SQL = (
    "SELECT x.day, e.activity_id, "
    "SUM(CASE WHEN x.state = 'RESA' THEN 1 ELSE 0 END) AS booked, "
    "SUM(CASE WHEN x.state = 'RESA' AND x.origin = 'PORTAIL' THEN 1 ELSE 0 END) AS booked_portal, "
    "SUM(CASE WHEN x.state = 'RESA' AND x.origin = 'GUICHET' THEN 1 ELSE 0 END) AS booked_desk, "
    "SUM(CASE WHEN x.state = 'RESA' AND x.origin = 'AUTO' THEN 1 ELSE 0 END) AS booked_standing, "
    "SUM(CASE WHEN x.state = 'ANNUL' THEN 1 ELSE 0 END) AS cancelled_bookings "
    f"FROM reservation x {_ENROLMENT} "
    "WHERE x.town = ? AND x.deleted_run_id IS NULL AND x.day IS NOT NULL "
    "GROUP BY x.day, e.activity_id")

CHECKS_SQL = (
    "SELECT x.day, e.activity_id, "
    "SUM(CASE WHEN x.status = 'P' THEN 1 ELSE 0 END) AS present, "
    "SUM(CASE WHEN x.status = 'AJ' THEN 1 ELSE 0 END) AS excused, "
    "SUM(CASE WHEN x.status = 'AI' THEN 1 ELSE 0 END) AS unexcused, "
    "SUM(CASE WHEN x.status = 'P' AND NOT EXISTS (SELECT 1 FROM reservation r "
    "WHERE r.town = x.town AND r.enrolment_id = x.enrolment_id AND r.day = x.day "
    "AND r.state = 'RESA' AND r.deleted_run_id IS NULL) THEN 1 ELSE 0 END) "
    "AS present_without_booking "
    f"FROM attendance x {_ENROLMENT} "
    "WHERE x.town = ? AND x.deleted_run_id IS NULL AND x.day IS NOT NULL "
    "GROUP BY x.day, e.activity_id")


# ================================================================== mart

def marts(td) -> dict[str, pd.DataFrame]:
    with td.engine.connect() as conn:
        booked = read_frame(conn, BOOKINGS_SQL, [td.town])
        checked = read_frame(conn, CHECKS_SQL, [td.town])
    return {MART: attendance_day(booked, checked, td["activity"])}


def attendance_day(booked: pd.DataFrame, checked: pd.DataFrame,
                   activity: pd.DataFrame) -> pd.DataFrame:
    """``mart_attendance_day`` from the two GROUP BYs and the activities."""
    keys = ["day", "activity_id"]
    frames = []
    for df in (booked, checked):
        df = df.copy()
        df["day"] = pd.to_datetime(df["day"], errors="coerce")
        df["activity_id"] = pd.to_numeric(df["activity_id"])
        frames.append(df.dropna(subset=["day"]).set_index(keys))
    both = frames[0].join(frames[1], how="outer")
    both = both.reindex(columns=list(COUNTS)).apply(pd.to_numeric).fillna(0).astype("int64")
    both = both.reset_index()
    act = activity.drop_duplicates("activity_id").set_index("activity_id")
    aid = both["activity_id"]
    both["activity_code"] = aid.map(act["activity_code"]).astype(object)
    both["activity_code"] = both["activity_code"].where(
        both["activity_code"].notna(), "ACTIVITE-" + aid.astype("Int64").astype(str))
    both["service"] = aid.map(act["service"]).astype(object)
    both["site"] = aid.map(act["site"]).astype(object)
    both["capacity"] = pd.to_numeric(aid.map(act["capacity"])).astype("Int64")
    # two activity ids with one code (should not happen) are one activity-day
    g = both.groupby(["day", "activity_code"], as_index=False, dropna=False).agg(
        {**{c: "sum" for c in COUNTS}, "service": "first", "site": "first",
         "capacity": "max"})
    g["week"] = week_of(g["day"])
    g["month"] = month_of(g["day"])
    g["day"] = g["day"].dt.date
    return g[["day", "activity_code", "service", "site", "week", "month", *COUNTS, "capacity"]]


# ================================================================== report

def rates(df: pd.DataFrame) -> pd.DataFrame:
    """Rates of summed counts (occupancy on the activity-days whose capacity is known)."""
    df = df.copy()
    df["occupancy"] = ratio(df["booked_with_capacity"], df["capacity_total"])
    df["no_show_rate"] = ratio(df["unexcused"], df["booked"])
    df["attendance_rate"] = ratio(df["present"], df["booked"])
    df["share_portal"] = ratio(df["booked_portal"], df["booked"])
    df["share_desk"] = ratio(df["booked_desk"], df["booked"])
    df["share_standing"] = ratio(df["booked_standing"], df["booked"])
    return df


def aggregate(day: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    d = day.copy()
    known = d["capacity"] > 0
    d["capacity_total"] = d["capacity"].where(known, 0)
    d["booked_with_capacity"] = d["booked"].where(known, 0)
    d["days_open"] = 1
    cols = [*COUNTS, "capacity_total", "booked_with_capacity", "days_open"]
    g = d.groupby(keys, as_index=False)[cols].sum()
    g = rates(g)
    if "service" in keys:
        g.insert(keys.index("service") + 1, "service_label",
                 g["service"].map(SERVICE_FR).fillna(g["service"]))
    return g


def count_columns() -> list[Column]:
    return [
        Column("booked", "Réservés", "int", "Réservations actives (RESA) du logiciel métier."),
        Column("present", "Présents", "int", "Pointages « présent » (P)."),
        Column("excused", "Absences excusées", "int", "Pointages « absent excusé » (AJ)."),
        Column("unexcused", "Absences non excusées", "int",
               "Pointages « absent non excusé » (AI)."),
        Column("present_without_booking", "Présents sans réservation", "int",
               "Pointages « présent » sans réservation active ce jour-là pour cette inscription."),
        Column("cancelled_bookings", "Annulations", "int", "Réservations annulées (ANNUL)."),
        Column("capacity_total", "Places offertes", "int", "Capacité de l'activité (places par "
               "jour) × jours d'ouverture (jours avec au moins une réservation ou un pointage)."),
        Column("occupancy", "Taux d'occupation", "pct", "Réservés / places offertes (jours dont "
               "la capacité est connue)."),
        Column("no_show_rate", "Taux d'absence non excusée", "pct",
               "Absences non excusées / réservés."),
        Column("attendance_rate", "Taux de présence", "pct", "Présents / réservés (les présents "
               "sans réservation comptent : le taux peut dépasser 100 %)."),
        Column("share_portal", "Part réservée en ligne", "pct",
               "Réservations faites sur le portail (origine PORTAIL) / réservés."),
        Column("share_desk", "Part réservée au guichet", "pct",
               "Réservations saisies au guichet (origine GUICHET) / réservés."),
        Column("share_standing", "Part des réservations permanentes", "pct",
               "Réservations issues d'un planning permanent (origine AUTO) / réservés."),
    ]


SERVICE_COLS = [
    Column("service", "Service", "text", "Code du service (RESTO, PERI, ALSH, MULTI, EMM...)."),
    Column("service_label", "Libellé du service", "text", "Nom du service."),
]
SITE_COL = Column("site", "Site", "text", "Lieu de l'activité (école, centre).")


def build(engine: sa.Engine, town: str, start: str, end: str) -> Report:
    ms = months(start, end)
    day = read_mart(engine, MART, town, months=ms)
    for c in ("service", "site"):
        day[c] = day[c].fillna("?")
    by_service = aggregate(day, ["service"])
    by_week = aggregate(day, ["service", "site", "week"])
    by_day = aggregate(day, ["service", "site", "day"])
    svc_week = aggregate(day, ["service", "week"])
    by_month = aggregate(day, ["service", "month"])
    cc = count_columns()
    sheets = [
        Sheet("Synthèse par service", "Réservations et présences par service sur la période",
              [*SERVICE_COLS, Column("days_open", "Activités-jours", "int", "Nombre de couples "
                                     "(activité, jour) ouverts."), *cc], by_service),
        Sheet("Par service et mois", "Réservations et présences par service et par mois",
              [*SERVICE_COLS, Column("month", "Mois", "month", "Mois."), *cc], by_month),
        Sheet("Par service et semaine", "Réservations et présences par service et semaine ISO",
              [*SERVICE_COLS, Column("week", "Semaine", "week", "Semaine ISO (lundi à dimanche)."),
               *cc], svc_week),
        Sheet("Par site et semaine", "Réservations et présences par site et semaine ISO",
              [*SERVICE_COLS, SITE_COL, Column("week", "Semaine", "week",
                                            "Semaine ISO (lundi à dimanche)."), *cc], by_week),
        Sheet("Par site et jour", "Réservations et présences par site et par jour",
              [*SERVICE_COLS, SITE_COL, Column("day", "Jour", "date", "Jour d'activité."), *cc],
              by_day),
    ]
    charts = [
        Chart("line", "Taux d'occupation par semaine et service", "Par service et semaine",
              "week", ("occupancy",)),
        Chart("bar", "Réservés et présents par mois", "Par service et mois", "month",
              ("booked", "present")),
        Chart("line", "Taux d'absence non excusée par semaine", "Par service et semaine",
              "week", ("no_show_rate",)),
        Chart("bar", "Origine des réservations par service", "Synthèse par service",
              "service_label", ("share_portal", "share_desk", "share_standing")),
    ]
    tot = day[list(COUNTS)].sum()
    checks = [
        "Réservés = en ligne + guichet + permanentes : "
        + ("vérifié" if tot["booked"] == tot["booked_portal"] + tot["booked_desk"]
           + tot["booked_standing"] else "ÉCART (réservations d'origine inconnue)")
        + f" ({integer(tot['booked'])} réservations).",
        "Aucun nom ni identifiant d'enfant dans ce rapport : uniquement des effectifs.",
    ]
    if day.empty:
        checks = [NO_DATA]
    return Report("attendance", "Fréquentation des services", town, town_name(town), start,
                  end, sheets, charts, checks=checks)
