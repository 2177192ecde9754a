"""The renderers on hand-built reports: the workbook read back with openpyxl, the HTML page
parsed and then drawn by a real headless Chromium (Debian's, driven by Playwright), and
``guichet report`` writing both. No warehouse: any ``Report`` must render.

With CI=true a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from html.parser import HTMLParser

import openpyxl
import pandas as pd
import pytest

from pipelines.reports import formatting as fr
from pipelines.reports.html import render_html, write_html
from pipelines.reports.model import Chart, Column, Report, Sheet
from pipelines.reports.xlsx import write_xlsx

THIN, NBSP = "\u202f", "\u00a0"


def sample_report() -> Report:
    months = pd.DataFrame({
        "month": ["2026-01", "2026-02", "2026-03"],
        "invoiced_cents": [123456, 2345678, 99],
        "collected_cents": [100000, 2000000, None],
        "rate": [0.81, 0.125, None],
        "invoices": [12, 1340, 1],
    })
    payments = pd.DataFrame({
        "paid_on": [dt.date(2026, 7, 3), pd.Timestamp("2026-02-28 10:00"), None],
        "week": ["2026-W27", dt.date(2026, 3, 2), "2026-W05"],
        "channel": ["PayFiP", "=SUM(A1:A9)", "<script>alert(1)</script> Régie"],
        "amount_cents": [-1250, 5000050, 0],
        "hours": [1.5, 0.25, None],
        "delay_days": [12.34, 0.0, 3.0],
    })
    by_month = [
        Column("month", "Mois", "month", "Mois de facturation."),
        Column("invoiced_cents", "Facturé", "cents", "Somme des factures émises dans le mois."),
        Column("collected_cents", "Encaissé", "cents", "Paiements reçus dans le mois."),
        Column("rate", "Taux d'encaissement", "pct", "Encaissé divisé par facturé."),
        Column("invoices", "Factures", "int", "Nombre de factures émises."),
    ]
    by_payment = [
        Column("paid_on", "Payé le", "date", "Jour du paiement."),
        Column("week", "Semaine", "week", "Semaine ISO du paiement."),
        Column("channel", "Canal", "text", "Canal de paiement."),
        Column("amount_cents", "Montant", "cents", "Montant payé (négatif : remboursement)."),
        Column("hours", "Durée (h)", "hours", "Durée de traitement en heures."),
        Column("delay_days", "Délai (j)", "days", "Jours entre facture et paiement."),
    ]
    return Report(
        kind="finance", title="Rapport financier", town="44190",
        town_name="Saint-Sébastien-sur-Loire", start="2026-01", end="2026-03",
        sheets=[Sheet("Par mois", "Facturé et encaissé par mois", by_month, months,
                      note="Le total des mois égale le total de la période."),
                Sheet("Paiements", "Paiements reçus", by_payment, payments)],
        charts=[Chart("bar", "Facturé et encaissé par mois", "Par mois", "month",
                      ("invoiced_cents", "collected_cents")),
                Chart("stacked", "Encaissements empilés", "Par mois", "month",
                      ("invoiced_cents", "collected_cents")),
                Chart("line", "Taux d'encaissement", "Par mois", "month", ("rate",))],
        generated_at=dt.datetime(2026, 7, 3, 12, 5, tzinfo=dt.UTC),
        checks=["La somme des mois (24 691,33 €) égale le total facturé."],
    )


# ------------------------------------------------------------------ formatting
def test_french_formats():
    assert fr.euros(123456) == f"1{THIN}234,56{NBSP}€"
    assert fr.euros(-1250) == f"-12,50{NBSP}€"
    assert fr.euros(123456789, 0) == f"1{THIN}234{THIN}568{NBSP}€"
    assert fr.euros(None) == "" and fr.euros(float("nan")) == ""
    assert fr.date_fr(dt.date(2026, 7, 3)) == "03/07/2026"
    assert fr.date_fr("2026-07-03") == "03/07/2026"
    assert fr.percent(0.125) == f"12,5{THIN}%"
    assert fr.month_fr("2026-07") == "juillet 2026"
    assert fr.month_fr(pd.Period("2026-08", "M")) == "août 2026"
    assert fr.month_short_fr("2026-02") == "févr. 2026"
    assert fr.week_fr(dt.date(2026, 7, 1)) == "S27 2026"
    assert fr.week_fr("2026-W05") == "S05 2026"
    assert fr.week_fr(dt.date(2027, 1, 1)) == "S53 2026"  # ISO year, not calendar year
    assert fr.period_fr("2026-01", "2026-03") == "de janvier 2026 à mars 2026"
    assert fr.datetime_fr(dt.datetime(2026, 7, 3, 12, 5)) == "03/07/2026 à 14:05"  # UTC → Paris
    assert fr.number(2.5, 0) == "3" and fr.number(1234.5, 1) == f"1{THIN}234,5"


# ------------------------------------------------------------------ workbook
def test_workbook_reads_back(tmp_path):
    path = write_xlsx(sample_report(), tmp_path / "finance.xlsx")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Sommaire", "Par mois", "Paiements", "Définitions"]
    assert wb.properties.creator == "guichet"
    assert wb.properties.title == "Rapport financier"

    cover = [str(c.value) for row in wb["Sommaire"].iter_rows() for c in row if c.value]
    assert "Rapport financier" in cover
    assert "Saint-Sébastien-sur-Loire (44190)" in cover
    assert "de janvier 2026 à mars 2026" in cover
    assert any(v.startswith("03/07/2026 à 14:05") for v in cover)
    assert "La somme des mois (24 691,33 €) égale le total facturé." in cover

    ws = wb["Par mois"]
    assert [c.value for c in ws[1]] == ["Mois", "Facturé", "Encaissé", "Taux d'encaissement",
                                         "Factures"]
    assert all(c.font.bold for c in ws[1])
    assert ws.freeze_panes == "A2"
    assert ws.max_row == 1 + 3 + 2  # header, three months, a blank row and the note
    assert ws["A2"].value == dt.datetime(2026, 1, 1) and "mmmm" in ws["A2"].number_format
    assert ws["B2"].value == pytest.approx(1234.56) and isinstance(ws["B2"].value, float)
    assert ws["B2"].number_format == '#,##0.00\\ "€"'
    assert ws["B3"].value == pytest.approx(23456.78)
    assert ws["C4"].value is None  # missing stays empty, not 0
    assert ws["D3"].value == pytest.approx(0.125) and ws["D3"].number_format == "0.0%"
    assert ws["E3"].value == 1340 and ws["E3"].number_format == "#,##0"
    assert ws["A6"].value == "Le total des mois égale le total de la période."
    assert ws.column_dimensions["B"].width >= len("1 234,56 €")

    ws = wb["Paiements"]
    assert ws.freeze_panes == "A2"
    assert ws["A2"].value == dt.datetime(2026, 7, 3) and ws["A2"].number_format == "DD/MM/YYYY"
    assert ws["A3"].value == dt.datetime(2026, 2, 28)
    assert [ws[f"B{i}"].value for i in (2, 3, 4)] == ["S27 2026", "S10 2026", "S05 2026"]
    assert ws["C3"].value == "=SUM(A1:A9)" and ws["C3"].data_type == "s"  # text, not formula
    assert ws["D2"].value == pytest.approx(-12.5)
    assert ws["D3"].value == pytest.approx(50000.50)
    assert ws["E2"].value == 1.5 and ws["F2"].number_format == "#,##0.0"

    d = wb["Définitions"]
    rows = [tuple(c.value for c in r) for r in d.iter_rows(min_row=1)]
    assert rows[0] == ("Feuille", "Colonne", "Définition")
    assert ("Par mois", "Taux d'encaissement", "Encaissé divisé par facturé.") in rows
    assert ("Paiements", "Montant", "Montant payé (négatif : remboursement).") in rows
    assert len(rows) == 1 + 5 + 6
    assert d.freeze_panes == "A2"


def test_workbook_refuses_clashing_sheet_names(tmp_path):
    r = sample_report()
    r.sheets[1].name = "Définitions"
    with pytest.raises(ValueError, match="used twice"):
        write_xlsx(r, tmp_path / "x.xlsx")


# ------------------------------------------------------------------ HTML, parsed
class Tree(HTMLParser):
    """Start tags with their attributes, and the text of the page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag, cls=None):
        return [a for t, a in self.tags
                if t == tag and (cls is None or cls in (a.get("class") or "").split())]


