"""Formats, suites and the Great Expectations runner, on in-memory frames (no warehouse)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quality import formats, gx, suites
from quality.checks import findings
from schemas.tables import BY_NAME, pandas_dtypes

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ formats
def luhn_digit(payload: str) -> str:
    for d in "0123456789":
        if formats.luhn_ok(payload + d):
            return d
    raise AssertionError


@settings(max_examples=200, deadline=None)
@given(st.integers(10_000_000, 99_999_999), st.integers(1, 9999), st.integers(1, 9))
def test_siret_luhn_key_and_any_single_digit_error(siren8, nic, delta):
    siren = f"{siren8}" + luhn_digit(f"{siren8}")
    body = siren + f"{nic:04d}"
    siret = body + luhn_digit(body)
    assert formats.is_siret(siret)
    pos = nic % 14
    broken = siret[:pos] + str((int(siret[pos]) + delta) % 10) + siret[pos + 1:]
    assert not formats.is_siret(broken)  # Luhn catches every single-digit error


def iban_fr(bban: str) -> str:
    check = 98 - int(bban + "152700") % 97
    return f"FR{check:02d}{bban}"


@settings(max_examples=200, deadline=None)
@given(st.text("0123456789", min_size=23, max_size=23), st.integers(0, 22), st.integers(1, 9))
def test_iban_check_digits(bban, pos, delta):
    iban = iban_fr(bban)
    assert formats.is_iban(iban)
    broken_bban = bban[:pos] + str((int(bban[pos]) + delta) % 10) + bban[pos + 1:]
    assert not formats.is_iban(f"{iban[:4]}{broken_bban}")
    assert formats.suggest_iban(" ".join(iban[i:i + 4] for i in range(0, 27, 4)).lower()) == iban


def test_known_identifiers():
    assert formats.is_siret("73282932000074")  # a real SIRET
    assert not formats.is_siret("73282932000075")
    assert formats.is_siret("35600000000048")  # La Poste: sum of digits divisible by 5
    assert formats.is_iban("FR7630006000011234567890189")
    assert not formats.is_iban("FR7630006000011234567890188")
    assert not formats.is_iban("FR76300060000112345678901")  # French IBANs have 27 characters
    assert formats.is_rna("W442783684") and not formats.is_rna("W44278368")
    assert formats.suggest_rna("w 442783684") == "W442783684"


@pytest.mark.parametrize("value,ok,suggested", [
    ("06 12 34 56 78", True, None), ("06.12.34.56.78", True, None), ("+33 6 12 34 56 78", True, None),
    ("+33612345678", True, None), ("0033612345678", True, None), ("+44 20 7946 0958", True, None),
    ("612345678", False, "06 12 34 56 78"), ("06 12 34 56", False, None), ("abc", False, None),
])
def test_french_phones(value, ok, suggested):
    assert formats.is_french_phone(value) is ok
    assert formats.suggest_phone(value) == suggested


@pytest.mark.parametrize("value,ok,suggested", [
    ("jean.dupont@orange.fr", True, None), ("jean.dupont@gmail.con", False, "jean.dupont@gmail.com"),
    ("Jean.Dupont@Orange.fr ", False, "jean.dupont@orange.fr"), ("jean@@orange.fr", False, None),
    ("jean,dupont@wanadoo.fr", False, "jean.dupont@wanadoo.fr"), ("sans-arobase.fr", False, None),
])
def test_emails(value, ok, suggested):
    assert formats.is_email(value) is ok
    assert formats.suggest_email(value) == suggested


@pytest.mark.parametrize("value,ok,suggested", [
    ("44230", True, None), ("1000", False, "01000"), ("44 230", False, "44230"),
    ("00100", False, None), ("99000", False, None), ("97400", True, None),
])
def test_postcodes(value, ok, suggested):
    assert formats.is_postcode(value) is ok
    assert formats.suggest_postcode(value) == suggested


# ------------------------------------------------------------------- suites
def test_every_core_table_has_a_suite_with_its_key_checked():
    for name in suites.core_tables():
        s = suites.core_suite(name)
        kinds = {r.name: r.kind for r in s.rules}
        assert kinds["key_unique"] == "structural", name
        for parent in s.parents:  # parents come first
            assert suites.core_tables().index(parent) < suites.core_tables().index(name)
    ids = suites.all_rule_ids()
    assert "gx.association.siret_valid" in ids and "gx.enrolment.age_for_service" in ids
    assert all(i.startswith("gx.") for i in ids)


def frame(name: str, rows: list[dict]) -> pd.DataFrame:
    cols = [c for c in BY_NAME[name].data_columns if c != "town"]
    df = pd.DataFrame([{**dict.fromkeys(cols), **r} for r in rows], columns=cols)
    dtypes = pandas_dtypes(name)
    for c in cols:
        if dtypes[c] != "object":
            df[c] = df[c].astype(dtypes[c])
    return df


def failing(outcomes) -> dict[str, list[int]]:
    return {o.rule_id: o.rows for o in outcomes if not o.success}


def test_association_identifiers_fail_row_by_row():
    df = frame("association", [
        {"association_id": "a1", "name": "Club", "rna": "W442783684", "siret": "73282932000074",
         "email": "club@free.fr"},
        {"association_id": "a2", "name": "Chorale", "rna": "W44278368", "siret": "73282932000075",
         "email": "chorale@free"},
        {"association_id": "a3", "name": None, "rna": "w442783684", "siret": None, "email": None},
    ])
    out = gx.validate(df, suites.core_suite("association"))
    bad = failing(out)
    assert bad == {"gx.association.rna_format": [1, 2], "gx.association.siret_valid": [1],
                   "gx.association.email_format": [1], "gx.association.name_present": [2]}
    f = findings("association", next(o for o in out if o.rule_id.endswith("rna_format")), df)
    assert list(f["association_id"]) == ["a2", "a3"]
    a3 = f.iloc[1]
    assert a3["fix"] == {"table": "association", "key": {"association_id": "a3"},
                         "column": "rna", "value": "W442783684"}
    assert "W442783684" in a3["suggestion"] and a3["severity"] == "error"
    assert a3["message"] == "N° RNA invalide : « w442783684 »."


def test_references_dates_and_conditions():
    df = frame("household", [
        {"household_id": 1, "family_code": "F00000001", "name": "A", "direct_debit": True,
         "iban": "FR7630006000011234567890189", "mandate_ref": "RUM1",
         "created_on": dt.date(2020, 1, 1)},
        {"household_id": 2, "family_code": "F00000001", "name": "B", "direct_debit": True,
         "iban": None, "mandate_ref": "RUM2", "created_on": dt.date(2999, 1, 1),
         "postcode": "1000", "family_quotient": 12000},
    ])
    bad = failing(gx.validate(df, suites.core_suite("household")))
    assert bad == {"gx.household.iban_for_direct_debit": [1],
                   "gx.household.family_code_unique": [0, 1],
                   "gx.household.created_on_not_future": [1],
                   "gx.household.postcode_format": [1],
                   "gx.household.family_quotient_range": [1]}
    enr = frame("enrolment", [
        {"enrolment_id": 1, "household_id": 1, "person_id": 10, "activity_id": 5, "state": "V",
         "start_on": dt.date(2025, 9, 1), "end_on": dt.date(2025, 8, 1)},
        {"enrolment_id": 2, "household_id": 9, "person_id": 11, "activity_id": 5, "state": "V",
         "start_on": dt.date(2025, 9, 1)},
    ])
    enr["service"] = pd.array(["MULTI", "RESTO"], dtype="string")
    enr["age_at_start"] = pd.array([7.5, 8.0], dtype="Float64")
    enr["birth_date"] = [dt.date(2018, 3, 1), dt.date(2017, 9, 1)]
    parents = {("household", "household_id"): [1], ("person", "person_id"): [10, 11],
               ("activity", "activity_id"): [5]}
    out = gx.validate(enr, suites.core_suite("enrolment"),
                      lambda ref: parents[(ref.table, ref.column)])
    assert failing(out) == {"gx.enrolment.household_exists": [1],
                            "gx.enrolment.end_after_start": [0],
                            "gx.enrolment.age_for_service": [0]}
    age = findings("enrolment", next(o for o in out if o.rule_id.endswith("age_for_service")),
                   enr).iloc[0]
    assert age["fix"] == {"table": "person", "key": {"person_id": 10}, "column": "birth_date",
                          "value": None}
    assert age["service"] == "MULTI" and "7.5 ans" in age["message"]


def test_staged_suite_blocks_on_structure_not_on_rows():
    good = frame("person", [{"person_id": 1, "last_name": "A", "first_name": "B",
                             "email": "pas-un-email", "source_updated_at": dt.datetime(2025, 1, 1)}])
    out = gx.validate(good, suites.staged_suite("legacy", "INDIVIDU", "person"))
    assert [o.rule_id for o in out if not o.success] == ["gx.person.email_format"]
    bad = good.copy().astype({"person_id": object, "source_updated_at": object})
    bad.loc[0, "person_id"] = "12a"
    bad.loc[0, "source_updated_at"] = pd.Timestamp("2025-01-01 10:00", tz="Europe/Paris")
    out = gx.validate(bad.drop(columns=["sex"]), suites.staged_suite("legacy", "INDIVIDU",
                                                                     "person"))
    structural = {o.rule.name: o.sample for o in out if o.kind == "structural" and not o.success}
    assert set(structural) == {"columns_present", "value_types"}
    types = structural["value_types"][0]
    assert "person_id" in types and "offset" in types["source_updated_at"]


def test_a_batch_validated_in_chunks_gives_what_it_gives_whole():
    """Staged batches are validated a spooled chunk at a time: counts add up and the
    failing rows keep their place in the batch."""
    from quality.checks import check_frame

    rows = [{"person_id": i, "last_name": "A", "first_name": "B",
             "email": "pas-un-email" if i % 3 == 0 else f"p{i}@free.fr",
             "source_updated_at": dt.datetime(2025, 1, 1)} for i in range(1, 11)]
    whole = frame("person", rows)
    suite = suites.staged_suite("legacy", "INDIVIDU", "person")
    one = check_frame(None, "44190", "r", suite, whole)
    chunked = check_frame(None, "44190", "r", suite,
                          (whole.iloc[i:i + 4].reset_index(drop=True) for i in (0, 4, 8)))
    assert chunked.rows == one.rows == 10
    key = lambda o: (o.rule_id, o.success, o.element_count, o.unexpected_count, o.rows)
    assert [key(o) for o in chunked.outcomes] == [key(o) for o in one.outcomes]
    assert failing(chunked.outcomes) == {"gx.person.email_format": [2, 5, 8]}
    assert next(o for o in chunked.outcomes if not o.success).sample == ["pas-un-email"] * 3


def test_an_expectation_that_cannot_run_is_reported_not_flagged():
    df = frame("activity", [{"activity_id": 1, "activity_code": "X", "service": "RESTO",
                             "capacity": 10}])
    out = gx.validate(df.drop(columns=["capacity"]), suites.core_suite("activity"))
    cap = next(o for o in out if o.rule_id == "gx.activity.capacity_range")
    assert not cap.success and cap.error
    assert findings("activity", cap, df).empty


def test_great_expectations_is_not_imported_when_the_code_location_loads():
    code = ("import sys, dagster as dg\n"
            "from pipelines.quality_assets import build_quality_definitions\n"
            "import pipelines.definitions\n"
            "d = build_quality_definitions(dg.StaticPartitionsDefinition(['44190']))\n"
            "assert len(d['asset_checks']) > 40 and d['assets']\n"
            "import quality.flags, quality.decisions, quality.suites, quality.checks\n"
            "import pipelines.cli_flags\n"
            "print('great_expectations' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
