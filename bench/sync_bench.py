"""Benchmark of the nightly sync (not a test): prints figures, asserts nothing.

For each town size (default: the default town and a 10x town): generate the town
(cached under bench/out/), run a full sync into an empty SQLite warehouse, then
bulk-insert the same source rows raw into the same warehouse (so the ratio sync / raw
insert is measured on the same machine at the same moment), advance the town one day
and run the incremental sync. Each phase runs in its own child process, so each peak
RSS is that phase's own (the raw insert holds every row at once; the generator and
the advance hold the town's state).

    python bench/sync_bench.py                 # 3000 and 30000 households
    python bench/sync_bench.py --households 300 --warehouse postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from children import peak_rss_mb, run_child

OUT = ROOT / "bench" / "out"


def _raw_insert_seconds(engine, cfg, code) -> tuple[float, int]:
    """Bulk-insert every source row as extracted (legacy rows, portal lines, payment rows)."""
    import pandas as pd
    import sqlalchemy as sa

    from connectors.legacy import LegacyDatabase
    from connectors.portal import open_portal
    from pipelines.steps import LEGACY_ORDER
    from schemas.portal import PORTAL_COLLECTIONS

    town = cfg.town(code)
    db = LegacyDatabase(town.legacy_url)
    frames = {e: pd.concat(list(db.read(e)), ignore_index=True) for e in LEGACY_ORDER}
    db.dispose()
    portal = open_portal(town.portal_base)
    lines = {c: [(i.line_no, i.payload) for i in portal.items(c, None)] for c in PORTAL_COLLECTIONS}
    total = sum(len(f) for f in frames.values()) + sum(len(v) for v in lines.values())
    with engine.begin() as conn:
        for e, f in frames.items():
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS bench_raw_{e.lower()}")
            cols = ", ".join(f"{c} TEXT" for c in f.columns)
            conn.exec_driver_sql(f"CREATE TABLE bench_raw_{e.lower()} ({cols})")
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_raw_portal")
        conn.exec_driver_sql("CREATE TABLE bench_raw_portal (coll TEXT, line_no BIGINT, payload TEXT)")
    tuples = {e: [tuple(None if v is None else str(v) for v in r)
                  for r in f.itertuples(index=False)] for e, f in frames.items()}
    portal_rows = [(c, n, p) for c, ls in lines.items() for n, p in ls]
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for e, f in frames.items():
            _insert(conn, f"bench_raw_{e.lower()}", len(f.columns), tuples[e])
        _insert(conn, "bench_raw_portal", 3, portal_rows)
    secs = time.perf_counter() - t0
    with engine.begin() as conn:
        for e in frames:
            conn.exec_driver_sql(f"DROP TABLE bench_raw_{e.lower()}")
        conn.exec_driver_sql("DROP TABLE bench_raw_portal")
    del sa
    return secs, total


def _insert(conn, table: str, width: int, rows: list[tuple]) -> None:
    """The fastest plain insert each backend has, as the sync's own bulk writes use:
    ``executemany`` on SQLite, ``COPY`` on PostgreSQL."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"INSERT INTO {table} VALUES ({', '.join('?' * width)})", rows)
        return
    with conn.connection.driver_connection.cursor() as cur, \
            cur.copy(f"COPY {table} FROM STDIN") as copy:
        for r in rows:
            copy.write_row(r)


FLOOR = "bench_floor_"


def _write_floor_seconds(engine, code: str) -> dict:
    """Time to write what the full sync wrote, as it is stored, into empty copies of its
    tables (same columns, keys and indexes): every ``raw_record`` version (one transaction
    per source entity, as the sync lands them) and every core row of the town (one per
    table), a chunk at a time. No source read, no parsing, hashing or comparing: what
    remains is what the design costs to write."""
    from pipelines import bulk
    from pipelines.loading import iter_frames
    from pipelines.steps import core_sources

    out = {"raw_s": 0.0, "core_s": 0.0, "raw_rows": 0, "core_rows": 0}
    with engine.connect() as conn:  # the sync lands raw versions one source entity at a time
        entities = conn.exec_driver_sql(bulk.for_driver(
            conn, "SELECT DISTINCT source, entity FROM raw_record WHERE town = ?"), (code,)).all()
    parts = [("raw_record", "raw", "source = ? AND entity = ?", [s, e]) for s, e in entities]
    parts += [(name, "core", "1 = 1", []) for name in core_sources()]
    tables = ["raw_record", *core_sources()]
    for name in tables:
        with engine.begin() as conn:
            _shadow(conn, name)
    for name, layer, cond, params in parts:
        with engine.connect() as reader, engine.connect() as writer:
            tx = writer.begin()
            for chunk in iter_frames(reader, f"SELECT * FROM {name} WHERE town = ? AND {cond}",
                                     [code, *params], bulk.CHUNK_ROWS):
                rows = list(chunk.itertuples(index=False, name=None))
                t0 = time.perf_counter()
                _insert(writer, FLOOR + name, len(chunk.columns), rows)
                out[f"{layer}_s"] += time.perf_counter() - t0
                out[f"{layer}_rows"] += len(rows)
            t0 = time.perf_counter()
            tx.commit()
            out[f"{layer}_s"] += time.perf_counter() - t0
    with engine.begin() as conn:
        for name in tables:
            conn.exec_driver_sql(f"DROP TABLE {FLOOR}{name}")
    return out


