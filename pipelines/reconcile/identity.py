"""Identity: one household id and one person id across the portal and the legacy program.

``resolve(td)`` (computed once per reconciliation, ``td.cached``) does, in order:

1. legacy duplicates: legacy persons compared with each other (blocking, scoring by
   ``linkage``); pairs of persons of two households summed into household pairs; an
   auto-linked pair maps the duplicate (the higher, younger id) to its original;
2. deterministic portal links: ``legacy_person_id`` (when the person exists) and
   ``legacy_family_code``, verified: the family the account's persons belong to must be
   the family its code names;
3. probabilistic portal links for the rest: the account's persons against the legacy
   persons, summed per household with the account's contacts.

The rules (``account_unlinked``, ``account_wrong_family``, ``legacy_duplicate_family``)
turn its result into flags; ``crosswalk(td)`` into the crosswalk table.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipelines.reconcile import linkage as lk
from pipelines.reconcile.rules import day_fr, evidence, findings, record, rule

# account <-> household (sum of person weights + contact weights)
HH_AUTO, HH_REVIEW, HH_MARGIN = 30.0, 15.0, 10.0
# legacy household <-> legacy household
# measured: true duplicates score 37+ (two towns), namesake couples 27-29: no review band
DUP_AUTO = DUP_REVIEW = 32.0


@dataclass
class Identity:
    duplicates: pd.DataFrame  # household_id (original), duplicate_household_id, weight, ...
    dup_persons: pd.DataFrame  # person_id (original), duplicate_person_id, weight
    accounts: pd.DataFrame  # one row per account: status, linked/suggested household...
    person_links: pd.DataFrame  # portal_person_id, person_id, method, score
    canon_household: dict
    canon_person: dict


def resolve(td) -> Identity:
    """The identity result of a town, computed once per reconciliation."""
    return td.cached("identity", _resolve)


def _legacy_people(td) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(standardised legacy persons, memberships) with the persons' roles."""
    per, mem = td["person"], td["membership"]
    std = lk.standardise(per.rename(columns={"person_id": "rid"}))
    m = mem[["household_id", "person_id", "role"]].dropna(subset=["household_id", "person_id"])
    m = m.astype({"household_id": "int64", "person_id": "int64"})
    return std, m


