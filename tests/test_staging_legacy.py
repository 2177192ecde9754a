"""Staging of legacy rows (schemas.legacy): mapping, normalisation, quarantine."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import plain, reason_of, row_of  # noqa: F401
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.legacy import LEGACY_ENTITIES, legacy_source_key, stage_legacy
from schemas.staging import count_suspicious, output_columns, output_dtypes, repair_mojibake
from schemas.tables import BY_NAME

D = dt.date
T = dt.datetime

# One valid row per legacy table, as a driver returns it (CHAR padding included).
VALID = {
    "FAMILLE": {
        "ID_FAMILLE": 12,
        "CODE_FAMILLE": "F00000012   ",
        "NOM_FAMILLE": "MARTIN  ",
        "ADRESSE": "3 rue des Lilas ",
        "CP": "44190",
        "VILLE": "CLISSON ",
        "TEL": "02 40 00 00 00",
        "EMAIL": " Jean.Martin@Example.FR ",
        "NUM_ALLOCATAIRE": "1234567   ",
        "QF": 850,
        "PRELEVEMENT": "O",
        "RUM": "RUM-0012",
        "IBAN": "FR76 3000 6000 0112 3456 7890 189",
        "DATE_CREATION": "20190904",
        "DATE_MAJ": "2025-01-15 12:00:00",
    },
    "INDIVIDU": {
        "ID_INDIVIDU": 345,
        "NOM": "MARTIN",
        "NOM_NAISSANCE": "DUPONT",
        "PRENOM": "Élodie  ",
        "DATE_NAISS": "20170412",
        "SEXE": "F",
        "TEL_PORTABLE": "",
        "EMAIL": None,
        "DATE_MAJ": "2025-07-01 12:00:00",
    },
    "RATTACHEMENT": {
        "ID_FAMILLE": 12,
        "ID_INDIVIDU": 345,
        "CATEGORIE": "E",
        "TITULAIRE": None,
        "DATE_MAJ": "2025-07-01 12:00:00",
    },
    "ACTIVITE": {
        "ID_ACTIVITE": 7,
        "CODE_ACTIVITE": "RESTO-JAURES",
        "LIBELLE": "Restaurant scolaire Jaurès",
        "SERVICE": "RESTO",
        "SITE": "École Jean Jaurès",
        "CAPACITE": 120,
        "PU_CENTIMES": 380,
        "DELAI_ANNUL_H": 48,
        "PIECES_REQUISES": "ASSURANCE; VACCINS;",
        "DATE_MAJ": "2025-07-01 12:00:00",
    },
    "INSCRIPTION": {
        "ID_INSCRIPTION": 900,
        "ID_FAMILLE": 12,
        "ID_INDIVIDU": 345,
        "ID_ACTIVITE": 7,
        "DATE_DEBUT": "20250901",
        "DATE_FIN": "        ",
        "ETAT": "V",
        "REF_DEMANDE": "D-2025-000123",
        "DATE_MAJ": "2025-07-01 12:00:00",
    },
    "RESERVATION": {
        "ID_RESERVATION": 5000,
        "ID_INSCRIPTION": 900,
        "DATE_JOUR": "20251013",
        "ETAT": "ANNUL",
        "ORIGINE": "PORTAIL ",
        "REF_PORTAIL": "bk-123",
        "DATE_ANNUL": "2025-10-10 18:05:00",
        "DATE_MAJ": "2025-10-10 18:05:01",
    },
    "POINTAGE": {
        "ID_POINTAGE": 77,
        "ID_INSCRIPTION": 900,
        "DATE_JOUR": "20251013",
        "STATUT": "AJ",
        "DATE_MAJ": "2025-10-13 19:00:00",
    },
    "FACTURE": {
        "ID_FACTURE": 31,
        "NUM_FACTURE": "2025100001234",
        "ID_FAMILLE": 12,
        "PERIODE": "202510",
        "DATE_EMISSION": "20251105",
        "DATE_ECHEANCE": "20251130",
        "MONTANT_CENTIMES": 4560,
        "ETAT": "E",
        "DATE_MAJ": "2025-11-05 08:00:00",
    },
    "LIGNE_FACTURE": {
        "ID_LIGNE": 1001,
        "ID_FACTURE": 31,
        "ID_INSCRIPTION": 900,
        "DATE_JOUR": "20251013",
        "LIBELLE": "Repas 13/10 ",
        "QUANTITE": 1,
        "PU_CENTIMES": 380,
        "MONTANT_CENTIMES": 380,
    },
    "PIECE": {
        "ID_PIECE": 55,
        "ID_FAMILLE": 12,
        "ID_INDIVIDU": 345,
        "TYPE_PIECE": "ASSURANCE",
        "DATE_DEBUT": "20250901",
        "DATE_FIN": "20260831",
        "DATE_MAJ": "2025-09-02 10:00:00",
    },
}

WINTER = T(2025, 1, 15, 11, 0)  # 12:00 Paris in January
SUMMER = T(2025, 7, 1, 10, 0)  # 12:00 Paris in July

EXPECTED = {
    "FAMILLE": {
        "household_id": 12,
        "family_code": "F00000012",
        "name": "MARTIN",
        "address": "3 rue des Lilas",
        "postcode": "44190",
        "city": "CLISSON",
        "phone": "02 40 00 00 00",
        "email": "jean.martin@example.fr",
        "caf_number": "1234567",
        "family_quotient": 850,
        "direct_debit": True,
        "mandate_ref": "RUM-0012",
        "iban": "FR7630006000011234567890189",
        "created_on": D(2019, 9, 4),
        "source_updated_at": WINTER,
    },
    "INDIVIDU": {
        "person_id": 345,
        "last_name": "MARTIN",
        "birth_name": "DUPONT",
        "first_name": "Élodie",
        "birth_date": D(2017, 4, 12),
        "sex": "F",
        "phone": None,
        "email": None,
        "source_updated_at": SUMMER,
    },
    "RATTACHEMENT": {
        "household_id": 12,
        "person_id": 345,
        "role": "child",
        "is_holder": False,
        "source_updated_at": SUMMER,
    },
    "ACTIVITE": {
        "activity_id": 7,
        "activity_code": "RESTO-JAURES",
        "label": "Restaurant scolaire Jaurès",
        "service": "RESTO",
        "site": "École Jean Jaurès",
        "capacity": 120,
        "unit_price_cents": 380,
        "cancel_notice_hours": 48,
        "required_documents": "ASSURANCE;VACCINS",
        "source_updated_at": SUMMER,
    },
    "INSCRIPTION": {
        "enrolment_id": 900,
        "household_id": 12,
        "person_id": 345,
        "activity_id": 7,
        "start_on": D(2025, 9, 1),
        "end_on": None,
        "state": "V",
        "request_number": "D-2025-000123",
        "source_updated_at": SUMMER,
    },
    "RESERVATION": {
        "reservation_id": 5000,
        "enrolment_id": 900,
        "day": D(2025, 10, 13),
        "state": "ANNUL",
        "origin": "PORTAIL",
        "portal_ref": "bk-123",
        "cancelled_at": T(2025, 10, 10, 16, 5),
        "source_updated_at": T(2025, 10, 10, 16, 5, 1),
    },
    "POINTAGE": {
        "attendance_id": 77,
        "enrolment_id": 900,
        "day": D(2025, 10, 13),
        "status": "AJ",
        "source_updated_at": T(2025, 10, 13, 17, 0),
    },
    "FACTURE": {
        "invoice_id": 31,
        "invoice_number": "2025100001234",
        "household_id": 12,
        "period": "202510",
        "issued_on": D(2025, 11, 5),
        "due_on": D(2025, 11, 30),
        "amount_cents": 4560,
        "state": "E",
        "source_updated_at": T(2025, 11, 5, 7, 0),
    },
    "LIGNE_FACTURE": {
        "line_id": 1001,
        "invoice_id": 31,
        "enrolment_id": 900,
        "day": D(2025, 10, 13),
        "label": "Repas 13/10",
        "quantity": 1,
        "unit_price_cents": 380,
        "amount_cents": 380,
    },
    "PIECE": {
        "document_id": "legacy:55",
        "source": "legacy",
        "household_id": 12,
        "person_id": 345,
        "account_id": None,
        "portal_person_id": None,
        "document_type": "ASSURANCE",
        "valid_from": D(2025, 9, 1),
        "valid_until": D(2026, 8, 31),
        "uploaded_at": None,
        "review": None,
        "source_updated_at": T(2025, 9, 2, 8, 0),
    },
}


def frame(entity: str, *rows: dict) -> pd.DataFrame:
    """Input DataFrame of legacy rows (missing columns NULL), with source keys."""
    columns = LEGACY_ENTITIES[entity].columns
    df = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=list(columns))
    df["source_key"] = legacy_source_key(entity, df)
    return df


def stage_one(entity: str, **overrides):
    return stage_legacy(entity, frame(entity, {**VALID[entity], **overrides}))




def check_invariant(staged, raw: pd.DataFrame) -> None:
    assert len(staged.rows) + len(staged.quarantine) == len(raw)
    assert len(staged.source_keys) == len(staged.rows)
    seen = list(staged.source_keys) + list(staged.quarantine["source_key"])
    assert sorted(seen) == sorted(raw["source_key"])
    assert list(staged.rows.columns) == output_columns(staged.table)
    assert {c: str(t) for c, t in staged.rows.dtypes.items()} == output_dtypes(staged.table)
    assert list(staged.quarantine.columns) == ["source_key", "reason"]
    assert staged.quarantine["reason"].notna().all()


# ------------------------------------------------------------------ mapping
@pytest.mark.parametrize("entity", list(VALID))
def test_valid_row_maps_to_the_expected_canonical_row(entity):
    raw = frame(entity, VALID[entity])
    staged = stage_legacy(entity, raw)
    check_invariant(staged, raw)
    assert staged.table == LEGACY_ENTITIES[entity].table
    assert staged.quarantine.empty, staged.quarantine.to_dict("records")
    assert row_of(staged) == EXPECTED[entity]
    assert list(staged.source_keys) == list(raw["source_key"])


@pytest.mark.parametrize("entity", list(VALID))
def test_empty_input_gives_typed_empty_frames(entity):
    raw = frame(entity)
    staged = stage_legacy(entity, raw)
    check_invariant(staged, raw)
    assert staged.rows.empty and staged.quarantine.empty


def test_entity_catalogue_matches_the_legacy_ddl():
    ddl_path = Path("/work/shared/spec/legacy_schema.sql")
    if not ddl_path.exists():
        pytest.skip("legacy DDL not available")
    ddl = ddl_path.read_text()
    tables = dict(re.findall(r"CREATE TABLE (\w+) \((.*?)\n\);", ddl, flags=re.DOTALL))
    assert set(tables) == set(LEGACY_ENTITIES)
    for name, body in tables.items():
        cols = tuple(
            re.findall(r"^\s+([A-Z_]+)\s+(?:INTEGER|VARCHAR|CHAR)", body, flags=re.MULTILINE)
        )
        entity = LEGACY_ENTITIES[name]
        assert entity.columns == cols, name
        assert entity.has_date_maj == ("DATE_MAJ" in cols)
        not_null = {
            c
            for c in cols
            if re.search(rf"^\s+{c}\s+\S+(?:\(\d+\))?\s+NOT NULL", body, flags=re.MULTILINE)
        }
        assert {c.name for c in entity.spec if c.required} == not_null, name
    assert LEGACY_ENTITIES["LIGNE_FACTURE"].has_date_maj is False
    assert LEGACY_ENTITIES["RATTACHEMENT"].primary_key == ("ID_FAMILLE", "ID_INDIVIDU")


def test_source_key_joins_primary_key_values():
    raw = pd.DataFrame({"ID_FAMILLE": [12, "13  ", 14.0], "ID_INDIVIDU": ["345", 346, None]})
    assert list(legacy_source_key("RATTACHEMENT", raw)) == ["12|345", "13|346", "14|"]
    raw = pd.DataFrame({"ID_RESERVATION": [1.0, np.nan, 3.0]})
    assert list(legacy_source_key("reservation", raw)) == ["1", "", "3"]


def test_source_key_is_computed_when_absent():
    raw = frame("RATTACHEMENT", VALID["RATTACHEMENT"]).drop(columns="source_key")
    assert list(stage_legacy("RATTACHEMENT", raw).source_keys) == ["12|345"]


def test_unknown_entity_and_missing_column_are_errors():
    with pytest.raises(KeyError, match="unknown legacy entity"):
        stage_legacy("NOPE", pd.DataFrame())
    raw = frame("POINTAGE", VALID["POINTAGE"]).drop(columns="STATUT")
    with pytest.raises(ValueError, match="STATUT"):
        stage_legacy("POINTAGE", raw)


def test_membership_categories_and_holder_flag():
    raw = frame(
        "RATTACHEMENT",
        *[
            {**VALID["RATTACHEMENT"], "ID_INDIVIDU": i, "CATEGORIE": cat, "TITULAIRE": tit}
            for i, (cat, tit) in enumerate(
                [("R", "O"), ("E", None), ("C", "N"), ("R ", ""), ("E", "N ")]
            )
        ],
    )
    staged = stage_legacy("RATTACHEMENT", raw)
    assert staged.quarantine.empty
    assert list(staged.rows["role"]) == ["responsible", "child", "contact", "responsible", "child"]
    assert list(staged.rows["is_holder"]) == [True, False, False, False, False]


# ----------------------------------------------------------------- quarantine
QUARANTINE_CASES = [
    # impossible dates where a date is required
    (
        "RESERVATION",
        {"DATE_JOUR": "20251345"},
        "DATE_JOUR: '20251345' is not a valid YYYYMMDD date",
    ),
    ("RESERVATION", {"DATE_JOUR": "00000000"}, "DATE_JOUR: '00000000' is an unknown date"),
    ("RESERVATION", {"DATE_JOUR": "   "}, "DATE_JOUR: missing value (NOT NULL column)"),
    ("POINTAGE", {"DATE_JOUR": "20250229"}, "DATE_JOUR: '20250229' is not a valid YYYYMMDD date"),
    ("POINTAGE", {"DATE_JOUR": None}, "DATE_JOUR: missing value"),
    ("FACTURE", {"PERIODE": "202513"}, "PERIODE: '202513' is not a valid YYYYMM month"),
    ("FACTURE", {"PERIODE": "2025-1"}, "PERIODE: '2025-1' is not a valid YYYYMM month"),
    ("FACTURE", {"PERIODE": ""}, "PERIODE: missing value"),
    # impossible non-empty dates anywhere
    ("FAMILLE", {"DATE_CREATION": "20190230"}, "DATE_CREATION: '20190230' is not a valid YYYYMMDD"),
    ("INDIVIDU", {"DATE_NAISS": "2017-04-12"}, "DATE_NAISS: '2017-04-12' is not a valid YYYYMMDD"),
    ("INSCRIPTION", {"DATE_FIN": "20251301"}, "DATE_FIN: '20251301' is not a valid YYYYMMDD"),
    ("FACTURE", {"DATE_ECHEANCE": "2025113"}, "DATE_ECHEANCE: '2025113' is not a valid YYYYMMDD"),
    ("LIGNE_FACTURE", {"DATE_JOUR": "x"}, "DATE_JOUR: 'x' is not a valid YYYYMMDD date"),
    ("PIECE", {"DATE_DEBUT": "20250931"}, "DATE_DEBUT: '20250931' is not a valid YYYYMMDD"),
    (
        "RESERVATION",
        {"DATE_ANNUL": "10/10/2025"},
        "DATE_ANNUL: '10/10/2025' is not a valid 'YYYY-MM-DD HH:MM:SS' timestamp",
    ),
    # unknown codes
    ("INSCRIPTION", {"ETAT": "X"}, "ETAT: 'X' is not a known code (expected one of 'V', 'A', 'R')"),
    ("RESERVATION", {"ETAT": "resa"}, "ETAT: 'resa' is not a known code"),
    (
        "POINTAGE",
        {"STATUT": "A"},
        "STATUT: 'A' is not a known code (expected one of 'P', 'AJ', 'AI')",
    ),
    ("FACTURE", {"ETAT": "P"}, "ETAT: 'P' is not a known code (expected one of 'E', 'A', 'T')"),
    ("RATTACHEMENT", {"CATEGORIE": "P"}, "CATEGORIE: 'P' is not a known code"),
    (
        "RATTACHEMENT",
        {"TITULAIRE": "Y"},
        "TITULAIRE: 'Y' is not a known code (expected 'O' or 'N' or empty)",
    ),
    ("FAMILLE", {"PRELEVEMENT": "1"}, "PRELEVEMENT: '1' is not a known code"),
    (
        "INDIVIDU",
        {"SEXE": "H"},
        "SEXE: 'H' is not a known code (expected one of 'M', 'F' or empty)",
    ),
    # missing required values
    ("FAMILLE", {"CODE_FAMILLE": "   "}, "CODE_FAMILLE: missing value (NOT NULL column)"),
    ("ACTIVITE", {"SERVICE": None}, "SERVICE: missing value (NOT NULL column)"),
    ("INSCRIPTION", {"ID_ACTIVITE": None}, "ID_ACTIVITE: missing value (NOT NULL column)"),
    ("INSCRIPTION", {"ETAT": ""}, "ETAT: missing value (NOT NULL column)"),
    ("LIGNE_FACTURE", {"QUANTITE": None}, "QUANTITE: missing value (NOT NULL column)"),
    ("PIECE", {"TYPE_PIECE": ""}, "TYPE_PIECE: missing value (NOT NULL column)"),
    ("RATTACHEMENT", {"ID_INDIVIDU": None}, "ID_INDIVIDU: missing value (NOT NULL column)"),
    ("FACTURE", {"NUM_FACTURE": None}, "NUM_FACTURE: missing value (NOT NULL column)"),
    # non-integer numbers
    ("FAMILLE", {"QF": "850.5"}, "QF: '850.5' is not an integer"),
    ("INDIVIDU", {"ID_INDIVIDU": "abc"}, "ID_INDIVIDU: 'abc' is not an integer"),
    ("LIGNE_FACTURE", {"QUANTITE": 1.5}, "QUANTITE: 1.5 is not an integer"),
    ("FACTURE", {"MONTANT_CENTIMES": "12,50"}, "MONTANT_CENTIMES: '12,50' is not an integer"),
    # negative quantities, prices, capacities
    ("ACTIVITE", {"CAPACITE": -1}, "CAPACITE: -1 is negative (expected >= 0)"),
    ("ACTIVITE", {"PU_CENTIMES": "-380"}, "PU_CENTIMES: -380 is negative (expected >= 0)"),
    ("LIGNE_FACTURE", {"QUANTITE": -2}, "QUANTITE: -2 is negative (expected >= 0)"),
    ("LIGNE_FACTURE", {"PU_CENTIMES": -1}, "PU_CENTIMES: -1 is negative (expected >= 0)"),
    # DATE_MAJ
    (
        "FAMILLE",
        {"DATE_MAJ": "yesterday"},
        "DATE_MAJ: 'yesterday' is not a valid 'YYYY-MM-DD HH:MM:SS' timestamp",
    ),
    (
        "RATTACHEMENT",
        {"DATE_MAJ": "2025-02-30 10:00:00"},
        "DATE_MAJ: '2025-02-30 10:00:00' is not a valid 'YYYY-MM-DD HH:MM:SS' timestamp",
    ),
    ("PIECE", {"DATE_MAJ": "20250902"}, "DATE_MAJ: '20250902' is not a valid"),
    ("POINTAGE", {"DATE_MAJ": ""}, "DATE_MAJ: missing value (NOT NULL column)"),
]


@pytest.mark.parametrize(("entity", "overrides", "expected"), QUARANTINE_CASES)
def test_bad_row_is_quarantined_with_a_precise_reason(entity, overrides, expected):
    good = VALID[entity]
    raw = frame(entity, {**good, **overrides}, {**good, **_other_key(entity)})
    staged = stage_legacy(entity, raw)
    check_invariant(staged, raw)
    assert len(staged.quarantine) == 1 and len(staged.rows) == 1
    assert staged.quarantine["source_key"].iloc[0] == raw["source_key"].iloc[0]
    assert expected in reason_of(staged)


def _other_key(entity: str) -> dict:
    """Overrides giving a second valid row a different primary key."""
    return {c: 999_999 for c in LEGACY_ENTITIES[entity].primary_key}


def test_all_problems_of_a_row_are_reported_in_column_order():
    staged = stage_one(
        "RESERVATION", ID_INSCRIPTION="x", DATE_JOUR="20251345", ETAT="??", DATE_MAJ="bad"
    )
    assert reason_of(staged) == (
        "ID_INSCRIPTION: 'x' is not an integer; "
        "DATE_JOUR: '20251345' is not a valid YYYYMMDD date; "
        "ETAT: '??' is not a known code (expected one of 'RESA', 'ANNUL'); "
        "DATE_MAJ: 'bad' is not a valid 'YYYY-MM-DD HH:MM:SS' timestamp"
    )


def test_odd_but_valid_values_are_kept():
    staged = stage_one("INDIVIDU", DATE_NAISS="", SEXE="", NOM_NAISSANCE=None)
    assert staged.quarantine.empty
    row = row_of(staged)
    assert row["birth_date"] is None and row["sex"] is None and row["birth_name"] is None
    staged = stage_one("FAMILLE", QF=None, PRELEVEMENT=None, DATE_CREATION="00000000")
    row = row_of(staged)
    assert staged.quarantine.empty
    assert row["family_quotient"] is None  # NULL = full price
    assert row["direct_debit"] is None
    assert row["created_on"] is None
    # A negative notice and a zero price are odd but meaningful.
    staged = stage_one("ACTIVITE", DELAI_ANNUL_H=-2, PU_CENTIMES=0, CAPACITE=None)
    assert staged.quarantine.empty
    assert row_of(staged)["cancel_notice_hours"] == -2


# ----------------------------------------------------------- normalisation
def test_trailing_blanks_are_stripped_everywhere():
    padded = {k: (v + "   " if isinstance(v, str) else v) for k, v in VALID["FACTURE"].items()}
    padded.update(ID_FACTURE="31   ", MONTANT_CENTIMES="4560 ")
    staged = stage_legacy("FACTURE", frame("FACTURE", padded))
    assert staged.quarantine.empty, staged.quarantine.to_dict("records")
    assert row_of(staged) == EXPECTED["FACTURE"]
    assert list(staged.source_keys) == ["31"]


def test_empty_string_and_null_mean_no_value():
    cols = [
        "NOM_FAMILLE",
        "ADRESSE",
        "CP",
        "VILLE",
        "TEL",
        "EMAIL",
        "NUM_ALLOCATAIRE",
        "QF",
        "PRELEVEMENT",
        "RUM",
        "IBAN",
        "DATE_CREATION",
    ]
    with_empty = stage_one("FAMILLE", **{c: "" for c in cols})
    with_blank = stage_one("FAMILLE", **{c: "  " for c in cols})
    with_null = stage_one("FAMILLE", **{c: None for c in cols})
    rows = [row_of(s) for s in (with_empty, with_blank, with_null)]
    assert rows[0] == rows[1] == rows[2]
    assert all(
        rows[0][k] is None
        for k in (
            "name",
            "address",
            "postcode",
            "city",
            "phone",
            "email",
            "caf_number",
            "family_quotient",
            "direct_debit",
            "mandate_ref",
            "iban",
            "created_on",
        )
    )
    # The same row with NaN (how pandas builds a numeric column with NULLs).
    raw = frame("FAMILLE", {**VALID["FAMILLE"], "QF": None}, VALID["FAMILLE"] | {"ID_FAMILLE": 13})
    assert raw["QF"].dtype == "float64"
    staged = stage_legacy("FAMILLE", raw)
    assert staged.quarantine.empty
    assert list(staged.rows["family_quotient"].astype("object").fillna(-1)) == [-1, 850]


@pytest.mark.parametrize("value", ["", "00000000", None, "        "])
def test_unknown_dates_become_null_and_open_ended_ends_are_fine(value):
    for entity, column, target in [
        ("INDIVIDU", "DATE_NAISS", "birth_date"),
        ("FAMILLE", "DATE_CREATION", "created_on"),
        ("INSCRIPTION", "DATE_FIN", "end_on"),
        ("INSCRIPTION", "DATE_DEBUT", "start_on"),
        ("PIECE", "DATE_FIN", "valid_until"),
        ("FACTURE", "DATE_ECHEANCE", "due_on"),
        ("LIGNE_FACTURE", "DATE_JOUR", "day"),
    ]:
        staged = stage_one(entity, **{column: value})
        assert staged.quarantine.empty, (entity, column, staged.quarantine.to_dict("records"))
        assert row_of(staged)[target] is None


def test_numbers_arrive_as_int_str_or_float():
    base = VALID["RESERVATION"]
    as_int = stage_legacy("RESERVATION", frame("RESERVATION", base))
    as_str = stage_legacy(
        "RESERVATION",
        frame("RESERVATION", {**base, "ID_RESERVATION": "5000", "ID_INSCRIPTION": " 900 "}),
    )
    as_float = stage_legacy(
        "RESERVATION",
        frame("RESERVATION", {**base, "ID_RESERVATION": 5000.0, "ID_INSCRIPTION": 900.0}),
    )
    assert row_of(as_int) == row_of(as_str) == row_of(as_float) == EXPECTED["RESERVATION"]
    # Non-str objects in text columns are kept as their text.
    staged = stage_one("FAMILLE", CP=44190, NUM_ALLOCATAIRE=1234567.0)
    assert row_of(staged)["postcode"] == "44190"
    assert row_of(staged)["caf_number"] == "1234567"


def test_whole_numeric_column_as_strings_with_one_bad_value():
    rows = [
        {**VALID["POINTAGE"], "ID_POINTAGE": str(i), "ID_INSCRIPTION": str(900 + i)}
        for i in range(20_000)
    ]
    rows[12_345]["ID_INSCRIPTION"] = "9OO"
    raw = frame("POINTAGE", *rows)
    staged = stage_legacy("POINTAGE", raw)
    check_invariant(staged, raw)
    assert list(staged.quarantine["reason"]) == ["ID_INSCRIPTION: '9OO' is not an integer"]
    assert staged.rows["enrolment_id"].iloc[12_345] == 900 + 12_346


def test_emails_iban_and_required_documents_are_normalised():
    staged = stage_one("FAMILLE", EMAIL="  MARIE.Dupont@Mail.COM  ", IBAN=" fr76 3000\t6000 ")
    assert row_of(staged)["email"] == "marie.dupont@mail.com"
    assert row_of(staged)["iban"] == "FR7630006000"
    staged = stage_one("ACTIVITE", PIECES_REQUISES=" ; ;")
    assert row_of(staged)["required_documents"] is None


# ------------------------------------------------------------------ mojibake
@pytest.mark.parametrize(
    ("raw_text", "fixed"),
    [
        ("Ã‰lodie", "Élodie"),
        ("FranÃ§ois  ", "François"),
        ("HÃ©LÃ¨NE", "HéLèNE"),
        ("CHÃ‚TEAU", "CHÂTEAU"),
        ("Ã‰COLE JEAN JAURÃˆS", "ÉCOLE JEAN JAURÈS"),
        ("cafÃƒÂ©", "café"),  # mangled twice
        ("Lâ€™Ã©cole", "L’école"),
    ],
)
def test_mojibake_is_repaired(raw_text, fixed):
    staged = stage_one("INDIVIDU", PRENOM=raw_text)
    assert row_of(staged)["first_name"] == fixed
    assert repair_mojibake(raw_text.rstrip()) == fixed


@pytest.mark.parametrize(
    "text",
    [
        "Élodie",  # already right
        "Ã© et é",  # mixed: the round trip through CP1252/UTF-8 fails
        "Ã",  # a lone capital A tilde
        "Hôpital Saint-Jacques",
        "ÂGE D'OR",
        "Ã\x81lvaro",  # U+0081 has no CP1252 byte: not repairable here
    ],
)
def test_non_repairable_or_correct_text_is_left_alone(text):
    staged = stage_one("ACTIVITE", LIBELLE=text)
    assert row_of(staged)["label"] == text
    assert repair_mojibake(text) == text


def test_suspicious_sequences_are_counted():
    assert count_suspicious("Ã©lÃ¨ve") == 2
    assert count_suspicious("élève") == 0


def test_mojibake_is_not_repaired_in_codes():
    staged = stage_one("ACTIVITE", CODE_ACTIVITE="CAFÃ©")
    assert row_of(staged)["activity_code"] == "CAFÃ©"


# --------------------------------------------------------------- DATE_MAJ
@pytest.mark.parametrize(
    ("local", "utc"),
    [
        ("2025-01-15 12:00:00", T(2025, 1, 15, 11, 0)),
        ("2025-07-01 12:00:00", T(2025, 7, 1, 10, 0)),
        # last Sunday of October: 02:30 happens twice; the first one (UTC+2) is taken
        ("2025-10-26 02:30:00", T(2025, 10, 26, 0, 30)),
        ("2025-10-26 03:00:00", T(2025, 10, 26, 2, 0)),
        # last Sunday of March: 02:30 never happens; shifted forward to 03:00 (UTC+2)
        ("2025-03-30 02:30:00", T(2025, 3, 30, 1, 0)),
        ("2025-03-30 01:59:59", T(2025, 3, 30, 0, 59, 59)),
        ("2025-03-30 03:00:00", T(2025, 3, 30, 1, 0)),
        ("2025-03-30 03:00:00   ", T(2025, 3, 30, 1, 0)),
    ],
)
def test_date_maj_is_paris_local_time_turned_to_utc(local, utc):
    staged = stage_one("POINTAGE", DATE_MAJ=local)
    assert staged.quarantine.empty
    assert row_of(staged)["source_updated_at"] == utc


def test_date_maj_utc_never_goes_back_when_the_text_goes_forward():
    texts = [
        "2025-10-26 01:59:59",
        "2025-10-26 02:00:00",
        "2025-10-26 02:59:59",
        "2025-10-26 03:00:00",
        "2025-03-30 01:59:59",
        "2025-03-30 02:00:00",
        "2025-03-30 02:59:59",
        "2025-03-30 03:00:00",
        "2025-03-30 03:00:01",
    ]
    rows = [{**VALID["POINTAGE"], "ID_POINTAGE": i, "DATE_MAJ": t} for i, t in enumerate(texts)]
    staged = stage_legacy("POINTAGE", frame("POINTAGE", *rows))
    by_text = staged.rows.assign(text=texts).sort_values("text")
    assert by_text["source_updated_at"].is_monotonic_increasing


def test_cancelled_at_uses_the_same_conversion_and_may_be_empty():
    staged = stage_one("RESERVATION", DATE_ANNUL="2025-10-26 02:30:00")
    assert row_of(staged)["cancelled_at"] == T(2025, 10, 26, 0, 30)
    for empty in ("", None, "0000-00-00 00:00:00"):
        staged = stage_one("RESERVATION", ETAT="RESA", DATE_ANNUL=empty)
        assert staged.quarantine.empty
        assert row_of(staged)["cancelled_at"] is None


# -------------------------------------------------------------- duplicates
def test_duplicate_keys_keep_the_latest_version():
    old = {**VALID["FAMILLE"], "NOM_FAMILLE": "OLD", "DATE_MAJ": "2025-01-15 12:00:00"}
    new = {**VALID["FAMILLE"], "NOM_FAMILLE": "NEW", "DATE_MAJ": "2025-02-15 12:00:00"}
    raw = frame("FAMILLE", new, old)
    staged = stage_legacy("FAMILLE", raw)
    assert len(staged.rows) + len(staged.quarantine) == 2
    assert list(staged.rows["name"]) == ["NEW"]
    assert "superseded" in reason_of(staged) and "'12'" in reason_of(staged)


def test_a_bad_duplicate_does_not_hide_the_good_one():
    raw = frame("POINTAGE", VALID["POINTAGE"], {**VALID["POINTAGE"], "STATUT": "?"})
    staged = stage_legacy("POINTAGE", raw)
    assert list(staged.rows["status"]) == ["AJ"]
    assert "STATUT" in reason_of(staged)


# ------------------------------------------------------------------ property
GARBAGE = st.one_of(
    st.none(),
    st.just(""),
    st.just("   "),
    st.just("00000000"),
    st.just("20251345"),
    st.just("20250101"),
    st.just("2025-10-26 02:30:00"),
    st.just("202501"),
    st.just("O"),
    st.just("N"),
    st.just("RESA"),
    st.just("E"),
    st.just("P"),
    st.integers(min_value=-10, max_value=10**12),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.from_regex(r"\A[0-9 ]{1,10}\Z"),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("entity", list(VALID))
def test_invariant_holds_on_random_garbage(entity, data):
    columns = LEGACY_ENTITIES[entity].columns
    n = data.draw(st.integers(min_value=0, max_value=6))
    rows = []
    for _ in range(n):
        row = dict(VALID[entity])
        for c in data.draw(st.lists(st.sampled_from(columns), unique=True)):
            row[c] = data.draw(GARBAGE)
        rows.append(row)
    raw = pd.DataFrame(rows, columns=list(columns))
    raw["source_key"] = [f"row{i}" for i in range(n)]
    staged = stage_legacy(entity, raw)
    check_invariant(staged, raw)
    for reason in staged.quarantine["reason"]:
        assert re.match(r"^([A-Z_]+: |duplicate of key )", reason), reason
    pk = [c for c in BY_NAME[staged.table].primary_key if c != "town"]
    assert not staged.rows.duplicated(subset=pk).any()


def test_input_index_does_not_matter():
    raw = frame(
        "POINTAGE", VALID["POINTAGE"], {**VALID["POINTAGE"], "ID_POINTAGE": 78, "STATUT": "?"}
    )
    raw.index = [42, 7]
    staged = stage_legacy("POINTAGE", raw)
    assert row_of(staged) == EXPECTED["POINTAGE"]
    assert list(staged.quarantine["source_key"]) == ["78"]
    assert list(legacy_source_key("POINTAGE", raw)) == ["77", "78"]
