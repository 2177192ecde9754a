"""Staging of portal items (schemas.portal): mapping, normalisation, quarantine."""

from __future__ import annotations

import datetime as dt
import json
import re

import pandas as pd
import pytest
from helpers import plain, reason_of, row_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.portal import PORTAL_COLLECTIONS, portal_source_key, stage_portal
from schemas.staging import luhn_ok, output_columns, output_dtypes
from schemas.tables import BY_NAME

D = dt.date
T = dt.datetime

VALID = {
    "accounts": {
        "id": "acc-1",
        "updated_at": "2025-03-01T10:00:00+01:00",
        "email": " Marie.Dupont@Mail.COM",
        "phone": "0612345678",
        "first_name": "Marie",
        "last_name": "Dupont",
        "address": {"line": "3 rue des Lilas", "postcode": "44190", "city": "Clisson"},
        "legacy_family_code": "F00000012",
        "status": "active",
        "created_at": "2024-12-31T23:30:00Z",
    },
    "persons": {
        "id": "pp-1",
        "updated_at": "2025-03-01T10:00:00+01:00",
        "account_id": "acc-1",
        "role": "child",
        "first_name": "Léo",
        "last_name": "Dupont",
        "birth_date": "2017-04-12",
        "legacy_person_id": 345,
    },
    "requests": {
        "id": "req-1",
        "updated_at": "2025-03-01T10:00:00+01:00",
        "number": "2025-000123",
        "procedure": "SUBVENTION_ASSOCIATION",
        "account_id": None,
        "association_id": "as-1",
        "state": "accepte",
        "submitted_at": "2025-01-10T09:00:00+01:00",
        "instruction_started_at": "2025-01-15T09:00:00Z",
        "decided_at": "2025-02-20T15:00:00+01:00",
        "service": "VIE_ASSO",
        "fields": {
            "purpose": "Fête des vendanges",
            "amount_requested_cents": 150000,
            "amount_granted_cents": 100000,
        },
    },
    "bookings": {
        "id": "bk-1",
        "updated_at": "2025-10-10T18:05:00+02:00",
        "account_id": "acc-1",
        "person_id": "pp-1",
        "activity_code": "RESTO-JAURES",
        "day": "2025-10-13",
        "action": "cancel",
        "made_at": "2025-10-10T18:05:00+02:00",
    },
    "documents": {
        "id": "doc-9",
        "updated_at": "2025-01-05T09:00:00+01:00",
        "account_id": "acc-1",
        "person_id": None,
        "type": "JUSTIF_DOMICILE",
        "valid_from": "2025-01-01",
        "valid_until": None,
        "uploaded_at": "2025-01-05T09:00:00+01:00",
        "review": "pending",
    },
    "online_payments": {
        "id": "op-1",
        "updated_at": "2025-02-01T00:40:00+01:00",
        "account_id": "acc-1",
        "invoice_number": "2025010001234",
        "amount_cents": 4560,
        "idop": "IDOP-123",
        "status": "paid",
        "paid_at": "2025-01-31T23:30:00Z",
    },
    "associations": {
        "id": "as-1",
        "updated_at": "2025-03-01T10:00:00+01:00",
        "name": "Les Amis du Vignoble",
        "rna": "W442001234",
        "siret": "73282932000074",
        "contact_email": "Contact@Amis.FR",
    },
    "room_bookings": {
        "id": "rb-1",
        "updated_at": "2025-03-01T10:00:00+01:00",
        "association_id": "as-1",
        "room_code": "SALLE-A",
        "starts_at": "2025-06-01T18:00:00+02:00",
        "ends_at": "2025-06-01T22:00:00+02:00",
        "status": "confirmed",
        "equipment": ["SONO", "VIDEO"],
    },
    "logins": {
        "day": "2025-03-01",
        "space": "famille",
        "count": 1234,
        "updated_at": "2025-03-02T01:00:00+01:00",
    },
}

MARCH_1 = T(2025, 3, 1, 9, 0)

