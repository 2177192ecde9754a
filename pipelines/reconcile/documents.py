"""Documents: enrolled children without a valid required document, and portal uploads
accepted but never recorded in the legacy family file (PIECE).

Per SOURCES.md: child-level types must be held by the child in any family file the
child belongs to; family-level types by the enrolment's family; validity includes both
dates; the legacy program is authoritative for eligibility.
"""

from __future__ import annotations

import pandas as pd

from pipelines.reconcile import days
from pipelines.reconcile.data import TownData
from pipelines.reconcile.rules import day_fr, evidence, findings, record, rule

CHILD_TYPES = ("ASSURANCE", "VACCINS", "CERTIF_MEDICAL")
FAMILY_TYPES = ("JUSTIF_DOMICILE", "ATTEST_CAF")
TYPE_FR = {"ASSURANCE": "attestation d'assurance", "VACCINS": "carnet de vaccinations",
           "CERTIF_MEDICAL": "certificat médical", "JUSTIF_DOMICILE": "justificatif de domicile",
           "ATTEST_CAF": "attestation CAF"}


def _legacy_docs(td: TownData) -> pd.DataFrame:
    d = td["document"]
    return d[d["source"] == "legacy"]


def _valid_at(d: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    return ((d["valid_from"].isna() | (d["valid_from"] <= day))
            & (d["valid_until"].isna() | (d["valid_until"] >= day)))


def required(td: TownData, day: pd.Timestamp) -> pd.DataFrame:
    """One row per (current validated enrolment, required document type)."""
    e = days.enrolments(td)
    e = e[(e["state"] == "V") & (e["start_on"] <= day)
          & (e["end_on"].isna() | (e["end_on"] >= day)) & e["required_documents"].notna()]
    e = e.assign(document_type=e["required_documents"].str.split(";")).explode("document_type")
    e["document_type"] = e["document_type"].str.strip()
    return e[e["document_type"].notna() & (e["document_type"] != "")]


@rule("documents", "document_missing_or_expired",
      "Pièces — pièce obligatoire absente ou périmée", ("enrolment_id", "document_type"),
      truth_key=lambda d: (d["enrolment_id"], d["type"]))
def missing_or_expired(td: TownData) -> pd.DataFrame:
    day = td.now().normalize()
    need = required(td, day)
    docs = _legacy_docs(td)
    valid = docs[_valid_at(docs, day)]
    child = valid[valid["person_id"].notna()][["person_id", "document_type"]]
    family = valid[valid["person_id"].isna()][["household_id", "document_type"]]
    is_child = need["document_type"].isin(CHILD_TYPES)
    need_c = days.mark(need[is_child], child, "held", on=["person_id", "document_type"])
    need_f = days.mark(need[~is_child], family, "held", on=["household_id", "document_type"])
    miss = pd.concat([need_c, need_f], ignore_index=True)
    miss = miss[~miss["held"]]
    latest = (docs.sort_values("valid_until", na_position="last")
              .drop_duplicates(["household_id", "person_id", "document_type"], keep="last"))
    c_last = latest[latest["person_id"].notna()][["person_id", "document_type", "valid_until"]]
    f_last = latest[latest["person_id"].isna()][["household_id", "document_type",
                                                 "valid_until"]]
    miss_c = miss[miss["document_type"].isin(CHILD_TYPES)].merge(
        c_last.sort_values("valid_until").drop_duplicates(["person_id", "document_type"],
                                                          keep="last"),
        on=["person_id", "document_type"], how="left")
    miss_f = miss[~miss["document_type"].isin(CHILD_TYPES)].merge(
        f_last, on=["household_id", "document_type"], how="left")
    miss = pd.concat([miss_c, miss_f], ignore_index=True)
    miss["problem"] = miss["valid_until"].notna().map({True: "expired", False: "missing"})
    return findings(
        miss, ["enrolment_id", "document_type"], severity="warning",
        service=lambda r: r.get("service"),
        message=lambda r: (f"Inscription {r['enrolment_id']} ({r['activity_code']}, individu "
                           f"{r['person_id']}) : {TYPE_FR.get(r['document_type'], r['document_type'])} "
                           + ("périmé(e) depuis le " + day_fr(r["valid_until"])
                              if r["problem"] == "expired" else "absent(e) du dossier") + "."),
        suggestion=lambda r: (f"Demander la pièce à la famille {r['household_id']} (espace "
                              "famille ou guichet) et l'enregistrer dans le dossier unique."),
        evidence=lambda r: evidence(
            record(f"Logiciel métier — INSCRIPTION {r['enrolment_id']}",
                   {"activité": r["activity_code"], "famille": r["household_id"],
                    "individu": r["person_id"], "pièces requises": r["required_documents"]}),
            record("Logiciel métier — PIECE",
                   {"type": r["document_type"],
                    "valable jusqu'au": day_fr(r["valid_until"])
                    if r["problem"] == "expired" else "aucune pièce"}),
            expected=f"Une pièce valable le {day_fr(day)}."))


@rule("documents", "upload_accepted_not_in_piece",
      "Pièces — pièce acceptée sur le portail absente du dossier", ("document_id",),
      truth_key=lambda d: ("portal:" + d["document_id"],))
def upload_not_in_piece(td: TownData) -> pd.DataFrame:
    d = td["document"]
    up = d[(d["source"] == "portal") & (d["review"] == "accepted")]
    pp = td["portal_person"][["portal_person_id", "legacy_person_id"]]
    up = up.merge(pp, on="portal_person_id", how="left")
    acc = td["portal_account"][["account_id", "legacy_family_code"]]
    hh = td["household"][["household_id", "family_code"]].rename(
        columns={"household_id": "family_id"})
    up = up.merge(acc, on="account_id", how="left").merge(
        hh, left_on="legacy_family_code", right_on="family_code", how="left")
    leg = _legacy_docs(td).rename(columns={"household_id": "family_id",
                                            "person_id": "legacy_person_id"})
    # recorded in the file of the account's family: for the child when the upload names
    # one (separated parents each hand in their own copy), else for the family
    up = up[up["family_id"].notna()]
    child = up[up["legacy_person_id"].notna()]
    fam = up[up["legacy_person_id"].isna()]
    key_c = ["family_id", "legacy_person_id", "document_type", "valid_from"]
    key_f = ["family_id", "document_type", "valid_from"]
    child = days.mark(child, leg[key_c], "recorded", on=key_c)
    fam = days.mark(fam, leg[leg["legacy_person_id"].isna()][key_f], "recorded", on=key_f)
    m = pd.concat([child, fam], ignore_index=True)
    m = m[~m["recorded"]]
    return findings(
        m, ["document_id"], severity="warning",
        message=lambda r: (f"Pièce {TYPE_FR.get(r['document_type'], r['document_type'])} "
                           f"acceptée sur le portail (compte {r['account_id']}) mais absente "
                           "du dossier unique du logiciel."),
        suggestion="Enregistrer la pièce dans le dossier unique (PIECE) avec les dates de "
                   "validité du portail.",
        evidence=lambda r: evidence(
            record(f"Portail — pièce {r['document_id']}",
                   {"type": r["document_type"], "valable du": day_fr(r["valid_from"]),
                    "au": day_fr(r["valid_until"]), "revue": "acceptée"}),
            record("Logiciel métier — PIECE",
                   {"type": r["document_type"], "valable du": "aucune pièce"}),
            expected="La pièce acceptée figure dans le dossier unique."))
