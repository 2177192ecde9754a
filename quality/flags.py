"""The steward queue: flags raised by rules, with a lifecycle that survives re-runs.

A **rule** (a Great Expectations expectation, or a reconciliation rule) looks at
the whole warehouse of a town and returns its **findings**: one row per problem,
naming the entities concerned. ``refresh_flags`` turns one rule's findings into
flags:

- a flag's key is the rule plus the entity ids (``rule|col=value|...``), so a
  re-run never duplicates it;
- a new finding opens a flag; a finding still there keeps it (its evidence,
  message and suggestion are refreshed);
- an open flag whose finding disappeared is resolved automatically;
- a resolved flag whose finding comes back is reopened, unless a steward's
  decision taken *after the run started* closed it (the run read its data before
  the decision: it cannot contradict it);
- a dismissed flag stays dismissed while its evidence is unchanged; different
  evidence reopens it.

Everything a rule needs is this module's ``refresh_flags``; decisions are in
``quality.decisions``. See docs/quality.md for the contract.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from typing import Self

import pandas as pd
import sqlalchemy as sa

from quality import store
from schemas.tables import table

SEVERITIES = ("info", "warning", "error")
STATUSES = ("open", "resolved", "dismissed")
DECISION_RESOLUTIONS = ("accept", "override", "fixed_at_source")
RESERVED_COLUMNS = ("severity", "message", "suggestion", "evidence", "fix", "service")

# French labels, shared by the CLI and the web page.
SEVERITY_FR = {"info": "information", "warning": "avertissement", "error": "erreur"}
STATUS_FR = {"open": "ouvert", "resolved": "résolu", "dismissed": "écarté"}
RESOLUTION_FR = {"auto": "disparu au dernier passage", "accept": "correction acceptée",
                 "override": "valeur corrigée", "fixed_at_source": "corrigé à la source",
                 "dismiss": "écarté"}


_RULE_TITLES: dict[str, str] = {}


def register_rule_title(rule: str, title: str) -> None:
    """A short French title for a rule, shown to stewards instead of its code."""
    _RULE_TITLES[rule] = title


def rule_title(rule: str) -> str:
    if not _RULE_TITLES:
        import quality.suites  # noqa: F401  (registers the GX rules' titles)
    return _RULE_TITLES.get(rule, rule)


class FlagError(ValueError):
    """A flag API misuse (bad findings frame, unknown flag): the message says what."""


@dataclass
class FlagCounts:
    """What one ``refresh_flags`` call did."""

    seen: int = 0
    opened: int = 0
    kept_open: int = 0
    reopened: int = 0
    auto_resolved: int = 0
    kept_closed: int = 0  # seen, but closed by a decision that this run cannot overturn

    def as_dict(self) -> dict:
        return asdict(self)

    def __iadd__(self, other: FlagCounts) -> Self:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)
        return self


# ---------------------------------------------------------------- keys
def plain(v):
    """A JSON-friendly Python value for an entity id."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return v


def flag_key(rule: str, entity_ids: dict) -> str:
    """``rule|col=value|...`` with the entity columns sorted: stable across runs."""
    if not rule or "|" in rule:
        raise FlagError(f"invalid rule name {rule!r} (non-empty, no '|')")
    parts = [rule] + [f"{k}={'' if plain(v) is None else plain(v)}"
                      for k, v in sorted(entity_ids.items())]
    return "|".join(parts)


def entity_columns_of(findings: pd.DataFrame) -> list[str]:
    return [c for c in findings.columns if c not in RESERVED_COLUMNS]


