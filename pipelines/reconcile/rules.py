"""The registry of reconciliation rules and the shape of their findings.

A rule is a plain function ``TownData -> findings`` (a DataFrame with the entity id
columns, ``message`` and optionally ``severity``, ``suggestion``, ``evidence``, ``fix``,
``service``: the contract of ``quality.flags.refresh_flags``). Its id is
``rec.<family>.<name>``; ``name`` is the defect class of the simulated town it finds,
so ``guichet evaluate`` can score it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from quality.flags import plain, register_rule_title

PREFIX = "rec."


@dataclass(frozen=True)
class Rule:
    family: str
    name: str
    title: str  # French, for the steward queue
    entity_columns: tuple[str, ...]
    func: Callable
    #: truth defect record -> the entity ids the rule's flag carries, in the order of
    #: entity_columns (as plain str/int values); None when the rule has no truth class
    truth_key: Callable | None = None

    @property
    def id(self) -> str:
        return f"{PREFIX}{self.family}.{self.name}"


RULES: dict[str, Rule] = {}


def rule(family: str, name: str, title: str, entity_columns: tuple[str, ...],
         truth_key: Callable | None = None):
    """Register a rule function under ``rec.<family>.<name>``."""
    def wrap(func: Callable) -> Callable:
        r = Rule(family, name, title, tuple(entity_columns), func, truth_key)
        RULES[r.id] = r
        register_rule_title(r.id, title)
        return func
    return wrap


def all_rules() -> dict[str, Rule]:
    """Every rule, once every family module is imported."""
    from pipelines.reconcile import billing, bookings, documents, identity, payments, procedures  # noqa: F401  (they register their rules)

    return RULES


def findings(df: pd.DataFrame, entity_columns: list[str] | tuple[str, ...], *,
             message, severity: str = "warning", suggestion=None, evidence=None,
             service=None, fix=None) -> pd.DataFrame:
    """Build a findings frame from ``df``: every keyword is a constant, a Series aligned
    with ``df``, or a function of one row (a dict) returning the value."""
    out = df[list(entity_columns)].copy() if len(df) else pd.DataFrame(
        columns=list(entity_columns))
    rows = df.to_dict("records") if len(df) else []
    for col, v in (("message", message), ("severity", severity), ("suggestion", suggestion),
                   ("evidence", evidence), ("service", service), ("fix", fix)):
        if v is None:
            continue
        if callable(v):
            out[col] = [v(r) for r in rows]
        elif isinstance(v, pd.Series):
            out[col] = v.values
        else:
            out[col] = [v] * len(out)
    return out.reset_index(drop=True)


def record(label: str, values: dict) -> dict:
    """One record of a flag's evidence (shown side by side with the others)."""
    return {"label": label, "values": {k: _show(v) for k, v in values.items()}}


def evidence(*records: dict, expected: str | None = None) -> dict:
    cols: list[str] = []
    for r in records:
        cols += [c for c in r["values"] if c not in cols]
    out = {"records": list(records), "columns": cols}
    if expected:
        out["expected"] = expected
    return out


def _show(v):
    """A JSON-friendly value; a day (a midnight timestamp) as YYYY-MM-DD."""
    if isinstance(v, pd.Timestamp) and v == v.normalize():
        return v.date().isoformat()
    v = plain(v)
    return None if isinstance(v, float) and math.isnan(v) else v


def day_fr(d) -> str:
    """A day as the town writes it: 03/07/2026."""
    return pd.Timestamp(d).strftime("%d/%m/%Y") if d is not None and not pd.isna(d) else "?"


def euros(cents) -> str:
    """Cents as the town writes an amount: 1 234,50 €."""
    if cents is None or pd.isna(cents):
        return "?"
    c = int(cents)
    sign = "-" if c < 0 else ""
    e, r = divmod(abs(c), 100)
    return f"{sign}{e:,}".replace(",", "\u202f") + f",{r:02d} €"
