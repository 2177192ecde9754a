"""Dagster wiring of the data-quality suites and the steward queue (thin: see quality/).

``build_quality_definitions(partitions)`` returns ``{"assets": [...], "asset_checks": [...]}``
to merge into the code location's ``Definitions``:

- a check ``gx_suite`` on every ``stg_<source>_<entity>`` asset: its batch against the
  ``stg.*`` suite. Blocking: a structural failure (columns, value types, primary key)
  stops the core load of that batch; row failures only warn.
- a check ``gx_suite`` on every ``core_<table>`` asset: the stewards' decisions are
  re-applied on the table, the town's whole table is validated against its
  ``core.*`` suite and the flags of its row rules refreshed. Blocking: a structural
  failure stops what is downstream. It waits for the core tables it refers to.
- an asset ``quality_flags`` after every core table: retires the flags of rules that
  no longer exist, writes the run's HTML validation summary and links it.

Great Expectations is imported by the first check that runs, never when this module
(or the code location) loads.
"""

from __future__ import annotations

import os

import dagster as dg

from pipelines.assets import DOWNSTREAM, partitioned_checks
from pipelines.progress import announce
from pipelines.resources import GuichetResource

CHECK_NAME = "gx_suite"


def _source_entities() -> list[tuple[str, str]]:
    from pipelines import steps
    from schemas.portal import PORTAL_COLLECTIONS

    return ([(steps.LEGACY, e) for e in steps.LEGACY_ORDER]
            + [(steps.PORTAL, c) for c in PORTAL_COLLECTIONS] + [(steps.TREASURY, "files")])


def _core_tables() -> list[str]:
    from pipelines.steps import core_sources

    return list(core_sources())


def _report_links(guichet: GuichetResource, town, write: bool) -> dict:
    from quality.checks import report_dir_for
    from quality.report import report_path, write_run_report

    rdir = report_dir_for(guichet.config().landing_dir)
    path = (write_run_report(town.engine, town.code, town.run_id, rdir) if write
            else report_path(rdir, town.code, town.run_id))
    md = {"validation_summary": dg.MetadataValue.path(str(path))}
    base = os.environ.get("GUICHET_STEWARD_URL")
    if base:
        md["validation_summary_web"] = dg.MetadataValue.url(
            f"{base.rstrip('/')}/controles/{town.run_id}")
    return md


def _result(res, links: dict) -> dg.AssetCheckResult:
    severity = (dg.AssetCheckSeverity.ERROR if res.structural_failures
                else dg.AssetCheckSeverity.WARN)
    return dg.AssetCheckResult(passed=res.passed, severity=severity,
                               metadata={**res.metadata(), **links},
                               description=res.description())


def _staged_check(source: str, entity: str, partitions):
    key = dg.AssetKey(f"stg_{source}_{entity.lower()}")

    @dg.asset_check(asset=key, name=CHECK_NAME, blocking=True, partitions_def=partitions,
                    op_tags=DOWNSTREAM,  # checked and loaded before the next extract
                    description=f"Great Expectations suite stg.{source}.{entity.lower()}: "
                                "structure blocks the load, row failures warn.")
    def _check(context, guichet: GuichetResource, batch):
        from quality.checks import check_staged

        announce(f"{key.to_user_string()}.{CHECK_NAME}")
        town = guichet.town(context)
        res = check_staged(town.engine, town.code, town.run_id, source, entity, batch)
        return _result(res, _report_links(guichet, town, write=bool(res.structural_failures)))

    return _check


def _core_check(table: str, partitions, cores: set[str]):
    from quality.suites import core_suite

    parents = [dg.AssetKey(f"core_{p}") for p in core_suite(table).parents if p in cores]

    @dg.asset_check(asset=dg.AssetKey(f"core_{table}"), name=CHECK_NAME, blocking=True,
                    partitions_def=partitions, additional_deps=parents, op_tags=DOWNSTREAM,
                    description=f"Great Expectations suite core.{table} on the town's whole "
                                "table: structure blocks, failing rows become flags.")
    def _check(context, guichet: GuichetResource):
        from quality.checks import check_core

        announce(f"core_{table}.{CHECK_NAME}")
        town = guichet.town(context)
        res = check_core(town.engine, town.code, town.run_id, table)
        return _result(res, _report_links(guichet, town, write=bool(res.structural_failures)))

    return _check


def _quality_flags_asset(partitions, cores: list[str]):
    @dg.asset(key=dg.AssetKey("quality_flags"), group_name="quality", partitions_def=partitions,
              deps=[dg.AssetKey(f"core_{t}") for t in cores],
              description="The town's steward queue after the checks: flags of retired rules "
                          "closed, the run's HTML validation summary written and linked.")
    def quality_flags(context, guichet: GuichetResource):
        import sqlalchemy as sa

        from quality import store, suites
        from quality.checks import GX_PREFIX
        from quality.flags import Filters, count_flags, counts_by, retire_rules

        announce("quality_flags")
        town = guichet.town(context)
        with store.town_transaction(town.engine, town.code) as conn:
            retired = retire_rules(conn, town.code, town.run_id, suites.all_rule_ids(),
                                   GX_PREFIX)
        with town.engine.connect() as conn:
            open_n = count_flags(conn, town.code, Filters(status="open"))
            by_sev = dict(counts_by(conn, town.code, "severity", Filters(status="open")))
            seen = conn.execute(sa.text(
                "SELECT COUNT(*) FROM flag WHERE town = :t AND last_seen_run_id = :r"),
                {"t": town.code, "r": town.run_id}).scalar()
        md = {"open_flags": open_n, "flags_seen_this_run": seen, "retired_rule_flags": retired,
              **{f"open_{k}": v for k, v in by_sev.items()},
              **_report_links(guichet, town, write=True)}
        context.add_output_metadata(md)

    return quality_flags


def build_quality_definitions(partitions) -> dict:
    """The quality checks and the steward-queue asset, for ``dg.Definitions``.

    The checks are partitioned like the assets (one town per run): without it a check
    that takes its asset's value would load every town's partition.
    """
    cores = _core_tables()
    with partitioned_checks():
        checks = [_staged_check(s, e, partitions) for s, e in _source_entities()]
        checks += [_core_check(t, partitions, set(cores)) for t in cores]
    return {"assets": [_quality_flags_asset(partitions, cores)], "asset_checks": checks}