# ------------------------------------------------------------- refresh
def refresh_flags(conn: sa.Connection, town: str, run_id: str, rule: str,
                  findings: pd.DataFrame, *, entity_columns: list[str] | None = None,
                  observed_at: dt.datetime | None = None) -> FlagCounts:
    """Open, keep, auto-resolve and reopen the flags of one rule from its findings.

    ``findings``: one row per problem, with the entity id columns (every column
    not listed below, or ``entity_columns``) and
    ``severity`` (info, warning, error), ``message`` (French), and optionally
    ``suggestion`` (French), ``evidence`` (dict: see docs/quality.md), ``fix``
    (dict: ``table``, ``key``, ``column`` and the suggested ``value`` or None)
    and ``service``. The findings must be *complete* for the town: a flag of
    this rule whose key is absent is considered fixed.

    ``observed_at``: when the data the findings come from was read; by default
    the start of ``run_id`` (``load_run.started_at``), else now. A decision taken
    after that instant is never overturned by these findings.

    Runs in ``conn``'s transaction after taking the town's stewardship lock
    (``quality.store.lock_town``); the caller commits.
    """
    store.lock_town(conn, town)
    now = store.utcnow()
    if observed_at is None:
        observed_at = store.run_started_at(conn, town, run_id) or now
    incoming = _normalise(rule, findings, entity_columns)
    flags = table("flag")
    existing = {r.flag_key: r for r in conn.execute(
        sa.select(flags.c.flag_key, flags.c.status, flags.c.resolution, flags.c.evidence_hash,
                  flags.c.times_reopened).where(flags.c.town == town, flags.c.rule == rule))}
    last_decisions = _latest_decisions(conn, town, rule)
    counts = FlagCounts(seen=len(incoming))
    inserts, updates, audits = [], [], []
    for f in incoming:
        old = existing.get(f["flag_key"])
        seen = {"last_seen_run_id": run_id, "last_seen_at": now, "updated_at": now}
        content = {k: f[k] for k in ("severity", "service", "entity_ids", "evidence",
                                     "evidence_hash", "message", "suggestion", "fix")}
        if old is None:
            inserts.append({"town": town, "flag_key": f["flag_key"], "rule": rule,
                            **content, "status": "open", "resolution": None,
                            "first_seen_run_id": run_id, "first_seen_at": now,
                            "closed_at": None, "times_reopened": 0, **seen})
            counts.opened += 1
            continue
        if old.status == "open":
            updates.append({"k": f["flag_key"], **content, **seen})
            counts.kept_open += 1
            continue
        dec = last_decisions.get(f["flag_key"])
        if _decision_holds(old, dec, f, observed_at):
            updates.append({"k": f["flag_key"], **seen})
            counts.kept_closed += 1
            continue
        updates.append({"k": f["flag_key"], **content, **seen, "status": "open",
                        "resolution": None, "closed_at": None,
                        "times_reopened": (old.times_reopened or 0) + 1})
        counts.reopened += 1
        audits.append({"author": store.SYSTEM_AUTHOR, "action": "flag_reopened",
                       "flag_key": f["flag_key"], "run_id": run_id,
                       "message": _reopen_message(old, dec)})
    seen_keys = {f["flag_key"] for f in incoming}
    gone = [k for k, r in existing.items() if r.status == "open" and k not in seen_keys]
    for k in gone:
        updates.append({"k": k, "status": "resolved", "resolution": "auto", "closed_at": now,
                        "updated_at": now})
        audits.append({"author": store.SYSTEM_AUTHOR, "action": "flag_auto_resolved",
                       "flag_key": k, "run_id": run_id,
                       "message": "Résolu automatiquement : le problème n'est plus constaté."})
    counts.auto_resolved = len(gone)
    if inserts:
        conn.execute(sa.insert(flags), inserts)
    _bulk_update(conn, town, updates)
    store.audit_many(conn, town, audits)
    return counts


def _decision_holds(old, dec, finding: dict, observed_at: dt.datetime) -> bool:
    """Whether a closed flag stays closed although its rule still sees the problem."""
    if old.status == "resolved" and old.resolution in (None, "auto"):
        return False  # closed by a run, not by a steward: the problem came back
    if dec is None:
        return False
    if dec.decided_at is not None and observed_at <= dec.decided_at:
        return True  # the run read its data before the decision: it cannot overturn it
    if old.status == "dismissed":
        return dec.evidence_hash == finding["evidence_hash"]
    return False  # resolved by a decision, yet still seen by a later run: it came back


def _reopen_message(old, dec) -> str:
    if old.status == "dismissed":
        return "Rouvert : le problème écarté est de nouveau constaté avec d'autres éléments."
    if old.resolution in (None, "auto"):
        return "Rouvert : le problème est de nouveau constaté."
    return ("Rouvert : le problème est toujours constaté après la décision « "
            f"{RESOLUTION_FR.get(old.resolution, old.resolution)} ».")