def _duplicates(std: pd.DataFrame, mem: pd.DataFrame, td) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Household pairs sharing persons under different ids (never the same INDIVIDU:
    a child of separated parents belongs to both families with one id)."""
    adults_or_children = mem.loc[mem["role"].fillna("") != "contact", "person_id"].unique()
    keep = std["rid"].isin(set(adults_or_children.tolist()))
    base = std[keep].reset_index(drop=True)
    pairs = lk.score_pairs(base)
    pairs = pairs[pairs["weight"] >= lk.PERSON_MIN]
    cols = ["household_id", "duplicate_household_id", "person_id", "duplicate_person_id",
            "weight"]
    if not len(pairs):
        return pd.DataFrame(columns=cols[:2] + ["persons", "person_weight", "contact",
                                                "total", "band"]), pd.DataFrame(columns=cols)
    p = pairs[["rid_l", "rid_r", "weight"]].astype({"rid_l": "int64", "rid_r": "int64"})
    hm = mem[["household_id", "person_id"]]
    x = p.merge(hm.rename(columns={"person_id": "rid_l", "household_id": "h_l"}), on="rid_l")
    x = x.merge(hm.rename(columns={"person_id": "rid_r", "household_id": "h_r"}), on="rid_r")
    x = x[x["h_l"] != x["h_r"]]
    # a person already in the other household: not a duplicate household
    members = set(zip(hm["household_id"], hm["person_id"]))
    x = x[[(a, q) not in members and (b, p_) not in members
           for a, b, p_, q in zip(x["h_l"], x["h_r"], x["rid_l"], x["rid_r"])]]
    lo = x["h_l"] < x["h_r"]
    x = pd.DataFrame({
        "household_id": x["h_l"].where(lo, x["h_r"]),
        "duplicate_household_id": x["h_r"].where(lo, x["h_l"]),
        "person_id": x["rid_l"].where(lo, x["rid_r"]),
        "duplicate_person_id": x["rid_r"].where(lo, x["rid_l"]),
        "weight": x["weight"]})
    # one-to-one inside a household pair: each person in its best pair only
    x = x.sort_values(["weight", "person_id", "duplicate_person_id"],
                      ascending=[False, True, True], kind="stable")
    x = x.drop_duplicates(["household_id", "duplicate_household_id", "person_id"])
    x = x.drop_duplicates(["household_id", "duplicate_household_id", "duplicate_person_id"])
    agg = x.groupby(["household_id", "duplicate_household_id"], as_index=False).agg(
        persons=("weight", "size"), person_weight=("weight", "sum"))
    agg["contact"] = _household_pair_contacts(td, agg)
    agg["total"] = agg["person_weight"] + agg["contact"]
    # one shared adult is not a duplicate family (a parent in a new family): 2+ persons
    agg["band"] = "aucun"
    agg.loc[(agg["persons"] >= 2) & (agg["total"] >= DUP_REVIEW), "band"] = "revue"
    agg.loc[(agg["persons"] >= 2) & (agg["total"] >= DUP_AUTO), "band"] = "auto"
    agg = agg[agg["band"] != "aucun"]
    # a duplicate copies one family: the family of the other separated parent, which
    # shares the children's ids with it, matches too, but less (no adult); keep the best
    agg = agg.sort_values(["total", "persons", "household_id"], ascending=[False, False, True],
                          kind="stable")
    people = hm.groupby("household_id")["person_id"].agg(set).to_dict()
    kept: dict[int, set] = {}  # household -> its partners in kept pairs
    keep = []
    for a, b in zip(agg["household_id"], agg["duplicate_household_id"]):
        redundant = any(people.get(y, set()) & people.get(o, set())
                        for x, y in ((a, b), (b, a)) for o in kept.get(x, ()))
        keep.append(not redundant)
        if not redundant:
            kept.setdefault(a, set()).add(b)
            kept.setdefault(b, set()).add(a)
    agg = agg[keep]
    agg = agg.sort_values(["household_id", "duplicate_household_id"]).reset_index(drop=True)
    x = x.merge(agg[["household_id", "duplicate_household_id"]])
    return agg, x[cols].sort_values(cols[:4]).reset_index(drop=True)


def _household_pair_contacts(td, pairs: pd.DataFrame):
    """Contact weights (address, postcode, phone, e-mail) of household pairs."""
    if not len(pairs):
        return []
    hh = td["household"].dropna(subset=["household_id"]).astype({"household_id": "int64"})
    std = lk.standardise(hh.rename(columns={"household_id": "rid"})).set_index("rid")
    L = std.reindex(pairs["household_id"].values).fillna("").reset_index(drop=True)
    R = std.reindex(pairs["duplicate_household_id"].values).fillna("").reset_index(drop=True)
    return lk.contact_weights(L, R)


def _canon_maps(dups: pd.DataFrame, dup_persons: pd.DataFrame) -> tuple[dict, dict]:
    auto = dups[dups["band"] == "auto"].sort_values("total", ascending=False, kind="stable")
    auto = auto.drop_duplicates("duplicate_household_id")
    ch = dict(zip(auto["duplicate_household_id"].astype(int), auto["household_id"].astype(int)))
    dp = dup_persons.merge(auto[["household_id", "duplicate_household_id"]])
    dp = dp.drop_duplicates("duplicate_person_id")
    cp = dict(zip(dp["duplicate_person_id"].astype(int), dp["person_id"].astype(int)))
    return ch, cp


def _resolve(td) -> Identity:
    std, mem = _legacy_people(td)
    dups, dup_persons = _duplicates(std, mem, td)
    ch, cp = _canon_maps(dups, dup_persons)
    canon_mem = mem.assign(household_id=mem["household_id"].map(lambda h: ch.get(h, h)),
                           person_id=mem["person_id"].map(lambda p: cp.get(p, p)))
    canon_mem = canon_mem.drop_duplicates(["household_id", "person_id"])
    acc, pp = td["portal_account"], td["portal_person"]
    hh = td["household"].dropna(subset=["household_id"])
    code_to_hh = dict(zip(hh["family_code"].astype(str), hh["household_id"].astype(int)))
    known = set(std["rid"].astype(int))
    pp = pp.copy()
    lpid = pp["legacy_person_id"]
    pp["det"] = [int(v) if not pd.isna(v) and int(v) in known else None for v in lpid]
    # deterministic evidence: households holding the account's persons (canonical ids)
    det = pp.dropna(subset=["det"])[["account_id", "portal_person_id", "det"]]
    det = det.assign(person_id=det["det"].astype(int).map(lambda p: cp.get(p, p)))
    hold = det.merge(canon_mem[["household_id", "person_id"]], on="person_id")
    counts = hold.groupby(["account_id", "household_id"]).size().rename("n").reset_index()
    # probabilistic: accounts without a code, with an unknown code, or without person ids
    codes = acc["legacy_family_code"].astype("string")
    linked_hh = codes.map(lambda c: ch.get(code_to_hh.get(c), code_to_hh.get(c))
                          if not pd.isna(c) else None)
    has_ids = set(det["account_id"])
    need = set(acc.loc[linked_hh.isna().values | ~acc["account_id"].isin(has_ids).values,
                       "account_id"])
    scores = _person_scores(pp[pp["det"].isna()], std, canon_mem, cp)
    hh_scores = _household_scores(td, acc[acc["account_id"].isin(need)],
                                  scores[scores["account_id"].isin(need)], canon_mem)
    accounts = _decide(acc, linked_hh, counts, hh_scores, hh, ch)
    person_links = _pick_persons(pp, accounts, scores, cp)
    return Identity(dups, dup_persons, accounts, person_links, ch, cp)


def _person_scores(pp: pd.DataFrame, std: pd.DataFrame, canon_mem: pd.DataFrame,
                   cp: dict) -> pd.DataFrame:
    """Portal persons (without a usable person id) against the legacy persons: the pairs
    at or above ``PERSON_MIN``, with the legacy person's canonical households."""
    cols = ["account_id", "portal_person_id", "household_id", "person_id", "weight"]
    if not len(pp):
        return pd.DataFrame(columns=cols)
    left = lk.standardise(pp.rename(columns={"portal_person_id": "rid"}))
    pairs = lk.score_pairs(left, std)
    pairs = pairs[pairs["weight"] >= lk.PERSON_MIN]
    out = pd.DataFrame({"portal_person_id": pairs["rid_l"].values,
                        "person_id": [cp.get(int(p), int(p)) for p in pairs["rid_r"]],
                        "weight": pairs["weight"].values})
    out = out.merge(pp[["portal_person_id", "account_id"]], on="portal_person_id")
    out = out.merge(canon_mem[["household_id", "person_id"]], on="person_id")
    out = out.sort_values(["weight", "person_id"], ascending=[False, True], kind="stable")
    out = out.drop_duplicates(["portal_person_id", "household_id"])
    return out[cols].reset_index(drop=True)


