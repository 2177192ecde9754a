"""Staging of the citizen portal's collections.

``stage_portal(collection, raw)`` turns the items of one portal collection (API
pages or JSON Lines export, one item per row of ``raw``) into canonical rows of its
core table. Every field is declared once below (``PORTAL_COLLECTIONS``). See
``docs/staging.md`` for the rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from schemas.staging import (
    Problems,
    Staged,
    build_staged,
    iso_date_values,
    iso_timestamp_values,
    json_type,
    luhn_ok,
    object_array,
    output_dtypes,
    paris_day,
    show,
)

_MISSING = object()  # a field absent from the item (None is a JSON null)

# Field kinds:
#   str      a JSON string; '' is no value
#   strint   a JSON string or integer (kept as text)
#   email    a string, stripped and lower-cased
#   enum     a string from `values`
#   int      a JSON integer (not a boolean, not a number with a fraction)
#   ts       an ISO 8601 timestamp string WITH an offset (or Z) -> naive UTC
#   date     a 'YYYY-MM-DD' string
#   object   a JSON object (or null)
#   list     a JSON array of strings (or null)
#   rna      'W' + 9 digits
#   siret    14 digits passing the Luhn key
KINDS = ("str", "strint", "email", "enum", "int", "ts", "date", "object", "list", "rna", "siret")


@dataclass(frozen=True)
class PortalField:
    name: str  # JSON field
    kind: str
    target: str | None = None  # core column, when it maps one-to-one (else handled by code)
    values: tuple[str, ...] = ()  # enum: allowed values
    non_negative: bool = False  # int: reject < 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind}")


@dataclass(frozen=True)
class PortalCollection:
    name: str  # collection name in the API / export file name
    table: str  # core table
    not_null: tuple[str, ...]  # required fields that must also hold a value ('' is no value)
    fields: tuple[PortalField, ...]  # every field of the SOURCES.md §2 table, id, updated_at

    @property
    def required(self) -> tuple[str, ...]:
        """Fields every item must carry (the key may hold null unless in ``not_null``)."""
        return tuple(f.name for f in self.fields)


def _f(name: str, kind: str, target: str | None = None, **kw: Any) -> PortalField:
    return PortalField(name, kind, target, **kw)


_UPDATED = _f("updated_at", "ts", "source_updated_at")
_COLLECTIONS = [
    PortalCollection(
        "accounts",
        "portal_account",
        ("id", "updated_at", "status", "created_at"),
        (
            _f("id", "str", "account_id"),
            _f("email", "email", "email"),
            _f("phone", "str", "phone"),
            _f("first_name", "str", "first_name"),
            _f("last_name", "str", "last_name"),
            _f("address", "object"),
            _f("legacy_family_code", "str", "legacy_family_code"),
            _f("status", "enum", "status", values=("active", "closed")),
            _f("created_at", "ts"),
            _UPDATED,
        ),
    ),
    PortalCollection(
        "persons",
        "portal_person",
        ("id", "updated_at", "account_id", "role"),
        (
            _f("id", "str", "portal_person_id"),
            _f("account_id", "str", "account_id"),
            _f("role", "enum", "role", values=("parent", "child")),
            _f("first_name", "str", "first_name"),
            _f("last_name", "str", "last_name"),
            _f("birth_date", "date", "birth_date"),
            _f("legacy_person_id", "int", "legacy_person_id"),
            _UPDATED,
        ),
    ),
    PortalCollection(
        "requests",
        "procedure_request",
        ("id", "updated_at", "number", "procedure", "state"),
        (
            _f("id", "str", "request_id"),
            _f("number", "strint", "request_number"),
            _f("procedure", "str", "procedure"),
            _f("account_id", "str", "account_id"),
            _f("association_id", "str", "association_id"),
            _f(
                "state",
                "enum",
                "state",
                values=("en_construction", "en_instruction", "accepte", "refuse", "sans_suite"),
            ),
            _f("submitted_at", "ts", "submitted_at"),
            _f("instruction_started_at", "ts", "instruction_started_at"),
            _f("decided_at", "ts", "decided_at"),
            _f("service", "str", "service"),
            _f("fields", "object"),
            _UPDATED,
        ),
    ),
    PortalCollection(
        "bookings",
        "portal_booking",
        (
            "id",
            "updated_at",
            "account_id",
            "person_id",
            "activity_code",
            "day",
            "action",
            "made_at",
        ),
        (
            _f("id", "str", "booking_id"),
            _f("account_id", "str", "account_id"),
            _f("person_id", "str", "portal_person_id"),
            _f("activity_code", "str", "activity_code"),
            _f("day", "date", "day"),
            _f("action", "enum", "action", values=("book", "cancel")),
            _f("made_at", "ts", "made_at"),
            _UPDATED,
        ),
    ),
    PortalCollection(
        "documents",
        "document",
        ("id", "updated_at", "account_id", "type", "uploaded_at", "review"),
        (
            _f("id", "str"),
            _f("account_id", "str", "account_id"),
            _f("person_id", "str", "portal_person_id"),
            _f("type", "str", "document_type"),
            _f("valid_from", "date", "valid_from"),
            _f("valid_until", "date", "valid_until"),
            _f("uploaded_at", "ts", "uploaded_at"),
            _f("review", "enum", "review", values=("pending", "accepted", "rejected")),
            _UPDATED,
        ),
    ),
    PortalCollection(
        "online_payments",
        "payment",
        ("id", "updated_at", "account_id", "amount_cents", "status"),
        (
            _f("id", "str"),
            _f("account_id", "str", "account_id"),
            _f("invoice_number", "strint", "invoice_ref"),
            _f("amount_cents", "int", "amount_cents", non_negative=True),
            _f("idop", "strint", "operation_ref"),
            _f("status", "enum", "status", values=("paid", "refused", "abandoned")),
            _f("paid_at", "ts", "paid_at"),
            _UPDATED,
        ),
    ),
    PortalCollection(
        "associations",
        "association",
        ("id", "updated_at", "name", "rna"),
        (
            _f("id", "str", "association_id"),
            _f("name", "str", "name"),
            _f("rna", "rna", "rna"),
            _f("siret", "siret", "siret"),
            _f("contact_email", "email", "email"),
            _UPDATED,
        ),
    ),
    PortalCollection(
        "room_bookings",
        "room_booking",
        ("id", "updated_at", "association_id", "room_code", "starts_at", "ends_at", "status"),
        (
            _f("id", "str", "room_booking_id"),
            _f("association_id", "str", "association_id"),
            _f("room_code", "str", "room_code"),
            _f("starts_at", "ts", "starts_at"),
            _f("ends_at", "ts", "ends_at"),
            _f("status", "enum", "status", values=("requested", "confirmed", "cancelled")),
            _f("equipment", "list"),
            _UPDATED,
        ),
    ),
    PortalCollection(
        "logins",
        "login_stat",
        ("day", "space", "count", "updated_at"),
        (
            _f("day", "date", "day"),
            _f("space", "enum", "space", values=("citoyens", "famille", "associations")),
            _f("count", "int", "count", non_negative=True),
            _UPDATED,
        ),
    ),
]

PORTAL_COLLECTIONS: dict[str, PortalCollection] = {c.name: c for c in _COLLECTIONS}

SUBSIDY_PROCEDURE = "SUBVENTION_ASSOCIATION"
FINAL_STATES = ("accepte", "refuse", "sans_suite")


def _collection(collection: str) -> PortalCollection:
    try:
        return PORTAL_COLLECTIONS[collection]
    except KeyError:
        raise KeyError(
            f"unknown portal collection {collection!r}; known: {', '.join(PORTAL_COLLECTIONS)}"
        ) from None


def portal_source_key(collection: str, item: dict) -> str | None:
    """Key of a portal item: its ``id`` (logins: ``"day|space"``).

    None when it cannot be determined (not an object, key field absent, null,
    empty or not a string; an integer id is accepted as its text).
    """
    _collection(collection)
    if not isinstance(item, dict):
        return None
    if collection == "logins":
        day, space = item.get("day"), item.get("space")
        if isinstance(day, str) and day and isinstance(space, str) and space:
            return f"{day}|{space}"
        return None
    value = item.get("id")
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


# ------------------------------------------------------------------ item level
def _as_object(item: Any, payload: Any) -> tuple[dict | None, str | None]:
    """(the item as a dict, None) or (None, why it is not an object)."""
    if isinstance(item, dict):
        return item, None
    if item is None:
        if not isinstance(payload, (str, bytes)) or not str(payload).strip():
            return None, "invalid JSON: empty line"
        try:
            item = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return None, f"invalid JSON: {exc}"
        if isinstance(item, dict):
            return item, None
    return None, f"item is a JSON {json_type(item)}, not an object"


# ----------------------------------------------------------------- field level
def _type_message(name: str, expected: str, value: Any) -> str:
    return f"{name}: expected {expected}, got {json_type(value)} {show(value)}"


_INFERRED = {str: "string", int: "integer"}


def _of_type(vals: np.ndarray, absent: np.ndarray, types: tuple[type, ...]) -> np.ndarray:
    """Mask of the values whose type is exactly one of ``types`` (bool is not int)."""
    inferred = pd.api.types.infer_dtype(vals, skipna=True)
    if inferred == "empty" or any(inferred == _INFERRED.get(t) for t in types):
        return ~absent
    return np.fromiter((type(v) in types for v in vals), bool, len(vals))


def _check_field(
    values: list, spec: PortalField, not_null: bool, is_obj: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check one field in every item: (typed values, mask of problems, messages).

    ``values`` holds ``_MISSING`` where the item lacks the field (always a problem).
    """
    n = len(values)
    name = spec.name
    kind = spec.kind
    vals = object_array(values)
    missing = np.fromiter((v is _MISSING for v in vals), bool, n)
    vals[missing] = None
    null = ~missing & (np.asarray(pd.isna(vals), dtype=bool) | np.asarray(vals == "", dtype=bool))
    absent = missing | null
    vals[absent] = None
    msgs = np.full(n, None, dtype=object)
    out: np.ndarray
    if kind in ("str", "strint", "email", "enum", "rna", "siret"):
        accept_int = kind == "strint"
        good = _of_type(vals, absent, (str, int) if accept_int else (str,))
        wrong = ~absent & ~good
        out = np.where(good, vals, None)
        if accept_int:
            out = np.array([str(v) if v is not None else None for v in out], dtype=object)
        for i in np.flatnonzero(wrong).tolist():
            msgs[i] = _type_message(name, "a string", vals[i])
        present = np.flatnonzero(good)
        if kind == "email":
            out[present] = [v.strip().lower() or None for v in out[present]]
        elif kind == "enum":
            allowed = set(spec.values)
            for i in present.tolist():
                if out[i] not in allowed:
                    msgs[i] = f"{name}: {show(out[i])} is not one of {', '.join(spec.values)}"
        elif kind == "rna":
            for i in present.tolist():
                v = out[i]
                if not (len(v) == 10 and v[0] == "W" and v[1:].isascii() and v[1:].isdigit()):
                    msgs[i] = f"{name}: {show(v)} is not 'W' followed by 9 digits"
        elif kind == "siret":
            for i in present.tolist():
                v = out[i]
                if not (len(v) == 14 and v.isascii() and v.isdigit()):
                    msgs[i] = f"{name}: {show(v)} is not 14 digits"
                elif not luhn_ok(v):
                    msgs[i] = f"{name}: {show(v)} fails its Luhn check key"
    elif kind == "int":
        good = _of_type(vals, absent, (int,))
        out = np.where(good, vals, None)
        for i in np.flatnonzero(~absent & ~good).tolist():
            msgs[i] = _type_message(name, "an integer", vals[i])
        if spec.non_negative:
            for i in np.flatnonzero(good).tolist():
                if out[i] < 0:
                    msgs[i] = f"{name}: {out[i]} is negative (expected >= 0)"
        big = [i for i in np.flatnonzero(good).tolist() if abs(out[i]) > 2**63 - 1]
        for i in big:
            msgs[i] = f"{name}: {out[i]} is out of range"
            out[i] = None
    elif kind == "ts":
        out, msgs = iso_timestamp_values(vals, name)
    elif kind == "date":
        out, msgs = iso_date_values(vals, name)
    elif kind == "object":
        good = np.fromiter((type(v) is dict for v in vals), bool, n)
        out = np.where(good, vals, None)
        for i in np.flatnonzero(~absent & ~good).tolist():
            msgs[i] = _type_message(name, "an object", vals[i])
    elif kind == "list":
        out = np.full(n, None, dtype=object)
        for i in np.flatnonzero(~absent).tolist():
            v = vals[i]
            if type(v) is not list:
                msgs[i] = _type_message(name, "an array of strings", v)
            elif not all(type(x) is str for x in v):
                bad = next(x for x in v if type(x) is not str)
                msgs[i] = _type_message(f"{name}[]", "a string", bad)
            else:
                out[i] = ";".join(x.strip() for x in v if x.strip()) or None
    else:  # pragma: no cover
        raise AssertionError(kind)
    if not_null:
        msgs[null & is_obj] = f"{name}: null or empty, a value is required"
    msgs[missing & is_obj] = f"{name}: missing required field"
    bad = mask_on(msgs) & is_obj
    return out, bad, msgs


