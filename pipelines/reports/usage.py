"""Portal usage report for the portal team, and its marts.

- ``mart_portal_week``: logins per ISO week and space (from the daily ``login_stat``);
- ``mart_request``: one row per online request (procedure, service, state, submitted and
  decided instants, processing time, service level) — no applicant, no form fields.
Processing time = decided_at - submitted_at; beyond its service level = decided more
whole days after submission than the level, or still undecided beyond it at the
reference day (the rule ``rec.procedures.request_stuck`` counts the same open requests).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.reconcile.procedures import DEFAULT_SERVICE_LEVEL_DAYS, service_levels
from pipelines.reports.formatting import integer
from pipelines.reports.marts import (
    NO_DATA,
    month_bounds,
    ratio,
    read_mart,
    reference_day,
    town_name,
    week_of,
    week_start,
)
from pipelines.reports.model import Chart, Column, Report, Sheet, months

WEEK_MART = "mart_portal_week"
REQUEST_MART = "mart_request"
DECIDED = ("accepte", "refuse", "sans_suite")
STATE_FR = {"en_construction": "en construction", "en_instruction": "en instruction",
            "accepte": "acceptée", "refuse": "refusée", "sans_suite": "classée sans suite"}
SPACE_FR = {"famille": "Espace famille", "citoyens": "Espace citoyens",
            "associations": "Espace associations"}


# ================================================================== marts

def marts(td) -> dict[str, pd.DataFrame]:
    return {WEEK_MART: portal_week(td["login_stat"]),
            REQUEST_MART: requests(td["procedure_request"], td.now(), reference_day(td),
                                   service_levels(td.memo.get("service_levels")))}


def portal_week(logins: pd.DataFrame) -> pd.DataFrame:
    """Logins per ISO week and space; ``days_reported`` says whether the week is whole."""
    d = logins[logins["day"].notna()].copy()
    d["week"] = week_of(d["day"])
    d["week_start"] = week_start(d["day"])
    d["count"] = d["count"].fillna(0).astype("int64")
    d["space"] = d["space"].fillna("?").astype(str)
    g = d.groupby(["week", "space"], as_index=False).agg(
        week_start=("week_start", "first"), logins=("count", "sum"),
        days_reported=("day", "nunique"))
    g["week_start"] = g["week_start"].dt.date
    return g


def requests(req: pd.DataFrame, now: pd.Timestamp, ref_day, sla: dict) -> pd.DataFrame:
    """``mart_request``: each request with its processing time and service level."""
    r = req[req["request_id"].notna()].copy()
    r["sla_days"] = r["procedure"].map(sla).fillna(DEFAULT_SERVICE_LEVEL_DAYS).astype("int64")
    decided = r["state"].isin(DECIDED) & r["decided_at"].notna() & r["submitted_at"].notna()
    took = (r["decided_at"] - r["submitted_at"]).where(decided)
    r["processing_minutes"] = (took.dt.total_seconds() // 60).astype("Int64")
    open_ = ~r["state"].isin(DECIDED) & r["submitted_at"].notna()
    waited = (now - r["submitted_at"]).dt.days
    r["beyond_sla"] = np.where(decided, took.dt.days > r["sla_days"],
                               open_ & (waited > r["sla_days"]))
    r["beyond_sla"] = r["beyond_sla"].astype(bool)
    r["reference_day"] = ref_day
    return r[["request_id", "procedure", "service", "state", "submitted_at", "decided_at",
              "processing_minutes", "sla_days", "beyond_sla", "reference_day"]]


# ================================================================== report

def logins_sheet(weeks: pd.DataFrame) -> Sheet:
    w = weeks.pivot_table(index=["week", "week_start"], columns="space", values="logins",
                          aggfunc="sum", fill_value=0)
    for s in SPACE_FR:
        if s not in w.columns:
            w[s] = 0
    days = weeks.groupby("week")["days_reported"].max()
    w = w.reset_index()
    w["days_reported"] = w["week"].map(days).fillna(0).astype("int64")
    w["total"] = w[list(SPACE_FR)].sum(axis=1)
    w = w.sort_values("week_start").reset_index(drop=True)
    cols = [Column("week", "Semaine", "week", "Semaine ISO (lundi à dimanche)."),
            Column("week_start", "Lundi", "date", "Premier jour de la semaine."),
            *[Column(s, f"Connexions {lbl[7:]}", "int",
                     f"Connexions à l'{lbl.lower()} du portail dans la semaine.")
              for s, lbl in SPACE_FR.items()],
            Column("total", "Total des connexions", "int", "Somme des trois espaces."),
            Column("days_reported", "Jours comptés", "int", "Jours de la semaine pour lesquels le "
                   "portail a transmis un comptage (7 = semaine complète ; moins en début ou fin "
                   "de période).")]
    return Sheet("Connexions par semaine", "Connexions au portail par semaine et par espace",
                 cols, w)


def _days(minutes: pd.Series, q: float) -> float:
    s = minutes.dropna().astype("float64")
    return float(np.quantile(s, q, method="linear")) / 1440 if len(s) else float("nan")


def procedures_sheet(submitted: pd.DataFrame, decided: pd.DataFrame) -> Sheet:
    """Per procedure: requests submitted in the period by current state; those decided in
    the period: median and 90th percentile of the processing time; beyond the level."""
    states = list(STATE_FR)
    cnt = submitted.pivot_table(index="procedure", columns="state", values="request_id",
                                aggfunc="count", fill_value=0).reindex(columns=states,
                                                                       fill_value=0)
    g = decided.groupby("procedure")["processing_minutes"]
    t = pd.DataFrame({"decided": g.count(), "median_days": g.apply(lambda s: _days(s, 0.5)),
                      "p90_days": g.apply(lambda s: _days(s, 0.9))})
    sla = pd.concat([submitted, decided]).groupby("procedure")["sla_days"].max()
    beyond = submitted.groupby("procedure")["beyond_sla"].sum()
    out = cnt.join(t, how="outer")
    out["submitted"] = out[states].sum(axis=1)
    out["sla_days"] = sla
    out["beyond_sla"] = beyond
    out["beyond_sla_share"] = ratio(out["beyond_sla"].fillna(0), out["submitted"].fillna(0))
    for c in [*states, "submitted", "decided", "beyond_sla", "sla_days"]:
        out[c] = out[c].fillna(0).astype("int64")
    out = out.rename_axis("procedure").reset_index().sort_values("procedure")
    cols = [Column("procedure", "Démarche", "text", "Code de la démarche en ligne."),
            Column("submitted", "Demandes déposées", "int", "Demandes déposées sur la période."),
            *[Column(s, f"Dont {STATE_FR[s]}", "int", f"Demandes déposées sur la période, "
                     f"aujourd'hui {STATE_FR[s]}.") for s in states],
            Column("decided", "Décidées sur la période", "int", "Demandes décidées (acceptées, "
                   "refusées ou classées) sur la période, quelle que soit leur date de dépôt."),
            Column("median_days", "Délai médian (jours)", "days", "Médiane du délai entre dépôt "
                   "et décision des demandes décidées sur la période."),
            Column("p90_days", "Délai 90e centile (jours)", "days", "Délai sous lequel sont "
                   "décidées 90 % des demandes décidées sur la période."),
            Column("sla_days", "Délai d'engagement (jours)", "int",
                   "Délai de traitement auquel la ville s'engage pour cette démarche."),
            Column("beyond_sla", "Hors délai", "int", "Demandes déposées sur la période décidées "
                   "après le délai d'engagement, ou encore en attente au-delà au jour de "
                   "référence."),
            Column("beyond_sla_share", "Part hors délai", "pct", "Hors délai / déposées.")]
    return Sheet("Démarches", "Demandes en ligne par démarche, état et délai", cols,
                 out.reset_index(drop=True))


def monthly_sheet(submitted: pd.DataFrame, decided: pd.DataFrame, ms: list[str]) -> Sheet:
    sub = submitted.groupby(submitted["submitted_at"].dt.strftime("%Y-%m"))
    dec = decided.groupby(decided["decided_at"].dt.strftime("%Y-%m"))
    out = pd.DataFrame({"submitted": sub.size(), "decided": dec.size(),
                        "median_days": dec["processing_minutes"].apply(lambda s: _days(s, .5)),
                        "p90_days": dec["processing_minutes"].apply(lambda s: _days(s, .9)),
                        "beyond_sla": sub["beyond_sla"].sum()}).reindex(ms)
    for c in ("submitted", "decided", "beyond_sla"):
        out[c] = out[c].fillna(0).astype("int64")
    out = out.rename_axis("month").reset_index()
    cols = [Column("month", "Mois", "month", "Mois (du dépôt pour les demandes déposées et hors "
                   "délai, de la décision pour les délais)."),
            Column("submitted", "Demandes déposées", "int", "Demandes déposées dans le mois."),
            Column("decided", "Demandes décidées", "int", "Demandes décidées dans le mois."),
            Column("median_days", "Délai médian (jours)", "days", "Médiane du délai de traitement "
                   "des demandes décidées dans le mois."),
            Column("p90_days", "Délai 90e centile (jours)", "days",
                   "90e centile du même délai."),
            Column("beyond_sla", "Hors délai", "int",
                   "Demandes déposées dans le mois traitées (ou en attente) au-delà du délai.")]
    return Sheet("Démarches par mois", "Demandes déposées et décidées par mois", cols, out)


def build(engine: sa.Engine, town: str, start: str, end: str) -> Report:
    ms = months(start, end)
    first, last = month_bounds(ms)
    weeks = read_mart(engine, WEEK_MART, town)
    ws = pd.to_datetime(weeks["week_start"])
    # weeks that start in the period (a week belongs to the month of its Monday)
    weeks = weeks[(ws >= pd.Timestamp(first)) & (ws <= pd.Timestamp(last))]
    req = read_mart(engine, REQUEST_MART, town)
    lo, hi = pd.Timestamp(first), pd.Timestamp(last) + pd.Timedelta(days=1)
    # instants are UTC; the period is cut at UTC midnight (an hour off Paris, negligible)
    sub = req[(req["submitted_at"] >= lo) & (req["submitted_at"] < hi)]
    dec = req[req["processing_minutes"].notna() & (req["decided_at"] >= lo)
              & (req["decided_at"] < hi)]
    sheets = [logins_sheet(weeks), procedures_sheet(sub, dec), monthly_sheet(sub, dec, ms)]
    charts = [
        Chart("line", "Connexions par semaine et par espace", "Connexions par semaine", "week",
              tuple(SPACE_FR)),
        Chart("bar", "Délai de traitement par démarche (jours)", "Démarches", "procedure",
              ("median_days", "p90_days")),
        Chart("bar", "Demandes déposées et décidées par mois", "Démarches par mois", "month",
              ("submitted", "decided")),
    ]
    lg = sheets[0].frame
    ok = int((lg[list(SPACE_FR)].sum(axis=1) - lg["total"]).abs().sum()) == 0
    checks = [("Connexions : total = somme des trois espaces : "
              f"{'vérifié' if ok else 'ÉCART'} ({integer(lg['total'].sum())} connexions).")]
    ref = req["reference_day"].dropna().max() if len(req) else None
    if ref is not None:
        checks.append("Demandes en attente jugées au "
                      f"{pd.Timestamp(ref).strftime('%d/%m/%Y')} (données les plus récentes).")
    if weeks.empty and sub.empty and dec.empty:
        checks = [NO_DATA]
    return Report("usage", "Usage du portail citoyen", town, town_name(town), start, end,
                  sheets, charts, checks=checks)
