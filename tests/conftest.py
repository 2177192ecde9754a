"""Shared fixtures: warehouse backends, local database servers, small simulated towns.

Every warehouse test runs on SQLite and on the local PostgreSQL. With CI=true an
unreachable server is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ADMIN = os.environ.get("GUICHET_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB_ADMIN = os.environ.get("GUICHET_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def unreachable(what: str, exc: Exception):
    msg = f"{what} unreachable: {exc}"
    if IN_CI:
        pytest.fail(msg + " (CI=true: a missing service is a failure)")
    pytest.skip(msg)


def _server_url(admin_url: str, database: str) -> str:
    return sa.engine.make_url(admin_url).set(database=database).render_as_string(
        hide_password=False)


class Server:
    """A database server on which tests create and drop throw-away databases."""

    def __init__(self, admin_url: str, kind: str):
        self.admin_url = admin_url
        self.kind = kind
        self.engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def create(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with self.engine.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        return _server_url(self.admin_url, name)

    def drop(self, url: str) -> None:
        name = sa.engine.make_url(url).database
        with self.engine.connect() as conn:
            if self.kind == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))


ODBC_DSNS = {"mariadb": ("guichet_test_mariadb", "MariaDB Unicode", 3306),
             "postgresql": ("guichet_test_postgresql", "PostgreSQL Unicode", 5432)}


@pytest.fixture(scope="session", autouse=True)
def odbc_dsns(tmp_path_factory):
    """User DSNs for the local servers, written before any ODBC connection (unixODBC
    caches odbc.ini for the life of the process); tests add DATABASE= to the string."""
    import os

    ini = tmp_path_factory.mktemp("odbc") / "odbc.ini"
    ini.write_text("".join(f"[{dsn}]\nDriver={driver}\nServer=127.0.0.1\nPort={port}\n\n"
                           for dsn, driver, port in ODBC_DSNS.values()))
    old = os.environ.get("ODBCINI")
    os.environ["ODBCINI"] = str(ini)
    yield ini
    if old is None:
        os.environ.pop("ODBCINI", None)
    else:
        os.environ["ODBCINI"] = old


@pytest.fixture(scope="session")
def pg_server():
    try:
        return Server(PG_ADMIN, "postgresql")
    except Exception as exc:  # noqa: BLE001
        unreachable("PostgreSQL at 127.0.0.1:5432", exc)


@pytest.fixture(scope="session")
def mariadb_server():
    try:
        return Server(MARIADB_ADMIN, "mysql")
    except Exception as exc:  # noqa: BLE001
        unreachable("MariaDB at 127.0.0.1:3306", exc)


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request, tmp_path):
    """An empty warehouse on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
        return
    server = request.getfixturevalue("pg_server")
    url = server.create("guichet_wh")
    try:
        yield url
    finally:
        from pipelines.resources import dispose_engines

        dispose_engines()
        server.drop(url)


@pytest.fixture(scope="session")
def town_template(tmp_path_factory) -> Path:
    """A small simulated town generated once; tests work on copies of it."""
    from demo.generate import generate_town

    out = tmp_path_factory.mktemp("town_template") / "44190"
    generate_town(out, households=60, seed=7, town="44190")
    return out


def copy_town(template: Path, dest: Path) -> Path:
    """Copy a generated town and point its town.json at the copy."""
    import json

    shutil.copytree(template, dest)
    info_path = dest / "town.json"
    text = info_path.read_text().replace(str(template), str(dest))
    info_path.write_text(text)
    info = json.loads(text)
    assert str(dest) in info["legacy_url"], info
    return dest


@pytest.fixture
def town_dir(town_template, tmp_path) -> Path:
    return copy_town(town_template, tmp_path / "towns" / "44190")


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory):
    """A real OpenSSH sshd on a loopback port with throw-away host and user keys."""
    from demo.sshd import SSHDError, loopback_sshd

    try:
        with loopback_sshd(tmp_path_factory.mktemp("sshd") / "sshd") as server:
            yield server
    except SSHDError as exc:
        unreachable("OpenSSH sshd on loopback", exc)


# ------------------------------------------------------------------ Chromium
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright (no browser download); with CI=true
    a missing browser is a failure, not a skip."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unreachable("playwright (pip install playwright)", ImportError("playwright"))
    exe = os.environ.get("GUICHET_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).exists():
        unreachable(f"Chromium at {exe} (apt-get install chromium)", FileNotFoundError(exe))
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
