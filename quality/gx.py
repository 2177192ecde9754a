"""Running a suite with Great Expectations 1.x, imported lazily, one context reused.

``import great_expectations`` costs seconds (scipy, altair...): it happens the
first time ``validate`` is called in a process, never when the Dagster code
location or the CLI loads. The ephemeral context, its pandas data source and
its whole-dataframe batch definition are created once and reused by every
validation (tqdm bars off, nothing written to disk).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pandas as pd

from quality.suites import TODAY, Equals, Ref, Rule, Suite

ROW = "_row"  # position of each row, the key GX reports failing rows by
SAMPLE = 5

_lock = threading.Lock()
_state: dict = {}


@dataclass
class Outcome:
    """One expectation's result on one frame."""

    rule: Rule
    rule_id: str
    expectation: str
    success: bool
    element_count: int
    unexpected_count: int
    rows: list[int] = field(default_factory=list)  # positions of the failing rows
    sample: list = field(default_factory=list)  # a few failing values
    error: str | None = None  # the expectation itself failed to run

    @property
    def kind(self) -> str:
        return self.rule.kind


def context():
    """The process's Great Expectations context and batch definition (created once)."""
    with _lock:
        if "batch" not in _state:
            t0 = time.perf_counter()
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
            import great_expectations as gx
            import great_expectations.expectations as gxe
            from great_expectations.data_context.types.base import (
                ProgressBarsConfig,
            )

            from quality import gx_custom

            ctx = gx.get_context(mode="ephemeral")
            ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
            asset = ctx.data_sources.add_pandas("guichet").add_dataframe_asset("frame")
            _state.update(gx=gx, gxe=gxe, custom=gx_custom, ctx=ctx,
                          batch=asset.add_batch_definition_whole_dataframe("whole"),
                          import_seconds=time.perf_counter() - t0)
        return _state


def import_seconds() -> float | None:
    """How long importing GX and creating the context took in this process."""
    return _state.get("import_seconds")


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/Paris")).date()


def _resolve(value, resolver: Callable[[Ref], list] | None, refs: dict | None = None):
    if isinstance(value, Equals):
        from great_expectations.expectations.row_conditions import Column

        return Column(value.column) == value.value
    if isinstance(value, str) and value == TODAY:
        return today()
    if isinstance(value, Ref):
        if resolver is None:
            raise ValueError(f"reference to {value.table}.{value.column} needs a resolver")
        name = f"{value.table}.{value.column}"
        if refs is not None and name not in refs:
            refs[name] = frozenset(resolver(value))
        return name
    return value


def _expectation(state, rule: Rule, rule_id: str, resolver, refs: dict):
    cls = getattr(state["gxe"], rule.expectation, None) or getattr(state["custom"],
                                                                   rule.expectation)
    kwargs = {k: _resolve(v, resolver, refs) for k, v in rule.kwargs.items()}
    return cls(**kwargs, meta={"rule": rule_id})


def validate(frame: pd.DataFrame, suite: Suite,
             resolver: Callable[[Ref], list] | None = None) -> list[Outcome]:
    """Validate ``frame`` against ``suite`` in one GX call; one Outcome per rule."""
    state = context()
    gx = state["gx"]
    df = frame.reset_index(drop=True).copy()
    df[ROW] = range(len(df))
    ids = {}
    expectations = []
    refs: dict[str, frozenset] = {}
    for r in suite.rules:
        rid = r.rule_id(suite.table)
        ids[rid] = r
        expectations.append(_expectation(state, r, rid, resolver, refs))
    gx_suite = gx.ExpectationSuite(name=suite.name, expectations=expectations)
    references = state["custom"].REFERENCES
    with _lock:  # one GX validation at a time per process
        references.clear()
        references.update(refs)
        try:
            batch = state["batch"].get_batch(batch_parameters={"dataframe": df})
            result = batch.validate(gx_suite, result_format={
                "result_format": "COMPLETE", "unexpected_index_column_names": [ROW]})
        finally:
            references.clear()
    out = []
    for res in result.results:
        rid = res.expectation_config.meta["rule"]
        rule = ids[rid]
        r = res.result or {}
        err = _error(res)
        rows = [int(u[ROW]) for u in (r.get("unexpected_index_list") or [])
                if isinstance(u, dict) and ROW in u]
        sample = [_plain(v) for v in (r.get("partial_unexpected_list") or [])[:SAMPLE]]
        if not sample and not res.success and r.get("observed_value") is not None:
            sample = [_plain(r.get("observed_value"))]
        out.append(Outcome(
            rule=rule, rule_id=rid, expectation=res.expectation_config.type,
            success=bool(res.success) and err is None,
            element_count=int(r.get("element_count") or len(df)),
            unexpected_count=int(r.get("unexpected_count") or (0 if res.success else
                                                                len(rows) or 1)),
            rows=rows, sample=sample, error=err))
    order = {r.rule_id(suite.table): i for i, r in enumerate(suite.rules)}
    return sorted(out, key=lambda o: order[o.rule_id])


def merge(parts: list[tuple[int, list[Outcome]]]) -> list[Outcome]:
    """One outcome per rule from the outcomes of consecutive chunks of one batch
    (``(offset of the chunk's first row, its outcomes)``): counts add up, failing row
    positions are shifted to the batch, the sample is the first failing values."""
    if len(parts) == 1 and parts[0][0] == 0:
        return parts[0][1]
    out = []
    for per_rule in zip(*(outcomes for _, outcomes in parts)):
        first = per_rule[0]
        out.append(Outcome(
            rule=first.rule, rule_id=first.rule_id, expectation=first.expectation,
            success=all(o.success for o in per_rule),
            element_count=sum(o.element_count for o in per_rule),
            unexpected_count=sum(o.unexpected_count for o in per_rule),
            rows=[offset + r for (offset, _), o in zip(parts, per_rule) for r in o.rows],
            sample=[v for o in per_rule for v in o.sample][:SAMPLE],
            error=next((o.error for o in per_rule if o.error), None)))
    return out


def _error(res) -> str | None:
    info = res.exception_info or {}
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for v in info.values():
        if isinstance(v, dict) and v.get("raised_exception"):
            return str(v.get("exception_message"))
    return None


def _plain(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if hasattr(v, "item"):
        try:
            return v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v if isinstance(v, (int, float, str, bool)) else str(v)
