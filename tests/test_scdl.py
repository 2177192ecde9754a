"""The SCDL subventions 2.1.1 export on hand-built subsidies, on both warehouse backends:
the exact header, a row checked field by field, only granted requests, the decision day
in Paris time, invalid identifiers refused with a message naming the request and the
field, and ``guichet report scdl`` end to end."""

from __future__ import annotations

import csv
import datetime as dt
import re

import pytest
import sqlalchemy as sa

from pipelines.reports import scdl
from schemas.tables import METADATA

TOWN = "44190"
NAME = "Saint-Sébastien-sur-Loire"
SIRET = "21440190310006"  # made up, both Luhn keys right
HEADER = ("nomAttribuant,idAttribuant,dateConvention,referenceDecision,nomBeneficiaire,"
          "idBeneficiaire,rnaBeneficiaire,objet,montant,nature,conditionsVersement,"
          "datesPeriodeVersement,idRAE,notificationUE,pourcentageSubvention,dispositifAide")


def asso(aid, name, rna, siret, town=TOWN, **kw):
    return {"town": town, "association_id": aid, "name": name, "rna": rna, "siret": siret,
            "email": None, "deleted_run_id": None, **kw}


def req(rid, number, aid, state, decided, granted, requested=1_000_000, town=TOWN,
        procedure=scdl.PROCEDURE, purpose="Fête de quartier", **kw):
    return {"town": town, "request_id": rid, "request_number": number, "procedure": procedure,
            "association_id": aid, "state": state, "submitted_at": dt.datetime(2025, 1, 5),
            "decided_at": decided, "service": "VIE_ASSOCIATIVE",
            "amount_requested_cents": requested, "amount_granted_cents": granted,
            "purpose": purpose, "deleted_run_id": None, **kw}


@pytest.fixture
def engine(warehouse_url):
    eng = sa.create_engine(warehouse_url)
    METADATA.create_all(eng)
    with eng.begin() as conn:
        conn.execute(METADATA.tables["association"].insert(), [
            asso("asso-1", "Handball Saint-Sébastien", "W444379743", "73282932000074"),
            asso("asso-2", "Club des aînés, de Beautour", "W443113181", None),
            asso("asso-9", "Ailleurs", "W440000001", "73282932000074", town="44109"),
        ])
        conn.execute(METADATA.tables["procedure_request"].insert(), [
            req("d1", "GNK-2025-000001", "asso-1", "accepte", dt.datetime(2025, 6, 23, 14, 2),
                521000, 890000),
            req("d2", "GNK-2025-000002", "asso-2", "accepte", dt.datetime(2025, 3, 1, 9),
                176050, purpose="Déplacements en compétition, saison 2025"),
            # 23:30 UTC on 31 December is 1 January in Paris: a 2026 decision
            req("d3", "GNK-2025-000003", "asso-1", "accepte", dt.datetime(2025, 12, 31, 23, 30),
                50000),
            req("d4", "GNK-2025-000004", "asso-1", "refuse", dt.datetime(2025, 5, 1), 0),
            req("d5", "GNK-2025-000005", "asso-1", "accepte", dt.datetime(2025, 5, 2), 0),
            req("d6", "GNK-2025-000006", "asso-1", "en_instruction", None, None),
            req("d7", "GNK-2025-000007", "asso-1", "accepte", dt.datetime(2025, 5, 3), 70000,
                procedure="RESERVATION_SALLE"),
            req("d8", "GNK-2025-000008", "asso-9", "accepte", dt.datetime(2025, 5, 4), 80000,
                town="44109"),
            req("d9", "GNK-2025-000009", "asso-1", "accepte", dt.datetime(2025, 5, 5), 90000,
                deleted_run_id="run-2"),
        ])
    yield eng
    eng.dispose()


def add(engine, associations=(), requests=()):
    with engine.begin() as conn:
        if associations:
            conn.execute(METADATA.tables["association"].insert(), list(associations))
        if requests:
            conn.execute(METADATA.tables["procedure_request"].insert(), list(requests))


def export(engine, path, year=2025, **kw):
    return scdl.export(engine, TOWN, NAME, SIRET, dt.date(year, 1, 1), dt.date(year, 12, 31),
                       path, **kw)


def test_header_and_a_row_field_by_field(engine, tmp_path):
    out = tmp_path / "subventions.csv"
    result = export(engine, out)
    raw = out.read_bytes()
    assert raw.startswith(HEADER.encode() + b"\r\n")  # UTF-8, no BOM, CRLF
    lines = raw.decode("utf-8").split("\r\n")
    assert lines[0] == HEADER and lines[-1] == ""
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    # only the granted subsidies of the town decided in 2025, by decision date
    assert [r["referenceDecision"] for r in rows] == ["GNK-2025-000002", "GNK-2025-000001"]
    assert rows[1] == {
        "nomAttribuant": NAME, "idAttribuant": SIRET, "dateConvention": "2025-06-23",
        "referenceDecision": "GNK-2025-000001", "nomBeneficiaire": "Handball Saint-Sébastien",
        "idBeneficiaire": "73282932000074", "rnaBeneficiaire": "W444379743",
        "objet": "Fête de quartier", "montant": "5210.00", "nature": "aide en numéraire",
        "conditionsVersement": "unique", "datesPeriodeVersement": "2025-06-23/2025-12-31",
        "idRAE": "", "notificationUE": "non", "pourcentageSubvention": "1.00",
        "dispositifAide": "",
    }
    # an association with an RNA number and no SIRET; a comma quoted, not a new column
    assert rows[0]["idBeneficiaire"] == "" and rows[0]["rnaBeneficiaire"] == "W443113181"
    assert rows[0]["nomBeneficiaire"] == "Club des aînés, de Beautour"
    assert rows[0]["montant"] == "1760.50"
    assert '"Club des aînés, de Beautour"' in lines[1]
    assert result.total_cents == 521000 + 176050


