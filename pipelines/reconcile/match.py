"""``guichet match``: tie an external list of persons to the town's families.

Towns receive lists (the schools' enrolment export, the family-benefit office's list);
this links each row to the warehouse's persons (and their households) or to the rows
of a second list, with the engine of ``linkage``: the same normalisation, blocking and
weights as identity resolution. Every input row gets one output row: the best match,
its score and its band (``auto``, ``revue``: a steward should check, ``aucun``).
"""

from __future__ import annotations

import csv
import io
import tomllib
from pathlib import Path

import pandas as pd

from pipelines.reconcile import linkage as lk

FIELDS = lk.FIELDS + ("id",)
#: French column labels of the links file (town agents read it)
LABELS = {"first_name": "prenom", "last_name": "nom", "birth_name": "nom_naissance",
          "birth_date": "date_naissance", "address": "adresse", "postcode": "code_postal",
          "email": "email", "phone": "telephone"}
#: person-level thresholds: names + birth date agreeing = 23; names alone = 13
AUTO, REVIEW, MARGIN = 20.0, 12.0, 5.0
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y%m%d", "%d/%m/%y")


class MatchError(Exception):
    """A problem with the inputs, explained for the person at the terminal."""


# ------------------------------------------------------------------- inputs
def parse_mapping(text: str | None) -> dict[str, str]:
    """``prenom=first_name,nom=last_name`` -> {CSV column: field}."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise MatchError(f"mapping '{part.strip()}' is not COLUMN=FIELD")
        col, fld = (x.strip() for x in part.rsplit("=", 1))
        out[col] = fld
    return check_mapping(out)


def check_mapping(mapping: dict[str, str]) -> dict[str, str]:
    bad = sorted({f for f in mapping.values() if f not in FIELDS})
    if bad:
        raise MatchError(f"unknown field(s) {', '.join(bad)} in the mapping "
                         f"(known: {', '.join(FIELDS)})")
    dup = sorted({f for f in mapping.values() if list(mapping.values()).count(f) > 1})
    if dup:
        raise MatchError(f"field(s) {', '.join(dup)} mapped from more than one column")
    return mapping


def load_map_config(path: str | Path) -> dict:
    """A small TOML file: ``[columns]`` (CSV column = field), optional ``delimiter``,
    ``encoding``, and ``[against_columns]`` for the second list."""
    p = Path(path)
    if not p.exists():
        raise MatchError(f"mapping file {p} does not exist")
    try:
        with p.open("rb") as fh:
            cfg = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise MatchError(f"mapping file {p} is not valid TOML: {exc}") from exc
    out = {k: cfg[k] for k in ("delimiter", "encoding") if k in cfg}
    for key in ("columns", "against_columns"):
        if key in cfg:
            out[key] = check_mapping({str(k): str(v) for k, v in cfg[key].items()})
    return out


def _decode(raw: bytes, encoding: str | None) -> str:
    if encoding:
        try:
            return raw.decode(encoding).lstrip("\ufeff")
        except (UnicodeDecodeError, LookupError) as exc:
            raise MatchError(f"cannot decode the file as {encoding}: {exc}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")  # Latin-1 as Windows writes it


def read_list(path: str | Path, mapping: dict[str, str], *, delimiter: str | None = None,
              encoding: str | None = None) -> pd.DataFrame:
    """The mapped columns of a CSV list as fields, ``rid`` = the data row number (1 = the
    first row after the header). UTF-8 (with or without BOM) or Latin-1; ``;``, ``,``,
    tab or ``|`` guessed from the header when ``delimiter`` is not given."""
    p = Path(path)
    if not p.exists():
        raise MatchError(f"file {p} does not exist")
    if not mapping:
        raise MatchError("no column mapping: give --map COLUMN=FIELD,... or --map-config")
    text = _decode(p.read_bytes(), encoding)
    header = text.split("\n", 1)[0]
    if delimiter is None:
        delimiter = max(";,\t|", key=header.count)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        raise MatchError(f"file {p} is empty")
    cols = [c.strip() for c in rows[0]]
    missing = [c for c in mapping if c not in cols]
    if missing:
        raise MatchError(f"column(s) {', '.join(missing)} not in {p} "
                         f"(its columns: {', '.join(cols)}; delimiter {delimiter!r})")
    body = [r for r in rows[1:] if any(x.strip() for x in r)]
    df = pd.DataFrame([(r + [""] * len(cols))[:len(cols)] for r in body], columns=cols,
                      dtype=object)
    out = pd.DataFrame({"rid": range(1, len(df) + 1)})
    for col, fld in mapping.items():
        out[fld] = df[col].str.strip().replace("", None).values if len(df) else []
    if "birth_date" in out:
        out["birth_date"] = out["birth_date"].map(parse_date)
    return out


def parse_date(v) -> pd.Timestamp | None:
    if v is None or pd.isna(v):
        return None
    s = str(v).strip()[:10]
    for fmt in DATE_FORMATS:
        try:
            return pd.to_datetime(s, format=fmt)
        except ValueError:
            continue
    return None


def warehouse_records(engine, town: str) -> pd.DataFrame:
    """The town's persons, one row per (person, household), with the household's
    address and, when the person has none, its phone and e-mail. A legacy duplicate
    person or family is replaced by its canonical one (crosswalk)."""
    import sqlalchemy as sa

    from pipelines.reconcile.data import TownData

    td = TownData(engine, town)
    per, mem, hh = td["person"], td["membership"], td["household"]
    with engine.connect() as conn:
        cw = pd.read_sql(sa.text("SELECT source_entity, source_id, canonical_id FROM crosswalk "
                                 "WHERE town = :t AND source = 'legacy' AND "
                                 "deleted_run_id IS NULL"), conn, params={"t": town})
    dup_p = {int(s) for s in cw.loc[cw["source_entity"] == "individual", "source_id"]}
    fam = {int(s): int(c) for s, c in cw.loc[cw["source_entity"] == "family",
                                             ["source_id", "canonical_id"]].values}
    x = per[~per["person_id"].isin(dup_p)].merge(
        mem[["person_id", "household_id"]], on="person_id", how="left")
    x["household_id"] = x["household_id"].map(lambda h: fam.get(h, h) if not pd.isna(h)
                                              else h).astype("Int64")
    x = x.drop_duplicates(["person_id", "household_id"])
    h = hh.rename(columns={"email": "h_email", "phone": "h_phone"})[
        ["household_id", "address", "postcode", "h_email", "h_phone"]]
    x = x.merge(h, on="household_id", how="left")
    x["email"] = x["email"].fillna(x["h_email"])
    x["phone"] = x["phone"].fillna(x["h_phone"])
    x = x.sort_values(["person_id", "household_id"]).reset_index(drop=True)
    return x.rename(columns={"person_id": "rid"})[
        ["rid", "household_id", *[f for f in lk.FIELDS]]]


# ------------------------------------------------------------------- linking
def link(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """Best right record of every left row: ``rid``, ``match`` (the right position or
    -1), ``score``, ``second`` (best score of another right ``rid``), ``band``."""
    L, R = lk.standardise(left), lk.standardise(right)
    pairs = lk.score_pairs(L, R)
    pairs = pairs.sort_values(["l", "weight", "r"], ascending=[True, False, True],
                              kind="stable").drop_duplicates(["l", "rid_r"])
    best = pairs.drop_duplicates("l").set_index("l")
    second = pairs[pairs.duplicated("l")].drop_duplicates("l").set_index("l")["weight"]
    rows = []
    for i, rid in enumerate(left["rid"]):
        if i in best.index:
            w = float(best.at[i, "weight"])
            s = float(second[i]) if i in second.index else None
            b = lk.band(w, s, auto=AUTO, review=REVIEW, margin=MARGIN)
            rows.append((rid, int(best.at[i, "r"]) if b != "aucun" else -1, w, s, b))
        else:
            rows.append((rid, -1, None, None, "aucun"))
    return pd.DataFrame(rows, columns=["rid", "match", "score", "second", "band"])


def links_file(left: pd.DataFrame, right: pd.DataFrame, res: pd.DataFrame, *,
               warehouse: bool) -> pd.DataFrame:
    """The links table as written: French headers, the compared values side by side."""
    out = pd.DataFrame({"ligne": left["rid"].values})
    if "id" in left:
        out["id_liste"] = left["id"].values
    hit = res["match"].values >= 0
    pick = right.iloc[res["match"].clip(lower=0).values].reset_index(drop=True)

    def col(name):
        return pick[name].where(hit, None).values if name in pick else [None] * len(out)

    if warehouse:
        out["id_personne"] = pd.array(col("rid"), dtype="Int64")
        out["id_famille"] = pd.array(col("household_id"), dtype="Int64")
    else:
        out["ligne_autre"] = pd.array(col("rid"), dtype="Int64")
        if "id" in right:
            out["id_autre"] = col("id")
    out["score"] = [None if pd.isna(s) else round(s, 1) for s in res["score"]]
    out["niveau"] = res["band"].values
    for f, fr in LABELS.items():
        if f not in left:
            continue
        mine, theirs = left[f], pd.Series(col(f))
        if f == "birth_date":
            mine = pd.to_datetime(mine, errors="coerce").dt.strftime("%d/%m/%Y")
            theirs = pd.to_datetime(theirs, errors="coerce").dt.strftime("%d/%m/%Y")
        out[f"{fr}_liste"] = mine.values
        out[f"{fr}_trouve"] = theirs.values
    return out


def write_links(df: pd.DataFrame, path: str | Path, delimiter: str = ";") -> None:
    """UTF-8 with a BOM (so a spreadsheet opens accents right), ``;``-separated."""
    df.to_csv(path, sep=delimiter, index=False, encoding="utf-8-sig")