EXPECTED = {
    "accounts": {
        "account_id": "acc-1",
        "email": "marie.dupont@mail.com",
        "phone": "0612345678",
        "first_name": "Marie",
        "last_name": "Dupont",
        "address": "3 rue des Lilas",
        "postcode": "44190",
        "city": "Clisson",
        "legacy_family_code": "F00000012",
        "status": "active",
        "created_on": D(2025, 1, 1),
        "source_updated_at": MARCH_1,
    },
    "persons": {
        "portal_person_id": "pp-1",
        "account_id": "acc-1",
        "role": "child",
        "first_name": "Léo",
        "last_name": "Dupont",
        "birth_date": D(2017, 4, 12),
        "legacy_person_id": 345,
        "source_updated_at": MARCH_1,
    },
    "requests": {
        "request_id": "req-1",
        "request_number": "2025-000123",
        "procedure": "SUBVENTION_ASSOCIATION",
        "account_id": None,
        "association_id": "as-1",
        "state": "accepte",
        "submitted_at": T(2025, 1, 10, 8, 0),
        "instruction_started_at": T(2025, 1, 15, 9, 0),
        "decided_at": T(2025, 2, 20, 14, 0),
        "service": "VIE_ASSO",
        "fields": (
            '{"amount_granted_cents": 100000, "amount_requested_cents": 150000, '
            '"purpose": "Fête des vendanges"}'
        ),
        "amount_requested_cents": 150000,
        "amount_granted_cents": 100000,
        "purpose": "Fête des vendanges",
        "source_updated_at": MARCH_1,
    },
    "bookings": {
        "booking_id": "bk-1",
        "account_id": "acc-1",
        "portal_person_id": "pp-1",
        "activity_code": "RESTO-JAURES",
        "day": D(2025, 10, 13),
        "action": "cancel",
        "made_at": T(2025, 10, 10, 16, 5),
        "source_updated_at": T(2025, 10, 10, 16, 5),
    },
    "documents": {
        "document_id": "portal:doc-9",
        "source": "portal",
        "household_id": None,
        "person_id": None,
        "account_id": "acc-1",
        "portal_person_id": None,
        "document_type": "JUSTIF_DOMICILE",
        "valid_from": D(2025, 1, 1),
        "valid_until": None,
        "uploaded_at": T(2025, 1, 5, 8, 0),
        "review": "pending",
        "source_updated_at": T(2025, 1, 5, 8, 0),
    },
    "online_payments": {
        "payment_id": "portal:op-1",
        "source": "portal",
        "channel": "online_card",
        "status": "paid",
        "amount_cents": 4560,
        "paid_on": D(2025, 2, 1),
        "paid_at": T(2025, 1, 31, 23, 30),
        "invoice_ref": "2025010001234",
        "payer_name": None,
        "payer_email": None,
        "operation_ref": "IDOP-123",
        "auth_number": None,
        "cheque_number": None,
        "reject_reason": None,
        "fiscal_year": None,
        "account_id": "acc-1",
        "file_name": None,
        "line_no": None,
        "source_updated_at": T(2025, 1, 31, 23, 40),
    },
    "associations": {
        "association_id": "as-1",
        "name": "Les Amis du Vignoble",
        "rna": "W442001234",
        "siret": "73282932000074",
        "email": "contact@amis.fr",
        "source_updated_at": MARCH_1,
    },
    "room_bookings": {
        "room_booking_id": "rb-1",
        "association_id": "as-1",
        "room_code": "SALLE-A",
        "starts_at": T(2025, 6, 1, 16, 0),
        "ends_at": T(2025, 6, 1, 20, 0),
        "status": "confirmed",
        "equipment": "SONO;VIDEO",
        "source_updated_at": MARCH_1,
    },
    "logins": {
        "day": D(2025, 3, 1),
        "space": "famille",
        "count": 1234,
        "source_updated_at": T(2025, 3, 2, 0, 0),
    },
}

_DROP = object()


def item_with(collection: str, **changes) -> dict:
    item = json.loads(json.dumps(VALID[collection]))
    for k, v in changes.items():
        if v is _DROP:
            item.pop(k, None)
        else:
            item[k] = v
    return item


def frame(collection: str, *items) -> pd.DataFrame:
    """Input rows as the connector builds them; a str item is a raw JSON line."""
    rows = []
    for i, it in enumerate(items):
        if isinstance(it, str):
            payload = it
            try:
                parsed = json.loads(it)
            except json.JSONDecodeError:
                parsed = None
            item = parsed if isinstance(parsed, dict) else None
        else:
            payload, item = json.dumps(it), it if isinstance(it, dict) else None
        rows.append(
            {
                "source_key": portal_source_key(collection, item),
                "line_no": i + 1,
                "payload": payload,
                "item": item,
            }
        )
    return pd.DataFrame(rows, columns=["source_key", "line_no", "payload", "item"])