def _household_scores(td, acc: pd.DataFrame, scores: pd.DataFrame,
                      canon_mem: pd.DataFrame) -> pd.DataFrame:
    """Account x candidate household: Σ best person weights + the account's contacts
    (e-mail or phone of the family or of one of its members, address, postcode)."""
    cols = ["account_id", "household_id", "persons", "person_weight", "contact", "weight"]
    if not len(scores):
        return pd.DataFrame(columns=cols)
    agg = scores.groupby(["account_id", "household_id"], as_index=False).agg(
        persons=("weight", "size"), person_weight=("weight", "sum"))
    a = lk.standardise(acc.rename(columns={"account_id": "rid"})).set_index("rid")
    hh = td["household"].dropna(subset=["household_id"]).astype({"household_id": "int64"})
    h = lk.standardise(hh.rename(columns={"household_id": "rid"})).set_index("rid")
    L = a.reindex(agg["account_id"].values).fillna("").reset_index(drop=True)
    R = h.reindex(agg["household_id"].values).fillna("").reset_index(drop=True)
    # a member's own e-mail or phone counts as the family's
    per = lk.standardise(td["person"].rename(columns={"person_id": "rid"}))
    per = per[["rid", "email", "phone"]].rename(columns={"rid": "person_id"})
    per = per.merge(canon_mem[["household_id", "person_id"]], on="person_id")
    for c in ("email", "phone"):
        known = set(zip(per["household_id"], per[c])) | set(zip(h.index, h[c]))
        R[c] = [v if v and (hid, v) in known else ""
                for hid, v in zip(agg["household_id"], L[c])]
    agg["contact"] = lk.contact_weights(L, R)
    agg["weight"] = agg["person_weight"] + agg["contact"]
    return agg[cols]


