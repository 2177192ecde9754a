"""The stewards' web page over HTTP (a real uvicorn server on 127.0.0.1), and the
``guichet flags`` / ``guichet steward`` commands, on both warehouse backends."""

from __future__ import annotations

import argparse
import http.cookiejar
import io
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import sqlalchemy as sa

from connectors.warehouse import make_engine
from pipelines.cli_flags import add_subcommands
from quality import accounts, store
from quality.sample import running_server, seed_sample

TOWN = "44190"
STEWARD, READER = ("marie", "Loire-Atlantique-2025"), ("paul", "lecture-seule-2025")
EMAIL_FLAG = "gx.household.email_format|household_id=1002"


@pytest.fixture
def site(warehouse_url):
    engine = make_engine(warehouse_url)
    seed_sample(engine, TOWN)
    accounts.create_user(engine, TOWN, STEWARD[0], STEWARD[1], role="steward",
                         name="Marie Durand")
    accounts.create_user(engine, TOWN, READER[0], READER[1], role="lecture")
    with running_server(engine) as base:
        yield engine, base
    engine.dispose()


class Browser:
    """A cookie-keeping HTTP client that does not follow redirects."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **kw):
                return None

        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  NoRedirect)

    def request(self, path: str, form: dict | None = None, headers: dict | None = None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            r = self.opener.open(req)
        except urllib.error.HTTPError as e:
            r = e
        return r.status, dict(r.headers), r.read().decode("utf-8")

    def csrf(self, html: str) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', html).group(1)

    def login(self, user: str, password: str) -> tuple[int, dict, str]:
        _, _, html = self.request("/connexion")
        return self.request("/connexion", {"csrf": self.csrf(html), "identifiant": user,
                                           "mot_de_passe": password})


def scalar(engine, sql, **p):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), p).scalar()


def test_login_queue_and_decision_over_http(site):
    engine, base = site
    b = Browser(base)
    status, headers, _ = b.request("/signalements")
    assert status == 303 and headers["location"].startswith("/connexion")
    status, headers, _ = b.login(*STEWARD)
    assert status == 303 and headers["location"] == "/signalements"
    cookie = next(c for c in b.jar if c.name == "guichet_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    status, headers, html = b.request("/signalements?gravite=error")
    assert status == 200 and "default-src 'none'" in headers["content-security-policy"]
    listed = set(re.findall(r'<td title="(gx\.[^"]+)">', html))
    assert "gx.association.siret_valid" in listed and "gx.household.email_format" not in listed
    status, _, html = b.request("/signalement?" + urllib.parse.urlencode({"cle": EMAIL_FLAG}))
    assert "j.bernard@gmail.con" in html and "j.bernard@gmail.com" in html
    csrf = b.csrf(html)
    form = {"csrf": csrf, "cle": EMAIL_FLAG, "decision": "accept", "motif": "appel à la famille"}
    # a forged cross-site post is refused even with the token
    status, _, _ = b.request("/signalement/decision", form, {"Origin": "http://evil.example"})
    assert status == 403
    status, _, _ = b.request("/signalement/decision", {**form, "csrf": "x"})
    assert status == 403
    assert scalar(engine, "SELECT COUNT(*) FROM steward_decision") == 0
    status, headers, _ = b.request("/signalement/decision", form)
    assert status == 303
    assert scalar(engine, "SELECT email FROM household WHERE household_id = 1002") \
        == "j.bernard@gmail.com"
    assert scalar(engine, "SELECT author FROM audit_log WHERE action = 'accept'") == "marie"
    _, _, html = b.request(headers["location"])
    assert "Décision enregistrée" in html and "résolu" in html
    # an override that would still break the rule is refused, in French
    _, _, html = b.request("/signalement?" + urllib.parse.urlencode(
        {"cle": "gx.household.postcode_format|household_id=1002"}))
    status, _, html = b.request("/signalement/decision", {
        "csrf": csrf, "cle": "gx.household.postcode_format|household_id=1002",
        "decision": "override", "valeur": "4423", "motif": "vu"})
    assert status == 400 and "ne convient pas" in html
    _, _, html = b.request("/journal")
    assert "appel à la famille" in html
    _, _, html = b.request("/controles")
    run = re.search(r'href="/controles/([^"]+)"', html).group(1)
    status, _, html = b.request(f"/controles/{run}")
    assert status == 200 and "core.household" in html
    status, headers, _ = b.request("/deconnexion", {"csrf": csrf})
    assert status == 303
    status, _, _ = b.request("/signalements")
    assert status == 303


def test_access_control_read_only_forms_lockout_and_expiry(site, monkeypatch):
    engine, base = site
    b = Browser(base)
    # the log-in form needs its own token
    status, _, _ = b.request("/connexion", {"csrf": "forged", "identifiant": READER[0],
                                            "mot_de_passe": READER[1]})
    assert status == 403
    # a read-only account sees the flag but has no action, and the server refuses its post
    assert b.login(*READER)[0] == 303
    _, _, html = b.request("/signalement?" + urllib.parse.urlencode({"cle": EMAIL_FLAG}))
    assert "lecture seule" in html and 'name="decision"' not in html
    status, _, _ = b.request("/signalement/decision", {
        "csrf": b.csrf(html), "cle": EMAIL_FLAG, "decision": "dismiss", "motif": "non"})
    assert status == 403
    assert scalar(engine, "SELECT COUNT(*) FROM steward_decision") == 0
    # sessions expire when idle
    monkeypatch.setenv("GUICHET_STEWARD_IDLE_MINUTES", "0.005")  # 0.3 s
    time.sleep(0.5)
    status, headers, _ = b.request("/signalements")
    assert status == 303 and headers["location"] == "/connexion?expiree=1"
    assert scalar(engine, "SELECT COUNT(*) FROM steward_session WHERE login = 'paul'") == 0
    monkeypatch.delenv("GUICHET_STEWARD_IDLE_MINUTES")
    # a decision waiting for the nightly run's lock does not stall the page for others
    steward, reader = Browser(base), Browser(base)
    assert steward.login(*STEWARD)[0] == 303 and reader.login(*READER)[0] == 303
    _, _, html = steward.request("/signalement?" + urllib.parse.urlencode({"cle": EMAIL_FLAG}))
    form = {"csrf": steward.csrf(html), "cle": EMAIL_FLAG, "decision": "fixed_at_source"}
    holding, release, posted = threading.Event(), threading.Event(), {}

    def nightly():
        with store.town_transaction(engine, TOWN):
            holding.set()
            release.wait(20)

    run = threading.Thread(target=nightly)
    run.start()
    assert holding.wait(10)
    post = threading.Thread(target=lambda: posted.update(
        r=steward.request("/signalement/decision", form)))
    post.start()
    time.sleep(0.4)
    assert "r" not in posted  # the decision waits for the run...
    t0 = time.monotonic()
    assert reader.request("/signalements")[0] == 200  # ...the others' pages do not
    assert time.monotonic() - t0 < 3
    release.set()
    run.join(20)
    post.join(60)
    assert posted["r"][0] == 303
    assert scalar(engine, "SELECT status FROM flag WHERE flag_key = :k", k=EMAIL_FLAG) \
        == "resolved"
    # wrong passwords lock the account, even against the right one, and are audited
    b = Browser(base)
    for _ in range(accounts.MAX_FAILURES):
        status, _, html = b.login(STEWARD[0], "mauvais-mot-de-passe")
        assert status == 401 and "incorrect" in html
    assert b.login(*STEWARD)[0] == 401
    assert scalar(engine, "SELECT COUNT(*) FROM audit_log WHERE action = 'login_failed'") \
        == accounts.MAX_FAILURES + 1
    stored = scalar(engine, "SELECT password_hash FROM steward_user WHERE login = 'marie'")
    assert stored.startswith("scrypt$16384$8$1$") and STEWARD[1] not in stored
    assert scalar(engine, "SELECT COUNT(*) FROM audit_log WHERE message LIKE :p",
                  p=f"%{STEWARD[1]}%") == 0


# ------------------------------------------------------------------- CLI
def cli(warehouse_url, *argv, stdin: str | None = None, monkeypatch=None):
    p = argparse.ArgumentParser(prog="guichet")
    add_subcommands(p.add_subparsers(dest="cmd", required=True))
    args = p.parse_args([*argv, "--warehouse-url", warehouse_url, "--town", TOWN])
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return args.fn(args)


def test_flags_cli_lists_shows_resolves_and_dismisses(warehouse_url, capsys, monkeypatch):
    engine = make_engine(warehouse_url)
    seed_sample(engine, TOWN)
    assert cli(warehouse_url, "flags", "list", "--json", "--severity", "error") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total"] == len(out["flags"]) and out["by_severity"] == {"error": out["total"]}
    assert "gx.association.siret_valid" in out["by_rule"]
    assert cli(warehouse_url, "flags", "list", "--rule", "gx.household.*") == 0
    text = capsys.readouterr().out
    assert "signalement(s)" in text and "E-mail invalide" in text
    assert cli(warehouse_url, "flags", "show", EMAIL_FLAG) == 0
    assert "Remplacer « j.bernard@gmail.con » par « j.bernard@gmail.com »" in \
        capsys.readouterr().out
    assert cli(warehouse_url, "flags", "resolve", EMAIL_FLAG, "--override",
               "jules.bernard@gmail.com", "--reason", "nouvelle adresse", "--author", "marie",
               "--json") == 0
    assert json.loads(capsys.readouterr().out)["resolution"] == "override"
    assert scalar(engine, "SELECT email FROM household WHERE household_id = 1002") \
        == "jules.bernard@gmail.com"
    assert cli(warehouse_url, "flags", "dismiss", "gx.person.birth_date_plausible|person_id=10004",
               "--reason", "date confirmée par l'état civil", "--author", "marie") == 0
    assert "écarté" in capsys.readouterr().out
    assert cli(warehouse_url, "flags", "resolve", "nope|x=1", "--fixed-at-source") == 2
    assert "introuvable" in capsys.readouterr().err
    assert cli(warehouse_url, "flags", "list", "--status", "all", "--json", "--limit", "500") == 0
    statuses = {f["flag_key"]: f["status"] for f in json.loads(capsys.readouterr().out)["flags"]}
    assert statuses[EMAIL_FLAG] == "resolved"
    assert statuses["gx.person.birth_date_plausible|person_id=10004"] == "dismissed"
    # accounts from the command line; the password never appears in the output
    assert cli(warehouse_url, "steward", "user", "add", "lea", "--role", "lecture",
               "--password-stdin", stdin="un-mot-de-passe-solide\n",
               monkeypatch=monkeypatch) == 0
    assert cli(warehouse_url, "steward", "user", "add", "bob", "--role", "steward",
               "--password-stdin", stdin="court\n", monkeypatch=monkeypatch) == 2
    out = capsys.readouterr()
    assert "solide" not in out.out + out.err and "au moins" in out.err
    assert cli(warehouse_url, "steward", "user", "list", "--json") == 0
    assert [u["login"] for u in json.loads(capsys.readouterr().out)] == ["lea"]
    engine.dispose()
