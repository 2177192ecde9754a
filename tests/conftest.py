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
    import getpass
    import socket
    import subprocess
    import time

    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists():
        unreachable("OpenSSH server (install openssh-server)", FileNotFoundError(sshd))
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                       check=True)
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
        f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n")
    proc = subprocess.Popen([sshd, "-D", "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log")])
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        unreachable("sshd on loopback", RuntimeError((d / "sshd.log").read_text()))
    host_pub = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    try:
        yield {"port": port, "user": getpass.getuser(), "key_file": str(d / "user_key"),
               "known_hosts": str(d / "known_hosts"), "dir": d}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
