"""The nightly job through Dagster itself, on both warehouse backends."""

from __future__ import annotations

import dagster as dg
from helpers import config_file, core_digest, count

from connectors.warehouse import make_engine
from pipelines.definitions import build_definitions
from pipelines.resources import GuichetResource, dispose_engines
from pipelines.steps import run_town


def test_nightly_job_materialises_a_town_and_matches_the_plain_steps(warehouse_url, town_dir,
                                                                    tmp_path):
    path, cfg = config_file(tmp_path, warehouse_url, town_dir)
    d = build_definitions(["44190"])
    job = d.resolve_job_def("nightly_sync")
    instance = dg.DagsterInstance.ephemeral()
    res = job.execute_in_process(
        partition_key="44190", instance=instance,
        resources={"guichet": GuichetResource(config_path=str(path))})
    assert res.success
    checks = [e for e in res.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
              and e.event_specific_data.check_name == "rows_conserved"]
    assert len(checks) == 20 and all(e.event_specific_data.passed for e in checks)
    money = [e for e in res.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
             and e.event_specific_data.check_name == "money_conserved"]
    assert len(money) == 1 and money[0].event_specific_data.passed
    # depth first, as the plain steps: an entity is loaded into core before the next is
    # extracted, so a town's tables are never all in memory at once
    started = [e.step_key for e in res.all_events if e.event_type_value == "STEP_START"]
    for entity, table, following in (("reservation", "reservation", "pointage"),
                                     ("ligne_facture", "invoice_line", "piece"),
                                     ("bookings", "portal_booking", "documents")):
        src = "portal" if entity == "bookings" else "legacy"
        nxt = f"raw_{src}_{following}"
        assert started.index(f"raw_{src}_{entity}") < started.index(f"core_{table}") \
            < started.index(nxt), (entity, started)
    # and what the run keeps of each step's output to its end is an empty shell
    for key in ("raw_legacy_reservation", "stg_legacy_reservation", "stg_portal_bookings"):
        out = res.asset_value(key)
        spooled = getattr(out, "spool", None)
        assert spooled is None or not spooled.path.exists()
        assert not getattr(out, "staged", {}) and out.present is None
    engine = make_engine(warehouse_url)
    assert count(engine, "SELECT COUNT(*) FROM load_run WHERE status = 'success' "
                         "AND run_id = :r", r=res.run_id) == 1
    digest = core_digest(engine)
    assert count(engine, "SELECT COUNT(*) FROM allocation") > 0
    assert count(engine, "SELECT COUNT(*) FROM crosswalk") > 0
    assert count(engine, "SELECT COUNT(*) FROM flag WHERE rule LIKE 'rec.%'") > 0
    # a second Dagster run changes nothing (links and allocations included)
    res2 = job.execute_in_process(
        partition_key="44190", instance=instance,
        resources={"guichet": GuichetResource(config_path=str(path))})
    assert res2.success and core_digest(engine) == digest
    # and the plain steps agree with what Dagster loaded
    run_town(cfg, "44190", engine)
    assert core_digest(engine) == digest
    engine.dispose()
    dispose_engines()
