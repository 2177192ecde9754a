"""Configuration: one file plus environment variables; secrets only from the environment."""

from __future__ import annotations

import pytest
import yaml

from pipelines.config import ConfigError, load_config, parse_config
from pipelines.instance import instance_config

TOWN = {"legacy_url": "sqlite:///x.sqlite", "portal_base": "file:///p", "treasury_root": "/t"}


def test_secrets_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("LEGACY_44190", "postgresql://reader:s3cret@db/legacy")
    monkeypatch.setenv("PORTAL_TOKEN_44190", "tok")
    cfg = parse_config({"towns": {"44190": {
        "legacy_url_env": "LEGACY_44190", "portal_base": "https://portal.example",
        "portal_token_env": "PORTAL_TOKEN_44190", "treasury_root": "/t"}}})
    t = cfg.town("44190")
    assert t.legacy_url.endswith("@db/legacy") and t.portal_token == "tok"
    assert "tok" not in repr(t)  # never printed


def test_missing_secret_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NOPE", raising=False)
    with pytest.raises(ConfigError, match="NOPE"):
        parse_config({"towns": {"44190": {**TOWN, "legacy_url_env": "NOPE"}}})


def test_town_must_be_an_insee_code():
    with pytest.raises(ConfigError, match="INSEE"):
        parse_config({"towns": {"Nantes": TOWN}})


def test_warehouse_url_env_overrides_file(monkeypatch, tmp_path):
    p = tmp_path / "g.toml"
    p.write_text('[warehouse]\nurl = "sqlite:///a.sqlite"\n[towns.44190]\n'
                 'legacy_url = "sqlite:///x"\nportal_base = "file:///p"\ntreasury_root = "/t"\n')
    assert load_config(p).warehouse_url == "sqlite:///a.sqlite"
    monkeypatch.setenv("GUICHET_WAREHOUSE_URL", "postgresql://h/db")
    assert load_config(p).warehouse_url == "postgresql://h/db"
    with pytest.raises(ConfigError, match="not configured"):
        load_config(p).town("44036")


def test_instance_is_sqlite_under_var_by_default(monkeypatch, tmp_path):
    monkeypatch.delenv("GUICHET_DAGSTER_PG_URL", raising=False)
    cfg = instance_config(root=tmp_path)
    assert cfg["storage"] == {"sqlite": {"base_dir": str(tmp_path / "var/dagster/storage")}}


def test_instance_uses_postgres_when_the_variable_names_a_url(monkeypatch, tmp_path, pg_server):
    import dagster as dg

    from pipelines.instance import prepare_home

    url = pg_server.create("guichet_dagster")
    try:
        monkeypatch.setenv("GUICHET_DAGSTER_PG_URL", url.replace("+psycopg", ""))
        home = prepare_home(tmp_path / "home")
        written = yaml.safe_load((home / "dagster.yaml").read_text())
        assert written["storage"] == {"postgres": {"postgres_url": {"env": "GUICHET_DAGSTER_PG_URL"}}}
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert instance.get_runs() == []
        finally:
            instance.dispose()
    finally:
        pg_server.drop(url)


def test_service_levels_of_procedures_are_configured_per_town():
    town = {"legacy_url": "sqlite://", "portal_base": "file:///p", "treasury_root": "/t",
            "service_levels": {"ACTE_NAISSANCE": 5}}
    cfg = parse_config({"towns": {"44190": town}})
    assert cfg.town("44190").service_levels == {"ACTE_NAISSANCE": 5}
    with pytest.raises(ConfigError, match="ACTE_NAISSANCE must be a whole number of days"):
        parse_config({"towns": {"44190": {**town, "service_levels": {"ACTE_NAISSANCE": "5"}}}})
