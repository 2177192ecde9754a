"""The record-linkage engine: normalisation, blocking and scoring of person records.

Backend-independent (plain pandas + rapidfuzz), used by identity resolution
(``pipelines.reconcile.identity``) and by ``guichet match``.

A *record frame* has an ``rid`` column (any hashable id) and any of the fields of
``FIELDS``; ``standardise`` turns it into normalised keys. ``candidates`` finds the
pairs worth comparing by merges on blocking keys (never a cross product; blocks larger
than ``max_block`` are skipped and every record keeps at most ``cap`` candidates).
``score_pairs`` gives each pair a Fellegi–Sunter-style weight: the sum of per-field
log2 agreement weights (``WEIGHTS``), a missing field counting 0.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np
import pandas as pd
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

FIELDS = ("first_name", "last_name", "birth_name", "birth_date", "address", "postcode",
          "email", "phone")

#: log2 Bayes factors log2(m/u) per field and comparison level, set by hand from the
#: usual orders of magnitude (m = P(level | same person), u = P(level | two different
#: persons of one block)) and checked on the simulated towns (docs/reconciliation.md).
WEIGHTS = {
    "first_exact": 7.0, "first_close": 3.0, "first_diff": -6.0,
    "last_exact": 6.0, "last_close": 3.0, "last_diff": -3.0,
    "birth_exact": 10.0, "birth_typo": 3.0, "birth_diff": -9.0,
    "email": 9.0, "phone": 8.0, "address_exact": 5.0, "address_close": 3.0,
    "postcode": 1.0,
}
#: a pair of person records at or above this weight is the same person
PERSON_MIN = 12.0
CLOSE = 0.9  # Jaro–Winkler similarity of a "close" name
CHUNK = 200_000  # pairs compared at a time

_ABBREV = {"bd": "boulevard", "bld": "boulevard", "bvd": "boulevard", "av": "avenue",
           "ave": "avenue", "st": "saint", "ste": "sainte", "imp": "impasse",
           "all": "allee", "pl": "place", "ch": "chemin", "che": "chemin", "rte": "route",
           "sq": "square", "res": "residence", "lot": "lotissement", "r": "rue"}
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


# ----------------------------------------------------------- normalisation
def fix_mojibake(s: str) -> str:
    """UTF-8 read as Latin-1 ('Ã©' for 'é'), undone when that is what it is."""
    if "Ã" in s or "Â" in s:
        try:
            return s.encode("latin-1").decode("utf-8")
        except (UnicodeDecodeError, UnicodeEncodeError):
            return s
    return s


@lru_cache(maxsize=1 << 18)
def norm_text(s: str) -> str:
    """Lower case, no accents, every non-alphanumeric run (hyphens too) a single space."""
    s = unicodedata.normalize("NFKD", fix_mojibake(s))
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    s = s.replace("œ", "oe").replace("æ", "ae").replace("ß", "ss")
    return _NON_ALNUM.sub(" ", s).strip()


def name_key(s: str) -> str:
    """A name without accents, case, blanks or hyphens: 'Le-Gall' = 'LE GALL' = 'le gall'."""
    return norm_text(s).replace(" ", "")


def phone_key(s: str) -> str:
    d = re.sub(r"\D", "", s)
    if d.startswith("0033"):
        d = "0" + d[4:]
    elif d.startswith("33") and len(d) == 11:
        d = "0" + d[2:]
    return d if len(d) >= 9 else ""


def email_key(s: str) -> str:
    return s.strip().lower()


def address_key(s: str) -> str:
    toks = [_ABBREV.get(t, t) for t in norm_text(s).split()]
    return " ".join(t for t in toks if t not in ("bis", "ter"))


def _map(series: pd.Series, fn) -> pd.Series:
    """``fn`` over the distinct non-empty values of a text column ('' when missing)."""
    s = series.astype("string").fillna("").str.strip()
    uniq = s.unique()
    table = {u: (fn(u) if u else "") for u in uniq}
    return s.map(table).fillna("").astype(object)


def standardise(df: pd.DataFrame) -> pd.DataFrame:
    """Normalised comparison keys of a record frame (``rid`` + any of ``FIELDS``).

    Columns: rid, first, last, birth (name keys), ftoks/ltoks/btoks (blank-separated
    tokens of the first, last and birth names), bdate
    (YYYYMMDD text or ''), email, phone, address, postcode.
    """
    out = pd.DataFrame({"rid": df["rid"].values})
    for col, src in (("first", "first_name"), ("last", "last_name"), ("birth", "birth_name")):
        out[col] = _map(df[src], name_key).values if src in df else ""
    out["ftoks"] = _map(df["first_name"], norm_text).values if "first_name" in df else ""
    for col, src in (("ltoks", "last_name"), ("btoks", "birth_name")):
        out[col] = _map(df[src], norm_text).values if src in df else ""
    if "birth_date" in df:
        bd = pd.to_datetime(df["birth_date"], errors="coerce")
        out["bdate"] = bd.dt.strftime("%Y%m%d").fillna("").astype(object).values
    else:
        out["bdate"] = ""
    for col, fn in (("email", email_key), ("phone", phone_key), ("address", address_key),
                    ("postcode", lambda v: re.sub(r"\D", "", v))):
        out[col] = _map(df[col], fn).values if col in df else ""
    # keep only the 8 digits of an unambiguous date
    out.loc[out["bdate"].str.len() != 8, "bdate"] = ""
    return out


# ----------------------------------------------------------------- blocking
def _name_keys(std: pd.DataFrame) -> pd.Series:
    """Sorted tokens of first + last name, and of first + birth name: order-free, so a
    record with first and last names swapped (or a hyphen for a blank) shares the key."""
    keys = []
    for f, ln, bn in zip(std["ftoks"], std["ltoks"], std["btoks"]):
        ks = set()
        if f:
            for other in (ln, bn):
                if other:
                    ks.add(" ".join(sorted(f.split() + other.split())))
        keys.append(sorted(ks))
    return pd.Series(keys, index=std.index)


def blocking_keys(std: pd.DataFrame) -> pd.DataFrame:
    """Long frame (rid position ``i``, ``key``) of every blocking key of every record."""
    i = np.arange(len(std))
    parts = []
    bd = std["bdate"].values
    parts.append(pd.DataFrame({"i": i, "key": np.char.add("d:", bd.astype(str))})[bd != ""])
    nk = _name_keys(std).explode().dropna()
    parts.append(pd.DataFrame({"i": i[nk.index.values] if len(nk) else [],
                               "key": "n:" + nk.astype(str).values}))
    first_year = np.char.add(std["first"].values.astype(str),
                             np.char.add("|", np.array([b[:4] for b in bd], dtype=str)))
    ok = (std["first"].values != "") & (bd != "")
    parts.append(pd.DataFrame({"i": i, "key": np.char.add("fy:", first_year)})[ok])
    for col in ("email", "phone"):
        v = std[col].values.astype(str)
        parts.append(pd.DataFrame({"i": i, "key": np.char.add(col[0] + ":", v)})[v != ""])
    out = pd.concat(parts, ignore_index=True)
    return out.drop_duplicates()


def candidates(left: pd.DataFrame, right: pd.DataFrame | None = None, *,
               max_block: int = 200, cap: int = 50) -> pd.DataFrame:
    """Candidate pairs (positions ``l``, ``r``) sharing at least one blocking key.

    ``right=None`` deduplicates ``left`` (pairs with ``l < r``). Keys shared by more
    than ``max_block`` records on either side are skipped (too common to say anything);
    each left record keeps its ``cap`` candidates sharing the most keys.
    """
    kl = blocking_keys(left)
    kr = kl if right is None else blocking_keys(right)
    big = set(kl["key"].value_counts().loc[lambda s: s > max_block].index)
    big |= set(kr["key"].value_counts().loc[lambda s: s > max_block].index)
    if big:
        kl = kl[~kl["key"].isin(big)]
        kr = kr[~kr["key"].isin(big)]
    pairs = kl.merge(kr, on="key", suffixes=("_l", "_r"))
    pairs = pairs.rename(columns={"i_l": "l", "i_r": "r"})
    if right is None:
        pairs = pairs[pairs["l"] < pairs["r"]]
    n = pairs.groupby(["l", "r"], sort=False).size().rename("nkeys").reset_index()
    n = n.sort_values(["l", "nkeys", "r"], ascending=[True, False, True], kind="stable")
    return n.groupby("l", sort=False).head(cap)[["l", "r"]].reset_index(drop=True)


# ------------------------------------------------------------------ scoring
def _strs(s) -> np.ndarray:
    """A text column as a NumPy unicode array ('' for missing): fast to iterate."""
    if isinstance(s, np.ndarray) and s.dtype.kind == "U":
        return s
    return np.asarray(s.to_numpy(dtype=object, na_value=""), dtype=str) if len(s) \
        else np.array([], dtype=str)


def _jw(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise Jaro–Winkler similarity (rapidfuzz, C++, both cores); 0 when empty."""
    if not len(a):
        return np.zeros(0)
    sim = process.cpdist(list(a), list(b), scorer=JaroWinkler.normalized_similarity,
                         workers=-1)
    return np.where((a != "") & (b != ""), sim, 0.0)