def _decide(acc: pd.DataFrame, linked_hh: pd.Series, counts: pd.DataFrame,
            hh_scores: pd.DataFrame, hh: pd.DataFrame, ch: dict) -> pd.DataFrame:
    """One row per account: ``status`` (linked / wrong_family / unlinked / none), the
    family its code names (``linked_household``), the family the evidence points to
    (``suggested_household``), ``band``, and the crosswalk link (``canonical_household``,
    ``method``, ``weight``)."""
    c = counts.sort_values(["account_id", "n", "household_id"], ascending=[True, False, True])
    top = c.drop_duplicates("account_id")
    det_top = dict(zip(top["account_id"], zip(top["household_id"].astype(int), top["n"])))
    det_n = dict(zip(zip(c["account_id"], c["household_id"].astype(int)), c["n"]))
    hs = hh_scores.sort_values(["account_id", "weight", "household_id"],
                               ascending=[True, False, True], kind="stable")
    first = hs.drop_duplicates("account_id")
    nxt = hs[hs.duplicated("account_id")].drop_duplicates("account_id")
    p_first = dict(zip(first["account_id"], zip(first["household_id"].astype(int),
                                                first["weight"].astype(float))))
    p_second = dict(zip(nxt["account_id"], nxt["weight"].astype(float)))
    p_score = dict(zip(zip(hs["account_id"], hs["household_id"].astype(int)),
                       hs["weight"].astype(float)))
    rows = []
    for a, code, h in zip(acc["account_id"], acc["legacy_family_code"], linked_hh):
        h = None if h is None or pd.isna(h) else int(h)
        r = {"account_id": a, "linked_household": h, "suggested_household": None,
             "weight": None, "second": None, "band": None, "status": "none",
             "canonical_household": None, "method": None}
        cand = p_first.get(a)
        if cand:
            r["weight"], r["second"] = cand[1], p_second.get(a)
            r["band"] = lk.band(cand[1], r["second"], auto=HH_AUTO, review=HH_REVIEW,
                                margin=HH_MARGIN)
        det = det_top.get(a)
        if det:
            best = h if det_n.get((a, h), 0) == det[1] else det[0]
        else:
            best = cand[0] if cand and r["band"] == "auto" else None
        if not pd.isna(code):
            own = p_score.get((a, h), 0.0) if h is not None else 0.0
            if best is None or best == h or (not det and own >= HH_REVIEW):
                r["status"] = "linked" if h is not None else "wrong_family"
                if h is not None:
                    r.update(canonical_household=h, method="deterministic_code")
            else:
                r.update(status="wrong_family", suggested_household=best,
                         canonical_household=best,
                         method="deterministic_person_id" if det else "probabilistic")
        elif det:
            r.update(status="unlinked", suggested_household=best, band="auto",
                     canonical_household=best, method="deterministic_person_id")
        elif cand and r["band"] in ("auto", "revue"):
            r.update(status="unlinked", suggested_household=cand[0])
            if r["band"] == "auto":
                r.update(canonical_household=cand[0], method="probabilistic")
        rows.append(r)
    out = pd.DataFrame(rows, columns=["account_id", "linked_household", "suggested_household",
                                      "weight", "second", "band", "status",
                                      "canonical_household", "method"])
    for c in ("linked_household", "suggested_household", "canonical_household"):
        out[c] = out[c].astype("Int64")
    return out


def _pick_persons(pp: pd.DataFrame, accounts: pd.DataFrame, scores: pd.DataFrame,
                  cp: dict) -> pd.DataFrame:
    """Portal person -> canonical legacy person: its id when usable, else the best
    person of its account's family (one legacy person per account at most)."""
    det = pp.dropna(subset=["det"])
    out = [pd.DataFrame({"portal_person_id": det["portal_person_id"].values,
                         "person_id": [cp.get(int(p), int(p)) for p in det["det"]],
                         "method": "deterministic_person_id", "score": None})]
    fam = accounts.dropna(subset=["canonical_household"])[["account_id", "canonical_household"]]
    s = scores.merge(fam, on="account_id")
    s = s[s["household_id"] == s["canonical_household"]]
    s = s.sort_values(["weight", "portal_person_id"], ascending=[False, True], kind="stable")
    s = s.drop_duplicates("portal_person_id").drop_duplicates(["account_id", "person_id"])
    out.append(pd.DataFrame({"portal_person_id": s["portal_person_id"].values,
                             "person_id": s["person_id"].astype(int).values,
                             "method": "probabilistic",
                             "score": [f"{w:.1f}" for w in s["weight"]]}))
    res = pd.concat(out, ignore_index=True)
    return res.sort_values("portal_person_id").reset_index(drop=True)


# ------------------------------------------------------------------ crosswalk
CROSSWALK_COLUMNS = ["source", "source_entity", "source_id", "canonical_entity",
                     "canonical_id", "method", "score"]


