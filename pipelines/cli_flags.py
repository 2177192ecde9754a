"""``guichet flags``, ``guichet quality`` and ``guichet steward``: the steward queue from
a terminal, the quality checks on demand, and the web page with its accounts.

Human output is French (stewards read it); ``--json`` gives machine-readable output.
Wired into ``pipelines.cli.build_parser`` by ``add_subcommands(sub)``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys


def add_subcommands(subparsers) -> None:
    """Add ``flags``, ``quality`` and ``steward`` to the ``guichet`` command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--town", help="INSEE code (default: the only configured town)")
    common.add_argument("--warehouse-url", help="warehouse URL (default: the configuration's)")
    common.add_argument("--config", help="configuration file (default $GUICHET_CONFIG)")

    f = subparsers.add_parser("flags", help="the steward queue: list, show, resolve, dismiss")
    fsub = f.add_subparsers(dest="flags_cmd", required=True)
    ls = fsub.add_parser("list", parents=[common], help="flags matching filters")
    ls.add_argument("--status", default="open", choices=["open", "resolved", "dismissed", "all"])
    ls.add_argument("--rule", help="exact rule, or a prefix ending with * (gx.household.*)")
    ls.add_argument("--severity", choices=["info", "warning", "error"])
    ls.add_argument("--service", help="service code (RESTO, PERI, ALSH, ...)")
    ls.add_argument("--older-than", type=int, metavar="DAYS", help="first seen at least DAYS ago")
    ls.add_argument("--newer-than", type=int, metavar="DAYS", help="first seen at most DAYS ago")
    ls.add_argument("--search", help="text in the key or the message")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true", help="JSON output")
    ls.set_defaults(fn=cmd_flags_list)
    sh = fsub.add_parser("show", parents=[common], help="one flag, its evidence and history")
    sh.add_argument("key")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(fn=cmd_flags_show)
    rs = fsub.add_parser("resolve", parents=[common], help="accept, override or fixed at source")
    rs.add_argument("key")
    how = rs.add_mutually_exclusive_group(required=True)
    how.add_argument("--accept", action="store_true", help="take the suggested fix")
    how.add_argument("--override", metavar="VALUE", help="write this value instead")
    how.add_argument("--fixed-at-source", action="store_true",
                     help="corrected in the source system; the next run confirms it")
    rs.add_argument("--reason", help="why (required with --override)")
    rs.add_argument("--author", help="who decides (default $GUICHET_STEWARD or the OS user)")
    rs.add_argument("--json", action="store_true")
    rs.set_defaults(fn=cmd_flags_resolve)
    ds = fsub.add_parser("dismiss", parents=[common], help="not a problem (a reason is required)")
    ds.add_argument("key")
    ds.add_argument("--reason", required=True)
    ds.add_argument("--author")
    ds.add_argument("--json", action="store_true")
    ds.set_defaults(fn=cmd_flags_dismiss)

    q = subparsers.add_parser("quality", help="data-quality checks on the warehouse")
    qsub = q.add_subparsers(dest="quality_cmd", required=True)
    qc = qsub.add_parser("check", parents=[common],
                         help="run every core suite now (decisions re-applied, flags refreshed)")
    qc.add_argument("--json", action="store_true")
    qc.set_defaults(fn=cmd_quality_check)

    s = subparsers.add_parser("steward", help="the stewards' web page and its accounts")
    ssub = s.add_subparsers(dest="steward_cmd", required=True)
    sv = ssub.add_parser("serve", parents=[common], help="serve the web page (uvicorn)")
    sv.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1; use a reverse proxy for HTTPS)")
    sv.add_argument("--port", type=int, default=8765)
    sv.set_defaults(fn=cmd_steward_serve)
    u = ssub.add_parser("user", help="accounts of the web page")
    usub = u.add_subparsers(dest="user_cmd", required=True)
    ua = usub.add_parser("add", parents=[common], help="create an account (asks the password)")
    ua.add_argument("login")
    ua.add_argument("--role", required=True, choices=["steward", "lecture"])
    ua.add_argument("--name", help="full name shown on the page")
    ua.add_argument("--password-stdin", action="store_true",
                    help="read the password from standard input (scripts)")
    ua.set_defaults(fn=cmd_user_add)
    up = usub.add_parser("passwd", parents=[common], help="change a password")
    up.add_argument("login")
    up.add_argument("--password-stdin", action="store_true")
    up.set_defaults(fn=cmd_user_passwd)
    for name, active in (("disable", False), ("enable", True)):
        p = usub.add_parser(name, parents=[common], help=f"{name} an account")
        p.add_argument("login")
        p.set_defaults(fn=cmd_user_active, active=active)
    ul = usub.add_parser("list", parents=[common], help="accounts")
    ul.add_argument("--json", action="store_true")
    ul.set_defaults(fn=cmd_user_list)