def stage(collection: str, *items):
    return stage_portal(collection, frame(collection, *items))




def check_invariant(staged, raw: pd.DataFrame) -> None:
    assert len(staged.rows) + len(staged.quarantine) == len(raw)
    assert len(staged.source_keys) == len(staged.rows)
    assert staged.source_keys.notna().all()
    seen = sorted(list(staged.source_keys) + list(staged.quarantine["source_key"].dropna()))
    assert seen == sorted(raw["source_key"].dropna())
    assert list(staged.rows.columns) == output_columns(staged.table)
    assert {c: str(t) for c, t in staged.rows.dtypes.items()} == output_dtypes(staged.table)
    assert list(staged.quarantine.columns) == ["source_key", "reason"]
    assert staged.quarantine["reason"].notna().all()


# ------------------------------------------------------------------ mapping
@pytest.mark.parametrize("collection", list(VALID))
def test_valid_item_maps_to_the_expected_canonical_row(collection):
    raw = frame(collection, VALID[collection])
    staged = stage_portal(collection, raw)
    check_invariant(staged, raw)
    assert staged.table == PORTAL_COLLECTIONS[collection].table
    assert staged.quarantine.empty, staged.quarantine.to_dict("records")
    assert row_of(staged) == EXPECTED[collection]


@pytest.mark.parametrize("collection", list(VALID))
def test_empty_input_gives_typed_empty_frames(collection):
    raw = frame(collection)
    staged = stage_portal(collection, raw)
    check_invariant(staged, raw)
    assert staged.rows.empty and staged.quarantine.empty


def test_source_keys():
    assert portal_source_key("bookings", VALID["bookings"]) == "bk-1"
    assert portal_source_key("logins", VALID["logins"]) == "2025-03-01|famille"
    assert portal_source_key("logins", {"day": "2025-03-01"}) is None
    assert portal_source_key("accounts", {"id": ""}) is None
    assert portal_source_key("accounts", {"id": 12}) == "12"
    assert portal_source_key("accounts", ["id"]) is None
    with pytest.raises(KeyError, match="unknown portal collection"):
        portal_source_key("nope", {})
    raw = frame("logins", VALID["logins"]).assign(source_key=None)
    assert list(stage_portal("logins", raw).source_keys) == ["2025-03-01|famille"]


def test_nullable_fields_may_be_null_or_empty():
    staged = stage(
        "accounts",
        item_with(
            "accounts",
            phone=None,
            address=None,
            legacy_family_code=None,
            email="",
            first_name=None,
        ),
    )
    assert staged.quarantine.empty
    row = row_of(staged)
    cols = ("phone", "address", "postcode", "city", "legacy_family_code", "email", "first_name")
    assert [row[c] for c in cols] == [None] * 7
    staged = stage(
        "online_payments",
        item_with("online_payments", status="refused", paid_at=None, idop=None, invoice_number=""),
    )
    row = row_of(staged)
    assert staged.quarantine.empty
    assert (row["paid_at"], row["operation_ref"], row["invoice_ref"]) == (None, None, None)
    assert row["paid_on"] == D(2025, 2, 1)  # from updated_at, Paris day
    staged = stage("associations", item_with("associations", siret=None, contact_email=None))
    assert staged.quarantine.empty and row_of(staged)["siret"] is None
    staged = stage("room_bookings", item_with("room_bookings", equipment=[]))
    assert staged.quarantine.empty and row_of(staged)["equipment"] is None
    staged = stage("accounts", item_with("accounts", address={"line": "1 rue", "city": None}))
    assert staged.quarantine.empty
    assert (row_of(staged)["postcode"], row_of(staged)["city"]) == (None, None)


def test_numeric_request_number_and_idop_are_kept_as_text():
    staged = stage("requests", item_with("requests", number=123))
    assert row_of(staged)["request_number"] == "123"
    staged = stage("online_payments", item_with("online_payments", idop=987654))
    assert row_of(staged)["operation_ref"] == "987654"


