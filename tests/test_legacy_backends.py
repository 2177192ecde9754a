"""The legacy database on SQLite, MariaDB and PostgreSQL gives the same warehouse."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from helpers import core_digest, town_config

from connectors.legacy import LegacyDatabase
from connectors.warehouse import make_engine
from demo.generate import generate_town
from pipelines.steps import run_town


@pytest.fixture(params=["mariadb", "postgresql"])
def legacy_server(request):
    server = request.getfixturevalue("mariadb_server" if request.param == "mariadb"
                                     else "pg_server")
    url = server.create("guichet_legacy")
    try:
        yield url
    finally:
        server.drop(url)


def _legacy_digest(tmp_path, name, legacy_url=None):
    out = tmp_path / name / "44190"
    generate_town(out, households=25, seed=3, town="44190", legacy_url=legacy_url)
    wh = f"sqlite:///{tmp_path / name / 'wh.sqlite'}"
    cfg = town_config(wh, {"44190": out}, tmp_path / name / "landing")
    engine = make_engine(wh)
    run_town(cfg, "44190", engine)
    d = core_digest(engine)
    engine.dispose()
    return d, json.loads((out / "town.json").read_text())["legacy_url"]


def test_same_core_whatever_the_legacy_engine(tmp_path, legacy_server):
    ref, _ = _legacy_digest(tmp_path, "sqlite")
    got, url = _legacy_digest(tmp_path, "server", legacy_server)
    assert url == legacy_server
    for table in ("household", "person", "membership", "enrolment", "reservation", "attendance",
                  "invoice", "invoice_line", "activity"):
        assert got[table] == ref[table], table


def test_legacy_connection_refuses_writes(tmp_path, legacy_server):
    generate_town(tmp_path / "t", households=5, seed=1, legacy_url=legacy_server)
    db = LegacyDatabase(legacy_server)
    famille = db.table("famille")  # found whatever the engine folded the name to
    with pytest.raises(sa.exc.DBAPIError), db.engine.begin() as conn:
        conn.execute(famille.delete())
    db.dispose()


def test_sqlite_legacy_is_opened_read_only(town_dir):
    url = json.loads((town_dir / "town.json").read_text())["legacy_url"]
    db = LegacyDatabase(url)
    with pytest.raises(sa.exc.OperationalError), db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM FAMILLE"))
    db.dispose()