def test_the_decision_day_is_the_paris_day(engine, tmp_path):
    rows = export(engine, tmp_path / "s.csv", year=2026).rows
    assert [(r["referenceDecision"], r["dateConvention"]) for r in rows] == [
        ("GNK-2025-000003", "2026-01-01")]


def test_bad_siret_stops_the_export_and_names_request_and_field(engine, tmp_path):
    add(engine, [asso("asso-3", "Judo club", "W441234567", "73282932000075")],
        [req("d10", "GNK-2025-000010", "asso-3", "accepte", dt.datetime(2025, 9, 1), 120000)])
    out = tmp_path / "s.csv"
    with pytest.raises(scdl.ScdlError) as err:
        export(engine, out)
    msg = str(err.value)
    assert "demande GNK-2025-000010, champ idBeneficiaire : SIRET invalide « 73282932000075 »" \
        in msg
    assert "aucun fichier n'a été écrit" in msg
    assert not out.exists()
    # excluding it instead: the others are written, the excluded one reported
    result = export(engine, out, skip_invalid=True)
    assert [r["referenceDecision"] for r in result.rows] == ["GNK-2025-000002",
                                                             "GNK-2025-000001"]
    assert [(p.request, p.field) for p in result.excluded] == [("GNK-2025-000010",
                                                                "idBeneficiaire")]
    assert "GNK-2025-000010" not in out.read_text(encoding="utf-8")


def test_bad_rna_and_missing_identifiers_are_refused(engine, tmp_path):
    add(engine, [asso("asso-4", "Chorale", "W44123", None), asso("asso-5", "Sans numéro", None,
                                                                  None)],
        [req("d11", "GNK-2025-000011", "asso-4", "accepte", dt.datetime(2025, 9, 2), 1000),
         req("d12", "GNK-2025-000012", "asso-5", "accepte", dt.datetime(2025, 9, 3), 1000,
             purpose=None)])
    with pytest.raises(scdl.ScdlError) as err:
        export(engine, tmp_path / "s.csv")
    found = {(p.request, p.field) for p in err.value.problems}
    assert found == {("GNK-2025-000011", "rnaBeneficiaire"),
                     ("GNK-2025-000012", "idBeneficiaire"), ("GNK-2025-000012", "objet")}
    assert "numéro RNA invalide « W44123 » (W suivi de 9 chiffres)" in str(err.value)


@pytest.mark.parametrize("siret, message", [
    (None, "le SIRET de la commune (idAttribuant) manque"),
    ("21440190010002", "est invalide"),  # SIRET key right, SIREN key wrong
    ("2144019031000", "est invalide"),
])
def test_town_siret_is_required_and_checked(siret, message):
    with pytest.raises(scdl.ScdlError, match=re.escape(message)):
        scdl.check_attributing(NAME, siret, TOWN)
    assert scdl.check_attributing(f" {NAME} ", f"{SIRET} ", TOWN) == (NAME, SIRET)


def good_row() -> dict:
    return scdl.to_row({"decided_on": dt.date(2025, 6, 23), "request_number": "R1",
                        "association_name": "A", "siret": "73282932000074", "rna": None,
                        "purpose": "Objet", "amount_granted_cents": 100}, NAME, SIRET)


@pytest.mark.parametrize("field, value", [
    ("nature", "aide"), ("montant", "12,50"), ("pourcentageSubvention", "1.5"),
    ("pourcentageSubvention", "0"), ("datesPeriodeVersement", "2025-12-31/2025-01-01"),
    ("datesPeriodeVersement", "2025-06-23_2025-12-31"), ("dateConvention", "2025-02-30"),
    ("notificationUE", "false"), ("objet", "x" * 257), ("idRAE", "123456"),
    ("idAttribuant", "2144019031000A"),
])
def test_schema_rules(field, value):
    assert scdl.validate_row(good_row()) == []
    row = good_row() | {field: value}
    assert [f for f, _ in scdl.validate_row(row)] == [field]


def test_cli_end_to_end(engine, warehouse_url, tmp_path, capsys):
    from pipelines.cli import main

    def config(siret_line):
        cfg = tmp_path / "guichet.toml"
        cfg.write_text(f'[warehouse]\nurl = "{warehouse_url}"\n\n[towns.{TOWN}]\n'
                       f'name = "{NAME}"\nlegacy_url = "x"\nportal_base = "x"\n'
                       f'treasury_root = "x"\n{siret_line}')
        return str(cfg)

    out = tmp_path / "subventions-2025.csv"
    rc = main(["report", "scdl", "--year", "2025", "--output", str(out),
               "--config", config(f'siret = "{SIRET}"\n')])
    assert rc == 0, capsys.readouterr().err
    assert out.read_text(encoding="utf-8").splitlines()[0] == HEADER
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3
    said = capsys.readouterr().out
    assert "2 ligne(s)" in said and "6\u202f970,50\u00a0€" in said

    rc = main(["report", "scdl", "--from", "2026-01-01", "--to", "2026-01-31", "-o", str(out),
               "--config", config(f'siret = "{SIRET}"\n')])
    assert rc == 0 and "GNK-2025-000003" in out.read_text(encoding="utf-8")

    capsys.readouterr()
    assert main(["report", "scdl", "--year", "2025", "-o", str(tmp_path / "x.csv"),
                 "--config", config("")]) == 2
    assert "le SIRET de la commune (idAttribuant) manque" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
    assert main(["report", "scdl", "--from", "2025-01-01", "-o", str(tmp_path / "x.csv"),
                 "--config", config("")]) == 2
    assert "--from demande aussi --to" in capsys.readouterr().err
