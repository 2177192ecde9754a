"""The open-data file of granted subsidies, in the SCDL "subventions" 2.1.1 format.

A town that grants more than 23 000 € of subsidies a year must publish the essential data
of each agreement (décret n° 2017-779, arrêté du 17 novembre 2017) in this format.
The rules below are the schema's, as published on schema.data.gouv.fr
(``scdl/subventions/2.1.1/documentation.md``, generated from the schema's
``schema.json``): field names and order, required fields, patterns, the ``nature``
enumeration, ``notificationUE`` as ``oui``/``non``, ``pourcentageSubvention`` between
0.01 and 1, and the custom check "idBeneficiaire or rnaBeneficiaire". The CSV follows
OpenDataFrance's conventions: UTF-8, comma-separated, CRLF line ends, one header line.

Every row is validated before anything is written: a file that a portal's validator
(Validata) rejects helps no one, and a wrong SIRET published is a wrong fact about an
association. By default an invalid row stops the export with a French message naming the
request and the field; ``skip_invalid`` writes the valid rows and reports the others.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from quality.formats import is_siret

PROCEDURE = "SUBVENTION_ASSOCIATION"
GRANTED = "accepte"

#: the schema's fields, in the schema's order
FIELDS = ("nomAttribuant", "idAttribuant", "dateConvention", "referenceDecision",
          "nomBeneficiaire", "idBeneficiaire", "rnaBeneficiaire", "objet", "montant",
          "nature", "conditionsVersement", "datesPeriodeVersement", "idRAE", "notificationUE",
          "pourcentageSubvention", "dispositifAide")
REQUIRED = ("nomAttribuant", "idAttribuant", "dateConvention", "nomBeneficiaire", "objet",
            "montant", "nature", "conditionsVersement", "datesPeriodeVersement",
            "notificationUE", "pourcentageSubvention")
NATURES = ("aide en numéraire", "aide en nature", "aide en numéraire;aide en nature",
           "aide en nature;aide en numéraire")
MAX_LENGTH = {"objet": 256, "conditionsVersement": 256, "idRAE": 5}
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PERIOD_RE = re.compile(r"^[0-9]{4}\-[0-9]{2}\-[0-9]{2}(\/[0-9]{4}\-[0-9]{2}\-[0-9]{2})?$")
SIRET_RE = re.compile(r"^\d{14}$")
RNA_RE = re.compile(r"^W\d{9}$")
NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")

# What guichet writes for facts the warehouse does not hold (see docs/reports.md).
NATURE = "aide en numéraire"  # subsidies requested on the portal are paid in money
CONDITIONS = "unique"  # one payment per granted request
NOTIFICATION_UE = "non"  # a town's grant to an association is not a notified state aid
POURCENTAGE = "1.00"  # one beneficiary per request: it receives 100 % of the subsidy


class ScdlError(ValueError):
    """The export cannot be written; the message is French, for the person at the terminal."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class Problem:
    request: str  # request number
    field: str  # SCDL field
    message: str  # French

    def __str__(self) -> str:
        return f"demande {self.request}, champ {self.field} : {self.message}"


@dataclass
class Export:
    path: Path | None
    rows: list[dict] = field(default_factory=list)
    excluded: list[Problem] = field(default_factory=list)

    @property
    def total_cents(self) -> int:
        return sum(round(float(r["montant"]) * 100) for r in self.rows)


