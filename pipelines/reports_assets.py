"""Dagster wiring of the report marts (thin: see pipelines/reports/).

- asset ``report_marts`` after ``reconciliation``: every ``mart_*`` table of the town
  rebuilt in one transaction (finance, attendance, portal usage), so a BI tool reads the
  figures of the night;
- its check ``finance_totals_agree`` (blocking): on the stored marts, sum of channels =
  collected, invoiced = collected + outstanding + cancelled, outstanding = sum of the
  ageing buckets, received = allocated + unallocated, and collected (billed view) =
  allocated (cash-flow view), each to the cent.
"""

from __future__ import annotations

import dagster as dg

from pipelines.assets import partitioned_checks
from pipelines.progress import announce
from pipelines.reconcile_assets import KEY as RECONCILIATION
from pipelines.resources import GuichetResource

KEY = dg.AssetKey("report_marts")


def build_reports_definitions(partitions) -> dict:
    @dg.asset(key=KEY, group_name="reports", partitions_def=partitions, deps=[RECONCILIATION],
              description="Report marts of the town (mart_* tables: finance, attendance, "
                          "portal usage), rebuilt every night (docs/reports.md).")
    def report_marts(context, guichet: GuichetResource):
        from pipelines.reports.marts import build_marts

        announce("report marts")
        town = guichet.town(context)
        built = build_marts(town.engine, town.code, service_levels=town.config.service_levels)
        context.add_output_metadata({
            **{f"rows.{k}": v for k, v in built.rows.items()},
            "reference_day": str(built.reference_day),
            "seconds": round(sum(built.seconds.values()), 1)})
        return {"town": town.code}

    with partitioned_checks():

        @dg.asset_check(asset=KEY, name="finance_totals_agree", blocking=True,
                        partitions_def=partitions,
                        description="Finance marts: channels = collected; invoiced = collected "
                                    "+ outstanding + cancelled; received = allocated + "
                                    "unallocated; to the cent.")
        def finance_totals_agree(report_marts, guichet: GuichetResource):
            from pipelines.reports.finance import GAPS, verify_town

            v = verify_town(guichet.engine(), report_marts["town"])
            gaps = {k: v[k] for k in GAPS if k in v}
            bad = {k: g for k, g in gaps.items() if g}
            return dg.AssetCheckResult(
                passed=not bad, metadata={**v, **{f"gap.{k}": g for k, g in gaps.items()}},
                description=None if not bad else "finance totals disagree (cents): "
                + ", ".join(f"{k} {g}" for k, g in bad.items()))

    return {"assets": [report_marts], "asset_checks": [finance_totals_agree]}
