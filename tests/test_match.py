"""``guichet match``: CSV lists linked to a second list or to the warehouse's persons."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.cli_match import main
from pipelines.reconcile import match as mt

SCHOOL = [  # the schools' export: ';', Latin-1, French headers, dates dd/mm/yyyy
    ["num", "prenom", "nom", "naissance", "courriel"],
    ["E1", "Léa", "DUPONT", "06/05/2015", ""],
    ["E2", "Mael", "LE GALL", "03/09/2012", ""],          # accents dropped, day/month swapped
    ["E3", "Hugo", "Roux", "10/09/2016", "p.roux@example.fr"],
    ["E4", "Zoé", "Inconnue", "01/01/2017", ""],          # nobody
    ["E5", "Léa", "Dupont", "14/02/2013", ""],            # a namesake, another birth date
]
CAF = [  # the family-benefit office: ',', UTF-8 with BOM, other headers
    ["Allocataire", "Nom", "Prénom", "Date de naissance", "Tel"],
    ["A9", "Dupont", "Lea", "2015-05-06", "06 12 34 56 78"],
    ["A8", "Le-Gall", "Maël", "2012-03-09", ""],
    ["A7", "ROUX", "HUGO", "2016-09-10", "+33 6 22 22 22 22"],
]


def write(path, rows, delimiter=";", encoding="latin-1"):
    with open(path, "w", encoding=encoding, newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


def read_links(path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


SCHOOL_MAP = "num=id,prenom=first_name,nom=last_name,naissance=birth_date,courriel=email"


def test_list_against_list(tmp_path, capsys):
    a = write(tmp_path / "ecoles.csv", SCHOOL)
    b = write(tmp_path / "caf.csv", CAF, delimiter=",", encoding="utf-8-sig")
    out = tmp_path / "liens.csv"
    rc = main([str(a), "--against", str(b), "--map", SCHOOL_MAP, "--against-map",
               ("Allocataire=id,Nom=last_name,Prénom=first_name,Date de naissance=birth_date,"
               "Tel=phone"), "--output", str(out)])
    assert rc == 0
    assert "5 rows" in capsys.readouterr().out
    rows = read_links(out)
    assert [r["ligne"] for r in rows] == ["1", "2", "3", "4", "5"]
    got = {r["id_liste"]: (r["id_autre"], r["niveau"]) for r in rows}
    # a birth date typo on one record alone: a steward checks it
    assert got == {"E1": ("A9", "auto"), "E2": ("A8", "revue"), "E3": ("A7", "auto"),
                   "E4": ("", "aucun"), "E5": ("", "aucun")}
    first = rows[0]
    assert first["prenom_liste"] == "Léa" and first["prenom_trouve"] == "Lea"
    assert first["date_naissance_liste"] == first["date_naissance_trouve"] == "06/05/2015"
    assert float(first["score"]) >= mt.AUTO
    assert list(rows[0])[:6] == ["ligne", "id_liste", "ligne_autre", "id_autre", "score",
                                 "niveau"]


def test_map_config_and_review_band(tmp_path):
    a = write(tmp_path / "a.csv", [["P", "N"], ["Léa", "Dupont"], ["Paul", "Roux"]])
    b = write(tmp_path / "b.csv", [["prenom", "nom", "ne_le"], ["Lea", "DUPONT", "2015-05-06"],
                                   ["Jean", "Roux", "1950-01-01"]], encoding="utf-8")
    cfg = tmp_path / "map.toml"
    cfg.write_text('delimiter = ";"\n[columns]\nP = "first_name"\nN = "last_name"\n'
                   '[against_columns]\nprenom = "first_name"\nnom = "last_name"\n'
                   'ne_le = "birth_date"\n', encoding="utf-8")
    out = tmp_path / "l.csv"
    assert main([str(a), "--against", str(b), "--map-config", str(cfg), "-o", str(out)]) == 0
    rows = read_links(out)
    # names alone, no birth date: a steward should check
    assert (rows[0]["ligne_autre"], rows[0]["niveau"]) == ("1", "revue")
    assert rows[1]["niveau"] == "aucun"


def test_errors(tmp_path, capsys):
    a = write(tmp_path / "a.csv", SCHOOL)
    out = str(tmp_path / "o.csv")
    assert main([str(tmp_path / "absent.csv"), "--against", str(a), "--map", "x=first_name",
                 "-o", out]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([str(a), "--against", str(a), "--map", "prenom=first_name,surname=last_name",
                 "-o", out]) == 2
    err = capsys.readouterr().err
    assert "surname" in err and "prenom, nom, naissance" in err
    assert main([str(a), "--against", str(a), "--map", "prenom=firstname", "-o", out]) == 2
    assert "unknown field(s) firstname" in capsys.readouterr().err
    with pytest.raises(mt.MatchError, match="COLUMN=FIELD"):
        mt.parse_mapping("prenom")


def test_encodings(tmp_path):
    rows = [["prenom", "nom"], ["Hélène", "Lévêque"]]
    m = {"prenom": "first_name", "nom": "last_name"}
    for enc in ("latin-1", "utf-8", "utf-8-sig"):
        p = write(tmp_path / f"{enc}.csv", rows, encoding=enc)
        df = mt.read_list(p, m)
        assert list(df["first_name"]) == ["Hélène"] and list(df["last_name"]) == ["Lévêque"]
    assert mt.parse_date("2015-05-06") == mt.parse_date("06/05/2015") == pd.Timestamp("2015-05-06")
    assert mt.parse_date("31/02/2015") is None


def _warehouse(url):
    from schemas.tables import METADATA

    eng = sa.create_engine(url)
    METADATA.create_all(eng)
    t = "44190"
    with eng.begin() as conn:
        conn.execute(METADATA.tables["household"].insert(), [
            {"town": t, "household_id": 1001, "family_code": "F00001001", "name": "DUPONT",
             "address": "12 rue de la Loire", "postcode": "44230", "phone": "0612345678"},
            {"town": t, "household_id": 1002, "family_code": "F00001002", "name": "LE GALL",
             "address": "5 allée des Érables", "postcode": "44230", "phone": None},
            {"town": t, "household_id": 1006, "family_code": "F00001006", "name": "DUPONT",
             "address": "77 avenue de Nantes", "postcode": "44230", "phone": None}])
        conn.execute(METADATA.tables["person"].insert(), [
            {"town": t, "person_id": 10003, "first_name": "Léa", "last_name": "DUPONT",
             "birth_date": pd.Timestamp("2015-05-06").date()},
            {"town": t, "person_id": 10005, "first_name": "Maël", "last_name": "LE GALL",
             "birth_date": pd.Timestamp("2012-03-09").date()},
            {"town": t, "person_id": 10013, "first_name": "Léa", "last_name": "DUPONT",
             "birth_date": pd.Timestamp("2016-11-30").date()}])
        conn.execute(METADATA.tables["membership"].insert(), [
            {"town": t, "household_id": 1001, "person_id": 10003, "role": "child"},
            {"town": t, "household_id": 1002, "person_id": 10005, "role": "child"},
            {"town": t, "household_id": 1006, "person_id": 10013, "role": "child"}])
    eng.dispose()


def test_list_against_warehouse(warehouse_url, tmp_path):
    _warehouse(warehouse_url)
    a = write(tmp_path / "ecoles.csv", SCHOOL)
    out = tmp_path / "liens.csv"
    rc = main([str(a), "--warehouse-url", warehouse_url, "--town", "44190", "--map",
               SCHOOL_MAP, "--encoding", "latin-1", "--delimiter", ";", "-o", str(out)])
    assert rc == 0
    rows = {r["id_liste"]: r for r in read_links(out)}
    assert (rows["E1"]["id_personne"], rows["E1"]["id_famille"], rows["E1"]["niveau"]) == \
        ("10003", "1001", "auto")
    assert (rows["E2"]["id_personne"], rows["E2"]["id_famille"]) == ("10005", "1002")
    assert rows["E3"]["niveau"] == rows["E4"]["niveau"] == "aucun"
    # the namesake born 14/02/2013 is neither Léa of 2015 nor Léa of 2016
    assert rows["E5"]["id_personne"] == "" and rows["E5"]["niveau"] == "aucun"


def test_no_town_no_against(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GUICHET_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    a = write(tmp_path / "a.csv", SCHOOL)
    assert main([str(a), "--map", SCHOOL_MAP, "-o", str(tmp_path / "o.csv")]) == 2
    assert "--town" in capsys.readouterr().err