# ----------------------------------------------------------------- helpers
class CliError(Exception):
    """A French message for the person at the terminal."""


def _target(args, need_town: bool = True) -> tuple[object, str | None]:
    from connectors.warehouse import make_engine
    from pipelines.config import load_config
    from quality.store import ensure_schema

    if getattr(args, "config", None):
        os.environ["GUICHET_CONFIG"] = args.config
    cfg = load_config()
    url = args.warehouse_url or cfg.warehouse_url
    town = args.town
    if town is None and need_town:
        codes = [t.code for t in cfg.towns]
        if len(codes) != 1:
            raise CliError("précisez la commune avec --town (code INSEE)"
                           + (f" parmi {', '.join(codes)}" if codes else ""))
        town = codes[0]
    engine = make_engine(url)
    ensure_schema(engine)
    from pipelines.reconcile.rules import all_rules

    all_rules()  # registers the French titles of the reconciliation rules
    return engine, town


def _author(args) -> str:
    return args.author or os.environ.get("GUICHET_STEWARD") or getpass.getuser()


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def _run(fn):
    def wrapper(args) -> int:
        from quality.accounts import AccountError
        from quality.decisions import DecisionError

        try:
            return fn(args)
        except (CliError, DecisionError, AccountError) as exc:
            print(f"guichet : {exc}", file=sys.stderr)
            return 2
    return wrapper


# ------------------------------------------------------------------- flags
@_run
def cmd_flags_list(args) -> int:
    from quality import flags

    engine, town = _target(args)
    f = flags.Filters(status=None if args.status == "all" else args.status, rule=args.rule,
                      severity=args.severity, service=args.service,
                      older_than_days=args.older_than, newer_than_days=args.newer_than,
                      search=args.search)
    with engine.connect() as conn:
        total = flags.count_flags(conn, town, f)
        rows = flags.list_flags(conn, town, f, limit=args.limit)
        by_rule = flags.counts_by(conn, town, "rule", f)
        by_sev = flags.counts_by(conn, town, "severity", f)
    if args.json:
        _print_json({"town": town, "total": total, "by_rule": dict(by_rule),
                     "by_severity": dict(by_sev), "flags": rows})
        return 0
    print(f"Commune {town} — {total} signalement(s)"
          + (f" ({len(rows)} affichés)" if len(rows) < total else ""))
    if by_sev:
        print("Par gravité : " + ", ".join(f"{flags.SEVERITY_FR.get(k, k)} {n}"
                                           for k, n in by_sev))
    for k, n in by_rule:
        print(f"  {n:>5}  {flags.rule_title(k)} ({k})")
    for r in rows:
        print(f"- [{flags.SEVERITY_FR[r['severity']]}] [{flags.STATUS_FR[r['status']]}] "
              f"{r['message']}\n    clé : {r['flag_key']}"
              + (f" · service {r['service']}" if r["service"] else "")
              + f" · {flags.age_days(r)} j")
    return 0


@_run
def cmd_flags_show(args) -> int:
    from quality import flags
    from quality.decisions import DECISION_FR
    from quality.labels import column_fr, value_fr

    engine, town = _target(args)
    with engine.connect() as conn:
        fl = flags.get_flag(conn, town, args.key)
    if fl is None:
        raise CliError(f"signalement introuvable : {args.key}")
    if args.json:
        _print_json(fl)
        return 0
    print(f"{fl['message']}\n  règle : {fl['rule']} · gravité : "
          f"{flags.SEVERITY_FR[fl['severity']]} · statut : {flags.STATUS_FR[fl['status']]}"
          + (f" ({flags.RESOLUTION_FR.get(fl['resolution'], fl['resolution'])})"
             if fl["resolution"] else ""))
    print(f"  vu du {fl['first_seen_at']:%d/%m/%Y} au {fl['last_seen_at']:%d/%m/%Y} (UTC)"
          + (f", rouvert {fl['times_reopened']} fois" if fl["times_reopened"] else ""))
    for rec in (fl["evidence"] or {}).get("records", []):
        print(f"  {rec.get('label', '')} :")
        for k, v in (rec.get("values") or {}).items():
            print(f"    {column_fr(k)} : {value_fr(v)}")
    if fl["suggestion"]:
        print(f"  suggestion : {fl['suggestion']}")
    for d in fl["decisions"]:
        print(f"  décision {d['decided_at']:%d/%m/%Y %H:%M} par {d['author']} : "
              f"{DECISION_FR[d['decision']]}" + (f" = {d['value']}" if d["value"] else "")
              + (f" — {d['reason']}" if d["reason"] else ""))
    return 0