def test_subsidy_amounts_only_for_subsidy_requests():
    other = item_with(
        "requests",
        id="req-2",
        procedure="INSCRIPTION_ALSH",
        account_id="acc-1",
        association_id=None,
        fields={
            "child_person_id": "pp-1",
            "activity_code": "ALSH-ETE",
            "amount_requested_cents": "ignored",
        },
    )
    staged = stage("requests", other)
    assert staged.quarantine.empty
    row = row_of(staged)
    assert (row["amount_requested_cents"], row["amount_granted_cents"], row["purpose"]) == (
        None,
        None,
        None,
    )
    assert json.loads(row["fields"]) == other["fields"]
    assert row["fields"].index('"activity_code"') < row["fields"].index('"child_person_id"')
    pending = item_with(
        "requests", state="en_instruction", decided_at=None, fields={"amount_requested_cents": 5000}
    )
    row = row_of(stage("requests", pending))
    assert (row["amount_requested_cents"], row["amount_granted_cents"]) == (5000, None)


# ----------------------------------------------------------------- quarantine
def test_invalid_json_and_non_objects_are_quarantined():
    raw = frame(
        "bookings", '{"id": "bk-2", ', "[1, 2]", "null", "42", '"text"', "", VALID["bookings"]
    )
    staged = stage_portal("bookings", raw)
    check_invariant(staged, raw)
    reasons = list(staged.quarantine["reason"])
    assert reasons[0].startswith("invalid JSON: Expecting property name")
    assert reasons[1:] == [
        "item is a JSON array, not an object",
        "item is a JSON null, not an object",
        "item is a JSON integer, not an object",
        "item is a JSON string, not an object",
        "invalid JSON: empty line",
    ]
    assert staged.quarantine["source_key"].isna().all()
    assert list(staged.source_keys) == ["bk-1"]


REQUIRED_CASES = [(c, f) for c, spec in PORTAL_COLLECTIONS.items() for f in spec.required]


def test_every_field_of_the_collection_table_is_required():
    assert PORTAL_COLLECTIONS["logins"].required == ("day", "space", "count", "updated_at")
    for name, spec in PORTAL_COLLECTIONS.items():
        assert set(VALID[name]) == set(spec.required), name
        assert set(spec.not_null) <= set(spec.required)
        if name != "logins":
            assert {"id", "updated_at"} <= set(spec.not_null)


@pytest.mark.parametrize(("collection", "field"), REQUIRED_CASES)
def test_absent_field_is_quarantined_and_null_only_where_a_value_is_required(collection, field):
    staged = stage(collection, item_with(collection, **{field: _DROP}))
    assert staged.rows.empty
    assert f"{field}: missing required field" in reason_of(staged)
    for empty in (None, ""):
        staged = stage(collection, item_with(collection, **{field: empty}))
        if field in PORTAL_COLLECTIONS[collection].not_null:
            assert staged.rows.empty
            assert f"{field}: null or empty, a value is required" in reason_of(staged)
        elif field in ("account_id", "association_id") and collection == "requests":
            continue  # one of them, see below
        else:
            assert staged.quarantine.empty, staged.quarantine.to_dict("records")


def test_request_needs_an_account_or_an_association():
    staged = stage("requests", item_with("requests", association_id=None, account_id=None))
    assert reason_of(staged) == (
        "account_id: null or empty, and so is association_id (a request needs one of them)"
    )
    staged = stage("requests", item_with("requests", association_id=None, account_id="acc-1"))
    assert staged.quarantine.empty


