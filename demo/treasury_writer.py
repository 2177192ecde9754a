"""Drops payment-office files into ``treasury/outgoing/YYYY/MM/DD/`` the way the SFTP
server receives them: written as ``NAME.part`` then renamed, optionally followed by a
``NAME.sha256`` sidecar (``<hex>  NAME``)."""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path


def day_folder(d: date) -> str:
    return f"outgoing/{d.year:04d}/{d.month:02d}/{d.day:02d}"


class TreasurySink:
    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "outgoing").mkdir(parents=True, exist_ok=True)
        self.counts: dict[str, int] = {}

    def rel(self, d: date, name: str) -> str:
        return f"{day_folder(d)}/{name}"

    def _count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def write(self, rel: str, data: bytes, kind: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        with open(part, "wb") as fh:
            fh.write(data)
        os.replace(part, path)
        self._count(kind)

    def write_sidecar(self, rel: str, data: bytes, correct: bool = True) -> str:
        path = self.root / rel
        digest = hashlib.sha256(data if correct else data + b"\n").hexdigest()
        side = path.with_name(path.name + ".sha256")
        with open(side, "w", encoding="ascii", newline="\n") as fh:
            fh.write(f"{digest}  {path.name}\n")
        self._count("sha256")
        return rel + ".sha256"

    def write_stale_part(self, rel: str, data: bytes) -> str:
        path = self.root / rel
        part = path.with_name(path.name + ".part")
        with open(part, "wb") as fh:
            fh.write(data[: max(1, len(data) // 3)])
        self._count("part")
        return rel + ".part"

    def read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()
