"""Identity method chosen by measurement (not a test): prints figures, asserts nothing.

One task, two methods: link every portal person to a legacy person by their names and
birth date alone (the ids the portal may carry are left out), then score the links
against the simulated town's truth (``person_link``; a duplicate of the true person
counts as right).

- guichet: ``pipelines.reconcile.linkage`` (rapidfuzz scorer with blocking, weights set
  by hand), best legacy person per portal person at or above ``PERSON_MIN``;
- Splink 5 on DuckDB: Fellegi–Sunter with u by random sampling, m by EM, term-frequency
  adjustments on names; best legacy person per portal person at match probability
  >= 0.9 (and 0.99).

Both read the same standardised records (``linkage.standardise``). The towns are those
of ``bench/reconcile_bench.py`` (run it first: bench/out/rec_<households>_<seed>/).
Splink is not a dependency of guichet: ``pip install splink==5.0.0`` to run this.

    python bench/linkage_compare.py                       # 3000 (seed 0) and 30000 (seed 3)
    python bench/linkage_compare.py --town 3000:0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from children import peak_rss_mb, run_child

OUT = ROOT / "bench" / "out"


def _inputs(households: int, seed: int):
    """(portal persons, legacy persons) standardised, and the true links."""
    from connectors.warehouse import make_engine
    from pipelines.reconcile import linkage as lk
    from pipelines.reconcile.data import TownData
    from pipelines.reconcile.evaluate import read_truth

    base = OUT / f"rec_{households}_{seed}"
    if not (base / "synced").exists():
        raise SystemExit(f"{base} is missing: run bench/reconcile_bench.py --town "
                         f"{households}:{seed} first")
    td = TownData(make_engine(f"sqlite:///{base / 'warehouse.sqlite'}"), "44190")
    pp = td["portal_person"]
    left = lk.standardise(pp.rename(columns={"portal_person_id": "rid"}))
    right = lk.standardise(td["person"].rename(columns={"person_id": "rid"}))
    truth, ok = set(), set()
    for r in read_truth(base / "44190" / "truth.jsonl"):
        if r.get("kind") == "person_link" and r.get("legacy_person_id") is not None:
            truth.add((r["person_id"], str(r["legacy_person_id"])))
            ok.add((r["person_id"], str(r["legacy_person_id"])))
            for alt in r.get("also_legacy_person_ids") or []:
                ok.add((r["person_id"], str(alt)))
    return left, right, truth, ok


def _score(links: set, truth: set, ok: set) -> dict:
    hits = {p for p, _ in links & ok}
    return {"links": len(links), "truth": len(truth), "hits": len(hits),
            "precision": round(len(hits) / len(links), 4) if links else 1.0,
            "recall": round(len(hits) / len(truth), 4) if truth else 1.0}


def _best(frame, left_col: str, right_col: str, score_col: str, at: float) -> set:
    f = frame[frame[score_col] >= at].sort_values(score_col, ascending=False, kind="stable")
    f = f.drop_duplicates(left_col)
    return {(str(a), str(int(b))) for a, b in zip(f[left_col], f[right_col])}


def run_guichet(households: int, seed: int, q) -> None:
    from pipelines.reconcile import linkage as lk

    left, right, truth, ok = _inputs(households, seed)
    t0 = time.perf_counter()
    pairs = lk.score_pairs(left, right)
    secs = time.perf_counter() - t0
    links = _best(pairs, "rid_l", "rid_r", "weight", lk.PERSON_MIN)
    q.put({"method": "guichet (rapidfuzz + blocking)", "seconds": secs, "pairs": len(pairs),
           "scores": {"best at weight >= 12": _score(links, truth, ok)},
           "peak_rss_mb": peak_rss_mb()})


def run_splink(households: int, seed: int, q) -> None:
    import logging

    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on
    from splink.comparison_level_library import CustomLevel, ElseLevel, NullLevel
    from splink.comparison_library import CustomComparison

    logging.getLogger("splink").setLevel(logging.ERROR)  # its training log, not our figures
    left, right, truth, ok = _inputs(households, seed)
    cols = ["rid", "first", "last", "birth", "bdate"]
    t0 = time.perf_counter()
    a = left[cols].astype(str).replace("", None).assign(unique_id=lambda d: "p:" + d["rid"])
    b = right[cols].astype(str).replace("", None).assign(unique_id=lambda d: "l:" + d["rid"])
    db = DuckDBAPI()
    db.duckdb_con.execute(f"SET temp_directory = '{OUT / 'splink_tmp'}'")
    sa, sb = (db.register(a, dataset_display_name="portal"),
              db.register(b, dataset_display_name="legacy"))
    last = CustomComparison(output_column_name="last_or_birth", comparison_levels=[
        NullLevel("last"),
        CustomLevel("last_l = last_r", label_for_charts="same last name"),
        CustomLevel("(last_l = birth_r OR birth_l = last_r OR birth_l = birth_r)",
                    label_for_charts="a last name is the other's birth name"),
        CustomLevel("(last_l = first_r AND first_l = last_r)",
                    label_for_charts="first and last names swapped"),
        CustomLevel("jaro_winkler_similarity(last_l, last_r) >= 0.9",
                    label_for_charts="close last names"),
        ElseLevel()])
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[cl.JaroWinklerAtThresholds("first", [0.95, 0.88])
                     .configure(term_frequency_adjustments=True),
                     last,
                     cl.LevenshteinAtThresholds("bdate", [1, 2])],
        blocking_rules_to_generate_predictions=[
            block_on("bdate"), block_on("first", "last"), block_on("first", "birth"),
            block_on("last", "first")],
        retain_intermediate_calculation_columns=False)
    linker = Linker([sa, sb], settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first", "last", "bdate")], recall=0.9)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("bdate"))
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("first", "last"))
    pred = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()
    secs = time.perf_counter() - t0
    pred = pred.assign(
        p=[x if x.startswith("p:") else y for x, y in zip(pred["unique_id_l"], pred["unique_id_r"])],
        l=[y if x.startswith("p:") else x for x, y in zip(pred["unique_id_l"], pred["unique_id_r"])])
    pred["p"] = pred["p"].str[2:]
    pred["l"] = pred["l"].str[2:].astype(float)
    scores = {f"best at p >= {t}": _score(_best(pd.DataFrame(pred), "p", "l",
                                                "match_probability", t), truth, ok)
              for t in (0.9, 0.99)}
    q.put({"method": "Splink 5 (DuckDB, EM, tf)", "seconds": secs, "pairs": len(pred),
           "scores": scores, "peak_rss_mb": peak_rss_mb()})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--town", action="append", metavar="HOUSEHOLDS:SEED")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args()
    towns = [tuple(map(int, t.split(":"))) for t in (args.town or ["3000:0", "30000:3"])]
    results = []
    for households, seed in towns:
        print(f"\n== town of {households:,} households, seed {seed}: portal persons -> "
              "legacy persons by names and birth date")
        for target in (run_guichet, run_splink):
            r = run_child(target, households, seed)
            r.update(households=households, seed=seed)
            results.append(r)
            for label, s in r["scores"].items():
                print(f"  {r['method']:32s} {label:22s} links {s['links']:7,} of "
                      f"{s['truth']:7,} true: precision {s['precision']:.4f}, recall "
                      f"{s['recall']:.4f}")
            print(f"  {'':32s} {r['seconds']:.1f} s, {r['pairs']:,} pairs scored, peak RSS "
                  f"{r['peak_rss_mb']:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