def mask_on(messages: np.ndarray) -> np.ndarray:
    return np.asarray(pd.notna(messages), dtype=bool) if len(messages) else np.zeros(0, bool)


def _sub_string(
    obj_values: np.ndarray, key: str, label: str, problems: Problems, is_obj: np.ndarray
) -> np.ndarray:
    """A string sub-field of an object field (e.g. address.city): values; problems added."""
    n = len(obj_values)
    out = np.full(n, None, dtype=object)
    msgs = np.full(n, None, dtype=object)
    for i in np.flatnonzero(pd.notna(obj_values)).tolist():
        v = obj_values[i].get(key)
        if v is None or v == "":
            continue
        if type(v) is str:
            out[i] = v
        else:
            msgs[i] = _type_message(label, "a string", v)
    problems.add(mask_on(msgs) & is_obj, msgs)
    return out


def _sub_int(
    obj_values: np.ndarray,
    key: str,
    label: str,
    only: np.ndarray,
    problems: Problems,
    is_obj: np.ndarray,
) -> np.ndarray:
    """A non-negative integer sub-field of an object field, where ``only`` is set."""
    n = len(obj_values)
    out = np.full(n, None, dtype=object)
    msgs = np.full(n, None, dtype=object)
    for i in np.flatnonzero(only & pd.notna(obj_values)).tolist():
        v = obj_values[i].get(key)
        if v is None:
            continue
        if type(v) is not int:
            msgs[i] = _type_message(label, "an integer", v)
        elif v < 0:
            msgs[i] = f"{label}: {v} is negative (expected >= 0)"
        elif v > 2**63 - 1:
            msgs[i] = f"{label}: {v} is out of range"
        else:
            out[i] = v
    problems.add(mask_on(msgs) & is_obj, msgs)
    return out


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


