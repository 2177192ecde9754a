"""The steward's day in a real headless browser (Debian's Chromium driven by Playwright),
on both warehouse backends: log in, filter, open a flag, resolve it, see it closed and
audited; a read-only user cannot act.

With GUICHET_DOC_SCREENSHOTS=1 the screenshots of the SQLite run are written to
docs/img/stewardship/ (they illustrate docs/stewardship.md); otherwise to the test's temporary folder.
With CI=true a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

import sqlalchemy as sa

from connectors.warehouse import make_engine
from quality import accounts
from quality.sample import running_server, seed_sample

ROOT = Path(__file__).resolve().parent.parent
TOWN = "44190"




def shots_dir(tmp_path: Path, backend: str) -> Path:
    if os.environ.get("GUICHET_DOC_SCREENSHOTS") == "1" and backend == "sqlite":
        d = ROOT / "docs" / "img" / "stewardship"
    else:
        d = tmp_path / "shots"
    d.mkdir(parents=True, exist_ok=True)
    return d


def scalar(engine, sql, **p):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), p).scalar()


def test_a_steward_resolves_a_flag_and_a_reader_cannot(browser, warehouse_url, tmp_path):
    backend = "sqlite" if warehouse_url.startswith("sqlite") else "postgresql"
    shots = shots_dir(tmp_path, backend)
    engine = make_engine(warehouse_url)
    seed_sample(engine, TOWN)
    accounts.create_user(engine, TOWN, "marie", "Loire-Atlantique-2025", role="steward",
                         name="Marie Durand")
    accounts.create_user(engine, TOWN, "paul", "lecture-seule-2025", role="lecture",
                         name="Paul Morin")
    with running_server(engine) as base:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
        page = ctx.new_page()
        page.goto(base + "/signalements")
        assert page.url.endswith("/connexion")
        page.fill("input[name=identifiant]", "marie")
        page.fill("input[name=mot_de_passe]", "Loire-Atlantique-2025")
        page.screenshot(path=str(shots / "01-connexion.png"))
        page.click("button[type=submit]")
        page.wait_for_url("**/signalements")
        total = int(page.inner_text("#resultats").split()[0])
        assert total >= 12
        page.screenshot(path=str(shots / "02-file.png"), full_page=True)

        # filter: the e-mail rule, open flags
        page.select_option("select[name=regle]", "gx.household.email_format")
        page.click(".filtres button[type=submit]")
        page.wait_for_url("**regle=gx.household.email_format**")
        rows = page.locator("table:has(th:text('Problème')) tr:has(td)")
        assert rows.count() == 2
        assert "gmail.con" in page.inner_text("body")
        page.screenshot(path=str(shots / "03-filtre.png"), full_page=True)

        # open the flag: evidence side by side with the suggested fix
        page.click("tr:has-text('gmail.con') >> text=Ouvrir")
        page.wait_for_url("**/signalement?cle=**")
        assert page.inner_text("#statut") == "ouvert"
        assert page.locator("td.actuel-faux").first.inner_text() == "j.bernard@gmail.con"
        assert page.locator("td.propose").first.inner_text() == "j.bernard@gmail.com"
        page.screenshot(path=str(shots / "04-signalement.png"), full_page=True)

        # accept the suggestion, with a reason
        form = page.locator("form:has(input[name=decision][value=accept])")
        form.locator("textarea[name=motif]").fill("Adresse confirmée par téléphone avec la famille.")
        form.locator("button[type=submit]").click()
        page.wait_for_url("**fait=accept**")
        assert "Décision enregistrée" in page.inner_text("[role=status]")
        assert page.inner_text("#statut") == "résolu"
        assert "marie" in page.inner_text("table[aria-label=Décisions]")
        page.screenshot(path=str(shots / "05-decision.png"), full_page=True)

        # the flag has left the open queue and sits among the resolved ones
        page.goto(base + "/signalements?regle=gx.household.email_format")
        assert page.locator("table:has(th:text('Problème')) tr:has(td)").count() == 1
        page.goto(base + "/signalements?statut=resolved")
        assert "gmail.con" in page.inner_text("body")
        page.goto(base + "/journal")
        journal = page.inner_text("body")
        assert "Adresse confirmée par téléphone" in journal and "marie" in journal
        page.screenshot(path=str(shots / "06-journal.png"), full_page=True)
        assert scalar(engine, "SELECT email FROM household WHERE household_id = 1002") \
            == "j.bernard@gmail.com"
        assert scalar(engine, "SELECT COUNT(*) FROM audit_log WHERE action = 'accept' "
                              "AND author = 'marie'") == 1
        page.goto(base + "/controles")
        page.click("table a")
        assert "core.household" in page.inner_text("body")
        page.screenshot(path=str(shots / "07-controles.png"), full_page=True)
        page.click("text=Retour aux contrôles")
        page.click("text=Se déconnecter")
        page.wait_for_url("**/connexion")
        ctx.close()

        # a read-only user sees the flag but cannot act on it
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
        page = ctx.new_page()
        page.goto(base + "/connexion")
        page.fill("input[name=identifiant]", "paul")
        page.fill("input[name=mot_de_passe]", "lecture-seule-2025")
        page.click("button[type=submit]")
        page.wait_for_url("**/signalements")
        page.click("tr:has-text('SIRET') >> text=Ouvrir")
        page.wait_for_url("**/signalement?cle=**")
        assert page.locator("#lecture-seule").is_visible()
        assert page.locator("form:has(input[name=decision])").count() == 0
        page.screenshot(path=str(shots / "08-lecture-seule.png"), full_page=True)
        # even a hand-made post with the session's token is refused
        key = page.url.split("cle=", 1)[1]
        csrf = page.locator("input[name=csrf]").first.input_value()
        resp = page.request.post(base + "/signalement/decision", form={
            "csrf": csrf, "cle": urllib.parse.unquote(key),
            "decision": "dismiss", "motif": "essai"})
        assert resp.status == 403
        assert scalar(engine, "SELECT COUNT(*) FROM steward_decision") == 1
        ctx.close()
    engine.dispose()
