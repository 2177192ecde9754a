"""Procedures: requests beyond their service level, accepted enrolment requests with no
legacy enrolment (``INSCRIPTION.REF_DEMANDE`` = the request's number)."""

from __future__ import annotations

import pandas as pd

from pipelines.reconcile.data import TownData
from pipelines.reconcile.rules import day_fr, evidence, findings, record, rule

#: service level per procedure, in days (the town's commitments; configurable)
SERVICE_LEVEL_DAYS = {
    "INSCRIPTION_SCOLAIRE": 30, "INSCRIPTION_PERISCOLAIRE": 30, "INSCRIPTION_ALSH": 21,
    "INSCRIPTION_CRECHE": 90, "INSCRIPTION_EMM": 45, "ACTE_NAISSANCE": 7,
    "ACTE_MARIAGE": 7, "ACTE_DECES": 7, "INSCRIPTION_LISTE_ELECTORALE": 30,
    "RECENSEMENT_CITOYEN": 15, "SIGNALEMENT_VOIRIE": 20, "RESERVATION_SALLE": 21,
    "SUBVENTION_ASSOCIATION": 120,
}
DEFAULT_SERVICE_LEVEL_DAYS = 30
#: procedures whose acceptance creates a legacy INSCRIPTION (SOURCES.md)
ENROLMENT_PROCEDURES = ("INSCRIPTION_SCOLAIRE", "INSCRIPTION_PERISCOLAIRE", "INSCRIPTION_ALSH",
                        "INSCRIPTION_CRECHE", "INSCRIPTION_EMM")
OPEN_STATES = ("en_construction", "en_instruction")
STATE_FR = {"en_construction": "en construction", "en_instruction": "en instruction",
            "accepte": "acceptée", "refuse": "refusée", "sans_suite": "classée sans suite"}


def service_levels(overrides: dict | None = None) -> dict:
    return {**SERVICE_LEVEL_DAYS, **(overrides or {})}


@rule("procedures", "request_stuck", "Démarches — demande en attente au-delà du délai",
      ("request_id",), truth_key=lambda d: (d["request_id"],))
def request_stuck(td: TownData) -> pd.DataFrame:
    sla = service_levels(td.memo.get("service_levels"))
    r = td["procedure_request"]
    r = r[r["state"].isin(OPEN_STATES) & r["submitted_at"].notna()].copy()
    r["sla_days"] = r["procedure"].map(sla).fillna(DEFAULT_SERVICE_LEVEL_DAYS).astype("int64")
    r["days_open"] = (td.now() - r["submitted_at"]).dt.days
    m = r[r["days_open"] > r["sla_days"]]
    return findings(
        m, ["request_id"], severity="warning", service=lambda x: x.get("service"),
        message=lambda x: (f"Demande {x['request_number']} ({x['procedure']}) "
                           f"{STATE_FR.get(x['state'], x['state'])} depuis {x['days_open']} "
                           f"jours, pour un délai de {x['sla_days']} jours."),
        suggestion="Instruire et décider la demande, ou informer le demandeur du retard.",
        evidence=lambda x: evidence(record(
            f"Portail — demande {x['request_number']}",
            {"démarche": x["procedure"], "état": x["state"],
             "déposée le": day_fr(x["submitted_at"]), "délai (jours)": x["sla_days"]})))


@rule("procedures", "accepted_enrolment_without_inscription",
      "Démarches — inscription acceptée absente du logiciel", ("request_id",),
      truth_key=lambda d: (d["request_id"],))
def accepted_without_inscription(td: TownData) -> pd.DataFrame:
    r = td["procedure_request"]
    r = r[r["procedure"].isin(ENROLMENT_PROCEDURES) & (r["state"] == "accepte")]
    refs = set(td["enrolment"]["request_number"].dropna())
    m = r[~r["request_number"].isin(refs)].copy()
    m["child"] = m["fields"].map(_child_of)
    return findings(
        m, ["request_id"], severity="error", service=lambda x: x.get("service"),
        message=lambda x: (f"Demande {x['request_number']} ({x['procedure']}, {x['child']}) "
                           f"acceptée le {day_fr(x['decided_at'])} mais aucune inscription du "
                           "logiciel ne la référence."),
        suggestion=lambda x: ("Créer l'inscription dans le logiciel avec la référence de "
                              f"demande {x['request_number']}."),
        evidence=lambda x: evidence(
            record(f"Portail — demande {x['request_number']}",
                   {"démarche": x["procedure"], "état": "acceptée",
                    "décidée le": day_fr(x["decided_at"]), "enfant": x["child"]}),
            record("Logiciel métier — INSCRIPTION", {"REF_DEMANDE": "aucune"}),
            expected="Une inscription dont REF_DEMANDE est le numéro de la demande."))


def _child_of(fields) -> str:
    import json

    try:
        f = json.loads(fields) if isinstance(fields, str) else (fields or {})
    except ValueError:
        return "?"
    return " ".join(str(f.get(k) or "") for k in ("child_first_name", "child_last_name")
                    ).strip() + (f" — {f['activity_code']}" if f.get("activity_code") else "")