# ------------------------------------------------------------------ reading
def granted_requests(conn, town: str, start: dt.date, end: dt.date) -> list[dict]:
    """Granted subsidy requests decided between start and end (days in Europe/Paris,
    inclusive), with their association; live rows only."""
    lo = dt.datetime.combine(start - dt.timedelta(days=1), dt.time())
    hi = dt.datetime.combine(end + dt.timedelta(days=2), dt.time())
    rows = conn.execute(sa.text(
        "SELECT r.request_number, r.decided_at, r.amount_granted_cents, "
        "r.amount_requested_cents, r.purpose, r.association_id, a.name AS association_name, "
        "a.rna, a.siret "
        "FROM procedure_request r LEFT JOIN association a ON a.town = r.town "
        "AND a.association_id = r.association_id AND a.deleted_run_id IS NULL "
        "WHERE r.town = :town AND r.deleted_run_id IS NULL AND r.procedure = :proc "
        "AND r.state = :state AND r.amount_granted_cents > 0 "
        "AND r.decided_at >= :lo AND r.decided_at < :hi "
        "ORDER BY r.decided_at, r.request_number"),
        {"town": town, "proc": PROCEDURE, "state": GRANTED, "lo": lo, "hi": hi}).mappings()
    out = []
    for r in rows:
        day = decision_day(r["decided_at"])
        if start <= day <= end:
            out.append({**r, "decided_on": day})
    return out


def decision_day(value) -> dt.date:
    """The day of a decision in Europe/Paris (the warehouse stores naive UTC)."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.tz_convert("Europe/Paris").date()


# ------------------------------------------------------------------ mapping
def euros_decimal(cents: int) -> str:
    """``5210.00``: the schema's number, a point between euros and cents."""
    sign = "-" if cents < 0 else ""
    cents = abs(int(cents))
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def to_row(req: dict, town_name: str, town_siret: str) -> dict[str, str]:
    """One SCDL row from a granted request (every value a string, '' when absent)."""
    day: dt.date = req["decided_on"]
    return {
        "nomAttribuant": town_name,
        "idAttribuant": town_siret,
        "dateConvention": day.isoformat(),
        "referenceDecision": _s(req["request_number"]),
        "nomBeneficiaire": _s(req["association_name"]),
        "idBeneficiaire": _s(req["siret"]),
        "rnaBeneficiaire": _s(req["rna"]),
        "objet": _s(req["purpose"]),
        "montant": euros_decimal(req["amount_granted_cents"]),
        "nature": NATURE,
        "conditionsVersement": CONDITIONS,
        # the payment day is not in the warehouse: the schema then asks for a period,
        # here from the decision to the end of its budget year
        "datesPeriodeVersement": f"{day.isoformat()}/{day.year}-12-31",
        "idRAE": "",
        "notificationUE": NOTIFICATION_UE,
        "pourcentageSubvention": POURCENTAGE,
        "dispositifAide": "",
    }


