"""The quality steps of a run, as plain functions (Dagster's checks only call these).

- ``check_staged``: a staging step's batch against its ``stg.*`` suite.
- ``check_core``: re-apply the stewards' decisions on a core table, validate the
  town's whole table against its ``core.*`` suite, and refresh the flags of its
  row rules (one ``refresh_flags`` per rule).
- ``run_quality``: every core table in dependency order, then retire the flags of
  rules that no longer exist and write the run's HTML validation summary.

Every expectation's outcome is stored in ``validation_result`` (the summary is
rendered from there).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from pipelines.spool import SOURCE_KEY
from quality import decisions, frames, gx, store, suites
from quality.flags import FlagCounts, refresh_flags, retire_rules
from quality.labels import column_fr, table_fr, value_fr
from schemas.tables import BY_NAME, table

GX_PREFIX = "gx."


@dataclass
class SuiteResult:
    suite: str
    table: str
    rows: int
    outcomes: list[gx.Outcome]
    seconds: float
    flags: FlagCounts = field(default_factory=FlagCounts)
    decisions_reapplied: int = 0

    @property
    def structural_failures(self) -> list[gx.Outcome]:
        return [o for o in self.outcomes if o.kind == "structural" and not o.success]

    @property
    def row_failures(self) -> list[gx.Outcome]:
        return [o for o in self.outcomes if o.kind == "row" and not o.success]

    @property
    def errors(self) -> list[gx.Outcome]:
        return [o for o in self.outcomes if o.error]

    @property
    def passed(self) -> bool:
        return not self.structural_failures and not self.row_failures

    def metadata(self) -> dict:
        """Plain values for Dagster's check metadata."""
        md = {"suite": self.suite, "rows": self.rows,
              "expectations": len(self.outcomes),
              "failed_structural": len(self.structural_failures),
              "failed_row": len(self.row_failures),
              "seconds": round(self.seconds, 3)}
        for o in self.structural_failures + self.row_failures:
            md[o.rule_id] = f"{o.unexpected_count} / {o.element_count}" + (
                f" (error: {o.error})" if o.error else "")
        if self.flags.seen or self.flags.auto_resolved:
            md.update({f"flags_{k}": v for k, v in self.flags.as_dict().items()})
        if self.decisions_reapplied:
            md["decisions_reapplied"] = self.decisions_reapplied
        return md

    def description(self) -> str | None:
        if self.structural_failures:
            return "structure: " + "; ".join(
                f"{o.rule_id} ({o.error or str(o.unexpected_count) + ' rows'})"
                for o in self.structural_failures)
        if self.row_failures:
            return "rows: " + "; ".join(f"{o.rule_id} ({o.unexpected_count})"
                                        for o in self.row_failures)
        return None


# ------------------------------------------------------------ staged
def check_staged(engine: sa.Engine | None, town: str, run_id: str, source: str, entity: str,
                 batch) -> SuiteResult:
    """Validate the main table of a staged batch (``pipelines.steps.StagedBatch``), one
    spooled chunk at a time (memory stays flat). A key repeated in two chunks is not a
    failure: the later row replaces the earlier one in core, as within a chunk the
    later version supersedes the earlier (docs/sync.md)."""
    name = next(iter(batch.staged))
    suite = suites.staged_suite(source, entity, name)
    return check_frame(engine, town, run_id, suite,
                       (c.drop(columns=[SOURCE_KEY], errors="ignore")
                        for c in batch.staged[name].chunks()))


def check_frame(engine: sa.Engine | None, town: str, run_id: str, suite: suites.Suite,
                frames: pd.DataFrame | Iterable[pd.DataFrame]) -> SuiteResult:
    """Validate a frame, or consecutive chunks of one, against ``suite``; store the
    outcomes when ``engine`` is given."""
    t0 = time.perf_counter()
    parts, rows = [], 0
    for frame in [frames] if isinstance(frames, pd.DataFrame) else frames:
        parts.append((rows, gx.validate(frame, suite)))
        rows += len(frame)
    outcomes = gx.merge(parts)
    res = SuiteResult(suite.name, suite.table, rows, outcomes, time.perf_counter() - t0)
    if engine is not None:
        store.ensure_schema(engine)
        with engine.begin() as conn:
            store_outcomes(conn, town, run_id, suite.name, outcomes, res.seconds)
    return res


# -------------------------------------------------------------- core
def check_core(engine: sa.Engine, town: str, run_id: str, name: str, *,
               observed_at: dt.datetime | None = None) -> SuiteResult:
    """Decisions re-applied, then the whole table validated, then its flags refreshed."""
    t0 = time.perf_counter()
    suite = suites.core_suite(name)
    store.ensure_schema(engine)
    with store.town_transaction(engine, town) as conn:
        reapplied = decisions.apply_decisions(conn, town, [name])
    with engine.connect() as conn:
        frame = frames.core_frame(conn, town, name)
        refs: dict = {}

        def resolver(ref: suites.Ref) -> list:
            if ref not in refs:
                refs[ref] = frames.parent_values(conn, town, ref.table, ref.column)
            return refs[ref]

        outcomes = gx.validate(frame, suite, resolver)
    seconds = time.perf_counter() - t0
    res = SuiteResult(suite.name, name, len(frame), outcomes, seconds,
                      decisions_reapplied=reapplied)
    with store.town_transaction(engine, town) as conn:
        f = table("flag")
        with_open = {r for (r,) in conn.execute(
            sa.select(f.c.rule).distinct().where(f.c.town == town, f.c.status == "open",
                                                 f.c.rule.startswith(f"gx.{name}.")))}
        for o in outcomes:
            if o.kind != "row" or o.error:
                continue  # an expectation that could not run leaves its flags as they are
            if o.success and o.rule_id not in with_open:
                continue  # nothing seen, nothing open: nothing to refresh
            found = findings(name, o, frame)
            res.flags += refresh_flags(conn, town, run_id, o.rule_id, found,
                                       entity_columns=list(suite.keys),
                                       observed_at=observed_at)
        store_outcomes(conn, town, run_id, suite.name, outcomes, seconds)
    return res


