"""The legacy database on SQLite, MariaDB and PostgreSQL — by SQLAlchemy URL and through
the real ODBC drivers (connection string and DSN) — gives the same warehouse, and
refuses writes."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from conftest import ODBC_DSNS
from helpers import core_digest

from connectors.legacy import LegacyDatabase
from connectors.warehouse import make_engine
from demo.generate import generate_town
from pipelines.config import parse_config
from pipelines.steps import run_town

ODBC_DRIVER = {"mariadb": "MariaDB Unicode", "postgresql": "PostgreSQL Unicode"}


@pytest.fixture(scope="module", params=["mariadb", "postgresql"])
def legacy_server(request, tmp_path_factory):
    """A legacy database generated on a real server, plus its reference (SQLite) digest."""
    kind = request.param
    server = request.getfixturevalue("mariadb_server" if kind == "mariadb" else "pg_server")
    url = server.create("guichet_legacy")
    base = tmp_path_factory.mktemp(f"legacy_{kind}")
    generate_town(base / "ref", households=25, seed=3, town="44190")
    generate_town(base / "srv", households=25, seed=3, town="44190", legacy_url=url)
    u = sa.engine.make_url(url)
    port = u.port or (3306 if kind == "mariadb" else 5432)
    odbc = (f"DRIVER={{{ODBC_DRIVER[kind]}}};SERVER=127.0.0.1;PORT={port};"
            f"DATABASE={u.database};UID={u.username};PWD=;")
    try:
        yield {"kind": kind, "url": url, "odbc": odbc, "base": base, "database": u.database,
               "port": port, "user": u.username}
    finally:
        server.drop(url)


def _digest(base, name, town_dir, legacy_url):
    info = json.loads((town_dir / "town.json").read_text())
    wh = f"sqlite:///{base / (name + '.sqlite')}"
    cfg = parse_config({"warehouse": {"url": wh, "landing_dir": str(base / f"landing_{name}")},
                        "towns": {"44190": {"legacy_url": legacy_url,
                                            "portal_base": info["portal_base"],
                                            "treasury_root": info["treasury_root"]}}})
    engine = make_engine(wh)
    run_town(cfg, "44190", engine)
    d = core_digest(engine, lineage=False)
    engine.dispose()
    return d


LEGACY_TABLES = ("household", "person", "membership", "enrolment", "reservation", "attendance",
                 "invoice", "invoice_line", "activity", "document")


@pytest.fixture(scope="module")
def reference(legacy_server):
    ref_dir = legacy_server["base"] / "ref"
    return _digest(legacy_server["base"], "ref", ref_dir,
                   json.loads((ref_dir / "town.json").read_text())["legacy_url"])


@pytest.mark.parametrize("access", ["sqlalchemy", "odbc_string", "odbc_dsn"])
def test_same_core_whatever_the_engine_and_the_access(legacy_server, reference, access,
                                                       tmp_path):
    if access == "sqlalchemy":
        url = legacy_server["url"]
    elif access == "odbc_string":
        url = legacy_server["odbc"]
    else:  # a DSN of odbc.ini (see the odbc_dsns fixture), the database named in the string
        dsn = ODBC_DSNS[legacy_server["kind"]][0]
        url = f"DSN={dsn};DATABASE={legacy_server['database']};UID={legacy_server['user']};PWD=;"
    got = _digest(tmp_path, access, legacy_server["base"] / "srv", url)
    for table in LEGACY_TABLES:
        assert got[table] == reference[table], (access, table)


@pytest.mark.parametrize("access", ["sqlalchemy", "odbc_string"])
def test_legacy_connection_refuses_writes(legacy_server, access):
    before = LegacyDatabase(legacy_server["url"])
    n_before = sum(len(f) for f in before.read("FAMILLE"))
    before.dispose()
    db = LegacyDatabase(legacy_server["url"] if access == "sqlalchemy" else legacy_server["odbc"])
    assert db.table_name("famille") in ("FAMILLE", "famille")  # whatever the folding
    cur = db.connection().cursor()
    with pytest.raises(Exception) as exc:
        cur.execute(f"DELETE FROM {db.table_name('FAMILLE')}")
    assert "read" in str(exc.value).lower() or "1792" in str(exc.value)
    db.dispose()
    check = LegacyDatabase(legacy_server["url"])
    n = sum(len(f) for f in check.read("FAMILLE"))
    check.dispose()
    assert n == n_before > 0  # nothing deleted


def test_sqlite_legacy_is_opened_read_only(town_dir):
    url = json.loads((town_dir / "town.json").read_text())["legacy_url"]
    db = LegacyDatabase(url)
    with pytest.raises(Exception, match="readonly|read-only"):
        db.connection().execute("DELETE FROM FAMILLE")
    db.dispose()


def test_reads_stream_in_bounded_chunks(town_dir):
    url = json.loads((town_dir / "town.json").read_text())["legacy_url"]
    db = LegacyDatabase(url, chunk_rows=500)
    sizes = [len(f) for f in db.read("RESERVATION")]
    db.dispose()
    assert len(sizes) > 2 and max(sizes) == 500


def test_a_buffering_driver_reads_page_by_page_without_loss_or_repeat(legacy_server):
    """MariaDB's ODBC driver holds a whole result: the connector reads it in keyset pages
    (primary-key order, one snapshot). Every row once, as the SQLAlchemy read gives them;
    a composite key (RATTACHEMENT) and an incremental read (DATE_MAJ) included. The same holds
    through PostgreSQL's ODBC driver, which streams."""
    ref = LegacyDatabase(legacy_server["url"])
    db = LegacyDatabase(legacy_server["odbc"], chunk_rows=7)
    # psqlODBC streams through a declared cursor (UseDeclareFetch): no pages needed
    assert db.paged == (legacy_server["kind"] == "mariadb") and not ref.paged
    try:
        for table, key in (("RESERVATION", ("ID_RESERVATION",)),
                           ("RATTACHEMENT", ("ID_FAMILLE", "ID_INDIVIDU"))):
            want = sorted(tuple(r) for f in ref.read(table) for r in f.itertuples(index=False))
            pages = list(db.read(table, key_columns=key))
            assert max(len(p) for p in pages) == 7 and len(pages) > 3
            got = sorted(tuple(r) for p in pages for r in p.itertuples(index=False))
            assert got == want
            keys = db.keys(table, key)
            assert all(str(t) == "int64" for t in keys.dtypes)
            assert len(keys) == len(want) and not keys.duplicated().any()
        dates = sorted(str(v) for f in ref.read("RESERVATION") for v in f["DATE_MAJ"])
        since = dates[len(dates) // 2]
        want = sorted(tuple(r) for f in ref.read("RESERVATION", since)
                      for r in f.itertuples(index=False))
        got = sorted(tuple(r) for f in db.read("RESERVATION", since, ("ID_RESERVATION",))
                     for r in f.itertuples(index=False))
        assert got == want and 0 < len(got) < len(dates)
    finally:
        db.dispose()
        ref.dispose()
