"""Dagster wiring of the reconciliation (thin: see pipelines/reconcile/).

- asset ``reconciliation`` after every core table: identity links (crosswalk), payment
  allocations and every rule's flags, in one transaction per town;
- its check ``money_conserved`` (blocking): received = allocated + unallocated, to the cent.
"""

from __future__ import annotations

import dagster as dg

from pipelines.assets import partitioned_checks
from pipelines.progress import announce
from pipelines.resources import GuichetResource

KEY = dg.AssetKey("reconciliation")


def build_reconcile_definitions(partitions, cores: list[str]) -> dict:
    @dg.asset(key=KEY, group_name="reconcile", partitions_def=partitions,
              deps=[dg.AssetKey(f"core_{t}") for t in cores],
              description="Identity links, payment allocations and reconciliation flags of "
                          "the town (docs/reconciliation.md).")
    def reconciliation(context, guichet: GuichetResource):
        from pipelines.reconcile.run import reconcile_town

        announce("reconciliation")
        town = guichet.town(context)
        res = reconcile_town(town.engine, town.code, town.run_id,
                             service_levels=town.config.service_levels)
        context.add_output_metadata({
            "links": res.links, "allocations": res.allocations,
            "flags_opened": res.flags.opened, "flags_auto_resolved": res.flags.auto_resolved,
            **{f"found.{k.removeprefix('rec.')}": v for k, v in res.findings.items()},
            **{f"money.{k}": v for k, v in res.money.items() if isinstance(v, int)},
            "seconds": round(sum(res.seconds.values()), 1)})
        return res.money

    with partitioned_checks():

        @dg.asset_check(asset=KEY, name="money_conserved", blocking=True,
                        partitions_def=partitions,
                        description="Money received = allocated + unallocated, to the cent.")
        def money_conserved(reconciliation):
            m = reconciliation
            gap = m["received_cents"] - m["allocated_cents"] - m["unallocated_cents"]
            return dg.AssetCheckResult(
                passed=gap == 0,
                metadata={k: v for k, v in m.items() if isinstance(v, int)} | {"gap_cents": gap},
                description=None if gap == 0 else f"{gap} cents received but neither allocated "
                                                  "nor shown as unallocated")

    return {"assets": [reconciliation], "asset_checks": [money_conserved]}
