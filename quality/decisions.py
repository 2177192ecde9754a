"""Steward decisions on flags: taken once, stored, audited, re-applied on every run.

Four decisions (the latest one of a flag is the one in force):

- ``accept``: take the suggested fix. When the flag's ``fix`` carries a value,
  that value is written to the target column now and again after every load;
  otherwise the rule that raised the flag reads its accepted decisions
  (``decisions_in_force``) and applies them itself.
- ``override``: write a value the steward typed to the flag's target column
  (now and after every load). Requires a ``fix`` target and a reason.
- ``dismiss``: not a problem (a reason is required). The flag stays dismissed
  while its evidence is unchanged.
- ``fixed_at_source``: the steward corrected the source system; the next run
  confirms it (the flag stays resolved) or reopens the flag.

A decision is one transaction holding the town's stewardship lock: the decision
row, the flag's new status, the value written to the warehouse and the audit
entry are committed together or not at all, and never interleave with a run's
flag refresh. A value superseded by a later decision without one (an override
then dismissed) is given back to the source: the row is marked so that the next
load rewrites it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import sqlalchemy as sa

from quality import store
from quality.flags import FlagError, _latest_decisions
from quality.labels import column_fr
from schemas.fields import FIELDS
from schemas.tables import BY_NAME, LINEAGE, table

DECISIONS = ("accept", "override", "dismiss", "fixed_at_source")
DECISION_FR = {"accept": "accepter la correction proposée", "override": "corriger la valeur",
               "dismiss": "écarter", "fixed_at_source": "corrigé à la source"}
NEEDS_REASON = ("override", "dismiss")
VALUE_DECISIONS = ("accept", "override")
MAX_REASON = 2000

# rule (or rule prefix ending with '*') -> function(value text) -> French problem or None
_VALUE_CHECKS: dict[str, Callable[[str], str | None]] = {}


class DecisionError(ValueError):
    """A decision that cannot be taken; the message is French, for the steward."""


def register_value_check(rule: str, check: Callable[[str], str | None]) -> None:
    """Let a rule refuse an override value that would still break it."""
    _VALUE_CHECKS[rule] = check


def _value_problem(rule: str, value: str) -> str | None:
    import quality.suites  # noqa: F401  (registers the GX rules' checks)

    check = _VALUE_CHECKS.get(rule)
    if check is None:
        for k, fn in _VALUE_CHECKS.items():
            if k.endswith("*") and rule.startswith(k[:-1]):
                check = fn
                break
    return check(value) if check else None


# ------------------------------------------------------------ deciding
def decide(engine: sa.Engine, town: str, flag_key: str, decision: str, *, author: str,
           reason: str | None = None, value: str | None = None,
           now: dt.datetime | None = None, _before_commit: Callable | None = None) -> int:
    """Record a steward's decision on a flag and apply it; the new decision id.

    Raises ``DecisionError`` (French message) when the decision cannot be taken.
    """
    if decision not in DECISIONS:
        raise DecisionError(f"Décision inconnue : {decision!r}.")
    if not author or not author.strip():
        raise DecisionError("L'auteur de la décision est obligatoire.")
    reason = (reason or "").strip() or None
    if decision in NEEDS_REASON and not reason:
        raise DecisionError("Un motif est obligatoire pour cette décision.")
    if reason and len(reason) > MAX_REASON:
        raise DecisionError(f"Le motif est trop long (plus de {MAX_REASON} caractères).")
    with store.town_transaction(engine, town) as conn:
        now = now or store.utcnow()
        f = table("flag")
        flag = conn.execute(sa.select(f).where(f.c.town == town, f.c.flag_key == flag_key)
                            ).mappings().first()
        if flag is None:
            raise DecisionError(f"Signalement introuvable : {flag_key}.")
        fix = store.loads(flag["fix"])
        applied_value = None
        target = None
        if decision == "override":
            if not fix:
                raise DecisionError("Ce signalement ne désigne pas de valeur à corriger : "
                                    "corrigez à la source ou écartez-le.")
            if value is None or str(value).strip() == "":
                raise DecisionError("Saisissez la nouvelle valeur.")
            applied_value = str(value).strip()
            problem = _value_problem(flag["rule"], applied_value)
            if problem:
                raise DecisionError(f"La valeur « {applied_value} » ne convient pas : {problem}")
            target = fix
        elif decision == "accept" and fix and fix.get("value") not in (None, ""):
            applied_value = str(fix["value"])
            target = fix
        previous = _latest_decisions(conn, town, keys=[flag_key]).get(flag_key)
        if target is not None:
            n = _write_value(conn, town, target, applied_value)
            if n == 0:
                raise DecisionError("L'enregistrement à corriger n'existe plus dans l'entrepôt.")
        elif previous is not None and previous.value is not None and previous.fix:
            _give_back_to_source(conn, town, store.loads(previous.fix))
        d = table("steward_decision")
        decision_id = store.next_id(conn, "steward_decision", "decision_id", town)
        conn.execute(sa.insert(d).values(
            town=town, decision_id=decision_id, flag_key=flag_key, rule=flag["rule"],
            decision=decision, value=applied_value, reason=reason, author=author,
            decided_at=now, evidence_hash=flag["evidence_hash"],
            fix=store.dumps({**target, "value": applied_value}) if target else None))
        status = "dismissed" if decision == "dismiss" else "resolved"
        conn.execute(sa.update(f).where(f.c.town == town, f.c.flag_key == flag_key).values(
            status=status, resolution=decision, closed_at=now, updated_at=now))
        msg = f"Décision : {DECISION_FR[decision]}"
        if applied_value is not None:
            msg += f" — {column_fr(target['column'])} = « {applied_value} »"
        if reason:
            msg += f" — motif : {reason}"
        store.audit(conn, town, author, decision, msg, flag_key=flag_key,
                    decision_id=decision_id)
        if _before_commit is not None:  # tests: fail or pause inside the transaction
            _before_commit(conn)
    return decision_id


# ------------------------------------------------------------ applying
def decisions_in_force(conn: sa.Connection, town: str, rule: str | None = None) -> pd.DataFrame:
    """The latest decision of every decided flag (of one rule), as a DataFrame with
    ``flag_key, rule, decision, value, reason, author, decided_at, fix`` (fix parsed)."""
    rows = [{**r._mapping, "fix": store.loads(r.fix)}
            for r in _latest_decisions(conn, town, rule).values()]
    df = pd.DataFrame(rows, columns=["flag_key", "rule", "decision", "value", "reason", "author",
                                     "decided_at", "fix", "decision_id", "evidence_hash",
                                     "town"], dtype=object)
    return df.drop(columns=["town"]).sort_values("decision_id").reset_index(drop=True)


def apply_decisions(conn: sa.Connection, town: str, tables: list[str] | None = None) -> int:
    """Write again every value decision in force (on ``tables`` only, when given).

    Called after each load, before the checks: a value a steward set survives a
    sync that brought the source's value back. Idempotent; returns the number of
    rows whose value had to be written again.
    """
    store.lock_town(conn, town)
    df = decisions_in_force(conn, town)
    n = 0
    for rec in df.to_dict("records"):
        target = rec["fix"]
        if rec["decision"] not in VALUE_DECISIONS or rec["value"] is None or not target:
            continue
        if tables is not None and target.get("table") not in tables:
            continue
        try:
            n += _write_value(conn, town, target, rec["value"], only_if_different=True)
        except DecisionError:
            continue  # a target that no longer fits the schema: nothing to re-apply
    return n


# ------------------------------------------------------------- helpers
def check_target(target: dict) -> tuple[sa.Table, dict, str]:
    """Validate a fix target against the schema (identifiers are never taken from
    user input unchecked): the table, its typed key and the column."""
    name = target.get("table") if isinstance(target, dict) else None
    spec = BY_NAME.get(name or "")
    if spec is None or spec.layer != "core":
        raise DecisionError(f"Table à corriger inconnue : {name!r}.")
    column = target.get("column")
    pk = spec.key_columns
    if column not in spec.column_names or column in spec.primary_key or column in LINEAGE:
        raise DecisionError(f"Colonne non modifiable : {name}.{column}.")
    key = target.get("key") or {}
    if sorted(key) != sorted(pk):
        raise DecisionError(f"Clé incomplète pour {name} : {key}.")
    return table(name), {c: coerce(c, key[c]) for c in pk}, column


def coerce(column: str, value):
    """A text value as the Python value of the column's logical type."""
    if value is None:
        return None
    kind = FIELDS[column].type
    text = str(value).strip()
    try:
        if kind == "integer":
            return int(text)
        if kind == "boolean":
            low = text.lower()
            if low in ("1", "true", "oui", "vrai", "o", "yes"):
                return True
            if low in ("0", "false", "non", "faux", "n", "no"):
                return False
            raise ValueError(text)
        if kind == "date":
            return dt.date.fromisoformat(text)
        if kind == "datetime":
            return dt.datetime.fromisoformat(text)
    except ValueError as exc:
        expected = {"integer": "un nombre entier", "boolean": "oui ou non",
                    "date": "une date AAAA-MM-JJ", "datetime": "une date et heure"}[kind]
        raise DecisionError(f"« {text} » n'est pas {expected}.") from exc
    return text


