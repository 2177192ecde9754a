"""The Great Expectations suites, declared as data (no GX import here).

Two kinds of suite:

- ``stg.<source>.<entity>``: the rows a staging step produced in one run, before
  they are loaded. Structural expectations (columns, value types, primary key
  present and unique) block the load when they fail; the row expectations that
  need only the row itself (formats, ranges, value sets) are counted as
  warnings. No flags: a batch holds only what changed, so it cannot tell that a
  problem went away.
- ``core.<table>``: the town's whole current table after the load. Structural
  expectations (primary key) block what is downstream; row expectations —
  formats, ranges, value sets, nulls, uniqueness, referential integrity,
  plausible ages per service, totals that must agree — raise one flag per
  failing row, named after the expectation (rule ``gx.<table>.<name>``).

Each ``Rule`` names a GX expectation class and its arguments, and says in French
what is wrong, what was expected and what to do; ``column`` is what a steward
may override (``fix_table``/``fix_key`` when the value to fix lives in another
table, e.g. a child's birth date for an implausible age at enrolment).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from quality import formats
from schemas.fields import FIELDS
from schemas.tables import BY_NAME

TODAY = "__today__"  # replaced by the current day (Europe/Paris) when validating
EARLIEST_BIRTH = dt.date(1900, 1, 1)


@dataclass(frozen=True)
class Ref:
    """The current values of ``table.column`` (referential integrity)."""

    table: str
    column: str


@dataclass(frozen=True)
class Equals:
    """A row condition: the rule applies to the rows where ``column == value``."""

    column: str
    value: object


@dataclass(frozen=True)
class Rule:
    name: str
    expectation: str  # GX expectation class name (great_expectations.expectations or ours)
    kwargs: dict
    kind: str = "row"  # "structural" | "row"
    severity: str = "warning"
    column: str | None = None  # the value shown first (and overridden, when fixable)
    message: str = ""  # French, formatted with the row's columns and {value}
    expected: str = ""  # French: what was expected
    suggestion: str = ""  # French: what to do when no value can be suggested
    suggest: Callable | str | None = None  # value -> corrected value, or a column name
    fixable: bool = True  # a steward may override ``column`` (of ``fix_table``)
    fix_table: str | None = None
    fix_key: tuple[str, ...] | None = None
    evidence: tuple[str, ...] = ()  # other columns shown as evidence
    batch: bool = True  # also checked on staged batches (needs only the row)
    value_check: Callable | None = None  # override value -> bool
    title: str = ""  # French, short: what kind of problem (shown in the queue)

    def rule_id(self, table: str) -> str:
        return f"gx.{table}.{self.name}"


@dataclass(frozen=True)
class Suite:
    name: str
    table: str
    keys: tuple[str, ...]
    rules: tuple[Rule, ...]
    parents: tuple[str, ...] = field(default=())  # core tables read by reference rules

    def rule_ids(self) -> set[str]:
        return {r.rule_id(self.table) for r in self.rules if r.kind == "row"}


# ------------------------------------------------------------ builders
def _fmt(name, expectation, column, *, check, expected, suggest=None, severity="warning",
         extra=None, suggestion="", label=None, **kw) -> Rule:
    kwargs = {"column": column, **(extra or {})}
    label = label or column
    return Rule(name, expectation, kwargs, severity=severity, column=column,
                title=f"{_cap(label)} invalide",
                message=f"{_cap(label)} invalide : « {{value}} ».", expected=expected,
                suggestion=suggestion or f"Vérifier {_article(label)} et la corriger dans "
                                         "le logiciel (ou saisir la bonne valeur ici).",
                suggest=suggest, value_check=check, **kw)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _article(label: str) -> str:
    return {"e-mail": "l'adresse e-mail", "téléphone": "le numéro de téléphone",
            "code postal": "le code postal", "IBAN": "l'IBAN", "n° RNA": "le n° RNA",
            "SIRET": "le SIRET"}.get(label, label)


def email(column="email", **kw) -> Rule:
    return _fmt(f"{column}_format", "ExpectColumnValuesToBeValidEmail", column,
                check=formats.is_email,
                expected="une adresse e-mail valide (nom@domaine.fr)",
                suggest=formats.suggest_email, label="e-mail", **kw)


def phone(column="phone", **kw) -> Rule:
    return _fmt(f"{column}_format", "ExpectColumnValuesToBeFrenchPhone", column,
                check=formats.is_french_phone,
                expected="un numéro français à 10 chiffres (06 12 34 56 78) ou international",
                suggest=formats.suggest_phone, label="téléphone", **kw)


def postcode(column="postcode", **kw) -> Rule:
    return _fmt(f"{column}_format", "ExpectColumnValuesToMatchRegex", column,
                extra={"regex": formats.POSTCODE_RE.pattern}, check=formats.is_postcode,
                expected="un code postal français à 5 chiffres",
                suggest=formats.suggest_postcode, label="code postal", **kw)


def in_set(name, column, values, *, severity="warning", expected=None, **kw) -> Rule:
    shown = ", ".join(map(str, values))
    return Rule(name, "ExpectColumnValuesToBeInSet", {"column": column, "value_set": list(values)},
                severity=severity, column=column,
                title=f"Valeur inattendue pour « {_label(column)} »",
                message=f"Valeur inattendue pour « {_label(column)} » : « {{value}} ».",
                expected=expected or f"une des valeurs {shown}",
                suggestion="Corriger la valeur dans le logiciel source.", **kw)


def between(name, column, lo=None, hi=None, *, severity="warning", message=None,
            expected=None, **kw) -> Rule:
    args = {"column": column}
    if lo is not None:
        args["min_value"] = lo
    if hi is not None:
        args["max_value"] = hi
    def shown(v):
        return "aujourd'hui" if v == TODAY else v.strftime("%d/%m/%Y") if isinstance(
            v, dt.date) else f"{v}"
    rng = (f"entre {shown(lo)} et {shown(hi)}" if lo is not None and hi is not None
           else f"au moins {shown(lo)}" if lo is not None else f"au plus {shown(hi)}")
    return Rule(name, "ExpectColumnValuesToBeBetween", args, severity=severity, column=column,
                title=kw.pop("title", None) or (message or "").split(" :")[0].rstrip(".")
                or f"« {_cap(_label(column))} » hors limites",
                message=message or f"Valeur hors limites pour « {_label(column)} » : {{value}}.",
                expected=expected or rng,
                suggestion="Vérifier la valeur et la corriger dans le logiciel source.", **kw)


def not_null(name, column, *, severity="warning", message=None, condition=None, **kw) -> Rule:
    args = {"column": column}
    if condition:
        args["row_condition"] = Equals(*condition)
    return Rule(name, "ExpectColumnValuesToNotBeNull", args, severity=severity, column=column,
                title=(message or f"« {_cap(_label(column))} » manquant").rstrip("."),
                message=message or f"« {_cap(_label(column))} » manquant.",
                expected="une valeur renseignée",
                suggestion="Compléter la valeur dans le logiciel source.", **kw)


def unique(name, columns, *, severity="error", message=None, **kw) -> Rule:
    cols = [columns] if isinstance(columns, str) else list(columns)
    if len(cols) == 1:
        exp, args = "ExpectColumnValuesToBeUnique", {"column": cols[0]}
    else:
        exp, args = "ExpectCompoundColumnsToBeUnique", {"column_list": cols}
    shown = " + ".join(_label(c) for c in cols)
    params = {"severity": severity, "column": cols[0], "title": f"Doublon de « {shown} »",
                  "message": message or f"Doublon : « {shown} » = {{value}} apparaît plusieurs fois.",
                  "expected": f"« {shown} » unique", "batch": False, "fixable": len(cols) == 1,
                  "suggestion": "Rechercher l'autre enregistrement et supprimer ou corriger le "
                             "doublon dans le logiciel source."}
    return Rule(name, exp, args, **{**params, **kw})


def refers(name, column, parent: str, parent_column: str | None = None, *, severity="error",
           **kw) -> Rule:
    parent_column = parent_column or column
    from quality.labels import table_fr

    params = {"severity": severity, "column": column, "batch": False, "fixable": False,
                  "title": f"« {_cap(_label(column))} » introuvable",
                  "message": f"« {_cap(_label(column))} » {{value}} introuvable "
                          f"({table_fr(parent).lower()} absente de l'entrepôt).",
                  "expected": f"une valeur présente dans « {table_fr(parent)} »",
                  "suggestion": "Vérifier le rattachement dans le logiciel source : "
                             "l'enregistrement lié a peut-être été supprimé ou mal saisi."}
    return Rule(name, "ExpectColumnValuesToBeInReference",
                {"column": column, "reference": Ref(parent, parent_column)}, **{**params, **kw})


def ordered(name, later, earlier, *, strict=False, severity="error", **kw) -> Rule:
    params = {"severity": severity, "column": later, "evidence": (earlier,),
                  "title": f"« {_cap(_label(later))} » avant « {_label(earlier)} »",
                  "message": f"« {_cap(_label(later))} » ({{value}}) avant "
                          f"« {_label(earlier)} » ({{{earlier}}}).",
                  "expected": f"« {_label(later)} » {'après' if strict else 'au plus tôt à'} "
                           f"« {_label(earlier)} »",
                  "suggestion": "Corriger l'une des deux valeurs dans le logiciel source."}
    return Rule(name, "ExpectColumnPairValuesAToBeGreaterThanB",
                {"column_A": later, "column_B": earlier, "or_equal": not strict,
                 "ignore_row_if": "either_value_is_missing"}, **{**params, **kw})


def equal(name, column, computed, *, severity="error", message, expected, title,
          **kw) -> Rule:
    params = {"severity": severity, "column": column, "evidence": (computed,), "batch": False, "title": title,
                  "message": message, "expected": expected}
    return Rule(name, "ExpectColumnPairValuesToBeEqual",
                {"column_A": column, "column_B": computed,
                 "ignore_row_if": "either_value_is_missing"}, **{**params, **kw})


def _label(column: str) -> str:
    from quality.labels import column_fr

    return column_fr(column)


# Plausible age (years, at the start of the enrolment) per service.
SERVICE_AGES = {
    "MULTI": (0, 4),     # multi-accueil: the nursery
    "SCOL": (2, 12),     # school (maternelle and élémentaire)
    "RESTO": (2, 12),    # school canteen
    "PERI": (2, 12),     # before/after-school care
    "ALSH": (2, 18),     # leisure centre
    "EMM": (4, 100),     # music school: children and adults
}


def _age_rule() -> Rule:
    ranges = {k: list(v) for k, v in SERVICE_AGES.items()}
    return Rule(
        "age_for_service", "ExpectAgeToSuitService",
        {"column_list": ["age_at_start", "service"], "ranges": ranges},
        title="Âge invraisemblable pour le service",
        severity="warning", column="birth_date", batch=False,
        fix_table="person", fix_key=("person_id",),
        evidence=("age_at_start", "service", "activity_code", "start_on", "person_id"),
        message="Âge invraisemblable pour le service {service} : {age_at_start} ans au début "
                "de l'inscription (né·e le {value}).",
        expected="un âge plausible pour le service : " + ", ".join(
            f"{k} {lo}–{hi} ans" for k, (lo, hi) in SERVICE_AGES.items()),
        suggestion="Vérifier la date de naissance de l'enfant (faute de frappe ?) ou "
                   "l'activité choisie.", value_check=_is_date)


def _is_date(v: str) -> bool:
    try:
        d = dt.date.fromisoformat(str(v).strip())
    except ValueError:
        return False
    return dt.date(1900, 1, 1) <= d <= dt.date.today()


# ----------------------------------------------------------- catalogue
SERVICES = tuple(SERVICE_AGES)

ROW_RULES: dict[str, list[Rule]] = {
    "household": [
        email(), phone(), postcode(),
        _fmt("iban_valid", "ExpectColumnValuesToBeValidIban", "iban", check=formats.is_iban,
             expected="un IBAN dont la clé de contrôle est juste", suggest=formats.suggest_iban,
             severity="error", label="IBAN",
             suggestion="Demander un RIB à la famille : les prélèvements sur cet IBAN seront "
                        "rejetés."),
        not_null("iban_for_direct_debit", "iban", severity="error", condition=("direct_debit", True),
                 message="Prélèvement activé sans IBAN.", value_check=formats.is_iban),
        not_null("mandate_for_direct_debit", "mandate_ref", condition=("direct_debit", True),
                 message="Prélèvement activé sans référence de mandat (RUM)."),
        between("family_quotient_range", "family_quotient", 0, 9999,
                expected="un quotient familial entre 0 et 9999"),
        _fmt("family_code_format", "ExpectColumnValuesToMatchRegex", "family_code",
             extra={"regex": r"^F\d{8}$"}, check=lambda v: bool(__import__("re").fullmatch(
                 r"F\d{8}", v or "")), expected="F suivi de 8 chiffres", label="code famille",
             fixable=False),
        unique("family_code_unique", "family_code"),
        not_null("name_present", "name"),
        between("created_on_not_future", "created_on", hi=TODAY,
                title="Date de création dans le futur",
                message="Date de création dans le futur : {value}.",
                expected="une date de création passée"),
    ],
    "person": [
        between("birth_date_plausible", "birth_date", EARLIEST_BIRTH, TODAY, severity="error",
                message="Date de naissance invraisemblable : {value}.",
                expected="une date entre 1900 et aujourd'hui", value_check=_is_date),
        email(), phone(),
        not_null("last_name_present", "last_name"),
        not_null("first_name_present", "first_name"),
        in_set("sex_value", "sex", ["M", "F"], severity="info"),
    ],
    "membership": [
        refers("household_exists", "household_id", "household"),
        refers("person_exists", "person_id", "person"),
        in_set("role_value", "role", ["responsible", "child", "contact"]),
    ],
    "portal_account": [
        email(), phone(), postcode(),
        in_set("status_value", "status", ["active", "closed"]),
        refers("family_code_exists", "legacy_family_code", "household", "family_code",
               severity="warning"),
    ],
    "portal_person": [
        refers("account_exists", "account_id", "portal_account"),
        refers("legacy_person_exists", "legacy_person_id", "person", "person_id",
               severity="warning"),
        between("birth_date_plausible", "birth_date", EARLIEST_BIRTH, TODAY, severity="error",
                message="Date de naissance invraisemblable : {value}.",
                expected="une date entre 1900 et aujourd'hui", value_check=_is_date),
        in_set("role_value", "role", ["parent", "child"]),
    ],
    "activity": [
        in_set("service_value", "service", SERVICES, expected="un service connu"),
        between("capacity_range", "capacity", 0, 1000),
        between("price_range", "unit_price_cents", 0, 100_000,
                expected="un prix unitaire entre 0 et 1 000 €"),
        between("notice_range", "cancel_notice_hours", 0, 720,
                expected="un délai d'annulation entre 0 et 720 heures"),
        unique("activity_code_unique", "activity_code"),
    ],
    "enrolment": [
        refers("household_exists", "household_id", "household"),
        refers("person_exists", "person_id", "person"),
        refers("activity_exists", "activity_id", "activity"),
        in_set("state_value", "state", ["V", "A", "R"]),
        ordered("end_after_start", "end_on", "start_on"),
        _age_rule(),
    ],
    "reservation": [
        refers("enrolment_exists", "enrolment_id", "enrolment"),
        in_set("state_value", "state", ["RESA", "ANNUL"]),
        in_set("origin_value", "origin", ["PORTAIL", "GUICHET", "AUTO"], severity="info"),
        unique("one_per_day", ["enrolment_id", "day"],
               message="Plusieurs réservations pour la même inscription et le même jour."),
    ],
    "attendance": [
        refers("enrolment_exists", "enrolment_id", "enrolment"),
        in_set("status_value", "status", ["P", "AJ", "AI"]),
        unique("one_per_day", ["enrolment_id", "day"],
               message="Plusieurs pointages pour la même inscription et le même jour."),
    ],
    "invoice": [
        refers("household_exists", "household_id", "household"),
        _fmt("number_format", "ExpectColumnValuesToMatchRegex", "invoice_number",
             extra={"regex": r"^\d{13}$"}, check=lambda v: str(v).isdigit() and len(v) == 13,
             expected="la période AAAAMM suivie de 7 chiffres", label="n° de facture",
             severity="error", fixable=False),
        unique("number_unique", "invoice_number", fixable=False),
        equal("number_matches_period", "period", "number_period", severity="warning",
              title="N° de facture et période différents",
              message="Le n° de facture ({invoice_number}) ne commence pas par sa période "
                      "({value}).", expected="un n° de facture commençant par la période",
              fixable=False),
        ordered("due_after_issue", "due_on", "issued_on", severity="warning"),
        in_set("state_value", "state", ["E", "A", "T"]),
        equal("amount_matches_lines", "amount_cents", "lines_total_cents",
              title="Montant différent de la somme des lignes",
              message="Montant de la facture ({value} c) différent de la somme de ses lignes "
                      "({lines_total_cents} c).",
              expected="le montant égal à la somme des lignes",
              suggestion="Faire rééditer la facture dans le logiciel (ou corriger le montant "
                         "ici pour les rapports).",
              suggest="lines_total_cents"),
    ],
    "invoice_line": [
        refers("invoice_exists", "invoice_id", "invoice"),
        refers("enrolment_exists", "enrolment_id", "enrolment", severity="warning"),
        between("quantity_range", "quantity", 0, 1000),
        equal("amount_is_quantity_times_price", "amount_cents", "expected_amount_cents",
              title="Montant différent de quantité × prix",
              message="Montant de la ligne ({value} c) différent de quantité × prix unitaire "
                      "({expected_amount_cents} c).",
              expected="montant = quantité × prix unitaire",
              suggestion="Corriger la ligne dans le logiciel de facturation.",
              suggest="expected_amount_cents"),
    ],
    "payment": [
        in_set("status_value", "status", ["paid", "refused", "abandoned", "rejected"]),
        in_set("channel_value", "channel", ["online_card", "direct_debit", "cash", "cheque",
                                            "cesu", "desk_card", "transfer"]),
        between("amount_range", "amount_cents", 1, 10_000_000,
                expected="un montant entre 0,01 € et 100 000 €", fixable=False),
        email("payer_email", severity="info"),
        not_null("paid_has_date", "paid_on", condition=("status", "paid"),
                 message="Paiement encaissé sans date.", fixable=False),
    ],
    "bank_statement": [
        equal("balanced", "closing_balance_cents", "expected_closing_cents",
              title="Relevé déséquilibré",
              message="Relevé déséquilibré : nouveau solde {value} c, ancien solde + "
                      "opérations = {expected_closing_cents} c.",
              expected="nouveau solde = ancien solde + total des opérations",
              suggestion="Demander à la banque (ou à la régie) le relevé corrigé : une opération "
                         "manque ou un solde est faux.", fixable=False),
        in_set("currency_value", "currency", ["EUR"]),
    ],
    "bank_operation": [
        refers("statement_exists", "statement_id", "bank_statement"),
    ],
    "allocation": [
        refers("payment_exists", "payment_id", "payment"),
        refers("invoice_exists", "invoice_number", "invoice"),
        between("amount_range", "amount_cents", 1, 10_000_000, fixable=False),
    ],
    "document": [
        in_set("type_value", "document_type",
               ["ASSURANCE", "VACCINS", "CERTIF_MEDICAL", "JUSTIF_DOMICILE", "ATTEST_CAF"],
               severity="info", expected="un type de pièce connu"),
        ordered("validity_order", "valid_until", "valid_from"),
        in_set("review_value", "review", ["pending", "accepted", "rejected"]),
        refers("household_exists", "household_id", "household", severity="warning"),
    ],
    "procedure_request": [
        in_set("state_value", "state",
               ["en_construction", "en_instruction", "accepte", "refuse", "sans_suite"]),
        ordered("decided_after_submitted", "decided_at", "submitted_at", fixable=False),
        not_null("requester_present", "requester", batch=False,
                 message="Démarche sans compte ni association.", fixable=False),
        between("amount_requested_range", "amount_requested_cents", 0, 100_000_000),
        ordered("granted_within_requested", "amount_requested_cents", "amount_granted_cents",
                severity="info", fixable=False,
                title="Montant accordé supérieur au montant demandé",
                message="Montant accordé ({amount_granted_cents} c) supérieur au montant "
                        "demandé ({value} c)."),
    ],
    "procedure_state": [
        refers("request_exists", "request_id", "procedure_request"),
    ],
    "association": [
        _fmt("rna_format", "ExpectColumnValuesToMatchRegex", "rna",
             extra={"regex": formats.RNA_RE.pattern}, check=formats.is_rna,
             expected="W suivi de 9 chiffres", suggest=formats.suggest_rna, severity="error",
             label="n° RNA"),
        _fmt("siret_valid", "ExpectColumnValuesToBeValidSiret", "siret", check=formats.is_siret,
             expected="14 chiffres dont la clé de Luhn est juste",
             suggest=formats.suggest_siret, severity="error", label="SIRET"),
        email(),
        not_null("name_present", "name"),
    ],
    "room_booking": [
        refers("association_exists", "association_id", "association"),
        ordered("ends_after_starts", "ends_at", "starts_at", strict=True),
        in_set("status_value", "status", ["requested", "confirmed", "cancelled"]),
    ],
    "login_stat": [
        between("count_range", "count", 0, 10_000_000),
        in_set("space_value", "space", ["citoyens", "famille", "associations"]),
    ],
    "crosswalk": [
        in_set("canonical_entity_value", "canonical_entity", ["household", "person"]),
    ],
}

def _structural(table: str, *, staged: bool) -> list[Rule]:
    """Staged batches: columns, keys present and unique, value types. Core tables: the key
    only (the database enforces it too; the frame is built from the schema)."""
    spec = BY_NAME[table]
    cols = [c for c in spec.data_columns if c != "town"]
    keys = spec.key_columns
    out = []
    if staged:
        out.append(Rule("columns_present", "ExpectTableColumnsToMatchSet",
                        {"column_set": cols, "exact_match": False}, kind="structural",
                        message="Colonnes manquantes.", fixable=False))
        for k in keys:
            out.append(Rule(f"{k}_not_null", "ExpectColumnValuesToNotBeNull", {"column": k},
                            kind="structural", column=k, fixable=False,
                            message="Clé primaire manquante."))
    if len(keys) == 1:
        out.append(Rule("key_unique", "ExpectColumnValuesToBeUnique", {"column": keys[0]},
                        kind="structural", column=keys[0], fixable=False,
                        message="Clé primaire en double."))
    else:
        out.append(Rule("key_unique", "ExpectCompoundColumnsToBeUnique", {"column_list": keys},
                        kind="structural", column=keys[0], fixable=False,
                        message="Clé primaire en double."))
    if staged:
        out.append(Rule("value_types", "ExpectTableColumnsToHaveLogicalTypes",
                        {"types": {c: FIELDS[c].type for c in cols}}, kind="structural",
                        fixable=False, message="Valeurs d'un type inattendu."))
    return out


def core_suite(table: str) -> Suite:
    rules = tuple(_structural(table, staged=False) + ROW_RULES.get(table, []))
    parents = tuple(sorted({r.kwargs["reference"].table for r in rules
                            if isinstance(r.kwargs.get("reference"), Ref)} - {table}))
    keys = tuple(BY_NAME[table].key_columns)
    return Suite(f"core.{table}", table, keys, rules, parents)


def staged_suite(source: str, entity: str, table: str) -> Suite:
    rules = tuple(_structural(table, staged=True)
                  + [r for r in ROW_RULES.get(table, []) if r.batch])
    keys = tuple(BY_NAME[table].key_columns)
    return Suite(f"stg.{source}.{entity.lower()}", table, keys, rules)


def core_tables() -> list[str]:
    """Core tables in an order where parents come before the tables referring to them."""
    names = [t.name for t in BY_NAME.values() if t.layer == "core"]
    order: list[str] = []

    def visit(n: str, stack: tuple = ()) -> None:
        if n in order or n in stack:
            return
        for p in core_suite(n).parents:
            visit(p, (*stack, n))
        order.append(n)

    for n in names:
        visit(n)
    return order


def all_rule_ids() -> set[str]:
    out: set[str] = set()
    for t in core_tables():
        out |= core_suite(t).rule_ids()
    return out


def find_rule(rule_id: str) -> tuple[str, Rule] | None:
    parts = rule_id.split(".")
    if len(parts) != 3 or parts[0] != "gx":
        return None
    for r in ROW_RULES.get(parts[1], []):
        if r.name == parts[2]:
            return parts[1], r
    return None


def _register_value_checks() -> None:
    from quality.decisions import register_value_check

    def checker(rule: Rule):
        def check(value: str) -> str | None:
            return None if rule.value_check(value) else f"attendu : {rule.expected}."
        return check

    for table, rules in ROW_RULES.items():
        for r in rules:
            if r.value_check is not None:
                register_value_check(r.rule_id(table), checker(r))


def rule_title(table: str, rule: Rule) -> str:
    from quality.labels import table_fr

    return f"{table_fr(table)} — {rule.title or rule.name}"


def _register_titles() -> None:
    from quality.flags import register_rule_title

    for table, rules in ROW_RULES.items():
        for r in rules:
            register_rule_title(r.rule_id(table), rule_title(table, r))


_register_value_checks()
_register_titles()