def parse(html: str) -> Tree:
    t = Tree()
    t.feed(html)
    return t


def test_html_is_french_self_contained_and_escaped():
    html = render_html(sample_report())
    tree = parse(html)
    assert tree.all("html")[0]["lang"] == "fr"
    text = "".join(tree.text)
    for shown in (f"1{THIN}234,56{NBSP}€", f"23{THIN}456,78{NBSP}€", "03/07/2026", "28/02/2026",
                  f"12,5{THIN}%", "janvier 2026", "S27 2026", f"50{THIN}000,50{NBSP}€",
                  f"-12,50{NBSP}€", "12,3", "Encaissé divisé par facturé."):
        assert shown in text, shown
    # nothing fetched from anywhere: no URL, no external resource, no script
    assert not re.search(r"https?://", html)
    assert not tree.all("script") and not tree.all("link") and not tree.all("img")
    assert not any("src" in a for _, a in tree.tags)
    assert "url(" not in html and "@import" not in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Régie" in html
    assert "default-src 'none'" in tree.all("meta")[1]["content"]

    svgs = tree.all("svg", "chart")
    assert [s["data-kind"] for s in svgs] == ["bar", "stacked", "line"]
    html_parts = html.split("<svg")[1:]
    bar_svg, stacked_svg, line_svg = (parse("<svg" + p.split("</svg>")[0]) for p in html_parts)
    assert len(bar_svg.all("rect", "bar")) == 5  # 3 + 2 (a missing value draws nothing)
    assert len(stacked_svg.all("rect", "bar")) == 5
    assert len(line_svg.all("polyline", "series-line")) == 1
    assert len(line_svg.all("circle", "point")) == 2
    assert "Facturé — janv. 2026 : 1" in "".join(bar_svg.text)  # tooltip with the exact value
    assert f"1{THIN}234,56{NBSP}€" in "".join(bar_svg.text)
    assert f"25{THIN}000{NBSP}€" in "".join(bar_svg.text)  # y axis in euros
    assert {"Facturé", "Encaissé"} <= set(bar_svg.text)  # legend
    assert f"100{THIN}%" in "".join(line_svg.text)