def _shadow(conn, name: str) -> None:
    """An empty copy of table ``name`` with its keys and indexes."""
    import re

    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {FLOOR}{name}")
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql(f"CREATE TABLE {FLOOR}{name} (LIKE {name} INCLUDING ALL)")
        return
    ddl = conn.exec_driver_sql("SELECT type, sql FROM sqlite_master WHERE tbl_name = ? "
                               "AND sql IS NOT NULL ORDER BY type DESC", (name,)).all()
    for kind, sql in ddl:  # the table first, then its indexes
        if kind == "table":
            sql = re.sub(rf"^CREATE TABLE \"?{name}\"?", f"CREATE TABLE {FLOOR}{name}", sql)
        else:
            sql = re.sub(rf"^CREATE (UNIQUE )?INDEX \"?(\w+)\"? ON \"?{name}\"?",
                         rf"CREATE \1INDEX {FLOOR}\2 ON {FLOOR}{name}", sql)
        conn.exec_driver_sql(sql)


def _prepare(households: int, warehouse: str | None, seed: int) -> dict:
    """The town (generated once into a cached template, copied fresh) and an empty
    warehouse; returns what the phases need."""
    from connectors.warehouse import make_engine
    from demo.generate import generate_town

    base = OUT / f"town_{households}_{seed}"
    town_dir = base / "44190"
    t0 = time.perf_counter()
    if not (base / "template" / "town.json").exists():
        shutil.rmtree(base / "template", ignore_errors=True)
        generate_town(base / "template", households=households, seed=seed)
    gen = time.perf_counter() - t0
    shutil.rmtree(town_dir, ignore_errors=True)
    shutil.copytree(base / "template", town_dir)
    info_text = (town_dir / "town.json").read_text().replace(str(base / "template"), str(town_dir))
    (town_dir / "town.json").write_text(info_text)
    info = json.loads(info_text)
    wh_file = base / "warehouse.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(wh_file) + suffix).unlink(missing_ok=True)
    shutil.rmtree(base / "landing", ignore_errors=True)
    url = warehouse or f"sqlite:///{wh_file}"
    if warehouse:  # start from an empty PostgreSQL warehouse too (created if missing)
        from demo.legacy_writer import ensure_database
        from schemas.tables import METADATA

        ensure_database(url)
        engine = make_engine(url)
        METADATA.drop_all(engine)
        METADATA.create_all(engine)
        engine.dispose()
    return {"generate_s": gen, "url": url, "town_dir": str(town_dir),
            "config": {"warehouse": {"url": url, "landing_dir": str(base / "landing")},
                       "towns": {"44190": {k: info[k] for k in
                                           ("legacy_url", "portal_base", "treasury_root")}}}}


def phase(name: str, ctx_: dict, q) -> None:
    """One phase in its own process, so its peak RSS is its own."""
    from connectors.warehouse import make_engine
    from pipelines.config import parse_config
    from pipelines.steps import run_town

    cfg = parse_config(ctx_["config"])
    out: dict = {}
    t0 = time.perf_counter()
    if name == "advance":
        from demo.advance import advance_town

        advance_town(Path(ctx_["town_dir"]), days=1)
    else:
        engine = make_engine(ctx_["url"])
        if name == "raw":
            out["raw_s"], out["raw_rows"] = _raw_insert_seconds(engine, cfg, "44190")
        elif name == "floor":
            out["floor"] = _write_floor_seconds(engine, "44190")
        else:  # full or incremental sync
            out["report"] = run_town(cfg, "44190", engine)
        engine.dispose()
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss_mb"] = peak_rss_mb()
    q.put(out)


