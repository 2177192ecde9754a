"""The report marts: warehouse tables a BI tool reads directly, rebuilt for a whole town
every night, and the helpers the three reports share.

Each report module computes its own marts from the core tables (``finance.marts``,
``attendance.marts``, ``usage.marts``: mart name -> DataFrame); ``build_marts`` writes
them all in **one transaction** (the town's rows deleted, then bulk-inserted), so a
reader never sees half a night. The reports then read the marts back for the months
asked (``read_mart``). Heavy tables (reservations, attendance, invoice lines) are reduced
by SQL ``GROUP BY`` in the database: memory stays small on the 10x town.
"""

from __future__ import annotations

import datetime as dt
import importlib
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from pipelines.bulk import bulk_insert
from pipelines.loading import read_current
from pipelines.reconcile.data import TownData
from schemas.fields import FIELDS
from schemas.tables import BY_NAME

PARIS = ZoneInfo("Europe/Paris")
REPORTS = ("finance", "attendance", "usage")
#: service code of money that no line's activity explains (invoice without lines...)
OTHER_SERVICE = "AUTRE"


@dataclass
class Built:
    """What a night's mart build wrote."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    reference_day: dt.date | None = None


# ------------------------------------------------------------------ building

def build_marts(engine: sa.Engine, town: str, *, service_levels: dict | None = None) -> Built:
    """Compute every mart of the town and replace its rows, in one transaction."""
    td = TownData(engine, town)
    if service_levels:
        td.memo["service_levels"] = dict(service_levels)
    out = Built(reference_day=reference_day(td))
    frames: dict[str, pd.DataFrame] = {}
    for kind in REPORTS:
        t0 = time.perf_counter()
        frames.update(importlib.import_module(f"pipelines.reports.{kind}").marts(td))
        out.seconds[kind] = round(time.perf_counter() - t0, 2)
        td.frames.clear()  # never hold more than one report's core tables
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for name, df in frames.items():
            out.rows[name] = replace_town_rows(conn, name, town, df)
    out.seconds["write"] = round(time.perf_counter() - t0, 2)
    return out


def replace_town_rows(conn: sa.Connection, name: str, town: str, df: pd.DataFrame) -> int:
    """Delete the town's rows of a mart and insert ``df`` (the mart's columns but town)."""
    cols = BY_NAME[name].column_names
    df = df.copy()
    df.insert(0, "town", town)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: the computed frame lacks {missing}")
    conn.execute(sa.text(f"DELETE FROM {name} WHERE town = :t"), {"t": town})
    bulk_insert(conn, name, df[cols])
    return len(df)


# ------------------------------------------------------------------ reference day

def reference_day(td: TownData) -> dt.date:
    """The reference instant's calendar day in Europe/Paris."""
    return td.now().tz_localize("UTC").tz_convert(PARIS).date()


# ------------------------------------------------------------------ reading back

def read_mart(engine: sa.Engine, name: str, town: str, *, months: list[str] | None = None,
              month_column: str = "month") -> pd.DataFrame:
    """A mart's rows of a town (only ``months`` when given), as ``read_current`` types
    them, then in the reports' conventions: integers int64 (nullable ``Int64`` only when
    the column holds NULLs), dates ``datetime.date``, text and flags plain Python values
    (None for NULL)."""
    where = (f"{month_column} IN ({', '.join('?' for _ in months)})", list(months)) \
        if months else None
    with engine.connect() as conn:
        df = read_current(conn, town, name, where=where)
    for c in df.columns:
        kind = FIELDS[c].type
        if kind == "integer":
            if not df[c].isna().any():
                df[c] = df[c].astype("int64")
        elif kind == "date":
            df[c] = df[c].dt.date
        elif kind in ("string", "json", "boolean"):
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df.reset_index(drop=True)


NO_DATA = ("Aucune donnée sur la période demandée (vérifier les mois, ou que la "
           "synchronisation de nuit a construit les tables de rapport de la commune).")


def town_name(town: str) -> str:
    """The town's name from the configuration in force, else its INSEE code."""
    try:
        from pipelines.config import load_config

        return load_config().town(town).name
    except Exception:  # noqa: BLE001 - a report without a configuration keeps the code
        return town