# ------------------------------------------------------------------- staging
def stage_portal(collection: str, raw: pd.DataFrame) -> Staged:
    """Stage the items of one portal collection into canonical rows.

    ``raw`` has ``source_key`` (str or None), ``line_no``, ``payload`` (the raw
    JSON text) and ``item`` (the parsed dict, or None when the line is not valid
    JSON); ``source_key`` is computed with ``portal_source_key`` when NULL or
    absent, and ``item`` parsed from ``payload`` when absent.
    """
    spec = _collection(collection)
    raw = raw.reset_index(drop=True)
    n = len(raw)
    payloads = raw["payload"].tolist() if "payload" in raw.columns else [None] * n
    items_in = raw["item"].tolist() if "item" in raw.columns else [None] * n
    problems = Problems(n)

    # Item level: every item must be a JSON object.
    is_obj = np.fromiter((type(it) is dict for it in items_in), bool, n)
    items: list[Any] = list(items_in)
    item_msgs = np.full(n, None, dtype=object)
    for i in np.flatnonzero(~is_obj).tolist():
        obj, why = _as_object(items_in[i], payloads[i])
        items[i] = obj
        item_msgs[i] = why
        is_obj[i] = obj is not None
    problems.add(~is_obj, item_msgs)
    dicts = [it if type(it) is dict else {} for it in items]

    # Source keys.
    given = (
        raw["source_key"].to_numpy(dtype=object)
        if "source_key" in raw.columns
        else np.full(n, None, dtype=object)
    )
    keys = np.array(given, dtype=object)
    for i in np.flatnonzero(pd.isna(given)).tolist():
        keys[i] = portal_source_key(collection, items[i])

    # Field level.
    values: dict[str, np.ndarray] = {}
    for field_spec in spec.fields:
        column = [d.get(field_spec.name, _MISSING) for d in dicts]
        out, bad, msgs = _check_field(column, field_spec, field_spec.name in spec.not_null, is_obj)
        problems.add(bad, msgs)
        values[field_spec.name] = out

    data: dict[str, Any] = {f.target: values[f.name] for f in spec.fields if f.target}
    _COLLECTION_RULES[collection](values, data, problems, is_obj)
    staged = build_staged(spec.table, data, pd.Series(keys, dtype=object), problems)
    if collection == "requests":
        staged.extra["procedure_state"] = procedure_states(staged.rows)
    return staged