def _tokens_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A name token of 3+ letters shared (Bertrand-Joly / Bertrand, Jean-Baptiste / Jean).
    Only compound names can share a token without being equal: the others are skipped."""
    out = np.zeros(len(a), dtype=bool)
    idx = np.flatnonzero((np.char.find(a, " ") >= 0) | (np.char.find(b, " ") >= 0))
    for k in idx:
        x, y = a[k], b[k]
        if x and y:
            out[k] = bool({t for t in x.split() if len(t) > 2}
                          & {t for t in y.split() if len(t) > 2})
    return out


def _birth_typo(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Day and month swapped, up to 15 days off, a year off, or one digit changed
    (vectorised over YYYYMMDD texts, all present and different)."""
    A = np.array(a, dtype="S8").view(np.uint8).reshape(-1, 8).astype(int)
    B = np.array(b, dtype="S8").view(np.uint8).reshape(-1, 8).astype(int)
    ya, yb = A[:, :4] @ [1000, 100, 10, 1], B[:, :4] @ [1000, 100, 10, 1]
    ma, mb, da, db = A[:, 4:6] @ [10, 1], B[:, 4:6] @ [10, 1], A[:, 6:] @ [10, 1], \
        B[:, 6:] @ [10, 1]
    swapped = (ya == yb) & (ma == db) & (da == mb)
    one_digit = (A != B).sum(axis=1) == 1
    year_off = (ma == mb) & (da == db) & (np.abs(ya - yb) == 1)
    ta = pd.to_datetime(pd.Series(a), format="%Y%m%d", errors="coerce")
    tb = pd.to_datetime(pd.Series(b), format="%Y%m%d", errors="coerce")
    near = ((ta - tb).abs().dt.days <= 15).fillna(False).to_numpy(dtype=bool)
    return swapped | one_digit | year_off | near


