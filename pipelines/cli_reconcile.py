"""``guichet reconcile`` and ``guichet evaluate``: the reconciliation on demand, and its
accuracy measured against a simulated town's ground truth.

``reconcile`` speaks French (a steward or the payment office runs it); ``evaluate`` is a
measuring tool for the project and speaks English. Wired into ``pipelines.cli``.
"""

from __future__ import annotations

import argparse
import sys

from pipelines.cli_flags import CliError, _print_json, _run, _target


def add_subcommands(subparsers) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--town", help="INSEE code (default: the only configured town)")
    common.add_argument("--warehouse-url", help="warehouse URL (default: the configuration's)")
    common.add_argument("--config", help="configuration file (default $GUICHET_CONFIG)")
    common.add_argument("--json", action="store_true", help="JSON output")

    r = subparsers.add_parser("reconcile", parents=[common],
                              help="reconcile the warehouse now (links, allocations, flags)")
    r.set_defaults(fn=cmd_reconcile)
    e = subparsers.add_parser("evaluate", parents=[common],
                              help="precision/recall of the flags, links and allocations "
                                   "against a simulated town's truth.jsonl")
    e.add_argument("--truth", required=True, help="the simulated town's truth.jsonl")
    e.add_argument("--fail-under", type=float, default=None, metavar="F",
                   help="exit 1 when any class's precision or recall is below F")
    e.set_defaults(fn=cmd_evaluate)


@_run
def cmd_reconcile(args) -> int:
    from pipelines.reconcile.run import reconcile_town
    from quality.store import utcnow

    engine, town = _target(args)
    run_id = "rapprochement-" + utcnow().strftime("%Y%m%dT%H%M%S")
    from pipelines.config import ConfigError, load_config

    try:
        levels = load_config().town(town).service_levels
    except ConfigError:
        levels = {}
    res = reconcile_town(engine, town, run_id, service_levels=levels)
    if args.json:
        _print_json({"run_id": run_id, "findings": res.findings, "flags": res.flags.as_dict(),
                     "links": res.links, "allocations": res.allocations, "money": res.money,
                     "seconds": {k: round(v, 2) for k, v in res.seconds.items()}})
        return 0 if res.money_conserved else 1
    from pipelines.reconcile.rules import all_rules
    from quality.flags import rule_title

    print(f"Rapprochement de la commune {town} ({run_id}) en "
          f"{sum(res.seconds.values()):.1f} s")
    for rid in all_rules():
        print(f"  {res.findings.get(rid, 0):>6}  {rule_title(rid)}")
    fl = res.flags
    m = res.money
    print(f"Signalements : {fl.opened} ouvert(s), {fl.reopened} rouvert(s), {fl.auto_resolved} "
          f"résolu(s) automatiquement, {fl.kept_open} toujours ouvert(s).")
    print(f"Correspondances d'identité : {res.links} ; affectations de paiements : "
          f"{res.allocations}.")
    if m:
        from pipelines.reconcile.rules import euros

        print(f"Argent reçu {euros(m['received_cents'])} = affecté "
              f"{euros(m['allocated_cents'])} + non affecté {euros(m['unallocated_cents'])}"
              + (" : conservé." if res.money_conserved else " : ÉCART !"))
    return 0 if res.money_conserved else 1


@_run
def cmd_evaluate(args) -> int:
    from pathlib import Path

    from pipelines.reconcile import evaluate as ev
    from quality.frames import read_table

    engine, town = _target(args)
    if not Path(args.truth).exists():
        raise CliError(f"truth file {args.truth} does not exist")
    truth = ev.read_truth(args.truth)
    with engine.connect() as conn:
        found = ev.found_from_flags(conn, town)
        crosswalk = read_table(conn, town, "crosswalk")
        allocations = read_table(conn, town, "allocation")
    classes = ev.class_scores(truth, found)
    identity = ev.identity_scores(truth, crosswalk)
    money = ev.allocation_scores(truth, allocations)
    out = {"town": town, "classes": {k: s.as_dict() for k, s in classes.items()},
           "identity_links": {k: s.as_dict() for k, s in identity.items()},
           "allocations": money}
    worst = min([min(s.precision, s.recall) for s in classes.values()] or [1.0])
    failed = args.fail_under is not None and worst < args.fail_under
    if args.json:
        _print_json(out)
        return 1 if failed else 0
    print(f"Town {town}: reconciliation against {args.truth}")
    print(f"{'class':42s} {'truth':>6} {'found':>6} {'hits':>6} {'prec.':>7} {'recall':>7} "
          f"{'F1':>7} {'unseen':>6}")
    for k, s in classes.items():
        print(f"{k:42s} {s.truth:6d} {s.found:6d} {s.hits:6d} {s.precision:7.4f} "
              f"{s.recall:7.4f} {s.f1:7.4f} {s.not_counted:6d}")
    for k, s in identity.items():
        print(f"{'link: ' + k:42s} {s.truth:6d} {s.found:6d} {s.hits:6d} {s.precision:7.4f} "
              f"{s.recall:7.4f} {s.f1:7.4f}")
    if any(s.not_counted for s in classes.values()):
        print("unseen: defects no data can show (a quarantined treasury line, a desk receipt "
              "naming nobody and quoting nothing), counted neither way")
    print(f"allocations: {money['right_cents']} of {money['expected_cents']} cents to the right "
          f"invoice (recall {money['cent_recall']:.4f}, precision "
          f"{money['cent_precision']:.4f}); {money['pairs_exact']} of "
          f"{money['pairs_expected']} payment-invoice pairs exact")
    if failed:
        print(f"FAIL: a class is below {args.fail_under}", file=sys.stderr)
    return 1 if failed else 0
