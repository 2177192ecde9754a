"""The ``guichet`` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from pipelines import cli_match, cli_reconcile, cli_report
from pipelines.cli_flags import add_subcommands

DEMO_TOWN = "44190"
DEMO_NAME = "Saint-Sébastien-sur-Loire"
DEMO_SIRET = "21440190310006"  # a made-up SIRET with a valid key, for the SCDL export


def _console():
    from rich.console import Console

    return Console(stderr=False)


# ------------------------------------------------------------------ sync
def run_sync(codes: list[str] | None = None, *, console=None, use_dagster: bool = True) -> list:
    """Run the nightly job for each town (one Dagster run per town partition)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from pipelines import progress as prog
    from pipelines.config import load_config

    console = console or _console()
    cfg = load_config()
    codes = codes or [t.code for t in cfg.towns]
    if not codes:
        raise SystemExit("no town configured: write guichet.toml (see README) or run `guichet demo`")
    results = []
    from pipelines.definitions import build_definitions

    n_steps = len([a for a in build_definitions([codes[0]]).assets])  # one step per asset
    for code in codes:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[step]}"),
                      TimeElapsedColumn(), console=console, transient=False) as bar:
            task = bar.add_task(f"sync {code}", total=n_steps, step="")
            prog.listen(lambda step, _task=task: bar.update(_task, advance=1, step=step))
            t0 = time.perf_counter()
            try:
                if use_dagster:
                    run_id = _dagster_sync(code)
                else:
                    from connectors.warehouse import make_engine
                    from pipelines.steps import run_town
                    from quality.checks import report_dir_for, run_quality

                    engine = make_engine(cfg.warehouse_url)
                    run_id = run_town(cfg, code, engine)["run_id"]
                    run_quality(engine, code, run_id, report_dir=report_dir_for(cfg.landing_dir))
                    from pipelines.reconcile.run import reconcile_town

                    reconcile_town(engine, code, run_id,
                                   service_levels=cfg.town(code).service_levels)
            finally:
                prog.listen(None)
            bar.update(task, completed=n_steps, step="done")
        results.append((code, run_id, time.perf_counter() - t0))
    return results


