"""The drop sensor launches the payment sub-graph only when new content arrives."""

from __future__ import annotations

import shutil

import dagster as dg
from helpers import config_file

from connectors.warehouse import make_engine
from pipelines.definitions import build_definitions
from pipelines.resources import GuichetResource, dispose_engines
from pipelines.sensors import PAYMENT_ASSETS, pending_files
from pipelines.steps import run_town


def test_sensor_requests_a_run_for_new_files_only(tmp_path, town_dir):
    wh = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    path, cfg = config_file(tmp_path, wh, town_dir)
    engine = make_engine(wh)
    d = build_definitions(["44190"])
    sensor = d.resolve_sensor_def("treasury_drop_sensor")
    job = d.resolve_job_def("treasury_sync")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == set(PAYMENT_ASSETS)
    resource = GuichetResource(config_path=str(path))

    def tick():
        with dg.build_sensor_context(resources={"guichet": resource},
                                     repository_def=d.get_repository_def()) as ctx:
            return list(sensor(ctx) or [])

    first = tick()  # nothing loaded yet: every file is new
    assert len(first) == 1 and first[0].partition_key == "44190"
    run_town(cfg, "44190", engine)
    assert pending_files(cfg.towns[0], engine) == []
    assert tick() == []  # all taken
    # the payment office drops a file in the last day's folder: one run, keyed by content
    days = sorted(p for p in (town_dir / "treasury" / "outgoing").glob("*/*/*") if p.is_dir())
    src = max((town_dir / "treasury" / "outgoing").rglob("CAISSE_*.csv"))
    new = days[-1] / src.name.replace(".csv", "_3.csv")
    new.write_bytes(src.read_bytes() + b"R999999;" + src.read_bytes().splitlines()[-1][8:] + b"\n")
    again = tick()
    assert len(again) == 1 and again[0].run_key == tick()[0].run_key
    shutil.copy(new, days[-1] / (new.name + ".part"))  # an unfinished upload changes nothing
    assert tick()[0].run_key == again[0].run_key
    engine.dispose()
    dispose_engines()