def _bulk_update(conn: sa.Connection, town: str, updates: list[dict]) -> None:
    """One executemany per distinct set of columns."""
    flags = table("flag")
    groups: dict[tuple, list[dict]] = {}
    for u in updates:
        groups.setdefault(tuple(sorted(u)), []).append(u)
    for cols, rows in groups.items():
        stmt = (sa.update(flags)
                .where(flags.c.town == town, flags.c.flag_key == sa.bindparam("k"))
                .values({c: sa.bindparam(c) for c in cols if c != "k"}))
        conn.execute(stmt, rows)


def _latest_decisions(conn: sa.Connection, town: str, rule: str | None = None,
                      keys: list[str] | None = None) -> dict:
    d = table("steward_decision")
    latest = (sa.select(d.c.flag_key, sa.func.max(d.c.decision_id).label("m"))
              .where(d.c.town == town).group_by(d.c.flag_key))
    if rule is not None:
        latest = latest.where(d.c.rule == rule)
    if keys is not None:
        latest = latest.where(d.c.flag_key.in_(keys))
    latest = latest.subquery()
    rows = conn.execute(sa.select(d).join(latest, sa.and_(
        d.c.flag_key == latest.c.flag_key, d.c.decision_id == latest.c.m)).where(
        d.c.town == town)).all()
    return {r.flag_key: r for r in rows}


def _normalise(rule: str, findings: pd.DataFrame, entity_columns) -> list[dict]:
    if findings is None or len(findings) == 0:
        return []
    if "message" not in findings.columns:
        raise FlagError(f"rule {rule}: findings need a 'message' column")
    ents = list(entity_columns) if entity_columns else entity_columns_of(findings)
    if not ents:
        raise FlagError(f"rule {rule}: findings name no entity id column")
    out: dict[str, dict] = {}
    has = set(findings.columns)
    for rec in findings.to_dict("records"):
        ids = {c: plain(rec[c]) for c in ents}
        severity = rec.get("severity") if "severity" in has else "warning"
        if severity not in SEVERITIES:
            raise FlagError(f"rule {rule}: severity {severity!r} is not one of {SEVERITIES}")
        evidence = rec.get("evidence") if "evidence" in has else None
        evidence_text = store.dumps(evidence if _present(evidence) else {})
        fix = rec.get("fix") if "fix" in has else None
        key = flag_key(rule, ids)
        out[key] = {  # a key found twice: the last finding wins
            "flag_key": key, "severity": severity,
            "service": _text(rec.get("service")) if "service" in has else None,
            "entity_ids": store.dumps(ids), "evidence": evidence_text,
            "evidence_hash": store.digest(evidence_text)[:16],
            "message": str(rec["message"]),
            "suggestion": _text(rec.get("suggestion")) if "suggestion" in has else None,
            "fix": store.dumps(fix) if _present(fix) else None,
        }
    return list(out.values())


def _present(v) -> bool:
    if v is None or v is pd.NA:
        return False
    return not (isinstance(v, float) and math.isnan(v))


def _text(v) -> str | None:
    return str(v) if _present(v) and str(v) != "" else None


# ----------------------------------------------------------- retiring
def retire_rules(conn: sa.Connection, town: str, run_id: str, active_rules: set[str],
                 prefix: str) -> int:
    """Resolve the open flags of rules under ``prefix`` that no longer exist (a rule
    removed from a suite must not leave its flags open for ever)."""
    store.lock_town(conn, town)
    flags = table("flag")
    rules = {r for (r,) in conn.execute(
        sa.select(flags.c.rule).distinct().where(
            flags.c.town == town, flags.c.status == "open", flags.c.rule.startswith(prefix)))}
    n = 0
    for rule in sorted(rules - set(active_rules)):
        n += refresh_flags(conn, town, run_id, rule, pd.DataFrame()).auto_resolved
    return n