QUARANTINE_CASES = [
    # wrong types
    ("accounts", {"id": 12}, "id: expected a string, got integer 12"),
    ("accounts", {"email": 12}, "email: expected a string, got integer 12"),
    ("accounts", {"address": "3 rue des Lilas"}, "address: expected an object, got string"),
    (
        "accounts",
        {"address": {"line": "x", "postcode": 44190, "city": "Clisson"}},
        "address.postcode: expected a string, got integer 44190",
    ),
    (
        "persons",
        {"legacy_person_id": "345"},
        "legacy_person_id: expected an integer, got string '345'",
    ),
    (
        "persons",
        {"legacy_person_id": True},
        "legacy_person_id: expected an integer, got boolean True",
    ),
    (
        "online_payments",
        {"amount_cents": "4560"},
        "amount_cents: expected an integer, got string '4560'",
    ),
    (
        "online_payments",
        {"amount_cents": 45.6},
        "amount_cents: expected an integer, got number 45.6",
    ),
    ("online_payments", {"amount_cents": -1}, "amount_cents: -1 is negative (expected >= 0)"),
    ("logins", {"count": 1.5}, "count: expected an integer, got number 1.5"),
    ("logins", {"count": -3}, "count: -3 is negative"),
    ("room_bookings", {"equipment": "SONO"}, "equipment: expected an array of strings, got string"),
    ("room_bookings", {"equipment": ["SONO", 3]}, "equipment[]: expected a string, got integer 3"),
    ("requests", {"fields": [1]}, "fields: expected an object, got array [1]"),
    (
        "requests",
        {"fields": {"amount_requested_cents": "1500"}},
        "fields.amount_requested_cents: expected an integer, got string '1500'",
    ),
    (
        "requests",
        {"fields": {"amount_granted_cents": -5}},
        "fields.amount_granted_cents: -5 is negative",
    ),
    ("requests", {"fields": {"purpose": ["x"]}}, "fields.purpose: expected a string, got array"),
    ("bookings", {"person_id": {"id": "pp-1"}}, "person_id: expected a string, got object"),
    # unknown enum values
    ("accounts", {"status": "deleted"}, "status: 'deleted' is not one of active, closed"),
    ("persons", {"role": "tutor"}, "role: 'tutor' is not one of parent, child"),
    ("requests", {"state": "brouillon"}, "state: 'brouillon' is not one of en_construction"),
    ("bookings", {"action": "Book"}, "action: 'Book' is not one of book, cancel"),
    ("documents", {"review": "ok"}, "review: 'ok' is not one of pending, accepted, rejected"),
    ("online_payments", {"status": "pending"}, "status: 'pending' is not one of paid, refused"),
    ("room_bookings", {"status": "booked"}, "status: 'booked' is not one of requested"),
    (
        "logins",
        {"space": "mairie"},
        "space: 'mairie' is not one of citoyens, famille, associations",
    ),
    # bad timestamps
    (
        "bookings",
        {"made_at": "2025-10-10T18:05:00"},
        "made_at: '2025-10-10T18:05:00' is not an ISO 8601 timestamp with an offset",
    ),
    (
        "bookings",
        {"updated_at": "2025-02-30T10:00:00+01:00"},
        "updated_at: '2025-02-30T10:00:00+01:00' is not a valid ISO 8601 timestamp",
    ),
    (
        "accounts",
        {"created_at": "2025-03-01"},
        "created_at: '2025-03-01' is not an ISO 8601 timestamp with an offset",
    ),
    (
        "online_payments",
        {"paid_at": 1700000000},
        "paid_at: expected an ISO 8601 timestamp string, got integer 1700000000",
    ),
    (
        "room_bookings",
        {"ends_at": "tomorrow evening"},
        "ends_at: 'tomorrow evening' is not an ISO 8601 timestamp with an offset",
    ),
    (
        "documents",
        {"uploaded_at": "2025-01-05T25:00:00+01:00"},
        "uploaded_at: '2025-01-05T25:00:00+01:00' is not a valid ISO 8601 timestamp",
    ),
    (
        "requests",
        {"decided_at": "2025-02-20 15:00"},
        "decided_at: '2025-02-20 15:00' is not an ISO 8601 timestamp with an offset",
    ),
    # bad dates
    (
        "persons",
        {"birth_date": "2017-02-30"},
        "birth_date: '2017-02-30' is not a valid YYYY-MM-DD date",
    ),
    ("bookings", {"day": "13/10/2025"}, "day: '13/10/2025' is not a valid YYYY-MM-DD date"),
    ("bookings", {"day": 20251013}, "day: expected a YYYY-MM-DD date string, got integer 20251013"),
    ("documents", {"valid_until": "2025-13-01"}, "valid_until: '2025-13-01' is not a valid"),
    ("logins", {"day": "2025-3-1"}, "day: '2025-3-1' is not a valid YYYY-MM-DD date"),
    # RNA and SIRET
    ("associations", {"rna": "W44200123"}, "rna: 'W44200123' is not 'W' followed by 9 digits"),
    ("associations", {"rna": "w442001234"}, "rna: 'w442001234' is not 'W' followed by 9 digits"),
    ("associations", {"rna": "W44200123X"}, "rna: 'W44200123X' is not 'W' followed by 9 digits"),
    ("associations", {"rna": 442001234}, "rna: expected a string, got integer 442001234"),
    ("associations", {"siret": "7328293200007"}, "siret: '7328293200007' is not 14 digits"),
    ("associations", {"siret": "732 829 320 00074"}, "siret: '732 829 320 00074' is not 14 digits"),
    (
        "associations",
        {"siret": "73282932000075"},
        "siret: '73282932000075' fails its Luhn check key",
    ),
    ("associations", {"siret": 73282932000074}, "siret: expected a string, got integer"),
]


