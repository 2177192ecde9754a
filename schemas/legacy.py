"""Staging of the legacy registration and billing database.

``stage_legacy(entity, raw)`` turns the rows of one legacy table, exactly as the
database driver returned them, into canonical rows of its core table. Every column
is declared once below (``LEGACY_ENTITIES``): how it is parsed, whether it may be
empty, and which core column it feeds. See ``docs/staging.md`` for the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from schemas.staging import (
    Problems,
    Staged,
    build_staged,
    compact_date_column,
    expand,
    factorize,
    int_column,
    local_timestamp_column,
    mask_of,
    month_column,
    show,
    text_column,
)
from schemas.staging import _as_text as as_text

# Column kinds:
#   int         integer (int, float or str from the driver); `non_negative` rejects < 0
#   text        free text: trailing blanks stripped, mojibake repaired when certain
#   code        code or reference: blanks stripped on both sides
#   email       stripped, lower-cased
#   compact     every blank removed, upper-cased (IBAN)
#   list        ';'-separated codes, items stripped, empty items dropped
#   date        CHAR(8) YYYYMMDD; ''/'00000000' unknown -> NULL
#   open_date   same, where empty means open-ended (NULL, never a problem)
#   month       CHAR(6) YYYYMM, required
#   enum        code from `codes` (code -> core value); '' / NULL -> `null`
#   timestamp   'YYYY-MM-DD HH:MM:SS' Europe/Paris -> naive UTC
KINDS = (
    "int",
    "text",
    "code",
    "email",
    "compact",
    "list",
    "date",
    "open_date",
    "month",
    "enum",
    "timestamp",
)


@dataclass(frozen=True)
class LegacyColumn:
    name: str  # legacy column, upper case
    target: str  # core column it feeds
    kind: str
    required: bool = False  # NOT NULL in the legacy DDL (empty is a problem)
    non_negative: bool = False
    codes: tuple[tuple[str, Any], ...] = ()  # enum: allowed code -> core value
    null: Any = None  # enum: core value for '' / NULL
    prefix: str = ""  # int: the core value is the text prefix + the number

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind}")


@dataclass(frozen=True)
class LegacyEntity:
    name: str  # legacy table, upper case
    table: str  # core table
    primary_key: tuple[str, ...]  # legacy column names, upper case
    spec: tuple[LegacyColumn, ...]  # every column of the DDL, in DDL order
    constants: tuple[tuple[str, Any], ...] = ()  # core columns with a fixed value

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.spec)

    @property
    def has_date_maj(self) -> bool:
        return "DATE_MAJ" in self.columns


def _c(name: str, target: str, kind: str, **kw: Any) -> LegacyColumn:
    return LegacyColumn(name, target, kind, **kw)


def _req(name: str, target: str, kind: str, **kw: Any) -> LegacyColumn:
    return LegacyColumn(name, target, kind, required=True, **kw)


_FLAG = (("O", True), ("N", False))
_DATE_MAJ = _req("DATE_MAJ", "source_updated_at", "timestamp")

_ENTITIES = [
    LegacyEntity(
        "FAMILLE",
        "household",
        ("ID_FAMILLE",),
        (
            _req("ID_FAMILLE", "household_id", "int"),
            _req("CODE_FAMILLE", "family_code", "code"),
            _c("NOM_FAMILLE", "name", "text"),
            _c("ADRESSE", "address", "text"),
            _c("CP", "postcode", "code"),
            _c("VILLE", "city", "text"),
            _c("TEL", "phone", "text"),
            _c("EMAIL", "email", "email"),
            _c("NUM_ALLOCATAIRE", "caf_number", "code"),
            _c("QF", "family_quotient", "int"),
            _c("PRELEVEMENT", "direct_debit", "enum", codes=_FLAG),
            _c("RUM", "mandate_ref", "code"),
            _c("IBAN", "iban", "compact"),
            _c("DATE_CREATION", "created_on", "date"),
            _DATE_MAJ,
        ),
    ),
    LegacyEntity(
        "INDIVIDU",
        "person",
        ("ID_INDIVIDU",),
        (
            _req("ID_INDIVIDU", "person_id", "int"),
            _c("NOM", "last_name", "text"),
            _c("NOM_NAISSANCE", "birth_name", "text"),
            _c("PRENOM", "first_name", "text"),
            _c("DATE_NAISS", "birth_date", "date"),
            _c("SEXE", "sex", "enum", codes=(("M", "M"), ("F", "F"))),
            _c("TEL_PORTABLE", "phone", "text"),
            _c("EMAIL", "email", "email"),
            _DATE_MAJ,
        ),
    ),
    LegacyEntity(
        "RATTACHEMENT",
        "membership",
        ("ID_FAMILLE", "ID_INDIVIDU"),
        (
            _req("ID_FAMILLE", "household_id", "int"),
            _req("ID_INDIVIDU", "person_id", "int"),
            _req(
                "CATEGORIE",
                "role",
                "enum",
                codes=(("R", "responsible"), ("E", "child"), ("C", "contact")),
            ),
            _c("TITULAIRE", "is_holder", "enum", codes=_FLAG, null=False),
            _DATE_MAJ,
        ),
    ),
    LegacyEntity(
        "ACTIVITE",
        "activity",
        ("ID_ACTIVITE",),
        (
            _req("ID_ACTIVITE", "activity_id", "int"),
            _req("CODE_ACTIVITE", "activity_code", "code"),
            _c("LIBELLE", "label", "text"),
            _req("SERVICE", "service", "code"),
            _c("SITE", "site", "text"),
            _c("CAPACITE", "capacity", "int", non_negative=True),
            _c("PU_CENTIMES", "unit_price_cents", "int", non_negative=True),
            _c("DELAI_ANNUL_H", "cancel_notice_hours", "int"),
            _c("PIECES_REQUISES", "required_documents", "list"),
            _DATE_MAJ,
        ),
    ),
    LegacyEntity(
        "INSCRIPTION",
        "enrolment",
        ("ID_INSCRIPTION",),
        (
            _req("ID_INSCRIPTION", "enrolment_id", "int"),
            _req("ID_FAMILLE", "household_id", "int"),
            _req("ID_INDIVIDU", "person_id", "int"),
            _req("ID_ACTIVITE", "activity_id", "int"),
            _c("DATE_DEBUT", "start_on", "date"),
            _c("DATE_FIN", "end_on", "open_date"),
            _req("ETAT", "state", "enum", codes=(("V", "V"), ("A", "A"), ("R", "R"))),
            _c("REF_DEMANDE", "request_number", "code"),
            _DATE_MAJ,
        ),
    ),
    LegacyEntity(
        "RESERVATION",
        "reservation",
        ("ID_RESERVATION",),
        (
            _req("ID_RESERVATION", "reservation_id", "int"),
            _req("ID_INSCRIPTION", "enrolment_id", "int"),
            _req("DATE_JOUR", "day", "date"),
            _req("ETAT", "state", "enum", codes=(("RESA", "RESA"), ("ANNUL", "ANNUL"))),
            _c("ORIGINE", "origin", "code"),
            _c("REF_PORTAIL", "portal_ref", "code"),
            _c("DATE_ANNUL", "cancelled_at", "timestamp"),
            _DATE_MAJ,
        ),
    ),
    LegacyEntity(
        "POINTAGE",
        "attendance",
        ("ID_POINTAGE",),
        (
            _req("ID_POINTAGE", "attendance_id", "int"),
            _req("ID_INSCRIPTION", "enrolment_id", "int"),
            _req("DATE_JOUR", "day", "date"),
            _req("STATUT", "status", "enum", codes=(("P", "P"), ("AJ", "AJ"), ("AI", "AI"))),
            _DATE_MAJ,
        ),
    ),
    LegacyEntity(
        "FACTURE",
        "invoice",
        ("ID_FACTURE",),
        (
            _req("ID_FACTURE", "invoice_id", "int"),
            _req("NUM_FACTURE", "invoice_number", "code"),
            _req("ID_FAMILLE", "household_id", "int"),
            _req("PERIODE", "period", "month"),
            _c("DATE_EMISSION", "issued_on", "date"),
            _c("DATE_ECHEANCE", "due_on", "date"),
            _req("MONTANT_CENTIMES", "amount_cents", "int"),
            _req("ETAT", "state", "enum", codes=(("E", "E"), ("A", "A"), ("T", "T"))),
            _DATE_MAJ,
        ),
    ),
    LegacyEntity(
        "LIGNE_FACTURE",
        "invoice_line",
        ("ID_LIGNE",),
        (
            _req("ID_LIGNE", "line_id", "int"),
            _req("ID_FACTURE", "invoice_id", "int"),
            _c("ID_INSCRIPTION", "enrolment_id", "int"),
            _c("DATE_JOUR", "day", "date"),
            _c("LIBELLE", "label", "text"),
            _req("QUANTITE", "quantity", "int", non_negative=True),
            _req("PU_CENTIMES", "unit_price_cents", "int", non_negative=True),
            _req("MONTANT_CENTIMES", "amount_cents", "int"),
        ),
    ),
    LegacyEntity(
        "PIECE",
        "document",
        ("ID_PIECE",),
        (
            _req("ID_PIECE", "document_id", "int", prefix="legacy:"),
            _req("ID_FAMILLE", "household_id", "int"),
            _c("ID_INDIVIDU", "person_id", "int"),
            _req("TYPE_PIECE", "document_type", "code"),
            _c("DATE_DEBUT", "valid_from", "date"),
            _c("DATE_FIN", "valid_until", "open_date"),
            _DATE_MAJ,
        ),
        constants=(
            ("source", "legacy"),
            ("account_id", None),
            ("portal_person_id", None),
            ("uploaded_at", None),
            ("review", None),
        ),
    ),
]

LEGACY_ENTITIES: dict[str, LegacyEntity] = {e.name: e for e in _ENTITIES}


def _entity(entity: str) -> LegacyEntity:
    try:
        return LEGACY_ENTITIES[entity.upper()]
    except KeyError:
        raise KeyError(
            f"unknown legacy entity {entity!r}; known: {', '.join(LEGACY_ENTITIES)}"
        ) from None


def _columns_of(entity: LegacyEntity, raw: pd.DataFrame, names: tuple[str, ...]) -> None:
    missing = [c for c in names if c not in raw.columns]
    if missing:
        raise ValueError(
            f"{entity.name}: input lacks column(s) {', '.join(missing)} "
            "(expected the legacy column names in upper case)"
        )


def legacy_source_key(entity: str, raw: pd.DataFrame) -> pd.Series:
    """Source key of each legacy row: its primary key values joined with '|'.

    Integers are written without padding or decimals ('12', also for 12.0 or
    '12  '); a value that is not an integer is kept as its stripped text, NULL as ''.
    """
    ent = _entity(entity)
    _columns_of(ent, raw, ent.primary_key)
    key: pd.Series | None = None
    for col in ent.primary_key:
        series = raw[col].reset_index(drop=True)
        ints, _, _ = int_column(series, col)
        part = ints.astype("string")
        na = part.isna().to_numpy(dtype=bool)
        if na.any():
            idx = np.flatnonzero(na)
            part.iloc[idx] = text_column(series.iloc[idx], "code").fillna("").to_numpy()
        key = part if key is None else key.str.cat(part, sep="|")
    assert key is not None
    return key.astype("string")


def _enum_column(series: pd.Series, col: LegacyColumn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    codes, uniques = factorize(series)
    allowed = dict(col.codes)
    if col.null is None:
        listed = ", ".join(repr(c) for c in allowed)
        expected = f"one of {listed}" + ("" if col.required else " or empty")
    else:
        expected = " or ".join(repr(c) for c in allowed) + " or empty"
    missing = f"{col.name}: missing value (NOT NULL column)" if col.required else None
    values: list[Any] = []
    messages: list[str | None] = []
    for u in uniques:
        s = as_text(u).strip()
        if not s:
            values.append(col.null)
            messages.append(missing)
        elif s in allowed:
            values.append(allowed[s])
            messages.append(None)
        else:
            values.append(None)
            messages.append(f"{col.name}: {show(u)} is not a known code (expected {expected})")
    msgs = expand(messages, codes, null=missing)
    return expand(values, codes, null=col.null), mask_of(msgs), msgs


def _stage_column(series: pd.Series, col: LegacyColumn) -> tuple[Any, np.ndarray | None, Any]:
    kind = col.kind
    if kind == "int":
        values, bad, msgs = int_column(
            series, col.name, required=col.required, non_negative=col.non_negative
        )
        if col.prefix:
            values = (col.prefix + values.astype("string")).astype("string")
        return values, bad, msgs
    if kind in ("text", "code", "email", "compact", "list"):
        values = text_column(series, kind)
        if col.required:
            missing = np.asarray(values.isna(), dtype=bool)
            return values, missing, f"{col.name}: missing value (NOT NULL column)"
        return values, None, None
    if kind in ("date", "open_date"):
        return compact_date_column(series, col.name, required=col.required)
    if kind == "month":
        return month_column(series, col.name)
    if kind == "enum":
        return _enum_column(series, col)
    if kind == "timestamp":
        return local_timestamp_column(series, col.name, required=col.required)
    raise AssertionError(kind)  # pragma: no cover


def stage_legacy(entity: str, raw: pd.DataFrame) -> Staged:
    """Stage the rows of one legacy table into canonical rows of its core table.

    ``raw`` has the legacy columns in upper case (extra columns are ignored) with
    the values as the driver returned them, plus ``source_key`` (computed with
    ``legacy_source_key`` when absent or NULL).
    """
    ent = _entity(entity)
    raw = raw.reset_index(drop=True)
    _columns_of(ent, raw, ent.columns)
    problems = Problems(len(raw))
    data: dict[str, Any] = {}
    for col in ent.spec:
        values, bad, msgs = _stage_column(raw[col.name], col)
        problems.add(bad, msgs)
        data[col.target] = values
    data.update(dict(ent.constants))
    if "source_key" in raw.columns:
        keys = raw["source_key"].astype("string")
        if keys.isna().any():
            keys = keys.fillna(legacy_source_key(ent.name, raw))
    else:
        keys = legacy_source_key(ent.name, raw)
    return build_staged(ent.table, data, keys, problems)