# ------------------------------------------------------------- reading
@dataclass
class Filters:
    """Queue filters, shared by the CLI and the web page."""

    status: str | None = "open"  # None = every status
    rule: str | None = None  # exact rule, or a prefix ending with '*'
    severity: str | None = None
    service: str | None = None
    older_than_days: int | None = None  # first seen at least N days ago
    newer_than_days: int | None = None  # first seen at most N days ago
    search: str | None = None  # in the key or the message

    def where(self, town: str, now: dt.datetime | None = None) -> list:
        f = table("flag")
        now = now or store.utcnow()
        cond = [f.c.town == town]
        if self.status:
            cond.append(f.c.status == self.status)
        if self.rule:
            if self.rule.endswith("*"):
                cond.append(f.c.rule.startswith(self.rule[:-1], autoescape=True))
            else:
                cond.append(f.c.rule == self.rule)
        if self.severity:
            cond.append(f.c.severity == self.severity)
        if self.service:
            cond.append(f.c.service == self.service)
        if self.older_than_days is not None:
            cond.append(f.c.first_seen_at <= now - dt.timedelta(days=self.older_than_days))
        if self.newer_than_days is not None:
            cond.append(f.c.first_seen_at >= now - dt.timedelta(days=self.newer_than_days))
        if self.search:
            like = f"%{self.search.lower()}%"
            cond.append(sa.or_(sa.func.lower(f.c.flag_key).like(like),
                               sa.func.lower(f.c.message).like(like)))
        return cond


SEVERITY_ORDER = sa.case({"error": 0, "warning": 1, "info": 2}, value=table("flag").c.severity,
                         else_=3)


def list_flags(conn: sa.Connection, town: str, filters: Filters | None = None, *,
               limit: int = 100, offset: int = 0) -> list[dict]:
    """Flags matching the filters, most severe and oldest first."""
    f = table("flag")
    filters = filters or Filters()
    rows = conn.execute(sa.select(f).where(*filters.where(town))
                        .order_by(SEVERITY_ORDER, f.c.first_seen_at, f.c.flag_key)
                        .limit(limit).offset(offset)).mappings().all()
    return [_decode(r) for r in rows]


def count_flags(conn: sa.Connection, town: str, filters: Filters | None = None) -> int:
    f = table("flag")
    filters = filters or Filters()
    return conn.execute(sa.select(sa.func.count()).select_from(f)
                        .where(*filters.where(town))).scalar()


def counts_by(conn: sa.Connection, town: str, column: str,
              filters: Filters | None = None) -> list[tuple[str, int]]:
    """(value, count) of the matching flags grouped by ``rule``, ``severity``,
    ``service`` or ``status``, largest first."""
    if column not in ("rule", "severity", "service", "status"):
        raise FlagError(f"cannot count flags by {column!r}")
    f = table("flag")
    filters = filters or Filters()
    col = f.c[column]
    rows = conn.execute(sa.select(col, sa.func.count()).where(*filters.where(town))
                        .group_by(col).order_by(sa.func.count().desc(), col)).all()
    return [(r[0], r[1]) for r in rows]


def get_flag(conn: sa.Connection, town: str, key: str) -> dict | None:
    """One flag with its decisions and its audit history (oldest first)."""
    f = table("flag")
    row = conn.execute(sa.select(f).where(f.c.town == town, f.c.flag_key == key)
                       ).mappings().first()
    if row is None:
        return None
    out = _decode(row)
    d = table("steward_decision")
    out["decisions"] = [dict(r) for r in conn.execute(
        sa.select(d).where(d.c.town == town, d.c.flag_key == key)
        .order_by(d.c.decision_id)).mappings()]
    a = table("audit_log")
    out["history"] = [dict(r) for r in conn.execute(
        sa.select(a).where(a.c.town == town, a.c.flag_key == key)
        .order_by(a.c.audit_id)).mappings()]
    return out


def _decode(row) -> dict:
    out = dict(row)
    for c in ("entity_ids", "evidence", "fix"):
        out[c] = store.loads(out.get(c))
    return out


def age_days(flag: dict, now: dt.datetime | None = None) -> int:
    first = flag.get("first_seen_at")
    if first is None:
        return 0
    return max(0, ((now or store.utcnow()) - first).days)
