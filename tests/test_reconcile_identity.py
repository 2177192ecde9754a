"""Identity resolution: the matching engine, the three identity rules and the crosswalk,
on small hand-built towns (no database)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.reconcile import identity
from pipelines.reconcile import linkage as lk
from pipelines.reconcile.data import from_frames
from pipelines.reconcile.rules import RULES


# ------------------------------------------------------------------ engine
def test_normalisation():
    assert lk.name_key("Le-Gall") == lk.name_key("LE GALL") == lk.name_key("le gall") == "legall"
    assert lk.name_key("Hélène") == lk.name_key("HELENE") == lk.name_key("HÃ©lÃ¨ne") == "helene"
    assert lk.name_key("Jean-Baptiste") == lk.name_key("Jean Baptiste")
    assert lk.phone_key("+33 6 12 34 56 78") == lk.phone_key("06.12.34.56.78") == "0612345678"
    assert lk.phone_key("+33612345678") == "0612345678"
    assert lk.address_key("13, rue de la République") == lk.address_key("13 RUE DE LA REPUBLIQUE")
    assert lk.address_key("4 bd Jules Verne") == "4 boulevard jules verne"


def person(rid, first, last, born=None, birth_name=None, **kw):
    return {"rid": rid, "first_name": first, "last_name": last, "birth_name": birth_name,
            "birth_date": pd.Timestamp(born) if born else None, **kw}


def weight(a: dict, b: dict) -> float:
    L = lk.standardise(pd.DataFrame([a]))
    R = lk.standardise(pd.DataFrame([b]))
    return float(lk.compare(L, R, pd.DataFrame({"l": [0], "r": [0]}))["weight"].iloc[0])


REF = person(1, "Jean-Baptiste", "LE GALL", "1980-03-04")


@pytest.mark.parametrize("variant", [
    person(2, "Jean-Baptiste", "Le Gall", "1980-03-04"),            # case, blank for hyphen
    person(2, "Jean Baptiste", "Le-Gall", "1980-03-04"),            # hyphen/space swapped
    person(2, "JEAN-BAPTISTE", "LÉ GALL", "1980-03-04"),            # accent
    person(2, "Le Gall", "Jean-Baptiste", "1980-03-04"),            # first/last swapped
    person(2, "Jean-Baptiste", "Le Gall", "1980-04-03"),            # day and month swapped
    person(2, "Jean-Baptiste", "Le Gall", "1980-05-04"),            # one digit of the month
    person(2, "Jean-Baptiste", "Le Gall", "1980-03-14"),            # ten days off
    person(2, "Jean-Baptiste", "Le Gall", "1981-03-04"),            # a year off
    person(2, "Jean-Baptiste", "Le Gall", None),                    # birth date unknown
])
def test_variants_of_one_person_match(variant):
    assert weight(REF, variant) >= lk.PERSON_MIN


def test_day_month_swapped_is_a_typo_not_a_difference():
    a = person(1, "Léa", "Durand", "2015-05-06")
    assert weight(a, person(2, "Léa", "Durand", "2015-06-05")) == pytest.approx(
        lk.WEIGHTS["first_exact"] + lk.WEIGHTS["last_exact"] + lk.WEIGHTS["birth_typo"])


def test_birth_vs_married_name():
    married = person(1, "Hélène", "DUPONT", "1982-03-04", birth_name="MARTIN")
    assert weight(married, person(2, "Helene", "Martin", "1982-03-04")) >= 20
    # both swapped and under her birth name
    assert weight(married, person(2, "Martin", "Hélène", "1982-03-04")) >= 20
    # no birth name known: the first name and the birth date still carry it
    assert weight(person(1, "Hélène", "DUPONT", "1982-03-04"),
                  person(2, "Hélène", "Martin", "1982-03-04")) >= lk.PERSON_MIN


def test_swapped_names_under_the_birth_name():
    # the portal has "Le Brun Karine" (birth name, swapped); the legacy her married name
    legacy = person(1, "karine", "MOREAU", "1982-03-20")
    assert weight(person(2, "Le Brun", "Karine", "1982-03-20"), legacy) >= lk.PERSON_MIN
    assert weight(legacy, person(2, "Le Brun", "Karine", "1982-03-20")) >= lk.PERSON_MIN
    # a first name that is someone's last name, another birth date: no
    assert weight(person(1, "Paul", "MARTIN", "1980-01-01"),
                  person(2, "Martin", "Dupont", "1975-06-30")) < lk.PERSON_MIN


def test_namesake_with_another_birth_date_is_not_the_same_person():
    assert weight(person(1, "Léa", "Dupont", "2015-05-06"),
                  person(2, "Léa", "Dupont", "2016-11-30")) < lk.PERSON_MIN
    # twins: same name and birth date, another first name
    assert weight(person(1, "Léa", "Dupont", "2015-05-06"),
                  person(2, "Noé", "Dupont", "2015-05-06")) < lk.PERSON_MIN


def test_contacts_only_add_and_a_change_costs_nothing():
    a = person(1, "Léa", "Dupont", "2015-05-06", email="lea@x.fr", phone="0612345678",
               address="12 rue de la Loire", postcode="44230")
    same = dict(a, rid=2, phone="+33 6 12 34 56 78", address="12, RUE DE LA LOIRE")
    moved = dict(a, rid=2, email="other@y.fr", phone="0798765432",
                 address="3 avenue de Nantes", postcode="44000")
    base = weight(person(1, "Léa", "Dupont", "2015-05-06"),
                  person(2, "Léa", "Dupont", "2015-05-06"))
    assert weight(a, same) == base + 9 + 8 + 5 + 1
    assert weight(a, moved) == base


def test_blocking_never_compares_everything():
    left = lk.standardise(pd.DataFrame([person(i, f"P{i}", f"N{i}", f"2000-01-{i:02d}")
                                        for i in range(1, 21)]))
    right = lk.standardise(pd.DataFrame([person(100, "P3", "N3", "1999-12-31"),
                                         person(101, "Zoé", "Autre", "2000-01-05")]))
    pairs = lk.candidates(left, right)
    # P3 shares its name key, the 5th left record its birth date: 2 pairs, not 40
    assert sorted(map(tuple, pairs.values)) == [(2, 0), (4, 1)]
    # a key shared by more records than max_block is not a block
    crowd = lk.standardise(pd.DataFrame([person(i, "Emma", f"N{i}", "2010-01-01")
                                         for i in range(30)]))
    assert len(lk.candidates(crowd, max_block=10)) == 0
    assert len(lk.candidates(crowd, max_block=100, cap=3)) == 29 * 3 - 3  # l < r, 3 max


def test_band():
    assert lk.band(40, 25, auto=30, review=15, margin=10) == "auto"
    assert lk.band(40, 35, auto=30, review=15, margin=10) == "revue"  # ambiguous
    assert lk.band(20, None, auto=30, review=15, margin=10) == "revue"
    assert lk.band(10, None, auto=30, review=15, margin=10) == "aucun"


# ------------------------------------------------------------------- a town
def _town():
    H, P, M, A, PP = [], [], [], [], []

    def fam(hid, name, address, phone=None, email=None, postcode="44230"):
        H.append({"household_id": hid, "family_code": f"F{hid:08d}", "name": name,
                  "address": address, "postcode": postcode, "city": "Saint-Sébastien",
                  "phone": phone, "email": email})

    def per(pid, hids, first, last, born, role="child", birth_name=None, holder=False):
        P.append({"person_id": pid, "first_name": first, "last_name": last,
                  "birth_name": birth_name, "birth_date": born})
        for h in hids:
            M.append({"household_id": h, "person_id": pid, "role": role, "is_holder": holder})

    def acc(aid, first, last, code=None, email=None, phone=None, address=None):
        A.append({"account_id": aid, "first_name": first, "last_name": last, "email": email,
                  "phone": phone, "address": address, "postcode": "44230",
                  "legacy_family_code": code, "status": "active"})

    def pp(ppid, aid, first, last, born, lpid=None, role="child"):
        PP.append({"portal_person_id": ppid, "account_id": aid, "role": role,
                   "first_name": first, "last_name": last, "birth_date": born,
                   "legacy_person_id": lpid})

    fam(1001, "DUPONT", "12 rue de la Loire", "0612345678", "jb.dupont@example.fr")
    per(10001, [1001], "Jean-Baptiste", "DUPONT", "1980-01-02", "responsible", holder=True)
    per(10002, [1001], "Hélène", "DUPONT", "1982-03-04", "responsible", birth_name="MARTIN")
    per(10003, [1001], "Léa", "DUPONT", "2015-05-06")
    fam(1002, "LE GALL", "5 allée des Érables", "0698765432", "yann.legall@example.fr")
    per(10004, [1002], "Yann", "LE GALL", "1979-04-12", "responsible", holder=True)
    per(10005, [1002], "Maël", "LE GALL", "2012-03-09")
    # separated parents: the children belong to both families under one id
    fam(1003, "BERNARD", "8 rue Jaurès", "0611111111")
    fam(1004, "ROUX", "40 route de Clisson", "0622222222")
    per(10006, [1003], "Claire", "BERNARD", "1985-06-15", "responsible", holder=True)
    per(10007, [1004], "Paul", "ROUX", "1983-02-20", "responsible", holder=True)
    per(10008, [1003, 1004], "Emma", "ROUX", "2014-02-03")
    per(10009, [1003, 1004], "Hugo", "ROUX", "2016-09-10")
    # a family and its duplicate (new ids, spelling variants)
    fam(1005, "PETIT", "3 rue Verne", "0633333333")
    per(10010, [1005], "Sophie", "Petit", "1990-01-01", "responsible", holder=True)
    per(10011, [1005], "Lou-Anne", "Petit", "2019-04-04")
    fam(1099, "PETIT", "3 RUE VERNE", "0744444444")
    per(10099, [1099], "SOPHIE", "PETIT", "1990-01-01", "responsible", holder=True)
    per(10100, [1099], "LOU ANNE", "PETIT", "2019-04-04")
    # namesakes of the Duponts, other birth dates
    fam(1006, "DUPONT", "77 avenue de Nantes", "0655555555")
    per(10012, [1006], "Marc", "DUPONT", "1975-10-10", "responsible", holder=True)
    per(10013, [1006], "Léa", "DUPONT", "2016-11-30")
    # married name in the legacy, birth name on the portal
    fam(1007, "GIRARD", "2 impasse du Moulin", "0666666666", "n.girard@example.fr")
    per(10014, [1007], "Nathalie", "GIRARD", "1975-07-07", "responsible", birth_name="LEROY",
        holder=True)
    per(10015, [1007], "Tom", "GIRARD", "2010-10-01")
    fam(1008, "MOREAU", "9 rue Curie")
    per(10016, [1008], "Julie", "MOREAU", "1988-08-08", "responsible", holder=True)

    acc("acc-1", "Jean-Baptiste", "Dupont", "F00001001", "jb.dupont@example.fr")
    pp("pp-1", "acc-1", "Jean-Baptiste", "Dupont", "1980-01-02", 10001, "parent")
    pp("pp-2", "acc-1", "Léa", "Dupont", "2015-05-06", 10003)
    # unlinked: hyphenated name, accents dropped, a child's day and month swapped
    acc("acc-2", "Yann", "Le-Gall", None, "yann.legall@example.fr", "+33 6 98 76 54 32")
    pp("pp-3", "acc-2", "Yann", "Le-Gall", "1979-04-12", role="parent")
    pp("pp-4", "acc-2", "Mael", "Le-Gall", "2012-09-03")
    # linked to the namesakes' family, its persons are Claire's family
    acc("acc-3", "Claire", "Bernard", "F00001006")
    pp("pp-5", "acc-3", "Claire", "Bernard", "1985-06-15", 10006, "parent")
    pp("pp-6", "acc-3", "Emma", "Roux", "2014-02-03", 10008)
    # a citizen-only account: no family, no persons
    acc("acc-4", "Marie", "Curie", None, "marie.curie@example.fr")
    # unlinked, first and last names swapped, the children shared with the mother
    acc("acc-5", "Roux", "Paul", None)
    pp("pp-7", "acc-5", "Roux", "Paul", "1983-02-20", role="parent")
    pp("pp-8", "acc-5", "Emma", "Roux", "2014-02-03")
    pp("pp-9", "acc-5", "Hugo", "Roux", "2016-09-10")
    # unlinked, birth name, other e-mail, other phone, moved
    acc("acc-6", "Nathalie", "Leroy", None, "nath75@example.fr", "0700000000",
        "1 place du Marché")
    pp("pp-10", "acc-6", "Nathalie", "Leroy", "1975-07-07", role="parent")
    pp("pp-11", "acc-6", "Tom", "Girard", "2010-10-01")
    # unlinked, one person only and nothing else: the review band
    acc("acc-7", "Julie", "Moreau", None)
    pp("pp-12", "acc-7", "Julie", "Moreau", "1988-08-08", role="parent")
    # unlinked namesakes with other birth dates: nobody
    acc("acc-8", "Marc", "Dupond", None)
    pp("pp-13", "acc-8", "Marc", "Dupond", "1970-01-01", role="parent")
    pp("pp-14", "acc-8", "Léa", "Dupont", "2013-12-25")
    return from_frames("44190", "2026-07-03", household=H, person=P, membership=M,
                       portal_account=A, portal_person=PP)


def _rule(name):
    return RULES[f"rec.identity.{name}"].func


def test_account_unlinked_flags():
    td = _town()
    f = _rule("account_unlinked")(td).set_index("account_id")
    assert set(f.index) == {"acc-2", "acc-5", "acc-6", "acc-7"}  # not acc-4 nor acc-8
    assert f.loc["acc-2", "severity"] == "info"  # auto-linked: set the code on the portal
    assert f.loc["acc-7", "severity"] == "warning"  # review band
    assert f.loc["acc-5", "fix"]["value"] == "F00001004"  # the father's family
    assert f.loc["acc-6", "fix"] == {"table": "portal_account", "key": {"account_id": "acc-6"},
                                     "column": "legacy_family_code", "value": "F00001007"}
    assert "F00001002" in f.loc["acc-2", "message"]
    ev = f.loc["acc-2", "evidence"]
    assert [r["label"] for r in ev["records"]] == ["Compte portail", "Famille proposée"]
    assert "Maël LE GALL (09/03/2012)" in ev["records"][1]["values"]["personnes"]


def test_account_wrong_family():
    td = _town()
    f = _rule("account_wrong_family")(td)
    assert list(f["account_id"]) == ["acc-3"]
    assert f["fix"].iloc[0]["value"] == "F00001003"
    assert "F00001006" in f["message"].iloc[0] and "F00001003" in f["message"].iloc[0]
    labels = [r["label"] for r in f["evidence"].iloc[0]["records"]]
    assert labels == ["Compte portail", "Famille liée", "Famille proposée"]


def test_legacy_duplicate_family_but_not_separated_parents():
    td = _town()
    f = _rule("legacy_duplicate_family")(td)
    assert [tuple(t) for t in f[["household_id", "duplicate_household_id"]].values] == \
        [(1005, 1099)]
    assert "2 personne(s)" in f["message"].iloc[0]
    key = RULES["rec.identity.legacy_duplicate_family"].truth_key
    assert key({"family_id": 1099, "original_family_id": 1005}) == (1005, 1099)


def test_evidence_is_deterministic():
    a = _rule("account_unlinked")(_town())
    b = _rule("account_unlinked")(_town())
    assert a.to_dict("records") == b.to_dict("records")


def test_crosswalk():
    cw = identity.crosswalk(_town())
    assert list(cw.columns) == identity.CROSSWALK_COLUMNS
    got = {(r.source, r.source_entity, r.source_id): (r.canonical_id, r.method)
           for r in cw.itertuples()}
    acc = {k[2]: v for k, v in got.items() if k[1] == "account"}
    assert acc == {"acc-1": (1001, "deterministic_code"),
                   "acc-2": (1002, "probabilistic"),
                   "acc-3": (1003, "deterministic_person_id"),
                   "acc-5": (1004, "probabilistic"),
                   "acc-6": (1007, "probabilistic")}  # acc-7 in review: a flag, no link
    per = {k[2]: v for k, v in got.items() if k[1] == "person"}
    assert per["pp-1"] == (10001, "deterministic_person_id")
    assert per["pp-4"] == (10005, "probabilistic")
    assert per["pp-7"] == (10007, "probabilistic")
    assert per["pp-10"] == (10014, "probabilistic")
    assert "pp-12" not in per and "pp-13" not in per and "pp-14" not in per
    assert got[("legacy", "family", "1099")] == (1005, "probabilistic")
    assert got[("legacy", "individual", "10099")] == (10010, "probabilistic")
    assert got[("legacy", "individual", "10100")] == (10011, "probabilistic")
    assert cw.loc[cw["method"] == "probabilistic", "score"].notna().all()
    assert cw.loc[cw["method"] != "probabilistic", "score"].isna().all()


def test_unlinked_account_of_a_duplicated_family_links_the_original():
    td = _town()
    td.frames["portal_account"] = pd.concat([td["portal_account"], pd.DataFrame([{
        "account_id": "acc-9", "first_name": "Sophie", "last_name": "Petit",
        "legacy_family_code": pd.NA, "status": "active"}])], ignore_index=True)
    td.frames["portal_person"] = pd.concat([td["portal_person"], pd.DataFrame([
        {"portal_person_id": "pp-20", "account_id": "acc-9", "role": "parent",
         "first_name": "Sophie", "last_name": "Petit", "birth_date": pd.Timestamp("1990-01-01")},
        {"portal_person_id": "pp-21", "account_id": "acc-9", "role": "child",
         "first_name": "Lou-Anne", "last_name": "Petit",
         "birth_date": pd.Timestamp("2019-04-04")}])], ignore_index=True)
    cw = identity.crosswalk(td).set_index("source_id")
    assert cw.loc["acc-9", "canonical_id"] == 1005
    assert cw.loc["pp-21", "canonical_id"] == 10011


def test_empty_town():
    td = from_frames("44190", "2026-07-03")
    assert len(identity.crosswalk(td)) == 0
    for name in ("account_unlinked", "account_wrong_family", "legacy_duplicate_family"):
        assert len(_rule(name)(td)) == 0