def _dagster_sync(code: str) -> str:
    from pipelines.definitions import build_definitions
    from pipelines.instance import get_instance

    defs = build_definitions()
    job = defs.resolve_job_def("nightly_sync")
    result = job.execute_in_process(
        partition_key=code, instance=get_instance(), raise_on_error=True,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    if not result.success:
        raise SystemExit(f"nightly_sync failed for town {code} (run {result.run_id})")
    return result.run_id


def print_summary(results, console=None) -> None:
    from rich.table import Table

    from connectors.warehouse import make_engine
    from pipelines.config import load_config
    from pipelines.summary import run_summary

    console = console or _console()
    engine = make_engine(load_config().warehouse_url)
    for code, run_id, seconds in results:
        s = run_summary(engine, code, run_id)
        t = Table(title=f"Town {code} — run {run_id[:8]} — {seconds:.1f} s", title_justify="left")
        for col in ("source entity", "read", "ok", "quar.", "→ core table", "new", "upd.",
                    "del.", "rows"):
            t.add_column(col, justify="left" if col in ("source entity", "→ core table")
                         else "right", no_wrap=True)
        for r in s["entities"]:
            t.add_row(f"{r['source']}.{r['entity'].lower()}", f"{r['rows_read']:,}",
                      f"{r['rows_loaded']:,}", f"{r['rows_quarantined']:,}", r["table"],
                      f"{r['rows_inserted']:,}", f"{r['rows_updated']:,}",
                      f"{r['rows_deleted']:,}", f"{r['core_rows']:,}")
        console.print(t)
        console.print("read = ok + quar. per source entity (ok: passed staging; quar.: quarantined). "
                      "new/upd./del.: core rows written by this run; rows: live core rows.")
        if s["quarantine"]:
            q = Table(title=f"Quarantined rows by reason (town {code}, all runs)",
                      title_justify="left")
            q.add_column("source entity", no_wrap=True)
            q.add_column("reason")
            q.add_column("rows", justify="right")
            for r in s["quarantine"]:
                q.add_row(f"{r['source']}.{r['entity'].lower()}", r["reason"], f"{r['rows']:,}")
            console.print(q)
        console.print(f"raw versions kept: {s['raw_versions']}   "
                      f"open quarantine: {s['quarantine_open']}   duration: {seconds:.1f} s")
        _print_reconciliation(console, engine, code)


def _print_reconciliation(console, engine, code: str) -> None:
    """Open reconciliation flags per rule: what the stewards will find in their queue."""
    from rich.table import Table

    from pipelines.reconcile.rules import all_rules
    from quality.flags import Filters, counts_by, rule_title

    rules = all_rules()
    with engine.connect() as conn:
        counts = dict(counts_by(conn, code, "rule", Filters(status="open", rule="rec.*")))
    if not counts:
        return
    t = Table(title=f"Reconciliation: open flags (town {code})", title_justify="left")
    t.add_column("rule")
    t.add_column("flags", justify="right")
    for rid in rules:
        if counts.get(rid):
            t.add_row(rule_title(rid), f"{counts[rid]:,}")
    console.print(t)


# ------------------------------------------------------------------ demo
def cmd_demo(args) -> int:
    from demo.generate import generate_town
    from pipelines.config import town_section

    console = _console()
    var = Path("var").resolve()
    town_dir = var / "towns" / DEMO_TOWN
    if args.fresh:
        import shutil

        for p in (town_dir, var / "warehouse.sqlite", var / "landing", var / "dagster"):
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
        for suffix in ("-wal", "-shm"):
            Path(str(var / "warehouse.sqlite") + suffix).unlink(missing_ok=True)
    if not (town_dir / "town.json").exists():
        console.print(f"Generating the simulated town {DEMO_TOWN} ({args.households} households)…")
        _with_progress(console, "generate", lambda cb: generate_town(
            town_dir, households=args.households, seed=args.seed, town=DEMO_TOWN,
            name=DEMO_NAME, progress=cb))
    info = json.loads((town_dir / "town.json").read_text())
    cfg_path = var / "guichet.toml"
    cfg_path.write_text(
        f'[warehouse]\nurl = "sqlite:///{var / "warehouse.sqlite"}"\n'
        f'landing_dir = "{var / "landing"}"\n\n'
        + town_section(DEMO_TOWN, info.get("name", DEMO_NAME), info["legacy_url"],
                       info["portal_base"], info["treasury_root"], DEMO_SIRET))
    os.environ["GUICHET_CONFIG"] = str(cfg_path)
    results = run_sync([DEMO_TOWN], console=console, use_dagster=not args.no_dagster)
    print_summary(results, console)
    return 0


def _with_progress(console, label, fn):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("{task.fields[step]}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(label, total=1, step="")

        def cb(step, done, total):
            bar.update(task, total=max(total, 1), completed=done, step=step)

        return fn(cb)


def cmd_sync(args) -> int:
    if args.config:
        os.environ["GUICHET_CONFIG"] = args.config
    results = run_sync(args.town or None, use_dagster=not args.no_dagster)
    print_summary(results)
    return 0


def cmd_town(args) -> int:
    console = _console()
    if args.town_cmd == "generate":
        from demo.generate import generate_town

        counts = _with_progress(console, "generate", lambda cb: generate_town(
            Path(args.out), households=args.households, seed=args.seed, town=args.code,
            legacy_url=args.legacy_url, defect_rate=args.defect_rate, progress=cb))
    else:
        from demo.advance import advance_town

        counts = _with_progress(console, "advance", lambda cb: advance_town(
            Path(args.town_dir), days=args.days, progress=cb))
    console.print_json(json.dumps(counts, default=str))
    return 0


def cmd_docs(args) -> int:
    from schemas.docs import write_warehouse_doc

    path = write_warehouse_doc(Path(args.output))
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="guichet", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("demo", help="generate the simulated town if absent and run the nightly sync")
    d.add_argument("--households", type=int, default=3000)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--fresh", action="store_true", help="start again from an empty var/")
    d.add_argument("--no-dagster", action="store_true", help="run the steps without Dagster")
    d.set_defaults(fn=cmd_demo)

    s = sub.add_parser("sync", help="run the nightly job against the configured sources")
    s.add_argument("--town", action="append", help="INSEE code (repeatable); default all")
    s.add_argument("--config", help="configuration file (default $GUICHET_CONFIG)")
    s.add_argument("--no-dagster", action="store_true")
    s.set_defaults(fn=cmd_sync)

    t = sub.add_parser("town", help="the simulated town")
    tsub = t.add_subparsers(dest="town_cmd", required=True)
    g = tsub.add_parser("generate", help="write a simulated town's three source systems")
    g.add_argument("--households", type=int, default=3000)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", required=True)
    g.add_argument("--code", default=DEMO_TOWN, help="INSEE code of the town")
    g.add_argument("--legacy-url", help="SQLAlchemy URL of the legacy DB (default SQLite in --out)")
    g.add_argument("--defect-rate", type=float, default=1.0)
    a = tsub.add_parser("advance", help="move a simulated town forward")
    a.add_argument("--days", type=int, default=1)
    a.add_argument("--town-dir", default=f"var/towns/{DEMO_TOWN}")
    t.set_defaults(fn=cmd_town)

    w = sub.add_parser("docs", help="regenerate docs/warehouse.md from the table definitions")
    w.add_argument("--output", default="docs/warehouse.md")
    w.set_defaults(fn=cmd_docs)
    add_subcommands(sub)  # flags, quality, steward
    cli_reconcile.add_subcommands(sub)  # reconcile, evaluate
    cli_match.add_subcommands(sub)  # match
    cli_report.add_subcommands(sub)  # report
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the agent sees what failed and where, not a traceback
        if os.environ.get("GUICHET_DEBUG"):
            raise
        from pipelines.config import ConfigError

        kind = "configuration error" if isinstance(exc, ConfigError) else type(exc).__name__
        print(f"guichet: {kind}: {exc}\n(set GUICHET_DEBUG=1 for the full traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