def _accounts(values: dict, data: dict, problems: Problems, is_obj: np.ndarray) -> None:
    address = values["address"]
    for key, column in (("line", "address"), ("postcode", "postcode"), ("city", "city")):
        data[column] = _sub_string(address, key, f"address.{key}", problems, is_obj)
    data["created_on"] = paris_day(values["created_at"])


def _requests(values: dict, data: dict, problems: Problems, is_obj: np.ndarray) -> None:
    neither = pd.isna(values["account_id"]) & pd.isna(values["association_id"]) & is_obj
    problems.add(
        neither,
        "account_id: null or empty, and so is association_id (a request needs one of them)",
    )
    fields = values["fields"]
    data["fields"] = np.array([_json_text(v) for v in fields], dtype=object)
    subsidy = np.asarray(values["procedure"] == SUBSIDY_PROCEDURE, dtype=bool)
    for key in ("amount_requested_cents", "amount_granted_cents"):
        data[key] = _sub_int(fields, key, f"fields.{key}", subsidy, problems, is_obj)
    purpose = _sub_string(
        np.where(subsidy, fields, None), "purpose", "fields.purpose", problems, is_obj
    )
    data["purpose"] = purpose


def _documents(values: dict, data: dict, problems: Problems, is_obj: np.ndarray) -> None:
    data["document_id"] = _prefixed("portal:", values["id"])
    data.update(source="portal", household_id=None, person_id=None)