@pytest.mark.parametrize(("collection", "changes", "expected"), QUARANTINE_CASES)
def test_bad_item_is_quarantined_with_a_precise_reason(collection, changes, expected):
    other = dict(VALID[collection])
    if collection == "logins":
        other["space"] = "citoyens" if VALID[collection]["space"] != "citoyens" else "famille"
    else:
        other["id"] = "other"
    raw = frame(collection, item_with(collection, **changes), other)
    staged = stage_portal(collection, raw)
    check_invariant(staged, raw)
    assert len(staged.rows) == 1 and len(staged.quarantine) == 1
    assert expected in reason_of(staged)


def test_all_problems_of_an_item_are_reported():
    staged = stage(
        "bookings",
        item_with("bookings", account_id=None, day="2025-13-13", action="delete", made_at="now"),
    )
    assert reason_of(staged) == (
        "account_id: null or empty, a value is required; "
        "day: '2025-13-13' is not a valid YYYY-MM-DD date; "
        "action: 'delete' is not one of book, cancel; "
        "made_at: 'now' is not an ISO 8601 timestamp with an offset"
    )


def test_siret_luhn_key():
    assert luhn_ok("73282932000074")
    assert not luhn_ok("73282932000075")
    assert luhn_ok("44306184100047")  # another real one
    staged = stage("associations", item_with("associations", siret="44306184100047"))
    assert staged.quarantine.empty


# ---------------------------------------------------------------- timestamps
def test_offsets_give_the_same_instant():
    same = [
        "2025-03-30T03:30:00+02:00",
        "2025-03-30T01:30:00Z",
        "2025-03-30T02:30:00+01:00",
        "2025-03-30T01:30:00.000+00:00",
        "2025-03-30T03:30:00+0200",
    ]
    items = [item_with("bookings", id=f"bk-{i}", made_at=t) for i, t in enumerate(same)]
    staged = stage("bookings", *items)
    assert staged.quarantine.empty, staged.quarantine.to_dict("records")
    assert set(staged.rows["made_at"]) == {pd.Timestamp("2025-03-30 01:30:00")}


def test_order_is_by_instant_not_by_text():
    texts = {
        "a": "2025-01-01T10:00:00+02:00",  # 08:00Z
        "b": "2025-01-01T09:00:00Z",  # 09:00Z
        "c": "2025-01-01T09:30:00+01:00",
    }  # 08:30Z
    items = [item_with("bookings", id=k, made_at=v, updated_at=v) for k, v in texts.items()]
    staged = stage("bookings", *items)
    assert sorted(texts, key=texts.get) == ["b", "c", "a"]  # text order
    assert list(staged.rows.sort_values("made_at")["booking_id"]) == ["a", "c", "b"]
    assert str(staged.rows["made_at"].dtype) == "datetime64[us]"


def test_paris_days_of_instants():
    staged = stage("accounts", item_with("accounts", created_at="2025-06-30T22:30:00Z"))
    assert row_of(staged)["created_on"] == D(2025, 7, 1)
    staged = stage("accounts", item_with("accounts", created_at="2025-06-30T21:30:00Z"))
    assert row_of(staged)["created_on"] == D(2025, 6, 30)


