"""The payment office's drop over SFTP (paramiko), with the server's host key pinned.

The host key must be in the configured known_hosts file: an unknown or changed
key is a refusal (``RejectPolicy``), never an automatic addition. Key
authentication only. Remote files are only read, never deleted or renamed.
"""

from __future__ import annotations

import datetime as dt
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from connectors.treasury import DropFile, parse_sidecar


class SFTPError(Exception):
    pass


def parse_sftp_url(url: str) -> tuple[str, int, str, str]:
    u = urlparse(url)
    if u.scheme != "sftp" or not u.hostname or not u.username:
        raise ValueError(f"expected sftp://user@host[:port]/path, got {url!r}")
    return u.hostname, u.port or 22, u.username, unquote(u.path) or "/"


class SFTPDrop:
    """``sftp://user@host:port/path`` where ``path`` contains ``outgoing/``."""

    def __init__(self, url: str, *, key_file: str, known_hosts: str, timeout: float = 15.0):
        self.host, self.port, self.user, self.root = parse_sftp_url(url)
        self.key_file = key_file
        self.known_hosts = known_hosts
        self.timeout = timeout

    def _connect(self):
        import paramiko

        client = paramiko.SSHClient()
        if not Path(self.known_hosts).exists():
            raise SFTPError(f"known_hosts file {self.known_hosts} does not exist: the server's "
                            "host key must be pinned before connecting")
        client.load_host_keys(self.known_hosts)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(self.host, port=self.port, username=self.user,
                           key_filename=self.key_file, timeout=self.timeout,
                           allow_agent=False, look_for_keys=False)
        except paramiko.BadHostKeyException as exc:
            raise SFTPError(f"host key of {self.host}:{self.port} has CHANGED (expected the one "
                            f"pinned in {self.known_hosts}); refusing to connect") from exc
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise SFTPError(f"host {self.host}:{self.port} is not pinned in "
                                f"{self.known_hosts}; refusing to connect") from exc
            raise SFTPError(f"SFTP connection to {self.host}:{self.port} failed: {exc}") from exc
        return client

    def files(self, since: dt.date | None) -> Iterator[DropFile]:
        client = self._connect()
        try:
            sftp = client.open_sftp()
            base = f"{self.root.rstrip('/')}/outgoing"
            for day, folder in self._days(sftp, base, since):
                entries = sorted(sftp.listdir_attr(folder), key=lambda a: a.filename)
                names = {a.filename for a in entries}
                for a in entries:
                    name = a.filename
                    if not stat.S_ISREG(a.st_mode or 0) or name.endswith((".part", ".sha256")):
                        continue
                    with sftp.open(f"{folder}/{name}", "rb") as fh:
                        fh.prefetch()
                        data = fh.read()
                    expected = None
                    if name + ".sha256" in names:
                        with sftp.open(f"{folder}/{name}.sha256", "rb") as fh:
                            expected = parse_sidecar(fh.read().decode("utf-8", "replace"), name)
                    yield DropFile(day, name, data, expected)
        finally:
            client.close()

    @staticmethod
    def _days(sftp, base: str, since: dt.date | None):
        def dirs(path):
            try:
                return sorted(a.filename for a in sftp.listdir_attr(path)
                              if stat.S_ISDIR(a.st_mode or 0))
            except FileNotFoundError:
                return []

        for y in dirs(base):
            if not re.fullmatch(r"\d{4}", y):
                continue
            for m in dirs(f"{base}/{y}"):
                for d in dirs(f"{base}/{y}/{m}"):
                    try:
                        day = dt.date(int(y), int(m), int(d))
                    except ValueError:
                        continue
                    if since is None or day >= since:
                        yield day, f"{base}/{y}/{m}/{d}"
