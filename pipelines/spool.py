"""Frames spooled to local disk between the steps of a sync, chunk by chunk.

A big source table is never held whole: the extract writes each chunk it reads to
a spool, staging reads the chunks back one at a time and spools its canonical rows,
and the core load upserts those chunk by chunk. A spool is one file of pickled
DataFrames (one per chunk, dtypes kept exactly) in the run's spool folder; the
object itself is a path and two counters, so Dagster hands it between steps (and
between processes of one machine) for nothing. Spools are private to guichet and
short-lived: dropped once consumed, and with the run's folder when the run ends.
"""

from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines import bulk

#: the column a staged main table's spool carries beside its data: each row's source key
SOURCE_KEY = "_source_key"


class SpoolGone(RuntimeError):
    """A spool was read after it was dropped (a step re-run without the one before it)."""


def root(landing_dir: Path) -> Path:
    """Spools live beside the landing area (``var/spool`` by default)."""
    return Path(landing_dir).resolve().parent / "spool"


@dataclass
class Spool:
    path: Path
    rows: int = 0
    chunks_written: int = 0

    @classmethod
    def new(cls, path: Path) -> Spool:
        """An empty spool at ``path`` (what a failed attempt left there is discarded)."""
        path.unlink(missing_ok=True)
        return cls(path)

    def append(self, df: pd.DataFrame) -> None:
        """Add one chunk (an empty one too: it carries the columns). The rows are
        personal data: the folder and the file are readable by their owner only."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as fh:
            pickle.dump(df, fh, protocol=pickle.HIGHEST_PROTOCOL)
        self.rows += len(df)
        self.chunks_written += 1

    def chunks(self) -> Iterator[pd.DataFrame]:
        """The chunks in the order written."""
        if not self.chunks_written:
            return
        if not self.path.exists():
            raise SpoolGone(f"{self.path} was already consumed: run the step before this one again")
        with self.path.open("rb") as fh:
            for _ in range(self.chunks_written):
                yield pickle.load(fh)

    def drop(self) -> None:
        self.path.unlink(missing_ok=True)


def chunked(df: pd.DataFrame) -> Iterator[pd.DataFrame]:
    """``df`` in slices of ``bulk.CHUNK_ROWS`` rows (one empty slice for an empty frame)."""
    if df.empty:
        yield df
        return
    n = bulk.CHUNK_ROWS
    for i in range(0, len(df), n):
        yield df.iloc[i:i + n]


def clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def clear_stale(town_folder: Path, running: set[str]) -> None:
    """Remove what runs of a town that are no longer running left behind (a crash)."""
    if town_folder.is_dir():
        for run in town_folder.iterdir():
            if run.name not in running:
                clear(run)