# ------------------------------------------------------------ procedure states
def test_procedure_state_history():
    items = [
        VALID["requests"],
        item_with(
            "requests",
            id="r-new",
            state="en_construction",
            submitted_at=None,
            instruction_started_at=None,
            decided_at=None,
        ),
        item_with("requests", id="r-ref", state="refuse", instruction_started_at=None),
        item_with("requests", id="r-back", state="en_instruction"),  # decided, then reopened
        item_with("requests", id="r-odd", state="accepte", decided_at=None),
        item_with("requests", id="r-bad", state="???"),
    ]
    staged = stage("requests", *items)
    states = staged.extra["procedure_state"]
    assert list(states.columns) == ["request_id", "state", "entered_at"]
    assert {c: str(t) for c, t in states.dtypes.items()} == output_dtypes("procedure_state")
    got = {(r.request_id, r.state): plain(r.entered_at) for r in states.itertuples()}
    sub, ins, dec = T(2025, 1, 10, 8, 0), T(2025, 1, 15, 9, 0), T(2025, 2, 20, 14, 0)
    assert got == {
        ("req-1", "en_construction"): sub,
        ("req-1", "en_instruction"): ins,
        ("req-1", "accepte"): dec,
        ("r-new", "en_construction"): None,
        ("r-ref", "en_construction"): sub,
        ("r-ref", "refuse"): dec,
        ("r-back", "en_construction"): sub,
        ("r-back", "en_instruction"): ins,
        ("r-odd", "en_construction"): sub,
        ("r-odd", "en_instruction"): ins,
        ("r-odd", "accepte"): None,
    }
    assert not states.duplicated(["request_id", "state"]).any()


# ---------------------------------------------------------------- duplicates
def test_duplicate_ids_keep_the_latest_version():
    new = item_with("accounts", status="closed", updated_at="2025-03-02T00:30:00+01:00")
    old = item_with("accounts", status="active", updated_at="2025-03-01T23:45:00Z")
    raw = frame("accounts", new, old)
    staged = stage_portal("accounts", raw)
    assert list(staged.rows["status"]) == ["active"]  # 23:45Z is after 23:30Z
    assert "superseded" in reason_of(staged)
    assert len(staged.rows) + len(staged.quarantine) == 2


# ------------------------------------------------------------------ property
SCALARS = st.one_of(
    st.none(),
    st.just(""),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=15),
    st.just("2025-03-01"),
    st.just("2025-03-01T10:00:00+01:00"),
    st.just("2025-03-01T10:00:00"),
    st.just("W123456789"),
    st.just("73282932000074"),
    st.just("active"),
    st.just("famille"),
    st.just("book"),
)
GARBAGE = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(
        st.sampled_from(["line", "purpose", "amount_requested_cents"]), SCALARS, max_size=3
    ),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("collection", list(VALID))
def test_invariant_holds_on_random_garbage(collection, data):
    fields = [f.name for f in PORTAL_COLLECTIONS[collection].fields] + ["procedure"]
    n = data.draw(st.integers(min_value=0, max_value=6))
    items = []
    for _ in range(n):
        shape = data.draw(st.sampled_from(["item", "item", "item", "line"]))
        if shape == "line":
            items.append(data.draw(st.sampled_from(["{", "[]", "null", "1", '{"id": 1,}'])))
            continue
        item = dict(VALID[collection])
        for f in data.draw(st.lists(st.sampled_from(fields), unique=True)):
            if data.draw(st.booleans()):
                item.pop(f, None)
            else:
                item[f] = data.draw(GARBAGE)
        items.append(item)
    raw = frame(collection, *items)
    # Distinct keys for the rows the connector could key, as it would.
    raw["source_key"] = [None if k is None else f"{k}#{i}" for i, k in enumerate(raw["source_key"])]
    staged = stage_portal(collection, raw)
    check_invariant(staged, raw)
    for reason in staged.quarantine["reason"]:
        assert re.match(
            r"^([a-z_.\[\]]+: |invalid JSON|item is a JSON|duplicate of key )", reason
        ), reason
    pk = [c for c in BY_NAME[staged.table].primary_key if c != "town"]
    assert not staged.rows.duplicated(subset=pk).any()


def test_items_are_parsed_from_payload_when_absent_and_index_is_ignored():
    raw = frame("bookings", VALID["bookings"], "{oops").drop(columns="item")
    raw.index = [10, 3]
    staged = stage_portal("bookings", raw)
    assert row_of(staged) == EXPECTED["bookings"]
    assert reason_of(staged).startswith("invalid JSON")