def test_bar_heights_are_proportional():
    tree = parse(render_html(sample_report()).split("<svg")[1])
    heights = [float(a["height"]) for a in tree.all("rect", "bar")]
    # invoiced Jan, Feb, Mar then collected Jan, Feb
    assert heights[1] / heights[4] == pytest.approx(2345678 / 2000000, rel=0.01)
    assert heights[0] / heights[3] == pytest.approx(123456 / 100000, rel=0.02)


def test_empty_chart_says_so_and_bad_chart_is_refused():
    r = sample_report()
    r.charts = [Chart("bar", "Vide", "Par mois", "month", ("invoiced_cents",),
                      filter={"month": "2030-01"})]
    assert "Aucune donnée pour la période." in render_html(r)
    r.charts = [Chart("bar", "Faux", "Par mois", "month", ("nope",))]
    with pytest.raises(ValueError, match="nope"):
        render_html(r)


# ------------------------------------------------------------------ HTML, in Chromium


def test_chromium_draws_the_charts_without_network(browser, tmp_path):
    path = write_html(sample_report(), tmp_path / "finance.html")
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = ctx.new_page()
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    assert requests == [path.as_uri()]  # the file itself, nothing else
    assert page.evaluate("document.documentElement.lang") == "fr"
    charts = page.locator("svg.chart")
    assert charts.count() == 3
    for i in range(3):
        svg = charts.nth(i)
        svg.scroll_into_view_if_needed()
        box = svg.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 150
        assert svg.is_visible()
    bars = page.locator("svg.chart-bar rect.bar")
    assert bars.count() == 5
    boxes = [bars.nth(i).bounding_box() for i in range(bars.count())]
    assert all(b and b["width"] > 0 and b["height"] > 0 for b in boxes)
    assert page.locator("svg.chart-line polyline.series-line").bounding_box()["width"] > 100
    cell = page.locator("table >> nth=0").locator("tbody tr >> nth=0").locator("td >> nth=1")
    assert cell.inner_text() == f"1{THIN}234,56{NBSP}€"
    page.screenshot(path=str(tmp_path / "finance.png"), full_page=True)
    ctx.close()


# ------------------------------------------------------------------ the command
def test_report_command_writes_both_formats(tmp_path, monkeypatch, capsys):
    from pipelines import reports
    from pipelines.cli import main

    db = tmp_path / "wh.sqlite"
    sqlite3.connect(db).close()
    cfg = tmp_path / "guichet.toml"
    cfg.write_text(f'[warehouse]\nurl = "sqlite:///{db}"\n\n[towns.44190]\n'
                   'name = "Saint-Sébastien-sur-Loire"\nlegacy_url = "x"\nportal_base = "x"\n'
                   'treasury_root = "x"\n')
    seen = []

    def fake_build(kind, engine, town, start, end):
        seen.append((kind, town, start, end))
        return sample_report()

    monkeypatch.setattr(reports, "build", fake_build)
    out = tmp_path / "finance.xlsx"
    rc = main(["report", "finance", "--from", "2026-01", "--to", "2026-03", "--format", "xlsx",
               "--output", str(out), "--config", str(cfg)])
    assert rc == 0, capsys.readouterr().err
    assert seen == [("finance", "44190", "2026-01", "2026-03")]
    assert openpyxl.load_workbook(out).sheetnames[1] == "Par mois"
    assert "de janvier 2026 à mars 2026" in capsys.readouterr().out

    html = tmp_path / "finance.html"
    assert main(["report", "finance", "--from", "2026-01", "--to", "2026-03",
                 "-o", str(html), "--config", str(cfg)]) == 0  # format from the extension
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    for argv, message in [
        (["--from", "2026-13", "--to", "2026-03", "-o", str(out)], "--from attend un mois"),
        (["--from", "2026-04", "--to", "2026-03", "-o", str(out)], "précède"),
        (["--from", "2026-01", "--to", "2026-03", "-o", str(tmp_path / "x.pdf")],
         "précisez --format"),
        (["--from", "2026-01", "--to", "2026-03", "--format", "html", "-o", str(out)],
         "devrait se terminer par .html"),
        (["--from", "2026-01", "--to", "2026-03", "-o", str(tmp_path / "no" / "x.xlsx")],
         "n'existe pas"),
    ]:
        capsys.readouterr()
        assert main(["report", "finance", *argv, "--config", str(cfg)]) == 2
        assert message in capsys.readouterr().err
