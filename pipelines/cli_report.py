"""``guichet report``: the finance, attendance and portal-usage reports as an Excel workbook
or an HTML page, and the SCDL open-data file of granted subsidies.

Messages are French (the payment office and the services run it); a clear error exits 2.
Wired into ``pipelines.cli.build_parser`` by ``add_subcommands(sub)``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
from pathlib import Path

from pipelines.cli_flags import CliError, _run

FORMATS = ("xlsx", "html")
KIND_FR = {"finance": "financier", "attendance": "de fréquentation",
           "usage": "d'usage du portail"}
_MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def add_subcommands(subparsers) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--town", help="INSEE code (default: the only configured town)")
    common.add_argument("--warehouse-url", help="warehouse URL (default: the configuration's)")
    common.add_argument("--config", help="configuration file (default $GUICHET_CONFIG)")
    common.add_argument("--output", "-o", required=True, metavar="PATH", help="file to write")

    r = subparsers.add_parser("report", help="reports (Excel/HTML) and the SCDL open-data file")
    rsub = r.add_subparsers(dest="report_kind", required=True)
    helps = {"finance": "invoiced, collected, channels, overdue, unallocated money",
             "attendance": "booked vs present, no-shows, occupancy",
             "usage": "portal procedures, processing times, logins"}
    for kind, text in helps.items():
        p = rsub.add_parser(kind, parents=[common], help=text)
        p.add_argument("--from", dest="start", required=True, metavar="YYYY-MM",
                       help="first month")
        p.add_argument("--to", dest="end", required=True, metavar="YYYY-MM",
                       help="last month (inclusive)")
        p.add_argument("--format", choices=FORMATS,
                       help="xlsx or html (default: from the output's extension)")
        p.set_defaults(fn=cmd_report, kind=kind)
    s = rsub.add_parser("scdl", parents=[common],
                        help="granted subsidies in the SCDL subventions 2.1.1 CSV format")
    when = s.add_mutually_exclusive_group(required=True)
    when.add_argument("--year", type=int, metavar="YYYY", help="decisions of that year")
    when.add_argument("--from", dest="start", metavar="YYYY-MM-DD",
                      help="decisions from that day (with --to)")
    s.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="decisions up to that day")
    s.add_argument("--exclure-invalides", dest="skip_invalid", action="store_true",
                   help="write the valid rows and list the invalid ones (default: stop)")
    s.set_defaults(fn=cmd_scdl)


# ----------------------------------------------------------------- helpers
def _context(args):
    """(engine, town code, town configuration or None), without touching the schema."""
    from connectors.warehouse import make_engine
    from pipelines.config import ConfigError, load_config

    if args.config:
        os.environ["GUICHET_CONFIG"] = args.config
    try:
        cfg = load_config()
    except ConfigError as exc:
        raise CliError(f"configuration illisible : {exc}") from exc
    town = args.town
    if town is None:
        codes = [t.code for t in cfg.towns]
        if len(codes) != 1:
            raise CliError("précisez la commune avec --town (code INSEE)"
                           + (f" parmi {', '.join(codes)}" if codes else ""))
        town = codes[0]
    try:
        town_cfg = cfg.town(town)
    except ConfigError:
        town_cfg = None
    url = args.warehouse_url or cfg.warehouse_url
    if url.startswith("sqlite:///"):
        db = url.removeprefix("sqlite:///")
        if db and db != ":memory:" and not Path(db).exists():
            raise CliError(f"l'entrepôt {db} n'existe pas (lancez d'abord guichet sync "
                           "ou guichet demo)")
    return make_engine(url, create=False), town, town_cfg


def _output(path: str, suffixes: tuple[str, ...]) -> Path:
    out = Path(path)
    if not out.parent.exists():
        raise CliError(f"le dossier {out.parent} n'existe pas")
    if out.is_dir():
        raise CliError(f"{out} est un dossier : donnez le nom du fichier à écrire")
    if out.suffix.lower() not in suffixes:
        raise CliError(f"le fichier {out.name} devrait se terminer par "
                       + " ou ".join(suffixes))
    return out


def _month(value: str, option: str) -> str:
    if not _MONTH_RE.match(value or ""):
        raise CliError(f"{option} attend un mois AAAA-MM (reçu « {value} »)")
    return value


def _day(value: str | None, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value or "")
    except ValueError:
        raise CliError(f"{option} attend une date AAAA-MM-JJ (reçu « {value} »)") from None


def _missing_table(exc: Exception) -> CliError:
    return CliError("l'entrepôt ne contient pas les tables attendues (lancez d'abord "
                    f"guichet sync) : {str(exc).splitlines()[0]}")


# ----------------------------------------------------------------- reports
@_run
def cmd_report(args) -> int:
    from pipelines import reports
    from pipelines.reports import formatting as fr
    from pipelines.reports.model import months

    start, end = _month(args.start, "--from"), _month(args.end, "--to")
    try:
        months(start, end)
    except ValueError:
        raise CliError(f"--to {end} précède --from {start}") from None
    fmt = args.format or Path(args.output).suffix.lower().lstrip(".")
    if fmt == "htm":
        fmt = "html"
    if fmt not in FORMATS:
        raise CliError("précisez --format xlsx ou html (ou une sortie en .xlsx / .html)")
    out = _output(args.output, (".xlsx",) if fmt == "xlsx" else (".html", ".htm"))
    engine, town, _ = _context(args)
    import sqlalchemy as sa

    try:
        report = reports.build(args.kind, engine, town, start, end)
    except ModuleNotFoundError as exc:
        if exc.name == f"pipelines.reports.{args.kind}":
            raise CliError(f"le rapport {KIND_FR[args.kind]} n'est pas encore disponible "
                           "dans cette version de guichet") from exc
        raise
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        raise _missing_table(exc) from exc
    finally:
        engine.dispose()
    if fmt == "xlsx":
        from pipelines.reports.xlsx import write_xlsx

        write_xlsx(report, out)
    else:
        from pipelines.reports.html import write_html

        write_html(report, out)
    print(f"Rapport {KIND_FR[args.kind]} de {report.town_name} ({town}), "
          f"{fr.period_fr(start, end)} : {len(report.sheets)} tableau(x), "
          f"{len(report.charts)} graphique(s), écrit dans {out}")
    for check in report.checks:
        print(f"  ✓ {check}")
    return 0


# -------------------------------------------------------------------- SCDL
@_run
def cmd_scdl(args) -> int:
    import sqlalchemy as sa

    from pipelines.reports import formatting as fr
    from pipelines.reports import scdl

    if args.year is not None:
        if args.end is not None:
            raise CliError("--to va avec --from, pas avec --year")
        if not 2000 <= args.year <= 2100:
            raise CliError(f"--year attend une année sur 4 chiffres (reçu {args.year})")
        start, end = dt.date(args.year, 1, 1), dt.date(args.year, 12, 31)
    else:
        if args.end is None:
            raise CliError("--from demande aussi --to (AAAA-MM-JJ)")
        start, end = _day(args.start, "--from"), _day(args.end, "--to")
        if end < start:
            raise CliError(f"--to {end:%d/%m/%Y} précède --from {start:%d/%m/%Y}")
    out = _output(args.output, (".csv",))
    engine, town, town_cfg = _context(args)
    if town_cfg is None:
        raise CliError(f"la commune {town} n'est pas dans la configuration : son nom et son "
                       "SIRET (l'attribuant du fichier SCDL) y sont lus")
    try:
        result = scdl.export(engine, town, town_cfg.name if town_cfg.name != town else None,
                             town_cfg.siret, start, end, out, skip_invalid=args.skip_invalid)
    except scdl.ScdlError as exc:
        raise CliError(str(exc)) from exc
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        raise _missing_table(exc) from exc
    finally:
        engine.dispose()
    print(f"Subventions attribuées par {town_cfg.name} du {fr.date_fr(start)} au "
          f"{fr.date_fr(end)} : {len(result.rows)} ligne(s), "
          f"{fr.euros(result.total_cents)}, écrites dans {out} (SCDL subventions 2.1.1)")
    if result.excluded:
        print(f"{len(result.excluded)} valeur(s) invalide(s) ; demandes exclues du fichier :")
        for p in result.excluded:
            print(f"  - {p}")
    return 0