def measure(households: int, warehouse: str | None, seed: int, full_only: bool = False) -> dict:
    prep = run_child(_prepare_child, households, warehouse, seed)
    got = {name: run_child(phase, name, prep)
           for name in (("full",) if full_only
                         else ("full", "raw", "floor", "advance", "incremental"))}
    r = {"households": households, "generate_s": prep["generate_s"], "warehouse": prep["url"],
         "full_s": got["full"]["seconds"], "full": got["full"]["report"],
         "rss": {k: v["peak_rss_mb"] for k, v in got.items()},
         "peak_rss_mb": max(v["peak_rss_mb"] for k, v in got.items()
                            if k in ("full", "incremental"))}
    if not full_only:
        r.update(raw_s=got["raw"]["raw_s"], raw_rows=got["raw"]["raw_rows"],
                 floor=got["floor"]["floor"],
                 advance_s=got["advance"]["seconds"], incremental_s=got["incremental"]["seconds"],
                 incremental=got["incremental"]["report"])
    return r


def _prepare_child(households, warehouse, seed, q) -> None:
    q.put(_prepare(households, warehouse, seed))


def _stage_table(r: dict) -> list[str]:
    lines = []
    read = {k: v["read"] for k, v in r["full"]["extract"].items()}
    ex = sum(v["seconds"] for v in r["full"]["extract"].values())
    st = sum(v["seconds"] for v in r["full"]["stage"].values())
    co = sum(v["seconds"] for v in r["full"]["core"].values())
    rows = sum(read.values())
    lines.append(f"  rows read {rows:,}: extract+raw {ex:.1f} s ({rows / max(ex, 1e-9):,.0f} rows/s), "
                 f"stage {st:.1f} s ({rows / max(st, 1e-9):,.0f} rows/s), "
                 f"core {co:.1f} s ({rows / max(co, 1e-9):,.0f} rows/s)")
    big = sorted(read.items(), key=lambda kv: -kv[1])[:5]
    for k, n in big:
        e = r["full"]["extract"][k]["seconds"]
        s = r["full"]["stage"][k]["seconds"]
        lines.append(f"    {k:<28} {n:>9,} rows  extract {e:5.2f} s  stage {s:5.2f} s")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--households", type=int, action="append")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warehouse", help="warehouse URL (default: a fresh SQLite file)")
    ap.add_argument("--full-only", action="store_true",
                    help="only the full sync (no raw insert, advance or incremental sync)")
    args = ap.parse_args()
    sizes = args.households or [3000, 30000]
    OUT.mkdir(parents=True, exist_ok=True)
    results = []
    for n in sizes:
        r = measure(n, args.warehouse, args.seed, args.full_only)
        results.append(r)
        print(f"\n== town of {n:,} households ({r['warehouse'].split(':')[0]} warehouse)")
        print(f"  generate {r['generate_s']:.1f} s (cached when 0)")
        if args.full_only:
            print(f"  full sync {r['full_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MiB")
            for line in _stage_table(r):
                print(line)
            continue
        print(f"  full sync {r['full_s']:.1f} s; raw insert of the same {r['raw_rows']:,} source "
              f"rows {r['raw_s']:.1f} s; ratio {r['full_s'] / r['raw_s']:.2f}x")
        f = r["floor"]
        floor_s = f["raw_s"] + f["core_s"]
        print(f"  write floor (what the sync wrote, as stored, into empty copies of its tables): "
              f"{floor_s:.1f} s = raw layer {f['raw_rows']:,} rows {f['raw_s']:.1f} s + core "
              f"{f['core_rows']:,} rows {f['core_s']:.1f} s; floor / raw insert "
              f"{floor_s / r['raw_s']:.2f}x, full sync / floor {r['full_s'] / floor_s:.2f}x")
        for line in _stage_table(r):
            print(line)
        print(f"  one-day incremental sync {r['incremental_s']:.1f} s (advance took {r['advance_s']:.1f} s)")
        rss = r["rss"]
        print(f"  peak RSS, each phase in its own process: full sync {rss['full']:.0f} MiB, "
              f"incremental sync {rss['incremental']:.0f} MiB (raw insert {rss['raw']:.0f}, "
              f"write floor {rss['floor']:.0f}, "
              f"advance {rss['advance']:.0f})")
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(f"\nscaling {b['households'] / a['households']:.0f}x households: full sync "
              f"{b['full_s'] / a['full_s']:.1f}x time, peak RSS {b['peak_rss_mb'] / a['peak_rss_mb']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
