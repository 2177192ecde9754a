"""``guichet match``: link an external list of persons (CSV) to the warehouse's persons
or to a second list, and write the links with their scores and bands.

    guichet match ecoles.csv --town 44190 --map prenom=first_name,nom=last_name,\
naissance=birth_date --output liens.csv
    guichet match caf.csv --against ecoles.csv --map-config caf.toml --output liens.csv

Wired into ``pipelines.cli.build_parser`` by ``add_subcommands(sub)``.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_subcommands(subparsers) -> None:
    """Add ``match`` to the ``guichet`` command."""
    m = subparsers.add_parser(
        "match", help="link a CSV list of persons to the warehouse's persons or to another list",
        description="Link every row of LIST (CSV) to the warehouse's persons (--town) or to "
                    "the rows of a second CSV (--against). Fields: first_name, last_name, "
                    "birth_name, birth_date, address, postcode, email, phone (any subset), "
                    "and id (a row id copied to the output). Bands: auto, revue (to check), "
                    "aucun.")
    m.add_argument("list", metavar="LIST", help="CSV file of persons")
    m.add_argument("--against", metavar="OTHER", help="a second CSV instead of the warehouse")
    m.add_argument("--town", help="INSEE code (default: the only configured town)")
    m.add_argument("--map", metavar="COL=FIELD,...",
                   help="columns of LIST, e.g. prenom=first_name,nom=last_name,"
                        "naissance=birth_date")
    m.add_argument("--against-map", metavar="COL=FIELD,...",
                   help="columns of OTHER (default: the same as LIST)")
    m.add_argument("--map-config", metavar="FILE",
                   help="TOML: [columns] COL = \"field\", [against_columns], delimiter, encoding")
    m.add_argument("--output", "-o", required=True, help="links file to write (CSV, ';')")
    m.add_argument("--delimiter", help="delimiter of the input files (default: guessed)")
    m.add_argument("--encoding", help="utf-8 or latin-1 (default: UTF-8, else Latin-1)")
    m.add_argument("--warehouse-url", help="warehouse URL (default: the configuration's)")
    m.add_argument("--config", help="configuration file (default $GUICHET_CONFIG)")
    m.set_defaults(fn=cmd_match)


def cmd_match(args) -> int:
    from pipelines.config import ConfigError
    from pipelines.reconcile.match import MatchError

    try:
        return _match(args)
    except (MatchError, ConfigError) as exc:
        print(f"guichet match: {exc}", file=sys.stderr)
        return 2


def _match(args) -> int:
    from pipelines.reconcile import match as mt

    cfg = mt.load_map_config(args.map_config) if args.map_config else {}
    mapping = mt.parse_mapping(args.map) if args.map else cfg.get("columns", {})
    other_map = (mt.parse_mapping(args.against_map) if args.against_map
                 else cfg.get("against_columns", mapping))
    delimiter = _delimiter(args.delimiter or cfg.get("delimiter"))
    encoding = args.encoding or cfg.get("encoding")
    left = mt.read_list(args.list, mapping, delimiter=delimiter, encoding=encoding)
    if args.against:
        right = mt.read_list(args.against, other_map, delimiter=delimiter, encoding=encoding)
        where = args.against
    else:
        engine, town = _warehouse(args)
        right = mt.warehouse_records(engine, town)
        where = f"the warehouse (town {town}, {right['rid'].nunique()} persons)"
    res = mt.link(left, right)
    out = mt.links_file(left, right, res, warehouse=not args.against)
    mt.write_links(out, args.output)
    n = res["band"].value_counts()
    print(f"{len(left)} rows of {args.list} against {where}: {n.get('auto', 0)} auto, "
          f"{n.get('revue', 0)} revue, {n.get('aucun', 0)} aucun -> {args.output}")
    return 0


def _delimiter(d: str | None) -> str | None:
    return {"tab": "\t", "\\t": "\t"}.get(d, d) if d else None


def _warehouse(args):
    from connectors.warehouse import make_engine
    from pipelines.config import load_config
    from pipelines.reconcile.match import MatchError

    if args.config:
        os.environ["GUICHET_CONFIG"] = args.config
    cfg = load_config()
    town = args.town
    if town is None:
        codes = [t.code for t in cfg.towns]
        if len(codes) != 1:
            raise MatchError("give --town (INSEE code)" + (
                f" among {', '.join(codes)}" if codes else "") + " or --against OTHER.csv")
        town = codes[0]
    return make_engine(args.warehouse_url or cfg.warehouse_url, create=False), town


def main(argv: list[str] | None = None) -> int:
    """``guichet match`` on its own (tests, scripts)."""
    p = argparse.ArgumentParser(prog="guichet")
    add_subcommands(p.add_subparsers(dest="cmd", required=True))
    args = p.parse_args(["match", *(argv or [])])
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
