"""Reports for the payment office, the services and the portal team, and the SCDL export.

``model`` is the shape every report takes (sheets of typed columns, charts, definitions);
``finance``, ``attendance`` and ``usage`` compute them from the warehouse (plain pandas /
SQL, tested without Dagster); ``xlsx`` and ``html`` render any report; ``scdl`` writes the
open-data subsidies file. ``build(kind, engine, town, start, end)`` is the entry point.
"""

from __future__ import annotations

import importlib

KINDS = ("finance", "attendance", "usage")


def build(kind: str, engine, town: str, start: str, end: str):
    """The report ``kind`` of a town for the months ``start``..``end`` (YYYY-MM, inclusive)."""
    if kind not in KINDS:
        raise ValueError(f"unknown report {kind!r} (one of {', '.join(KINDS)})")
    return importlib.import_module(f"pipelines.reports.{kind}").build(engine, town, start, end)