def crosswalk(td) -> pd.DataFrame:
    """The crosswalk rows of a town (auto-links only; the review band goes to flags).

    A legacy id absent from the crosswalk is its own canonical id."""
    ident = resolve(td)
    rows = []
    a = ident.accounts.dropna(subset=["canonical_household"])
    for r in a.itertuples():
        rows.append(("portal", "account", r.account_id, "household", int(r.canonical_household),
                     r.method, None if r.method != "probabilistic" else f"{r.weight:.1f}"))
    for r in ident.person_links.itertuples():
        rows.append(("portal", "person", r.portal_person_id, "person", int(r.person_id),
                     r.method, r.score))
    d = ident.duplicates[ident.duplicates["band"] == "auto"]
    for r in d.itertuples():
        if ident.canon_household.get(int(r.duplicate_household_id)) == int(r.household_id):
            rows.append(("legacy", "family", str(int(r.duplicate_household_id)), "household",
                         int(r.household_id), "probabilistic", f"{r.total:.1f}"))
    for dup, orig in sorted(ident.canon_person.items()):
        w = ident.dup_persons.loc[ident.dup_persons["duplicate_person_id"] == dup, "weight"]
        rows.append(("legacy", "individual", str(dup), "person", int(orig), "probabilistic",
                     f"{w.max():.1f}"))
    out = pd.DataFrame(rows, columns=CROSSWALK_COLUMNS)
    out["canonical_id"] = out["canonical_id"].astype("Int64")
    return out.sort_values(["source", "source_entity", "source_id"]).reset_index(drop=True)



# ---------------------------------------------------------------------- rules
def _views(td) -> dict:
    """Families, accounts and their people as evidence shows them, built once."""
    def people(df, key):
        df = df.sort_values([key, "pid"], kind="stable")
        text = [f"{_s(f)} {_s(n)} ({day_fr(b)})" for f, n, b in
                zip(df["first_name"], df["last_name"], df["birth_date"])]
        return pd.Series(text, index=df[key].values).groupby(level=0).agg("; ".join).to_dict()

    def build(td):
        per = td["person"].rename(columns={"person_id": "pid"})
        m = td["membership"][["household_id", "person_id"]].rename(columns={"person_id": "pid"})
        fam_people = people(m.merge(per, on="pid"), "household_id")
        fams = {}
        for r in td["household"].to_dict("records"):
            fams[r["household_id"]] = {
                "code famille": r.get("family_code"), "nom": r.get("name"),
                "adresse": " ".join(_s(r.get(c)) for c in ("address", "postcode", "city")).strip(),
                "téléphone": r.get("phone"), "e-mail": r.get("email"),
                "personnes": fam_people.get(r["household_id"], "")}
        pp = td["portal_person"].rename(columns={"portal_person_id": "pid"})
        acc_people = people(pp, "account_id")
        accs = {}
        for r in td["portal_account"].to_dict("records"):
            accs[r["account_id"]] = {
                "compte": r["account_id"], "code famille": r.get("legacy_family_code"),
                "nom": f"{_s(r.get('first_name'))} {_s(r.get('last_name'))}".strip(),
                "adresse": " ".join(_s(r.get(c)) for c in ("address", "postcode", "city")).strip(),
                "téléphone": r.get("phone"), "e-mail": r.get("email"),
                "personnes": acc_people.get(r["account_id"], "")}
        names = {p: f"{_s(f)} {_s(n)}" for p, f, n in
                 zip(per["pid"], per["first_name"], per["last_name"])}
        return {"families": fams, "accounts": accs, "names": names}
    return td.cached("identity_views", build)


def _family(td, hid) -> dict:
    return _views(td)["families"].get(hid, {"code famille": None})


def _account(td, account_id: str) -> dict:
    return _views(td)["accounts"][account_id]


def _s(v) -> str:
    return "" if v is None or pd.isna(v) else str(v)


def _code(td, hid) -> str:
    return _family(td, hid).get("code famille") or str(hid)


def _fix(account_id, code) -> dict:
    return {"table": "portal_account", "key": {"account_id": account_id},
            "column": "legacy_family_code", "value": code}


@rule("identity", "account_unlinked", "Identité — compte portail non relié à sa famille", ("account_id",),
      truth_key=lambda d: (d["account_id"],))
