"""Files that the payment office drops during the day launch the payment part of the sync."""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd
import sqlalchemy as sa

from connectors.treasury import open_drop
from pipelines import loading
from pipelines.config import TownConfig
from pipelines.steps import TREASURY

# The closed sub-graph that loads payments: the drop, the portal's online payments
# (the other input of core_payment) and the three payment core tables.
PAYMENT_ASSETS = ["raw_treasury_files", "stg_treasury_files", "raw_portal_online_payments",
                  "stg_portal_online_payments", "core_payment", "core_bank_statement",
                  "core_bank_operation"]


def pending_files(town: TownConfig, engine: sa.Engine) -> list[str]:
    """SHA-256 of the files in the drop (since the watermark day) not taken yet."""
    wm = loading.get_watermark(engine, town.code, TREASURY, "files")
    since = dt.date.fromisoformat(wm) if wm else None
    with engine.connect() as conn:
        known = set(pd.read_sql(sa.text("SELECT sha256 FROM treasury_file WHERE town = :t"),
                                conn, params={"t": town.code})["sha256"])
    drop = open_drop(town.treasury_root, key_file=town.treasury_key_file,
                     known_hosts=town.treasury_known_hosts)
    return sorted({f.sha256 for f in drop.files(since)} - known)


def run_key(code: str, shas: list[str]) -> str:
    """One run per set of new files: the same files never launch two runs."""
    return f"{code}-" + hashlib.sha256("".join(shas).encode()).hexdigest()[:16]
