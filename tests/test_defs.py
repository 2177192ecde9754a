"""The Dagster code location loads, with its job, schedule, partitions and checks."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from pipelines.definitions import build_definitions, defs


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_nightly_job_covers_every_layer_and_uses_in_process_executor():
    d = build_definitions(["44190", "44036"])
    job = d.resolve_job_def("nightly_sync")
    keys = {k.to_user_string() for k in d.resolve_asset_graph().get_all_asset_keys()}
    for k in ("raw_legacy_famille", "stg_legacy_reservation", "raw_portal_bookings",
              "stg_portal_requests", "raw_treasury_files", "core_payment", "core_reservation",
              "core_procedure_state", "sync_report"):
        assert k in keys, k
    assert job.executor_def.name == "in_process"
    assert job.partitions_def.get_partition_keys() == ["44190", "44036"]


def test_conservation_checks_sit_next_to_staging_assets():
    d = build_definitions(["44190"])
    checks = {c.asset_key.to_user_string() for c in d.resolve_asset_graph().asset_check_keys}
    assert "stg_legacy_reservation" in checks and "stg_treasury_files" in checks


def test_schedule_runs_each_town_at_two_in_paris_and_is_running():
    d = build_definitions(["44190", "44036"])
    sched = d.resolve_schedule_def("nightly_schedule")
    assert sched.cron_schedule == "0 2 * * *"
    assert sched.execution_timezone == "Europe/Paris"
    assert sched.default_status == dg.DefaultScheduleStatus.RUNNING
    ctx = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC),
        repository_def=d.get_repository_def())
    reqs = list(sched.evaluate_tick(ctx).run_requests)
    assert sorted(r.partition_key for r in reqs) == ["44036", "44190"]
    assert len({r.run_key for r in reqs}) == 2