def _payments(values: dict, data: dict, problems: Problems, is_obj: np.ndarray) -> None:
    data["payment_id"] = _prefixed("portal:", values["id"])
    paid_at = values["paid_at"]
    when = np.where(np.isnat(paid_at), values["updated_at"], paid_at)
    data["paid_on"] = paris_day(when)
    data.update(
        source="portal",
        channel="online_card",
        payer_name=None,
        payer_email=None,
        auth_number=None,
        cheque_number=None,
        reject_reason=None,
        fiscal_year=None,
        file_name=None,
        line_no=None,
    )


def _room_bookings(values: dict, data: dict, problems: Problems, is_obj: np.ndarray) -> None:
    data["equipment"] = values["equipment"]


def _nothing(values: dict, data: dict, problems: Problems, is_obj: np.ndarray) -> None:
    return None


def _prefixed(prefix: str, ids: np.ndarray) -> np.ndarray:
    return np.array([prefix + v if isinstance(v, str) else None for v in ids], dtype=object)


_COLLECTION_RULES = {
    "accounts": _accounts,
    "persons": _nothing,
    "requests": _requests,
    "bookings": _nothing,
    "documents": _documents,
    "online_payments": _payments,
    "associations": _nothing,
    "room_bookings": _room_bookings,
    "logins": _nothing,
}


def procedure_states(requests: pd.DataFrame) -> pd.DataFrame:
    """State history rows (request_id, state, entered_at) of staged procedure requests.

    en_construction at ``submitted_at``, en_instruction at
    ``instruction_started_at``, the final state (when the request is in one) at
    ``decided_at``: only the states whose timestamps exist; plus the current state,
    at its timestamp or NULL when it has none. One row per (request_id, state).
    """
    dtypes = output_dtypes("procedure_state")
    rid = requests["request_id"]
    state = requests["state"]
    final = state.isin(FINAL_STATES).to_numpy(dtype=bool)
    parts = []
    for name, column in (
        ("en_construction", "submitted_at"),
        ("en_instruction", "instruction_started_at"),
    ):
        ts = requests[column]
        m = ts.notna().to_numpy(dtype=bool)
        parts.append(pd.DataFrame({"request_id": rid[m], "state": name, "entered_at": ts[m]}))
    m = final & requests["decided_at"].notna().to_numpy(dtype=bool)
    parts.append(
        pd.DataFrame(
            {"request_id": rid[m], "state": state[m], "entered_at": requests["decided_at"][m]}
        )
    )
    current_ts = np.select(
        [
            (state == "en_construction").to_numpy(dtype=bool),
            (state == "en_instruction").to_numpy(dtype=bool),
            final,
        ],
        [
            requests["submitted_at"].to_numpy(),
            requests["instruction_started_at"].to_numpy(),
            requests["decided_at"].to_numpy(),
        ],
        default=np.datetime64("NaT"),
    )
    m = np.isnat(current_ts)
    parts.append(
        pd.DataFrame(
            {
                "request_id": rid[m],
                "state": state[m],
                "entered_at": pd.Series(current_ts[m], dtype="datetime64[us]").to_numpy(),
            }
        )
    )
    out = pd.concat(parts, ignore_index=True)
    out = out.drop_duplicates(subset=["request_id", "state"], keep="first")
    out = out.sort_values(["request_id", "entered_at"], kind="stable", na_position="last")
    return out.reset_index(drop=True).astype(dtypes)
