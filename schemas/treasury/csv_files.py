"""The payment office's two CSV files: PayFiP online card payments and desk ("caisse") receipts.

Both are UTF-8, ``;``-separated, without quoting, with a header line naming the columns:

* ``PAYFIP_YYYYMMDD.csv``: ``refdet;idop;numauto;montant;dattrans;heurtrans;resultrans;mel;exer``
  (``montant`` in cents, ``dattrans`` DDMMYYYY, ``heurtrans`` HHMM, ``resultrans`` P/R/A).
* ``CAISSE_YYYYMMDD.csv``: ``recu;date;mode;montant_centimes;num_facture;payeur;num_cheque``
  (``date`` DD/MM/YYYY, ``mode`` ESPECES/CHEQUE/CESU/CB).

One ``payment`` row per data line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from .model import (
    Parsed,
    Rejected,
    empty_tables,
    file_rejected,
    finish,
    none_if_blank,
    show,
)

PARIS = ZoneInfo("Europe/Paris")

PAYFIP_COLUMNS = (
    "refdet",
    "idop",
    "numauto",
    "montant",
    "dattrans",
    "heurtrans",
    "resultrans",
    "mel",
    "exer",
)
CAISSE_COLUMNS = (
    "recu",
    "date",
    "mode",
    "montant_centimes",
    "num_facture",
    "payeur",
    "num_cheque",
)
PAYFIP_STATUS = {"P": "paid", "R": "refused", "A": "abandoned"}
CAISSE_CHANNEL = {"ESPECES": "cash", "CHEQUE": "cheque", "CESU": "cesu", "CB": "desk_card"}

_CENTS_RE = re.compile(r"[0-9]{1,15}")
_DDMMYYYY_RE = re.compile(r"([0-9]{2})([0-9]{2})([0-9]{4})")
_SLASH_DATE_RE = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")
_HHMM_RE = re.compile(r"([0-9]{2})([0-9]{2})")
_YEAR_RE = re.compile(r"[0-9]{4}")


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------


def _cell(row: dict, key: str, position: int, optional: bool = False) -> str:
    """A text cell: refuse what would break the unquoted ``;`` format."""
    if key not in row:
        if optional:
            return ""
        raise ValueError(f"row {position}: missing key {key!r}")
    value = row[key]
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"row {position}: {key} must be a str, got {value!r}")
    for forbidden in (";", "\n", "\r"):
        if forbidden in value:
            raise ValueError(
                f"row {position}: {key} {value!r} contains {forbidden!r}, which the unquoted "
                "';'-separated format cannot carry"
            )
    return value


def _int_cell(row: dict, key: str, position: int) -> str:
    value = row.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"row {position}: {key} must be an int, got {value!r}")
    return str(value)


def _date_cell(row: dict, key: str, position: int) -> date:
    value = row.get(key)
    if not isinstance(value, date) or isinstance(value, datetime):
        raise TypeError(f"row {position}: {key} must be a date, got {value!r}")
    return value


def _lines(header: tuple[str, ...], lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in [";".join(header), *lines]).encode("utf-8")


def write_payfip_csv(rows: list[dict]) -> bytes:
    """Write a PayFiP file: header line, ``;``-separated, UTF-8, "\\n" line ends.

    Keys: ``refdet``, ``idop``, ``numauto`` (may be ""), ``montant`` (int cents), ``dattrans``
    (date), ``heurtrans`` (time), ``resultrans`` ("P" | "R" | "A"), ``mel`` (may be ""),
    ``exer`` (int).
    """
    lines = []
    for position, row in enumerate(rows, start=1):
        on = _date_cell(row, "dattrans", position)
        at = row.get("heurtrans")
        if not isinstance(at, time):
            raise TypeError(f"row {position}: heurtrans must be a time, got {at!r}")
        exer = row.get("exer")
        lines.append(
            ";".join(
                [
                    _cell(row, "refdet", position),
                    _cell(row, "idop", position),
                    _cell(row, "numauto", position, optional=True),
                    _int_cell(row, "montant", position),
                    f"{on.day:02d}{on.month:02d}{on.year:04d}",
                    f"{at.hour:02d}{at.minute:02d}",
                    _cell(row, "resultrans", position),
                    _cell(row, "mel", position, optional=True),
                    "" if exer is None else _int_cell(row, "exer", position),
                ]
            )
        )
    return _lines(PAYFIP_COLUMNS, lines)


def write_caisse_csv(rows: list[dict]) -> bytes:
    """Write a desk-receipts file: header line, ``;``-separated, UTF-8, no quoting, "\\n".

    Keys: ``recu``, ``date`` (date), ``mode`` ("ESPECES" | "CHEQUE" | "CESU" | "CB"),
    ``montant_centimes`` (int), ``num_facture`` (may be ""), ``payeur``, ``num_cheque``
    (may be "").
    """
    lines = []
    for position, row in enumerate(rows, start=1):
        on = _date_cell(row, "date", position)
        lines.append(
            ";".join(
                [
                    _cell(row, "recu", position),
                    f"{on.day:02d}/{on.month:02d}/{on.year:04d}",
                    _cell(row, "mode", position),
                    _int_cell(row, "montant_centimes", position),
                    _cell(row, "num_facture", position, optional=True),
                    _cell(row, "payeur", position, optional=True),
                    _cell(row, "num_cheque", position, optional=True),
                ]
            )
        )
    return _lines(CAISSE_COLUMNS, lines)


# ---------------------------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------------------------

# A row builder gets the stripped cells by column name and a list to append
# (column, reason) problems to; it returns the payment row (ignored if problems were added).
_RowBuilder = Callable[[dict[str, str], list[tuple[str, str]]], dict]


def _parse_csv(
    kind: str, name: str, data: bytes, columns: tuple[str, ...], build: _RowBuilder
) -> Parsed:
    if not data:
        return file_rejected(
            kind, f"file is empty: expected the header line {';'.join(columns)!r}", data
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = data.count(b"\n", 0, exc.start) + 1
        return file_rejected(
            kind,
            f"file is not valid UTF-8: byte {exc.start} ({data[exc.start : exc.start + 1]!r}) "
            f"{exc.reason} (line {bad_line}); the format requires UTF-8",
            data,
        )
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    header = lines[0].removesuffix("\r")
    names = [cell.strip() for cell in header.split(";")]
    unknown = [n for n in names if n not in columns]
    missing = [c for c in columns if c not in names]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if unknown or missing or repeated:
        problems = []
        if unknown:
            problems.append("unknown column(s) " + ", ".join(map(repr, unknown)))
        if missing:
            problems.append("missing column(s) " + ", ".join(map(repr, missing)))
        if repeated:
            problems.append("repeated column(s) " + ", ".join(map(repr, repeated)))
        return file_rejected(
            kind,
            f"header line {show(header, 200)} does not match the format: "
            + "; ".join(problems)
            + f"; expected {';'.join(columns)!r}",
            data,
        )

    rows: list[dict] = []
    quarantine: list[Rejected] = []
    first_seen: dict[str, int] = {}
    for line_no, line in enumerate(lines[1:], start=2):
        line = line.removesuffix("\r")
        if line == "":
            continue  # an empty line holds nothing (and the file ends with one)
        cells = line.split(";")
        if len(cells) != len(names):
            quarantine.append(
                Rejected(
                    f"line {line_no}",
                    f"line {line_no}: {len(cells)} fields, expected {len(names)} "
                    f"({';'.join(names)})",
                    line,
                )
            )
            continue
        values = {n: cell.strip() for n, cell in zip(names, cells)}
        problems: list[tuple[str, str]] = []
        row = build(values, problems)
        if not problems and row["payment_id"] in first_seen:
            id_column = "idop" if kind == "payfip" else "recu"
            problems.append(
                (
                    id_column,
                    (
                        f"duplicate {id_column} {values[id_column]!r} (already on line "
                        f"{first_seen[row['payment_id']]} of this file)"
                    ),
                )
            )
        if problems:
            quarantine.append(
                Rejected(
                    f"line {line_no} field {problems[0][0]}",
                    "; ".join(f"line {line_no}: {reason}" for _, reason in problems),
                    line,
                )
            )
            continue
        first_seen[row["payment_id"]] = line_no
        row["file_name"] = name
        row["line_no"] = line_no
        rows.append(row)
    tables = empty_tables(kind)
    tables["payment"] = rows
    return finish(kind, tables, quarantine)


def _cents(values: dict, column: str, problems: list) -> int | None:
    text = values[column]
    if _CENTS_RE.fullmatch(text):
        return int(text)
    problems.append(
        (
            column,
            (f"{column} {show(text)} is not a whole non-negative number of cents (digits only)"),
        )
    )
    return None


def _date(match: re.Match | None, column: str, text: str, fmt: str, problems: list):
    if match:
        day, month, year = (int(g) for g in match.groups())
        try:
            return date(year, month, day)
        except ValueError:
            pass
    problems.append((column, f"{column} {show(text)} is not a valid {fmt} date"))
    return None


def _required(values: dict, column: str, problems: list) -> str:
    if not values[column]:
        problems.append((column, f"{column} is empty (it identifies the payment)"))
    return values[column]


def _payfip_row(values: dict[str, str], problems: list[tuple[str, str]]) -> dict:
    idop = _required(values, "idop", problems)
    cents = _cents(values, "montant", problems)
    text = values["dattrans"]
    on = _date(_DDMMYYYY_RE.fullmatch(text), "dattrans", text, "DDMMYYYY", problems)
    text = values["heurtrans"]
    match = _HHMM_RE.fullmatch(text)
    at = None
    if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
        at = time(int(match.group(1)), int(match.group(2)))
    else:
        problems.append(("heurtrans", f"heurtrans {show(text)} is not a valid HHMM time"))
    result = values["resultrans"]
    if result not in PAYFIP_STATUS:
        problems.append(
            (
                "resultrans",
                (f"resultrans {show(result)} is not P (paid), R (refused) or A (abandoned)"),
            )
        )
    exer = values["exer"]
    if exer and not _YEAR_RE.fullmatch(exer):
        problems.append(("exer", f"exer {show(exer)} is not a 4-digit year"))
    if problems:
        return {}
    return {
        "payment_id": f"payfip:{idop}",
        "source": "payfip",
        "channel": "online_card",
        "status": PAYFIP_STATUS[result],
        "amount_cents": cents,
        "paid_on": on,
        "paid_at": datetime.combine(on, at, tzinfo=PARIS),
        "invoice_ref": none_if_blank(values["refdet"]),
        "payer_name": None,
        "payer_email": none_if_blank(values["mel"]),
        "operation_ref": idop,
        "auth_number": none_if_blank(values["numauto"]),
        "cheque_number": None,
        "reject_reason": None,
        "fiscal_year": int(exer) if exer else None,
    }


def _caisse_row(values: dict[str, str], problems: list[tuple[str, str]]) -> dict:
    receipt = _required(values, "recu", problems)
    text = values["date"]
    on = _date(_SLASH_DATE_RE.fullmatch(text), "date", text, "DD/MM/YYYY", problems)
    mode = values["mode"]
    if mode not in CAISSE_CHANNEL:
        problems.append(("mode", f"mode {show(mode)} is not ESPECES, CHEQUE, CESU or CB"))
    cents = _cents(values, "montant_centimes", problems)
    if problems:
        return {}
    return {
        "payment_id": f"caisse:{receipt}",
        "source": "caisse",
        "channel": CAISSE_CHANNEL[mode],
        "status": "paid",
        "amount_cents": cents,
        "paid_on": on,
        "paid_at": None,
        "invoice_ref": none_if_blank(values["num_facture"]),
        "payer_name": none_if_blank(values["payeur"]),
        "payer_email": None,
        "operation_ref": receipt,
        "auth_number": None,
        "cheque_number": none_if_blank(values["num_cheque"]),
        "reject_reason": None,
        "fiscal_year": None,
    }


def parse_payfip(name: str, data: bytes) -> Parsed:
    """Parse a PayFiP CSV file into ``payment`` rows (source ``payfip``)."""
    return _parse_csv("payfip", name, data, PAYFIP_COLUMNS, _payfip_row)


def parse_caisse(name: str, data: bytes) -> Parsed:
    """Parse a desk-receipts CSV file into ``payment`` rows (source ``caisse``)."""
    return _parse_csv("caisse", name, data, CAISSE_COLUMNS, _caisse_row)