def compare(left: pd.DataFrame, right: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per-field weights and their total (``weight``) for ``pairs`` (positions l, r)."""
    li, ri = pairs["l"].to_numpy(dtype=int), pairs["r"].to_numpy(dtype=int)
    cols = ("first", "last", "birth", "ftoks", "ltoks", "btoks", "bdate", "email", "phone",
            "address", "postcode")
    # each column converted once, then gathered by position, a chunk of pairs at a time
    # (memory bounded by CHUNK, not by the number of pairs)
    al = {c: _strs(left[c]) for c in cols}
    ar = al if right is left else {c: _strs(right[c]) for c in cols}
    parts = [_compare_chunk(al, ar, li[k:k + CHUNK], ri[k:k + CHUNK])
             for k in range(0, len(li), CHUNK)]
    return pd.concat(parts, ignore_index=True) if parts else _compare_chunk(al, ar, li, ri)


def _compare_chunk(al: dict, ar: dict, li: np.ndarray, ri: np.ndarray) -> pd.DataFrame:
    L = {c: v[li] for c, v in al.items()}
    R = {c: v[ri] for c, v in ar.items()}
    W = WEIGHTS
    out = pd.DataFrame({"l": li, "r": ri})
    n = len(out)

    def col(side, c):
        return side[c]

    lf, rf, ll, rl, lb, rb = (col(L, "first"), col(R, "first"), col(L, "last"),
                              col(R, "last"), col(L, "birth"), col(R, "birth"))
    # last name: the best of last/birth name on either side (married vs birth name)
    last_exact = np.zeros(n, dtype=bool)
    for x, y in ((ll, rl), (ll, rb), (lb, rl), (lb, rb)):
        last_exact |= (x != "") & (x == y)
    has_last = ((ll != "") | (lb != "")) & ((rl != "") | (rb != ""))
    first_exact = (lf != "") & (lf == rf)
    # first and last names swapped on one side: the first name is then in the other's
    # last-name field; the last names compare crosswise (the birth name on either side)
    swap_a = ~first_exact & (ll != "") & (ll == rf)
    swap_b = ~first_exact & ~swap_a & (rl != "") & (rl == lf)
    first_exact |= swap_a | swap_b
    last_exact |= (swap_a & (lf != "") & ((lf == rl) | (lf == rb))) | (
        swap_b & (rf != "") & ((rf == ll) | (rf == lb)))
    need = ~first_exact & (lf != "") & (rf != "")
    first_close = np.zeros(n, dtype=bool)
    if need.any():
        idx = np.flatnonzero(need)
        close = _jw(lf[idx], rf[idx]) >= CLOSE
        rest = idx[~close]
        first_close[idx[close]] = True
        first_close[rest] = _tokens_overlap(col(L, "ftoks")[rest], col(R, "ftoks")[rest])
    last_close = np.zeros(n, dtype=bool)
    need = ~last_exact & has_last
    if need.any():
        idx = np.flatnonzero(need)
        best = np.maximum.reduce([_jw(x[idx], y[idx]) for x, y in
                                  ((ll, rl), (ll, rb), (lb, rl), (lb, rb))])
        lt = np.char.strip(np.char.add(np.char.add(col(L, "ltoks"), " "), col(L, "btoks")))
        rt = np.char.strip(np.char.add(np.char.add(col(R, "ltoks"), " "), col(R, "btoks")))
        close = best >= CLOSE
        rest = idx[~close]
        last_close[idx[close]] = True
        last_close[rest] = _tokens_overlap(lt[rest], rt[rest])
    out["w_first"] = np.select(
        [first_exact, first_close, (lf != "") & (rf != "")],
        [W["first_exact"], W["first_close"], W["first_diff"]], 0.0)
    out["w_last"] = np.select(
        [last_exact, last_close, has_last],
        [W["last_exact"], W["last_close"], W["last_diff"]], 0.0)
    lbd, rbd = col(L, "bdate"), col(R, "bdate")
    both = (lbd != "") & (rbd != "")
    bexact = both & (lbd == rbd)
    btypo = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(both & ~bexact)
    if len(idx):
        btypo[idx] = _birth_typo(lbd[idx], rbd[idx])
    out["w_birth"] = np.select([bexact, btypo, both],
                               [W["birth_exact"], W["birth_typo"], W["birth_diff"]], 0.0)
    out["w_contact"] = contact_weights(L, R)
    out["weight"] = out[["w_first", "w_last", "w_birth", "w_contact"]].sum(axis=1)
    return out


def contact_weights(L, R) -> np.ndarray:
    """Agreement-only weights of e-mail, phone, address and postcode (aligned rows of two
    frames, or of two dicts of arrays).

    Contacts change (a new phone, a move): a difference says little, so it weighs 0.
    """
    W = WEIGHTS
    n = len(_strs(L["email"]))
    w = np.zeros(n)
    for c, k in (("email", "email"), ("phone", "phone"), ("postcode", "postcode")):
        a, b = _strs(L[c]), _strs(R[c])
        w += np.where((a != "") & (a == b), W[k], 0.0)
    a, b = _strs(L["address"]), _strs(R["address"])
    exact = (a != "") & (a == b)
    close = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(~exact & (a != "") & (b != ""))
    if len(idx):
        # same house number and a street spelled nearly the same
        num_a = np.array([s.split(" ", 1)[0] for s in a[idx]])
        num_b = np.array([s.split(" ", 1)[0] for s in b[idx]])
        close[idx] = (num_a == num_b) & (_jw(a[idx], b[idx]) >= 0.93)
    w += np.select([exact, close], [W["address_exact"], W["address_close"]], 0.0)
    return w


def score_pairs(left: pd.DataFrame, right: pd.DataFrame | None = None, *,
                max_block: int = 200, cap: int = 50) -> pd.DataFrame:
    """Block, then compare: the scored candidate pairs with both records' ``rid``
    (``rid_l``, ``rid_r``). ``left`` and ``right`` are ``standardise``d frames."""
    pairs = candidates(left, right, max_block=max_block, cap=cap)
    other = left if right is None else right
    out = compare(left, other, pairs)
    out["rid_l"] = left["rid"].values[out["l"].values] if len(out) else []
    out["rid_r"] = other["rid"].values[out["r"].values] if len(out) else []
    return out


def band(weight: float, second: float | None, *, auto: float, review: float,
         margin: float) -> str:
    """'auto', 'revue' or 'aucun' for a best weight and the runner-up's."""
    if weight >= auto and (second is None or weight - second >= margin):
        return "auto"
    if weight >= review:
        return "revue"
    return "aucun"