def _s(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return " ".join(str(value).split())  # no line break or stray blank in a CSV cell


# ------------------------------------------------------------------ validation
def validate_row(row: dict[str, str]) -> list[tuple[str, str]]:
    """The row's breaches of the schema, as (field, French message)."""
    out: list[tuple[str, str]] = []
    if tuple(row) != FIELDS:
        return [("*", "les champs ne sont pas ceux du schéma, dans son ordre")]
    for f in REQUIRED:
        if not row[f]:
            out.append((f, "valeur obligatoire absente"))
    for f, n in MAX_LENGTH.items():
        if len(row[f]) > n:
            out.append((f, f"{len(row[f])} caractères, {n} au plus"))
    if row["idAttribuant"] and not _siret_ok(row["idAttribuant"]):
        out.append(("idAttribuant", (f"SIRET invalide « {row['idAttribuant']} » "
                                    "(14 chiffres dont la clé de Luhn est juste)")))
    if row["idBeneficiaire"] and not _siret_ok(row["idBeneficiaire"]):
        out.append(("idBeneficiaire", (f"SIRET invalide « {row['idBeneficiaire']} » "
                                      "(14 chiffres dont la clé de Luhn est juste)")))
    if row["rnaBeneficiaire"] and not RNA_RE.match(row["rnaBeneficiaire"]):
        out.append(("rnaBeneficiaire", (f"numéro RNA invalide « {row['rnaBeneficiaire']} » "
                                       "(W suivi de 9 chiffres)")))
    if not row["idBeneficiaire"] and not row["rnaBeneficiaire"]:
        out.append(("idBeneficiaire", "ni SIRET ni numéro RNA : l'un des deux est obligatoire"))
    if row["dateConvention"] and not _date_ok(row["dateConvention"]):
        out.append(("dateConvention", f"date invalide « {row['dateConvention']} » (AAAA-MM-JJ)"))
    if row["montant"] and not NUMBER_RE.match(row["montant"]):
        out.append(("montant", f"nombre invalide « {row['montant']} » (point décimal)"))
    if row["nature"] and row["nature"] not in NATURES:
        out.append(("nature", f"valeur « {row['nature']} » hors de la liste du schéma"))
    period = row["datesPeriodeVersement"]
    if period and not (PERIOD_RE.match(period) and _period_ok(period)):
        out.append(("datesPeriodeVersement", (f"« {period} » n'est ni AAAA-MM-JJ ni "
                                             "AAAA-MM-JJ/AAAA-MM-JJ dans l'ordre")))
    if row["notificationUE"] and row["notificationUE"] not in ("oui", "non"):
        out.append(("notificationUE", "seules les valeurs oui et non sont permises"))
    pct = row["pourcentageSubvention"]
    if pct and not (NUMBER_RE.match(pct) and 0.01 <= float(pct) <= 1):
        out.append(("pourcentageSubvention", f"« {pct} » n'est pas un nombre entre 0.01 et 1"))
    return out


def _siret_ok(value: str) -> bool:
    return bool(SIRET_RE.match(value)) and is_siret(value)


def _date_ok(value: str) -> bool:
    if not DATE_RE.match(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _period_ok(value: str) -> bool:
    days = value.split("/")
    if not all(_date_ok(d) for d in days):
        return False
    return days[0] <= days[-1]


def check_attributing(name: str | None, siret: str | None, town: str) -> tuple[str, str]:
    """The town as the attributing body, or a clear error naming what to configure."""
    where = f"[towns.{town}] du fichier de configuration (guichet.toml)"
    if not name or not name.strip():
        raise ScdlError(f"le nom officiel de la commune manque : ajoutez name = \"…\" à {where}")
    if not siret:
        raise ScdlError(f"le SIRET de la commune (idAttribuant) manque : ajoutez "
                        f"siret = \"…\" (14 chiffres) à {where}")
    siret = siret.strip()
    if not _siret_ok(siret):
        raise ScdlError(f"le SIRET de la commune « {siret} » est invalide (14 chiffres dont "
                        f"la clé de Luhn est juste) : corrigez siret dans {where}")
    return name.strip(), siret


# ------------------------------------------------------------------ export
def build(conn, town: str, town_name: str | None, town_siret: str | None, start: dt.date,
          end: dt.date, skip_invalid: bool = False) -> Export:
    """Validated rows of the export (nothing written)."""
    name, siret = check_attributing(town_name, town_siret, town)
    export = Export(path=None)
    problems: list[Problem] = []
    for req in granted_requests(conn, town, start, end):
        row = to_row(req, name, siret)
        found = [Problem(row["referenceDecision"] or str(req["association_id"]), f, m)
                 for f, m in validate_row(row)]
        if found:
            problems.extend(found)
        else:
            export.rows.append(row)
    if problems and not skip_invalid:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ScdlError(f"{len(problems)} valeur(s) ne respectent pas le schéma SCDL "
                        f"subventions 2.1.1 ; aucun fichier n'a été écrit. Corrigez-les à la "
                        f"source (ou relancez avec --exclure-invalides) :\n{listing}", problems)
    export.excluded = problems
    return export


def write_csv(rows: list[dict[str, str]], path: str | Path) -> Path:
    """UTF-8, comma, CRLF, the header line then the rows; written to a temporary file then
    renamed, so a half-written file never replaces a good one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\r\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
    return path


def export(engine, town: str, town_name: str | None, town_siret: str | None, start: dt.date,
           end: dt.date, path: str | Path, skip_invalid: bool = False) -> Export:
    """Build, validate and write the file; nothing is written when a row is invalid
    (unless ``skip_invalid``)."""
    with engine.connect() as conn:
        result = build(conn, town, town_name, town_siret, start, end, skip_invalid)
    result.path = write_csv(result.rows, path)
    return result
