"""The stewards' web page (in French): the flag queue, a flag's evidence and the
actions on it, the decision journal and the runs' validation summaries.

A Starlette application over the warehouse (SQLite or PostgreSQL), served by
``guichet steward serve`` (uvicorn, 127.0.0.1 by default: put the town's HTTPS
reverse proxy in front of it). No JavaScript; forms post back. Security:

- log-in with scrypt-hashed passwords (``quality.accounts``), server-side sessions
  in an HttpOnly, SameSite=Strict cookie that expire when idle and after a maximum
  duration; accounts are created from the command line;
- every POST carries the session's anti-CSRF token (the log-in form a double-submit
  cookie) and, when the browser sends one, an Origin of this very host;
- role ``lecture`` sees everything and can act on nothing (the forms are not shown
  and the server refuses the POST);
- a strict Content-Security-Policy (no inline script or style), no caching of pages.
"""

from __future__ import annotations

import datetime as dt
import secrets
import urllib.parse
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from quality import accounts, flags, store
from quality.decisions import DECISION_FR, DecisionError, decide
from quality.labels import column_fr, table_fr, value_fr
from quality.report import STATIC, environment, render_run_report
from schemas.tables import table

COOKIE = "guichet_session"
LOGIN_COOKIE = "guichet_connexion"
PAGE = 50
MAX_BODY = 64 * 1024
PARIS = ZoneInfo("Europe/Paris")
ACTION_FR = {**DECISION_FR, "flag_reopened": "rouvert", "flag_auto_resolved": "résolu (auto)",
             "login": "connexion", "login_failed": "connexion refusée", "logout": "déconnexion",
             "account_created": "compte créé", "password_changed": "mot de passe changé",
             "account_disabled": "compte désactivé", "account_enabled": "compte réactivé"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class _SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            if k == "Cache-Control" and request.url.path.startswith("/static/"):
                continue
            response.headers.setdefault(k, v)
        return response


def _local(d: dt.datetime | None) -> str:
    if d is None:
        return ""
    return d.replace(tzinfo=dt.UTC).astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


def create_app(engine: sa.Engine, *, secure_cookies: bool = False) -> Starlette:
    """The web application over a warehouse engine."""
    store.ensure_schema(engine)
    env = environment()
    env.filters["local"] = _local
    env.globals.update(severity_fr=flags.SEVERITY_FR, status_fr=flags.STATUS_FR,
                       resolution_fr=flags.RESOLUTION_FR, action_fr=ACTION_FR,
                       decision_fr=DECISION_FR, column_fr=column_fr, table_fr=table_fr,
                       value_fr=value_fr, role_fr=accounts.ROLE_FR)

    def render(name: str, request: Request, status: int = 200, **ctx) -> HTMLResponse:
        html = env.get_template(name).render(request=request, **ctx)
        return HTMLResponse(html, status_code=status)

    def session_of(request: Request) -> accounts.Session | None:
        return accounts.session_for(engine, request.cookies.get(COOKIE))

    def to_login(request: Request, expired: bool = False) -> Response:
        target = "/connexion" + ("?expiree=1" if expired else "")
        resp = RedirectResponse(target, status_code=303)
        if request.cookies.get(COOKIE):
            resp.delete_cookie(COOKIE, path="/")
        return resp

    def threaded(handler):
        """Read a posted form, then run the (blocking, database) handler in a worker
        thread: a decision waiting for the nightly run's lock never stalls the server."""
        async def endpoint(request: Request):
            form = None
            if request.method == "POST" and request.headers.get(
                    "content-type", "").split(";")[0].strip() == \
                    "application/x-www-form-urlencoded":
                body = await request.body()
                if len(body) <= MAX_BODY:
                    parsed = urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                                   keep_blank_values=True)
                    form = {k: v[-1] for k, v in parsed.items()}
            return await run_in_threadpool(handler, request, form)
        return endpoint

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        if not origin or origin == "null":
            return origin is None
        return urllib.parse.urlsplit(origin).netloc == request.headers.get("host")

    # ---------------------------------------------------------- log-in
    def login_page(request: Request, form: dict | None):
        if request.method == "GET":
            token = secrets.token_urlsafe(24)
            resp = render("connexion.html", request, csrf=token,
                          towns=accounts.towns_with_accounts(engine),
                          expired=request.query_params.get("expiree") == "1")
            resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                            secure=secure_cookies, path="/connexion", max_age=3600)
            return resp
        if (form is None or not same_origin(request)
                or not secrets.compare_digest(form.get("csrf", ""),
                                              request.cookies.get(LOGIN_COOKIE, "-"))):
            return PlainTextResponse("Requête refusée (jeton de formulaire invalide).", 403)
        towns = accounts.towns_with_accounts(engine)
        town = form.get("commune") or (towns[0] if len(towns) == 1 else "")
        token = accounts.login(engine, town, form.get("identifiant", ""),
                               form.get("mot_de_passe", "")) if town in towns else None
        if token is None:
            new = secrets.token_urlsafe(24)
            resp = render("connexion.html", request, status=401, csrf=new, towns=towns,
                          error="Identifiant ou mot de passe incorrect.",
                          login=form.get("identifiant", ""), town=town)
            resp.set_cookie(LOGIN_COOKIE, new, httponly=True, samesite="strict",
                            secure=secure_cookies, path="/connexion", max_age=3600)
            return resp
        resp = RedirectResponse("/signalements", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies,
                        path="/", max_age=int(accounts.max_duration().total_seconds()))
        resp.delete_cookie(LOGIN_COOKIE, path="/connexion")
        return resp

    def logout_page(request: Request, form: dict | None):
        sess = session_of(request)
        if sess is None:
            return to_login(request)
        if form is None or not accounts.csrf_ok(sess, form.get("csrf")):
            return PlainTextResponse("Requête refusée (jeton de formulaire invalide).", 403)
        accounts.logout(engine, request.cookies.get(COOKIE, ""))
        resp = RedirectResponse("/connexion", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # ----------------------------------------------------------- queue
    def filters_of(request: Request) -> tuple[flags.Filters, dict]:
        q = request.query_params
        raw = {k: (q.get(k) or "").strip() for k in
               ("statut", "regle", "gravite", "service", "plus_de", "moins_de", "recherche")}

        def days(v: str) -> int | None:
            return int(v) if v.isdigit() and len(v) < 6 else None

        status = raw["statut"] or "open"
        f = flags.Filters(
            status=None if status == "tous" else (status if status in flags.STATUSES
                                                  else "open"),
            rule=raw["regle"] or None,
            severity=raw["gravite"] if raw["gravite"] in flags.SEVERITIES else None,
            service=raw["service"] or None, older_than_days=days(raw["plus_de"]),
            newer_than_days=days(raw["moins_de"]), search=raw["recherche"][:100] or None)
        raw["statut"] = status
        return f, raw

    def queue(request: Request, form: dict | None):
        sess = session_of(request)
        if sess is None:
            return to_login(request, expired=bool(request.cookies.get(COOKIE)))
        f, raw = filters_of(request)
        page = max(1, int(request.query_params.get("page", "1") or 1)
                   if (request.query_params.get("page") or "1").isdigit() else 1)
        with engine.connect() as conn:
            total = flags.count_flags(conn, sess.town, f)
            rows = flags.list_flags(conn, sess.town, f, limit=PAGE, offset=(page - 1) * PAGE)
            by_rule = flags.counts_by(conn, sess.town, "rule", f)
            by_severity = flags.counts_by(conn, sess.town, "severity", f)
            everything = flags.Filters(status=None)
            rules = sorted(r for r, _ in flags.counts_by(conn, sess.town, "rule", everything))
            services = sorted(s for s, _ in flags.counts_by(conn, sess.town, "service", everything)
                              if s)
        now = store.utcnow()
        for r in rows:
            r["age"] = flags.age_days(r, now)
        keep = {k: v for k, v in raw.items() if v}
        return render("queue.html", request, s=sess, flags=rows, total=total, page=page,
                      pages=max(1, (total + PAGE - 1) // PAGE), by_rule=by_rule,
                      by_severity=by_severity, rules=rules, services=services, f=raw,
                      query=lambda **kw: urllib.parse.urlencode({**keep, **kw}),
                      flag_url=lambda k: "/signalement?" + urllib.parse.urlencode({"cle": k}))

    # ------------------------------------------------------------ flag
    def flag_page(request: Request, form: dict | None):
        sess = session_of(request)
        if sess is None:
            return to_login(request, expired=bool(request.cookies.get(COOKIE)))
        key = request.query_params.get("cle", "")
        with engine.connect() as conn:
            fl = flags.get_flag(conn, sess.town, key)
        if fl is None:
            return render("message.html", request, status=404, s=sess,
                          title="Signalement introuvable",
                          text="Ce signalement n'existe pas pour votre commune.")
        done = request.query_params.get("fait")
        return render("flag.html", request, s=sess, fl=fl, side=side_by_side(fl),
                      done=DECISION_FR.get(done), error=None, form={})

    def decision_post(request: Request, form: dict | None):
        sess = session_of(request)
        if sess is None:
            return to_login(request, expired=True)
        if form is None or not same_origin(request) or not accounts.csrf_ok(
                sess, form.get("csrf")):
            return PlainTextResponse("Requête refusée (jeton de formulaire invalide).", 403)
        if not sess.can_decide:
            return render("message.html", request, status=403, s=sess, title="Action refusée",
                          text="Votre compte est en lecture seule : il ne peut pas décider.")
        key = form.get("cle", "")
        decision = form.get("decision", "")
        try:
            decide(engine, sess.town, key, decision, author=sess.login,
                   reason=form.get("motif"), value=form.get("valeur"))
        except sa.exc.OperationalError:  # e.g. SQLite still locked by a long load
            return render("message.html", request, status=503, s=sess,
                          title="Entrepôt occupé",
                          text="La synchronisation de la nuit écrit dans l'entrepôt : votre "
                               "décision n'a pas été enregistrée. Réessayez dans une minute.")
        except DecisionError as exc:
            with engine.connect() as conn:
                fl = flags.get_flag(conn, sess.town, key)
            if fl is None:
                return render("message.html", request, status=404, s=sess,
                              title="Signalement introuvable", text=str(exc))
            return render("flag.html", request, status=400, s=sess, fl=fl, side=side_by_side(fl),
                          done=None, error=str(exc), form=form)
        return RedirectResponse("/signalement?" + urllib.parse.urlencode(
            {"cle": key, "fait": decision}), status_code=303)

    # --------------------------------------------------------- journal
    def journal(request: Request, form: dict | None):
        sess = session_of(request)
        if sess is None:
            return to_login(request, expired=bool(request.cookies.get(COOKIE)))
        a = table("audit_log")
        author = (request.query_params.get("auteur") or "").strip()
        decisions_only = request.query_params.get("decisions") == "1"
        stmt = sa.select(a).where(a.c.town == sess.town).order_by(a.c.audit_id.desc()).limit(300)
        if author:
            stmt = stmt.where(a.c.author == author)
        if decisions_only:
            stmt = stmt.where(a.c.action.in_(list(DECISION_FR)))
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
        return render("journal.html", request, s=sess, rows=rows, author=author,
                      decisions_only=decisions_only,
                      flag_url=lambda k: "/signalement?" + urllib.parse.urlencode({"cle": k}))

    # -------------------------------------------------------- controls
    def runs(request: Request, form: dict | None):
        sess = session_of(request)
        if sess is None:
            return to_login(request, expired=bool(request.cookies.get(COOKIE)))
        v = table("validation_result")
        failed = sa.func.sum(sa.case((v.c.success.is_(False), 1), else_=0))
        stmt = (sa.select(v.c.run_id, sa.func.count().label("n"), failed.label("failed"),
                          sa.func.max(v.c.validated_at).label("at"))
                .where(v.c.town == sess.town).group_by(v.c.run_id)
                .order_by(sa.func.max(v.c.validated_at).desc()).limit(60))
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
        return render("controles.html", request, s=sess, rows=rows,
                      run_url=lambda r: "/controles/" + urllib.parse.quote(r, safe=""))

    def run_report(request: Request, form: dict | None):
        sess = session_of(request)
        if sess is None:
            return to_login(request, expired=bool(request.cookies.get(COOKIE)))
        with engine.connect() as conn:
            html = render_run_report(conn, sess.town, request.path_params["run_id"],
                                     standalone=False)
        return HTMLResponse(html)

    async def home(request: Request):
        return RedirectResponse("/signalements", status_code=303)

    routes = [
        Route("/", home),
        Route("/connexion", threaded(login_page), methods=["GET", "POST"]),
        Route("/deconnexion", threaded(logout_page), methods=["POST"]),
        Route("/signalements", threaded(queue)),
        Route("/signalement", threaded(flag_page)),
        Route("/signalement/decision", threaded(decision_post), methods=["POST"]),
        Route("/journal", threaded(journal)),
        Route("/controles", threaded(runs)),
        Route("/controles/{run_id}", threaded(run_report)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_SecurityHeaders)])


def side_by_side(fl: dict) -> dict:
    """The evidence as a table: one row per field, one column per record, and the
    suggested value beside the value it would replace."""
    ev = fl.get("evidence") or {}
    records = ev.get("records") or []
    fix = fl.get("fix") or {}
    fields: list[str] = [c for c in ev.get("columns") or [] if isinstance(c, str)]
    for r in records:
        for k in (r.get("values") or {}):
            if k not in fields:
                fields.append(k)
    target = fix.get("column") if fix else None
    if target and target not in fields:
        fields.insert(0, target)
    rows = []
    for name in fields:
        rows.append({
            "field": name, "label": column_fr(name), "target": name == target,
            "values": [(r.get("values") or {}).get(name) for r in records],
            "proposed": fix.get("value") if name == target else None,
        })
    return {"labels": [r.get("label", "") for r in records], "rows": rows,
            "expected": ev.get("expected"), "has_fix": bool(fix),
            "fix_value": fix.get("value") if fix else None,
            "fix_where": (f"{table_fr(fix['table'])} — " + ", ".join(
                f"{column_fr(k)} {v}" for k, v in fix.get("key", {}).items())) if fix else None}


def serve(url: str, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the page with uvicorn until interrupted."""
    import os

    import uvicorn

    from connectors.warehouse import make_engine

    app = create_app(make_engine(url),
                     secure_cookies=os.environ.get("GUICHET_STEWARD_SECURE_COOKIE") == "1")
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)
