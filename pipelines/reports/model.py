"""The shape of a report, independent of how it is rendered (Excel, HTML).

A ``Report`` has sheets (one table each) and charts drawn from those tables. Every column
says its French header, its kind (so each renderer formats it the town's way: euros,
dates as 03/07/2026, percentages) and its definition (the workbook's sheet of
definitions, the HTML's glossary). Amounts are integer cents in the frames; renderers
show euros.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

#: column kinds a renderer knows how to format
KINDS = ("text", "int", "cents", "pct", "date", "month", "week", "hours", "days")


@dataclass(frozen=True)
class Column:
    name: str  # column of the frame
    header: str  # French header
    kind: str  # one of KINDS
    definition: str  # French: what the figure is, how it is computed

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name}: unknown kind {self.kind}")


@dataclass
class Sheet:
    name: str  # French, ≤ 31 characters (Excel's limit)
    title: str  # French, a sentence
    columns: list[Column]
    frame: pd.DataFrame  # holds at least the columns' names
    note: str | None = None  # French: a remark shown under the table (e.g. a check)

    def __post_init__(self) -> None:
        if len(self.name) > 31:
            raise ValueError(f"sheet name {self.name!r} is longer than 31 characters")
        missing = [c.name for c in self.columns if c.name not in self.frame.columns]
        if missing:
            raise ValueError(f"sheet {self.name}: frame lacks {missing}")


@dataclass(frozen=True)
class Chart:
    kind: str  # "bar" (grouped), "stacked", "line"
    title: str  # French
    sheet: str  # the sheet whose frame it draws
    x: str  # column for the categories (months, weeks, days...)
    series: tuple[str, ...]  # columns drawn (same kind: all cents, all int or all pct)
    filter: dict = field(default_factory=dict)  # column -> value: rows drawn (e.g. a service)


@dataclass
class Report:
    kind: str  # finance, attendance, usage
    title: str  # French
    town: str  # INSEE code
    town_name: str
    start: str  # YYYY-MM
    end: str  # YYYY-MM
    sheets: list[Sheet]
    charts: list[Chart] = field(default_factory=list)
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    checks: list[str] = field(default_factory=list)  # French: totals verified, for the reader

    def sheet(self, name: str) -> Sheet:
        for s in self.sheets:
            if s.name == name:
                return s
        raise KeyError(name)


def months(start: str, end: str) -> list[str]:
    """``YYYY-MM`` strings from start to end inclusive; a clear error when malformed."""
    try:
        a = pd.Period(start, "M")
        b = pd.Period(end, "M")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"months are written YYYY-MM (got {start!r}, {end!r})") from exc
    if b < a:
        raise ValueError(f"--to {end} is before --from {start}")
    return [str(p) for p in pd.period_range(a, b, freq="M")]
