"""Helpers for the end-to-end tests: configure towns, sync them, read the warehouse back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import sqlalchemy as sa

from pipelines.config import parse_config
from schemas.tables import TABLES


def town_config(warehouse_url: str, town_dirs: dict[str, Path], landing: Path):
    towns = {}
    for code, d in town_dirs.items():
        info = json.loads((d / "town.json").read_text())
        towns[code] = {"name": info.get("name", code), "legacy_url": info["legacy_url"],
                       "portal_base": info["portal_base"], "treasury_root": info["treasury_root"]}
    return parse_config({"warehouse": {"url": warehouse_url, "landing_dir": str(landing)},
                         "towns": towns})


def config_file(tmp_path: Path, warehouse_url: str, town_dir: Path):
    """A guichet.toml for one town (code 44190), and the parsed configuration."""
    cfg = town_config(warehouse_url, {"44190": town_dir}, tmp_path / "landing")
    t = cfg.towns[0]
    path = tmp_path / "guichet.toml"
    path.write_text(
        f'[warehouse]\nurl = "{warehouse_url}"\nlanding_dir = "{tmp_path / "landing"}"\n'
        f'[towns.44190]\nlegacy_url = "{t.legacy_url}"\nportal_base = "{t.portal_base}"\n'
        f'treasury_root = "{t.treasury_root}"\n')
    return path, cfg


def core_digest(engine: sa.Engine, town: str | None = None, *,
                lineage: bool = True) -> dict[str, str]:
    """A byte-for-byte digest of every core table (optionally of one town); without the
    run ids of the lineage columns when two warehouses' contents are compared."""
    out = {}
    with engine.connect() as conn:
        for spec in TABLES:
            if spec.layer != "core":
                continue
            where = " WHERE town = :t" if town else ""
            order = ", ".join(spec.primary_key)
            cols = "*" if lineage else ", ".join(
                c for c in spec.column_names if not c.endswith("run_id"))
            rows = conn.execute(sa.text(f"SELECT {cols} FROM {spec.name}{where} ORDER BY {order}"),
                                {"t": town} if town else {}).all()
            h = hashlib.sha256()
            for r in rows:
                h.update(repr(tuple(r)).encode())
            out[spec.name] = f"{len(rows)}:{h.hexdigest()[:16]}"
    return out


def stats(engine: sa.Engine, town: str, run_id: str) -> dict[tuple[str, str], dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM load_stat WHERE town = :t AND run_id = :r"),
                            {"t": town, "r": run_id}).mappings().all()
    return {(r["source"], r["entity"]): dict(r) for r in rows}


def count(engine: sa.Engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def plain(value):
    """A staged cell as a plain Python value (None for every kind of missing)."""
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def row_of(staged, i: int = 0) -> dict:
    """Row ``i`` of a staging result as a dict of plain values."""
    return {c: plain(staged.rows[c].iloc[i]) for c in staged.rows.columns}


def reason_of(staged, i: int = 0) -> str:
    """The quarantine reason of rejected row ``i``."""
    assert len(staged.quarantine) > i, f"not quarantined; rows={row_of(staged)}"
    return staged.quarantine["reason"].iloc[i]
