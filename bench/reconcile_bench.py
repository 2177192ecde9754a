"""Benchmark of the reconciliation (not a test): prints figures, asserts nothing.

For each town (default: the default town, seed 0, and a 10x town with another seed), in
a fresh child process so peak RSS is its own: generate the town and sync it once (both
cached under bench/out/rec_<households>_<seed>/), then reconcile it — identity resolution,
payment allocation, every rule, the writes — and score the result against the town's
ground truth (precision and recall per defect class, identity links, allocations).

    python bench/reconcile_bench.py                       # 3000 (seed 0) and 30000 (seed 3)
    python bench/reconcile_bench.py --town 300:1 --town 3000:5
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


def _synced_town(households: int, seed: int) -> tuple[str, Path, float]:
    """(warehouse URL, town folder, sync seconds or 0 when cached)."""
    from connectors.warehouse import make_engine
    from demo.generate import generate_town
    from pipelines.config import parse_config
    from pipelines.steps import run_town

    base = OUT / f"rec_{households}_{seed}"
    town_dir, wh = base / "44190", base / "warehouse.sqlite"
    url = f"sqlite:///{wh}"
    if (base / "synced").exists():
        return url, town_dir, 0.0
    shutil.rmtree(base, ignore_errors=True)
    generate_town(town_dir, households=households, seed=seed)
    info = json.loads((town_dir / "town.json").read_text())
    cfg = parse_config({"warehouse": {"url": url, "landing_dir": str(base / "landing")},
                        "towns": {"44190": {k: info[k] for k in
                                            ("legacy_url", "portal_base", "treasury_root")}}})
    engine = make_engine(url)
    t0 = time.perf_counter()
    run_town(cfg, "44190", engine)
    secs = time.perf_counter() - t0
    engine.dispose()
    (base / "synced").touch()
    return url, town_dir, secs


def measure(households: int, seed: int, q) -> None:
    from connectors.warehouse import make_engine
    from pipelines import loading
    from pipelines.reconcile import evaluate
    from pipelines.reconcile.data import TownData
    from pipelines.reconcile.run import reconcile_town
    from quality.frames import read_table

    url, town_dir, sync_s = _synced_town(households, seed)
    rss_before = peak_rss_mb()
    engine = make_engine(url)
    td = TownData(engine, "44190")
    t0 = time.perf_counter()
    for name in ("household", "person", "membership", "portal_account", "portal_person",
                 "reservation", "attendance", "portal_booking", "invoice", "invoice_line",
                 "payment", "bank_operation", "bank_statement", "document", "enrolment",
                 "procedure_request", "activity"):
        td[name]
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = reconcile_town(engine, "44190", loading.start_run(engine, "44190"), td=td)
    total_s = time.perf_counter() - t0
    truth = evaluate.read_truth(town_dir / "truth.jsonl")
    with engine.connect() as conn:
        classes = evaluate.class_scores(truth, evaluate.found_from_flags(conn, "44190"))
        links = evaluate.identity_scores(truth, read_table(conn, "44190", "crosswalk"))
        alloc = evaluate.allocation_scores(truth, read_table(conn, "44190", "allocation"))
    engine.dispose()
    q.put({"households": households, "seed": seed, "sync_s": sync_s, "read_s": read_s,
           "total_s": total_s, "seconds": res.seconds, "money": res.money,
           "conserved": res.money_conserved,
           "classes": {k: s.as_dict() for k, s in classes.items()},
           "links": {k: s.as_dict() for k, s in links.items()}, "alloc": alloc,
           "rss_before_mb": rss_before, "peak_rss_mb": peak_rss_mb()})


def report(r: dict) -> None:
    print(f"\n== town of {r['households']:,} households, seed {r['seed']}")
    if r["sync_s"]:
        print(f"  generated and synced once in {r['sync_s']:.1f} s (cached afterwards)")
    s = r["seconds"]
    rules = sum(v for k, v in s.items() if k.startswith("rec."))
    print(f"  reading the core tables {r['read_s']:.1f} s; reconciliation {r['total_s']:.1f} s: "
          f"identity resolution {s.get('identity', 0):.1f} s, allocation "
          f"{s.get('allocation', 0):.1f} s, rules {rules:.1f} s, writes {s.get('write', 0):.1f} s")
    print(f"  peak RSS {r['peak_rss_mb']:.0f} MiB (after the sync step: {r['rss_before_mb']:.0f})")
    print(f"  {'class':40s} {'truth':>6} {'found':>6} {'prec.':>7} {'recall':>7} "
          f"{'unseen':>6}")
    for k, c in r["classes"].items():
        mark = "" if c["truth"] == 0 or (c["precision"] >= 0.99 and c["recall"] >= 0.97) \
            else "  < target"
        print(f"  {k:40s} {c['truth']:6d} {c['found']:6d} {c['precision']:7.4f} "
              f"{c['recall']:7.4f} {c['not_counted']:6d}{mark}")
    for k, c in r["links"].items():
        print(f"  {'link ' + k:40s} {c['truth']:6d} {c['found']:6d} {c['precision']:7.4f} "
              f"{c['recall']:7.4f}")
    a, m = r["alloc"], r["money"]
    print(f"  allocations: cents to the right invoice recall {a['cent_recall']:.4f}, precision "
          f"{a['cent_precision']:.4f}; money received {m.get('received_cents', 0):,} = allocated "
          f"{m.get('allocated_cents', 0):,} + unallocated {m.get('unallocated_cents', 0):,} "
          f"cents: {'conserved' if r['conserved'] else 'NOT conserved'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--town", action="append", metavar="HOUSEHOLDS:SEED",
                    help="a town size and seed (repeatable); default 3000:0 and 30000:3")
    args = ap.parse_args()
    towns = [tuple(int(x) for x in t.split(":")) for t in (args.town or ["3000:0", "30000:3"])]
    OUT.mkdir(parents=True, exist_ok=True)
    for n, seed in towns:
        report(run_child(measure, n, seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