def _write_value(conn, town, target, value, *, only_if_different: bool = False) -> int:
    t, key, column = check_target(target)
    v = coerce(column, value)
    cond = [t.c.town == town, *[t.c[c] == kv for c, kv in key.items()]]
    if only_if_different:
        cond.append(t.c[column].is_distinct_from(v))
        return conn.execute(sa.update(t).where(*cond).values({column: v})).rowcount
    exists = conn.execute(sa.select(sa.func.count()).select_from(t).where(*cond)).scalar()
    if exists:
        conn.execute(sa.update(t).where(*cond).values({column: v}))
    return exists


def _give_back_to_source(conn, town, target) -> None:
    """Forget the row's content hash so that the next load rewrites it from the source."""
    try:
        t, key, _column = check_target(target)
    except DecisionError:
        return
    conn.execute(sa.update(t).where(t.c.town == town, *[t.c[c] == v for c, v in key.items()])
                 .values(row_hash=None))


def flag_exists(conn: sa.Connection, town: str, key: str) -> bool:
    f = table("flag")
    return conn.execute(sa.select(sa.func.count()).select_from(f)
                        .where(f.c.town == town, f.c.flag_key == key)).scalar() > 0


__all__ = ["DECISIONS", "DecisionError", "FlagError", "apply_decisions", "decide",
           "decisions_in_force", "register_value_check"]