def _decide(args, decision: str, value: str | None = None) -> int:
    from quality import flags
    from quality.decisions import DECISION_FR, decide

    engine, town = _target(args)
    did = decide(engine, town, args.key, decision, author=_author(args), reason=args.reason,
                 value=value)
    with engine.connect() as conn:
        fl = flags.get_flag(conn, town, args.key)
    if args.json:
        _print_json({"decision_id": did, "flag_key": args.key, "status": fl["status"],
                     "resolution": fl["resolution"]})
    else:
        print(f"Décision n° {did} enregistrée ({DECISION_FR[decision]}) : le signalement est "
              f"{flags.STATUS_FR[fl['status']]}.")
    return 0


@_run
def cmd_flags_resolve(args) -> int:
    if args.override is not None:
        return _decide(args, "override", args.override)
    return _decide(args, "accept" if args.accept else "fixed_at_source")


@_run
def cmd_flags_dismiss(args) -> int:
    return _decide(args, "dismiss")


# ----------------------------------------------------------------- quality
@_run
def cmd_quality_check(args) -> int:
    from pipelines.config import load_config
    from quality.checks import report_dir_for, run_quality
    from quality.store import utcnow

    engine, town = _target(args)
    run_id = "controle-" + utcnow().strftime("%Y%m%dT%H%M%S")
    out = run_quality(engine, town, run_id,
                      report_dir=report_dir_for(load_config().landing_dir))
    if args.json:
        _print_json({"run_id": run_id, "flags": out["flags"], "report": str(out["report"]),
                     "structural_failures": out["structural_failures"],
                     "seconds": round(out["seconds"], 2)})
        return 0
    fl = out["flags"]
    print(f"Contrôles de la commune {town} ({run_id}) en {out['seconds']:.1f} s : "
          f"{fl['opened']} signalement(s) ouvert(s), {fl['reopened']} rouvert(s), "
          f"{fl['auto_resolved']} résolu(s) automatiquement, {fl['kept_open']} toujours "
          f"ouvert(s).\nRésumé : {out['report']}")
    return 1 if out["structural_failures"] else 0


# ----------------------------------------------------------------- steward
@_run
def cmd_steward_serve(args) -> int:
    from quality.web import serve

    engine, _ = _target(args, need_town=False)
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    print(f"Page des gestionnaires de données : http://{args.host}:{args.port}/ "
          "(Ctrl+C pour arrêter)")
    serve(url, args.host, args.port)
    return 0


def _password(args, confirm: bool = True) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if os.environ.get("GUICHET_STEWARD_PASSWORD"):
        return os.environ["GUICHET_STEWARD_PASSWORD"]
    first = getpass.getpass("Mot de passe : ")
    if confirm and getpass.getpass("Confirmez le mot de passe : ") != first:
        raise CliError("les deux mots de passe diffèrent")
    return first


@_run
def cmd_user_add(args) -> int:
    from quality.accounts import ROLE_FR, create_user

    engine, town = _target(args)
    create_user(engine, town, args.login, _password(args), role=args.role, name=args.name,
                author=os.environ.get("GUICHET_STEWARD") or getpass.getuser())
    print(f"Compte {args.login.lower()} créé pour la commune {town} ({ROLE_FR[args.role]}).")
    return 0


@_run
def cmd_user_passwd(args) -> int:
    from quality.accounts import set_password

    engine, town = _target(args)
    set_password(engine, town, args.login.lower(), _password(args),
                 author=os.environ.get("GUICHET_STEWARD") or getpass.getuser())
    print(f"Mot de passe de {args.login.lower()} changé ; ses sessions sont fermées.")
    return 0


@_run
def cmd_user_active(args) -> int:
    from quality.accounts import set_active

    engine, town = _target(args)
    set_active(engine, town, args.login.lower(), args.active,
               author=os.environ.get("GUICHET_STEWARD") or getpass.getuser())
    print(f"Compte {args.login.lower()} {'réactivé' if args.active else 'désactivé'}.")
    return 0


@_run
def cmd_user_list(args) -> int:
    from quality.accounts import ROLE_FR, list_users

    engine, town = _target(args, need_town=False)
    users = list_users(engine, town)
    if args.json:
        _print_json(users)
        return 0
    for u in users:
        print(f"{u['town']}  {u['login']:<20} {ROLE_FR[u['role']]:<26} "
              f"{'actif' if u['active'] else 'désactivé'}"
              + (f"  dernière connexion {u['last_login_at']:%d/%m/%Y %H:%M}"
                 if u["last_login_at"] else ""))
    if not users:
        print("Aucun compte.")
    return 0
