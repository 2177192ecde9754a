"""A town's core tables, read once per reconciliation and typed for vectorised rules.

Dates become ``datetime64`` (so rules compare and subtract them without Python loops);
purged rows are left out. ``as_of`` is the instant the reconciliation judges "now" by
(documents expired, requests beyond their service level): the freshest portal activity
in the warehouse, never later than the run itself, so a town whose sources stopped
(or the simulated town, frozen at its own date) is judged at the date of its data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from pipelines.loading import read_current
from schemas.fields import FIELDS
from schemas.tables import BY_NAME


@dataclass
class TownData:
    """Lazy, cached access to a town's current core rows."""

    engine: sa.Engine | None
    town: str
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    as_of: pd.Timestamp | None = None  # naive UTC
    memo: dict = field(default_factory=dict)  # results shared by several rules

    def cached(self, key: str, fn):
        """``fn(self)`` computed once per reconciliation (e.g. the allocation)."""
        if key not in self.memo:
            self.memo[key] = fn(self)
        return self.memo[key]

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self.frames:
            if self.engine is None:
                self.frames[name] = empty(name)
            else:
                with self.engine.connect() as conn:
                    self.frames[name] = read_current(conn, self.town, name)
        return self.frames[name]

    def now(self) -> pd.Timestamp:
        if self.as_of is None:
            self.as_of = latest_activity(self)
        return self.as_of


#: tables whose freshest change says how recent the town's data is
ACTIVITY_TABLES = ("portal_booking", "procedure_request", "portal_account", "document")


def as_datetimes(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Date columns (objects of ``datetime.date``) as ``datetime64``."""
    for c in df.columns:
        f = FIELDS.get(c)
        if f is not None and f.type == "date":
            df[c] = pd.to_datetime(df[c], errors="coerce")
    return df


def empty(name: str) -> pd.DataFrame:
    return frame(name, [])


def frame(name: str, rows: list[dict]) -> pd.DataFrame:
    """A typed frame of a core table from plain dicts (tests build towns this way)."""
    from quality.frames import typed

    cols = [c for c in BY_NAME[name].data_columns if c != "town"]
    df = pd.DataFrame.from_records(rows, columns=cols)
    return as_datetimes(typed(df, name), name)


def from_frames(town: str, as_of: dt.datetime | str, **tables: list[dict]) -> TownData:
    """A ``TownData`` without a warehouse: every table from ``tables`` (or empty)."""
    td = TownData(None, town, as_of=pd.Timestamp(as_of).tz_localize(None)
                  if pd.Timestamp(as_of).tzinfo is None
                  else pd.Timestamp(as_of).tz_convert("UTC").tz_localize(None))
    for name, rows in tables.items():
        td.frames[name] = frame(name, rows)
    return td


def latest_activity(td: TownData) -> pd.Timestamp:
    """The freshest portal timestamp, capped at the current instant (naive UTC): by SQL
    ``MAX`` on a warehouse (no need to read the big portal tables), else from the frames."""
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    seen = []
    for name in ACTIVITY_TABLES:
        if td.engine is None:
            v = td[name]["source_updated_at"].max()
        else:
            with td.engine.connect() as conn:
                v = conn.execute(sa.text(f"SELECT MAX(source_updated_at) FROM {name} "
                                         "WHERE town = :t AND deleted_run_id IS NULL"),
                                 {"t": td.town}).scalar()
        if v is not None and not pd.isna(v):
            ts = pd.Timestamp(v)
            seen.append(ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts)
    return min([now, max(seen)]) if seen else now
