"""Dagster resource: the configuration, the warehouse, and one town per partition."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa

from connectors.warehouse import make_engine
from pipelines import loading
from pipelines.config import Config, load_config
from pipelines.steps import Town, clear_stale_spools, open_town

_ENGINES: dict[str, sa.Engine] = {}


def _engine(url: str) -> sa.Engine:
    """One engine per warehouse URL per process (steps of a run share its pool)."""
    if url not in _ENGINES:
        _ENGINES[url] = make_engine(url)
    return _ENGINES[url]


def dispose_engines() -> None:
    for e in _ENGINES.values():
        e.dispose()
    _ENGINES.clear()


class GuichetResource(dg.ConfigurableResource):
    """Configured by ``GUICHET_CONFIG`` (the TOML file) and ``GUICHET_WAREHOUSE_URL``."""

    config_path: str = ""
    warehouse_url: str = ""

    def config(self) -> Config:
        cfg = load_config(self.config_path or None)
        if self.warehouse_url:
            cfg = Config(self.warehouse_url, cfg.landing_dir, cfg.towns, cfg.path)
        return cfg

    def engine(self) -> sa.Engine:
        return _engine(self.config().warehouse_url)

    def town(self, context) -> Town:
        """The partition's town, with this Dagster run as its load run."""
        code = context.partition_key
        engine = self.engine()
        with engine.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM load_run WHERE town = :t AND run_id = :r"),
                                  {"t": code, "r": context.run.run_id}).first()
        town = open_town(self.config(), code, engine, context.run.run_id)
        if not exists:
            loading.start_run(engine, code, dagster_run_id=context.run.run_id, run_id=context.run.run_id)
            clear_stale_spools(town)
        return town