# ------------------------------------------------------------------ calendar

def month_of(days: pd.Series) -> pd.Series:
    """``YYYY-MM`` of each day (NaT -> None)."""
    d = pd.to_datetime(days)
    return d.dt.strftime("%Y-%m").where(d.notna(), None)


def week_of(days: pd.Series) -> pd.Series:
    """ISO week ``YYYY-Www`` of each day."""
    d = pd.to_datetime(days)
    iso = d.dt.isocalendar()
    return (iso["year"].astype(str) + "-W" + iso["week"].astype(int).map("{:02d}".format)
            ).where(d.notna(), None)


def week_start(days: pd.Series) -> pd.Series:
    """The Monday of each day's ISO week."""
    d = pd.to_datetime(days)
    return (d - pd.to_timedelta(d.dt.day_of_week, unit="D")).dt.normalize()


def month_bounds(months: list[str]) -> tuple[dt.date, dt.date]:
    """First and last day covered by the list of ``YYYY-MM`` months (sorted)."""
    first = pd.Period(months[0], "M")
    last = pd.Period(months[-1], "M")
    return first.start_time.date(), last.end_time.date()


# ------------------------------------------------------------------ money

def spread(shares: pd.DataFrame, amounts: pd.DataFrame, *, key: str, part: str,
           item: str) -> pd.DataFrame:
    """Split each key's amounts over its parts prorata the parts' weights, in cents.

    ``shares``: (key, part, weight >= 0), every key with a positive total weight;
    ``amounts``: (key, item, cents >= 0) in the order the items are laid out. The key's
    total T is laid out as T cents in a row; part p owns the cents
    ``[round(T*W<p/W), round(T*W<=p/W))`` (cumulative rounding), item i owns
    ``[sum of the items before it, + its cents)``; each (part, item) receives the
    overlap. So every cent goes to exactly one part and one item: the parts of an item
    add up to the item, the items of a part to the part's share, with no cent lost or
    invented, and each share is within one cent of the exact prorata.
    Returns (key, part, item, cents) for the overlaps > 0.
    """
    if shares.empty or amounts.empty:
        return pd.DataFrame({key: [], part: [], item: [], "cents": []})
    sh = shares[[key, part, "weight"]].sort_values([key, part], kind="stable")
    w = sh["weight"].astype("int64").clip(lower=0)
    cum = w.groupby(sh[key]).cumsum()
    total_w = w.groupby(sh[key]).transform("sum")
    am = amounts[[key, item, "cents"]].copy()
    am["cents"] = am["cents"].astype("int64")
    am["c_end"] = am.groupby(key)["cents"].cumsum()
    am["c_start"] = am["c_end"] - am["cents"]
    total = am.groupby(key)["cents"].sum()
    t = sh[key].map(total).fillna(0).astype("int64")
    sh = sh.assign(p_end=(2 * t * cum + total_w) // (2 * total_w))
    sh["p_start"] = sh.groupby(key)["p_end"].shift(1, fill_value=0)
    m = sh[[key, part, "p_start", "p_end"]].merge(am[[key, item, "c_start", "c_end"]], on=key)
    lo = m[["p_start", "c_start"]].max(axis=1)
    hi = m[["p_end", "c_end"]].min(axis=1)
    m["cents"] = (hi - lo).clip(lower=0).astype("int64")
    return m.loc[m["cents"] > 0, [key, part, item, "cents"]].reset_index(drop=True)


def ratio(num, den):
    """num / den as a float, NaN when den is 0 (a rate with nothing to rate)."""
    num = pd.Series(num, dtype="float64") if not isinstance(num, pd.Series) else num
    den = pd.Series(den, dtype="float64") if not isinstance(den, pd.Series) else den
    return (num.astype("float64") / den.astype("float64").where(den != 0)).astype("float64")


def euros_fr(cents) -> str:
    """Cents as the town writes an amount (``123 456,78 €``)."""
    from pipelines.reports.formatting import euros

    return euros(int(cents))