def account_unlinked(td) -> pd.DataFrame:
    """Accounts without a family code whose family the matching recognises: auto-linked
    ones as info (the portal team should set the code), the review band as warnings.
    Accounts matching no family (citizen-only accounts) are not flagged."""
    a = resolve(td).accounts
    a = a[a["status"] == "unlinked"].sort_values("account_id")
    auto = a["band"] == "auto"
    return findings(
        a, ["account_id"], severity=auto.map({True: "info", False: "warning"}),
        message=lambda r: (
            f"Compte {r['account_id']} sans code famille : famille "
            f"{_code(td, r['suggested_household'])} reconnue "
            + ("automatiquement" if r["band"] == "auto" else "probablement, à vérifier")
            + (f" (score {r['weight']:.0f})" if not pd.isna(r["weight"]) else "")),
        suggestion=lambda r: (f"Renseigner le code famille {_code(td, r['suggested_household'])}"
                              f" sur le compte portail {r['account_id']}"),
        fix=lambda r: _fix(r["account_id"], _code(td, r["suggested_household"])),
        evidence=lambda r: evidence(
            record("Compte portail", _account(td, r["account_id"])),
            record("Famille proposée", _family(td, r["suggested_household"]))))


@rule("identity", "account_wrong_family", "Identité — compte portail relié à une autre famille",
      ("account_id",), truth_key=lambda d: (d["account_id"],))
def account_wrong_family(td) -> pd.DataFrame:
    """Accounts whose family code names a family their persons do not belong to."""
    a = resolve(td).accounts
    a = a[a["status"] == "wrong_family"].sort_values("account_id")

    def msg(r):
        linked = (f"la famille {_code(td, r['linked_household'])}"
                  if not pd.isna(r["linked_household"]) else "un code famille inconnu")
        if pd.isna(r["suggested_household"]):
            return f"Compte {r['account_id']} relié à {linked}"
        return (f"Compte {r['account_id']} relié à {linked}, mais ses personnes sont celles "
                f"de la famille {_code(td, r['suggested_household'])}")

    def ev(r):
        recs = [record("Compte portail", _account(td, r["account_id"]))]
        if not pd.isna(r["linked_household"]):
            recs.append(record("Famille liée", _family(td, r["linked_household"])))
        if not pd.isna(r["suggested_household"]):
            recs.append(record("Famille proposée", _family(td, r["suggested_household"])))
        return evidence(*recs)

    def sugg(r):
        if pd.isna(r["suggested_household"]):
            return "Vérifier le code famille du compte sur le portail"
        return (f"Remplacer le code famille par {_code(td, r['suggested_household'])} "
                f"sur le compte portail {r['account_id']}")

    return findings(a, ["account_id"], message=msg, suggestion=sugg, evidence=ev,
                    fix=lambda r: None if pd.isna(r["suggested_household"]) else
                    _fix(r["account_id"], _code(td, r["suggested_household"])))


@rule("identity", "legacy_duplicate_family", "Identité — famille en double dans le logiciel",
      ("household_id", "duplicate_household_id"),
      truth_key=lambda d: (min(d["original_family_id"], d["family_id"]),
                           max(d["original_family_id"], d["family_id"])))
def legacy_duplicate_family(td) -> pd.DataFrame:
    """Pairs of legacy families holding the same persons under different ids (keyed
    by the older, lower id first). Children shared by separated parents' families carry
    one id in both and never make a pair."""
    ident = resolve(td)
    d = ident.duplicates.copy()
    dp = ident.dup_persons
    names = _views(td)["names"]

    def msg(r):
        m = dp[(dp["household_id"] == r["household_id"])
               & (dp["duplicate_household_id"] == r["duplicate_household_id"])]
        who = ", ".join(names.get(p, "?") for p in m["person_id"])
        return (f"La famille {_code(td, r['duplicate_household_id'])} semble être un double de "
                f"{_code(td, r['household_id'])} : {len(m)} personne(s) en commun ({who})")

    return findings(
        d, ["household_id", "duplicate_household_id"],
        severity=(d["band"] == "auto").map({True: "warning", False: "info"}), message=msg,
        suggestion=lambda r: (f"Regrouper la famille {_code(td, r['duplicate_household_id'])} "
                              f"dans {_code(td, r['household_id'])} dans le logiciel "
                              "(inscriptions, factures) puis la clôturer"),
        evidence=lambda r: evidence(
            record("Famille d'origine", _family(td, r["household_id"])),
            record("Famille en double", _family(td, r["duplicate_household_id"]))))
