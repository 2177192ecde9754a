"""The Dagster code location: assets partitioned by town, the nightly job and its schedule."""

from __future__ import annotations

import os

import dagster as dg

from pipelines.assets import build_assets
from pipelines.config import load_config
from pipelines.quality_assets import build_quality_definitions
from pipelines.reconcile_assets import build_reconcile_definitions
from pipelines.reports_assets import build_reports_definitions
from pipelines.resources import GuichetResource
from pipelines.sensors import PAYMENT_ASSETS, pending_files, run_key

NIGHTLY_CRON = "0 2 * * *"
TIMEZONE = "Europe/Paris"


def town_codes() -> list[str]:
    codes = [t.code for t in load_config().towns]
    # With no configuration yet, the demo's town keeps the code location loadable.
    return codes or ["44190"]


def build_definitions(codes: list[str] | None = None) -> dg.Definitions:
    towns = dg.StaticPartitionsDefinition(codes or town_codes())
    nightly_sync = dg.define_asset_job(
        "nightly_sync", selection=dg.AssetSelection.all(),
        description="Extract, validate and load every source of one town into the warehouse.")

    @dg.schedule(job=nightly_sync, cron_schedule=NIGHTLY_CRON, execution_timezone=TIMEZONE,
                 default_status=dg.DefaultScheduleStatus.RUNNING,
                 description="Every night at 02:00 Europe/Paris, one run per town.")
    def nightly_schedule(context: dg.ScheduleEvaluationContext):
        day = context.scheduled_execution_time.strftime("%Y-%m-%d")
        for code in towns.get_partition_keys():
            yield dg.RunRequest(run_key=f"{code}-{day}", partition_key=code)

    treasury_sync = dg.define_asset_job(
        "treasury_sync", selection=dg.AssetSelection.assets(*PAYMENT_ASSETS),
        description="Load the payment office's new files (and the portal's online payments).")

    @dg.sensor(job=treasury_sync, minimum_interval_seconds=300,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Launches treasury_sync for a town when new files are in its drop.")
    def treasury_drop_sensor(context: dg.SensorEvaluationContext, guichet: GuichetResource):
        cfg = guichet.config()
        engine = guichet.engine()
        for town in cfg.towns:
            shas = pending_files(town, engine)
            if shas:
                yield dg.RunRequest(run_key=run_key(town.code, shas), partition_key=town.code,
                                    tags={"guichet/new_files": str(len(shas))})

    resource = GuichetResource(
        config_path=dg.EnvVar("GUICHET_CONFIG") if os.environ.get("GUICHET_CONFIG") else "",
        warehouse_url=(dg.EnvVar("GUICHET_WAREHOUSE_URL")
                       if os.environ.get("GUICHET_WAREHOUSE_URL") else ""),
    )
    built = build_assets(towns)
    quality = build_quality_definitions(towns)
    from pipelines.steps import core_sources

    reconcile = build_reconcile_definitions(towns, list(core_sources()))
    reports = build_reports_definitions(towns)
    checks = [a for a in built if isinstance(a, dg.AssetChecksDefinition)]
    return dg.Definitions(
        assets=[a for a in built if not isinstance(a, dg.AssetChecksDefinition)]
        + quality["assets"] + reconcile["assets"] + reports["assets"],
        asset_checks=checks + quality["asset_checks"] + reconcile["asset_checks"]
        + reports["asset_checks"],
        jobs=[nightly_sync, treasury_sync],
        schedules=[nightly_schedule],
        sensors=[treasury_drop_sensor],
        # Batches pass between a run's steps in memory: no pickles of personal data left
        # on disk, no time spent writing them. A core asset is therefore materialised
        # together with its raw/stg upstream (both jobs select closed sub-graphs).
        resources={"guichet": resource, "io_manager": dg.mem_io_manager},
        executor=dg.in_process_executor,
    )


defs = build_definitions()
