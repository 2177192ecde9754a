"""The payment office's drop: dated folders ``outgoing/YYYY/MM/DD/`` of files.

A local folder here (the SFTP transport is ``connectors.treasury_sftp``).
``*.part`` files are never read; a ``NAME.sha256`` sidecar, when present, is
checked against the content. Files are listed from a folder day on, so the
watermark is a day and files that arrive late in that day are still seen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DAY_DIR = re.compile(r"^\d{4}/\d{2}/\d{2}$")


@dataclass
class DropFile:
    folder_day: dt.date
    name: str
    data: bytes
    sidecar: str | None  # expected sha256 hex from NAME.sha256, if any

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def sidecar_mismatch(self) -> str | None:
        """Why the sidecar disagrees with the content, or None."""
        if self.sidecar is None:
            return None
        if self.sidecar.lower() != self.sha256:
            return (f"sha256 sidecar says {self.sidecar[:16]}..., content is "
                    f"{self.sha256[:16]}...: file damaged or incomplete")
        return None


def parse_sidecar(text: str, name: str) -> str | None:
    """The hex digest of a ``sha256sum`` line naming ``name`` (or the only line)."""
    for line in text.splitlines():
        parts = line.strip().split()
        if (parts and re.fullmatch(r"[0-9a-fA-F]{64}", parts[0])
                and (len(parts) == 1 or parts[-1].lstrip("*") == name)):
            return parts[0]
    return None


class LocalDrop:
    """The drop as a local folder containing ``outgoing/``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def days(self, since: dt.date | None) -> list[dt.date]:
        out = []
        base = self.root / "outgoing"
        if not base.is_dir():
            return out
        for y in sorted(p for p in base.iterdir() if p.is_dir()):
            for m in sorted(p for p in y.iterdir() if p.is_dir()):
                for d in sorted(p for p in m.iterdir() if p.is_dir()):
                    try:
                        day = dt.date(int(y.name), int(m.name), int(d.name))
                    except ValueError:
                        continue
                    if since is None or day >= since:
                        out.append(day)
        return out

    def files(self, since: dt.date | None) -> Iterator[DropFile]:
        for day in self.days(since):
            folder = self.root / "outgoing" / f"{day:%Y/%m/%d}"
            for p in sorted(folder.iterdir()):
                if not p.is_file() or p.name.endswith(".part") or p.name.endswith(".sha256"):
                    continue
                side = folder / (p.name + ".sha256")
                expected = (parse_sidecar(side.read_text("utf-8", "replace"), p.name)
                            if side.exists() else None)
                yield DropFile(day, p.name, p.read_bytes(), expected)


def open_drop(root: str, *, key_file: str | None = None, known_hosts: str | None = None):
    """The drop at ``root``: a local folder, or ``sftp://user@host:port/path``."""
    if root.startswith("sftp://"):
        from connectors.treasury_sftp import SFTPDrop

        if not key_file or not known_hosts:
            raise ValueError("an sftp:// treasury needs treasury_key_file and treasury_known_hosts")
        return SFTPDrop(root, key_file=key_file, known_hosts=known_hosts)
    return LocalDrop(root)