def findings(name: str, outcome: gx.Outcome, frame: pd.DataFrame) -> pd.DataFrame:
    """One finding per failing row: the row's key, French message, evidence, fix."""
    rule = outcome.rule
    keys = BY_NAME[name].key_columns
    if not outcome.rows:
        return pd.DataFrame(columns=keys)
    rows = frame.reset_index(drop=True).iloc[sorted(set(outcome.rows))]
    context = frames.CONTEXT.get(name, ())
    shown = [c for c in dict.fromkeys([*keys, rule.column, *rule.evidence, *context])
             if c and c in rows.columns]
    out = []
    for rec in rows.to_dict("records"):
        rec = {k: gx._plain(v) for k, v in rec.items()}
        value = rec.get(rule.column) if rule.column else None
        suggested = _suggested(rule, value, rec)
        fmt = _FormatDict({**{k: value_fr(v) for k, v in rec.items()}, "value": value_fr(value)})
        message = rule.message.format_map(fmt)
        label = f"{table_fr(name)} " + (str(rec[keys[0]]) if len(keys) == 1 else ", ".join(
            f"{column_fr(k)} {rec[k]}" for k in keys))
        evidence = {
            "records": [{"label": f"{label} (entrepôt)",
                         "values": {c: rec.get(c) for c in shown}}],
            "columns": shown,
            "expected": rule.expected, "expectation": outcome.expectation,
            "column": rule.column, "table": name,
        }
        fix = None
        if rule.fixable and rule.column:
            fix_table = rule.fix_table or name
            fix_keys = rule.fix_key or tuple(keys)
            if all(rec.get(k) is not None for k in fix_keys):
                fix = {"table": fix_table, "key": {k: rec[k] for k in fix_keys},
                       "column": rule.column, "value": suggested}
        suggestion = (f"Remplacer « {value_fr(value)} » par « {value_fr(suggested)} »."
                      if suggested is not None else rule.suggestion)
        out.append({**{k: rec[k] for k in keys}, "severity": rule.severity,
                    "service": rec.get("service"), "message": message,
                    "suggestion": suggestion, "evidence": evidence, "fix": fix})
    return pd.DataFrame(out)


def _suggested(rule: suites.Rule, value, rec: dict):
    if isinstance(rule.suggest, str):
        v = rec.get(rule.suggest)
        return None if v is None else str(v)
    if callable(rule.suggest) and value is not None:
        return rule.suggest(value)
    return None


class _FormatDict(dict):
    def __missing__(self, key):
        return "?"


# ------------------------------------------------------------ storage
def store_outcomes(conn: sa.Connection, town: str, run_id: str, suite: str,
                   outcomes: list[gx.Outcome], seconds: float) -> None:
    v = table("validation_result")
    conn.execute(sa.delete(v).where(v.c.town == town, v.c.run_id == run_id, v.c.suite == suite))
    now = store.utcnow()
    per = int(seconds * 1000 / max(1, len(outcomes)))
    rows = [{"town": town, "run_id": run_id, "suite": suite, "rule": o.rule_id,
             "expectation": o.expectation, "column_name": o.rule.column,
             "check_kind": o.kind, "success": o.success, "element_count": o.element_count,
             "unexpected_count": o.unexpected_count,
             "unexpected_sample": store.dumps({"values": o.sample, "error": o.error})
             if (o.sample or o.error) else None,
             "validated_at": now, "duration_ms": per} for o in outcomes]
    if rows:
        conn.execute(sa.insert(v), rows)


# -------------------------------------------------------------- a run
def run_quality(engine: sa.Engine, town: str, run_id: str, *,
                report_dir: Path | None = None, tables: list[str] | None = None,
                progress=None) -> dict:
    """Every core suite of a town (parents first), retired rules, the HTML summary."""
    from quality.report import write_run_report

    t0 = time.perf_counter()
    results = []
    names = [t for t in suites.core_tables() if tables is None or t in tables]
    for i, name in enumerate(names):
        if progress:
            progress(f"quality.{name}", i, len(names))
        results.append(check_core(engine, town, run_id, name))
    retired = 0
    if tables is None:
        with store.town_transaction(engine, town) as conn:
            retired = retire_rules(conn, town, run_id, suites.all_rule_ids(), GX_PREFIX)
    total = FlagCounts()
    for r in results:
        total += r.flags
    report = write_run_report(engine, town, run_id, report_dir) if report_dir else None
    return {"results": results, "flags": total.as_dict(), "retired": retired,
            "structural_failures": sum(len(r.structural_failures) for r in results),
            "report": report, "seconds": time.perf_counter() - t0,
            "gx_import_seconds": gx.import_seconds()}


def report_dir_for(landing_dir: Path) -> Path:
    """Where validation summaries go: ``reports/`` beside the landing area."""
    return Path(landing_dir).resolve().parent / "reports"
