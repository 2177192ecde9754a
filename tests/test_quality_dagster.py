"""The quality checks and the steward-queue asset wired into Dagster, on both backends:
a structural failure blocks the load downstream, row failures become flags, the run's
HTML summary is linked from its metadata."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from helpers import town_config

from connectors.warehouse import make_engine
from pipelines.assets import build_assets
from pipelines.quality_assets import CHECK_NAME, build_quality_definitions
from pipelines.resources import GuichetResource, dispose_engines
from quality import suites

TOWN = "44190"
SUBSET = ["raw_legacy_famille", "stg_legacy_famille", "raw_legacy_individu",
          "stg_legacy_individu", "raw_legacy_rattachement", "stg_legacy_rattachement",
          "core_household", "core_person", "core_membership", "quality_flags"]


def definitions(codes, config_path=""):
    towns = dg.StaticPartitionsDefinition(codes)
    built = build_assets(towns)
    q = build_quality_definitions(towns)
    checks = [a for a in built if isinstance(a, dg.AssetChecksDefinition)] + q["asset_checks"]
    assets = [a for a in built if not isinstance(a, dg.AssetChecksDefinition)] + q["assets"]
    return dg.Definitions(
        assets=assets, asset_checks=checks,
        jobs=[dg.define_asset_job("subset", selection=dg.AssetSelection.assets(*SUBSET))],
        resources={"guichet": GuichetResource(config_path=config_path)},
        executor=dg.in_process_executor)


def test_checks_sit_next_to_every_staging_and_core_asset():
    d = definitions(["44190", "44036"])
    dg.Definitions.validate_loadable(d)
    graph = d.resolve_asset_graph()
    ours = {k.asset_key.to_user_string() for k in graph.asset_check_keys if k.name == CHECK_NAME}
    assert {"stg_legacy_famille", "stg_portal_accounts", "stg_treasury_files", "core_household",
            "core_reservation", "core_payment"} <= ours
    assert all(k.startswith(("stg_", "core_")) for k in ours)
    assert "quality_flags" in {k.to_user_string() for k in graph.get_all_asset_keys()}


def test_structure_blocks_and_rows_become_flags(warehouse_url, town_dir, tmp_path, monkeypatch):
    cfg = town_config(warehouse_url, {TOWN: town_dir}, tmp_path / "landing")
    t = cfg.towns[0]
    path = tmp_path / "guichet.toml"
    path.write_text(f'[warehouse]\nurl = "{warehouse_url}"\nlanding_dir = "{tmp_path / "landing"}"\n'
                    f'[towns.{TOWN}]\nlegacy_url = "{t.legacy_url}"\nportal_base = "{t.portal_base}"\n'
                    f'treasury_root = "{t.treasury_root}"\n')
    job = definitions([TOWN], str(path)).resolve_job_def("subset")
    instance = dg.DagsterInstance.ephemeral()

    # a batch that breaks the suite's structure never reaches the core table
    real = suites.staged_suite

    def broken(source, entity, table):
        s = real(source, entity, table)
        if entity == "FAMILLE":
            extra = suites.Rule("impossible", "ExpectTableColumnsToMatchSet",
                                {"column_set": ["no_such_column"], "exact_match": False},
                                kind="structural")
            s = suites.Suite(s.name, s.table, s.keys, (*s.rules, extra))
        return s

    monkeypatch.setattr(suites, "staged_suite", broken)
    res = job.execute_in_process(partition_key=TOWN, instance=instance, raise_on_error=False)
    done = {e.asset_key.to_user_string() for e in res.all_events
            if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert "stg_legacy_famille" in done and "core_household" not in done
    assert "core_person" in done  # other batches go on
    failed = [e.event_specific_data for e in res.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"
              and not e.event_specific_data.passed]
    assert [(f.asset_check_key.asset_key.to_user_string(), f.severity.value) for f in failed] \
        == [("stg_legacy_famille", "ERROR")]
    summary = failed[0].metadata["validation_summary"].value
    assert "stg.legacy.famille" in Path(summary).read_text(encoding="utf-8")
    monkeypatch.setattr(suites, "staged_suite", real)

    # a row defect in the source: the core check flags it, the run goes on
    import sqlite3
    legacy = sqlite3.connect(town_dir / "legacy.sqlite")
    legacy.execute("UPDATE FAMILLE SET EMAIL = 'sans-arobase.fr', DATE_MAJ = '2030-01-01 00:00:00' "
                   "WHERE ID_FAMILLE = (SELECT MIN(ID_FAMILLE) FROM FAMILLE)")
    legacy.commit()
    legacy.close()
    res = job.execute_in_process(partition_key=TOWN, instance=instance)
    assert res.success
    evals = {e.event_specific_data.asset_check_key.asset_key.to_user_string():
             e.event_specific_data for e in res.all_events
             if e.event_type_value == "ASSET_CHECK_EVALUATION"
             and e.event_specific_data.asset_check_key.name == CHECK_NAME}
    hh = evals["core_household"]
    assert not hh.passed and hh.severity.value == "WARN"
    assert hh.metadata["flags_opened"].value == 1
    assert evals["core_membership"].passed and evals["stg_legacy_rattachement"].passed
    mats = {e.asset_key.to_user_string(): e for e in res.all_events
            if e.event_type_value == "ASSET_MATERIALIZATION"}
    md = mats["quality_flags"].event_specific_data.materialization.metadata
    assert md["open_flags"].value == 1
    assert "core.household" in Path(md["validation_summary"].value).read_text(encoding="utf-8")
    engine = make_engine(warehouse_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT rule, message FROM flag")).all() == [
            ("gx.household.email_format", "E-mail invalide : « sans-arobase.fr ».")]
    engine.dispose()
    dispose_engines()


@pytest.fixture(autouse=True)
def _no_dagster_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
