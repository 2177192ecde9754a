"""CFONB 120 bank statements ("relevé de compte 120 caractères"): writer and parser.

Records (positions 1-based, inclusive), all 120 characters, Latin-1:

* ``01`` old balance and ``07`` new balance: code 1-2, bank 3-7, branch 12-16, currency
  17-19, decimals 20, account 22-32, balance date DDMMYY 35-40, balance 91-104.
* ``04`` operation: the same identity fields, plus internal operation code 8-11, interbank
  operation code 33-34, booking date 35-40, reject code 41-42, value date 43-48, label 49-79,
  entry number 82-88, amount 91-104, reference 105-120.
* ``05`` operation detail (belongs to the preceding 04): identity fields, qualifier 46-48,
  detail text 49-118.

An amount is 14 characters: 13 digits then one character carrying the sign and the last digit
(``{``, ``A``-``I`` = positive 0-9; ``}``, ``J``-``R`` = negative 0-9), in units of
10^-decimals (decimals = position 20, "2" for euros).

See docs/treasury-formats.md for the mapping to canonical rows and every quarantine reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from .model import (
    BANK_OPERATION_COLUMNS,
    BankOperation,
    Parsed,
    Rejected,
    Statement,
    empty_tables,
    file_rejected,
    finish,
    none_if_blank,
    show,
)

KIND = "cfonb120"
RECORD_LENGTH = 120
MAX_AMOUNT = 10**14 - 1  # 14 digits: 13 plain ones and the one carried by the sign character

_POSITIVE = "{ABCDEFGHI"
_NEGATIVE = "}JKLMNOPQR"
_SIGN_DIGIT = {c: (1, i) for i, c in enumerate(_POSITIVE)} | {
    c: (-1, i) for i, c in enumerate(_NEGATIVE)
}
_DIGITS13 = re.compile(r"[0-9]{13}")
_DIGITS6 = re.compile(r"[0-9]{6}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

# Characters outside Latin-1 that commonly appear in French labels, and their Latin-1 spelling.
_TRANSLITERATION = {
    "œ": "oe",
    "Œ": "OE",
    "€": "EUR",
    "‘": "'",
    "’": "'",
    "‚": ",",
    "“": '"',
    "”": '"',
    "„": '"',
    "–": "-",
    "—": "-",
    "…": "...",
    "\u202f": " ",
    "\u2009": " ",
}


# ---------------------------------------------------------------------------------------------
# Amounts and dates
# ---------------------------------------------------------------------------------------------


def encode_amount(cents: int) -> str:
    """Signed cents as the 14-character CFONB amount (last character = sign + last digit).

    >>> encode_amount(1234)
    '0000000000123D'
    >>> encode_amount(-1230)
    '0000000000123}'
    """
    if not isinstance(cents, int) or isinstance(cents, bool):
        raise TypeError(f"amount must be an int number of cents, got {cents!r}")
    if abs(cents) > MAX_AMOUNT:
        raise ValueError(f"amount {cents} does not fit in 14 CFONB digits (max {MAX_AMOUNT})")
    digits = f"{abs(cents):014d}"
    signs = _NEGATIVE if cents < 0 else _POSITIVE
    return digits[:13] + signs[int(digits[13])]


def decode_amount(s: str) -> int:
    """The 14-character CFONB amount as signed units (cents when decimals = 2).

    Raises ``ValueError`` with a precise message when ``s`` is not 13 ASCII digits followed
    by a sign character.
    """
    if len(s) != 14:
        raise ValueError(f"amount {s!r} is {len(s)} characters long, expected 14")
    head, last = s[:13], s[13]
    if not _DIGITS13.fullmatch(head):
        raise ValueError(f"amount {s!r}: the first 13 characters must be digits")
    if last not in _SIGN_DIGIT:
        raise ValueError(
            f"amount {s!r}: last character {last!r} is not a sign character "
            "('{', A-I positive; '}', J-R negative)"
        )
    sign, digit = _SIGN_DIGIT[last]
    return sign * (int(head) * 10 + digit)


def _encode_date(value: date, what: str) -> str:
    if not isinstance(value, date):
        raise TypeError(f"{what} must be a date, got {value!r}")
    if not 1980 <= value.year <= 2079:
        raise ValueError(f"{what} {value} cannot be written as DDMMYY (years 1980-2079)")
    return value.strftime("%d%m%y")


def _decode_date(s: str) -> date | None:
    """DDMMYY -> date, years 00-79 -> 20xx and 80-99 -> 19xx; None when invalid."""
    if not _DIGITS6.fullmatch(s):
        return None
    day, month, year = int(s[0:2]), int(s[2:4]), int(s[4:6])
    year += 2000 if year < 80 else 1900
    try:
        return date(year, month, day)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------


def _free_text(value: str, width: int) -> str:
    """Free text (label, detail) made Latin-1, without control characters, cut to ``width``."""
    if not isinstance(value, str):
        raise TypeError(f"text field must be a str, got {value!r}")
    out = []
    for char in value:
        char = _TRANSLITERATION.get(char, char)
        if len(char) == 1:
            code = ord(char)
            if code < 0x20 or 0x7F <= code < 0xA0:
                char = " "
            elif code > 0xFF:
                char = "?"
        out.append(char)
    return "".join(out)[:width].ljust(width)


def _fixed(value: str, width: int, what: str) -> str:
    """A code or identifier: must fit ``width`` in printable Latin-1; left-aligned, padded."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {value!r}")
    if len(value) > width:
        raise ValueError(f"{what} {value!r} is longer than its {width}-character CFONB field")
    for char in value:
        code = ord(char)
        if code < 0x20 or 0x7F <= code < 0xA0 or code > 0xFF:
            raise ValueError(f"{what} {value!r} contains {char!r}, not printable Latin-1")
    return value.ljust(width)


@dataclass
class _Identity:
    bank: str
    branch: str
    currency: str
    account: str


def _identity(st: Statement) -> _Identity:
    return _Identity(
        bank=_fixed(st.bank_code, 5, "bank_code"),
        branch=_fixed(st.branch_code, 5, "branch_code"),
        currency=_fixed(st.currency, 3, "currency"),
        account=_fixed(st.account, 11, "account"),
    )


def _balance_record(code: str, ident: _Identity, on: date, cents: int) -> str:
    return (
        code
        + ident.bank
        + " " * 4
        + ident.branch
        + ident.currency
        + "2"
        + " "
        + ident.account
        + " " * 2
        + _encode_date(on, "balance date")
        + " " * 50
        + encode_amount(cents)
        + " " * 16
    )


def _operation_prefix(code: str, ident: _Identity, op: BankOperation) -> str:
    """Positions 1-40 shared by a 04 and its 05 records."""
    return (
        code
        + ident.bank
        + _fixed(op.internal_code, 4, "internal_code")
        + ident.branch
        + ident.currency
        + "2"
        + " "
        + ident.account
        + _fixed(op.interbank_code, 2, "interbank_code")
        + _encode_date(op.booked_on, "booked_on")
    )


def _operation_record(ident: _Identity, op: BankOperation) -> str:
    return (
        _operation_prefix("04", ident, op)
        + _fixed(op.reject_code, 2, "reject_code")
        + _encode_date(op.value_on, "value_on")
        + _free_text(op.label, 31)
        + " " * 2
        + _fixed(op.entry_number, 7, "entry_number")
        + " " * 2
        + encode_amount(op.amount_cents)
        + _fixed(op.reference, 16, "reference")
    )


def _detail_record(ident: _Identity, op: BankOperation, qualifier: str, text: str) -> str:
    return (
        _operation_prefix("05", ident, op)
        + " " * 5
        + _fixed(qualifier, 3, "detail qualifier")
        + _free_text(text, 70)
        + " " * 2
    )


def write_cfonb(statements: list[Statement], line_ending: str = "\r\n") -> bytes:
    """Write statements as a CFONB 120 file (Latin-1, records 01/04/05/07).

    Several statements, even of several accounts, go one after the other. Every record is
    followed by ``line_ending`` ("\\r\\n", "\\n", or "" for a file without line breaks).
    Labels and detail texts are made Latin-1 (common typographic characters transliterated,
    others replaced by "?", control characters by spaces) and cut to 31 / 70 characters;
    codes and identifiers that do not fit their field raise ``ValueError``.
    """
    if line_ending not in ("\r\n", "\n", ""):
        raise ValueError(f"line_ending must be '\\r\\n', '\\n' or '', got {line_ending!r}")
    records: list[str] = []
    for st in statements:
        ident = _identity(st)
        closing = st.closing_balance_cents
        if closing is None:
            closing = st.opening_balance_cents + sum(op.amount_cents for op in st.operations)
        records.append(_balance_record("01", ident, st.opening_on, st.opening_balance_cents))
        for op in st.operations:
            records.append(_operation_record(ident, op))
            for qualifier, text in op.details:
                records.append(_detail_record(ident, op, qualifier, text))
        records.append(_balance_record("07", ident, st.closing_on, closing))
    for record in records:  # a writer bug must never produce a misaligned file
        assert len(record) == RECORD_LENGTH, (len(record), record)
    return "".join(record + line_ending for record in records).encode("latin-1")


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


@dataclass
class _Record:
    line_no: int
    text: str

    def field(self, first: int, last: int) -> str:
        return self.text[first - 1 : last]


@dataclass
class _Problem:
    locator: str
    reason: str


@dataclass
class _Operation:
    records: list[_Record]

    @property
    def line_no(self) -> int:
        return self.records[0].line_no

    @property
    def raw(self) -> str:
        return "\n".join(r.text for r in self.records)


@dataclass
class _Statement:
    opening: _Record
    operations: list[_Operation] = field(default_factory=list)
    closing: _Record | None = None
    end_note: str = ""  # why the statement ended without 07 (for the reason)


def _split_records(text: str) -> list[_Record]:
    """Physical records with 1-based line numbers; empty lines hold nothing and are skipped."""
    body = text
    for ending in ("\r\n", "\n", "\r"):
        if body.endswith(ending):
            body = body[: -len(ending)]
            break
    if _LINE_BREAK.search(body) is None:
        # No line breaks: the records follow each other, one every 120 characters.
        return [
            _Record(i + 1, body[pos : pos + RECORD_LENGTH])
            for i, pos in enumerate(range(0, len(body), RECORD_LENGTH))
        ]
    return [_Record(i + 1, line) for i, line in enumerate(_LINE_BREAK.split(body)) if line != ""]


def _length_problem(rec: _Record) -> _Problem | None:
    size = len(rec.text)
    if size == RECORD_LENGTH:
        return None
    kind = "truncated" if size < RECORD_LENGTH else "overlong"
    return _Problem(
        f"line {rec.line_no}",
        f"line {rec.line_no}: {kind} record of {size} characters, expected {RECORD_LENGTH}",
    )


def _col(rec: _Record, first: int, last: int) -> str:
    return f"line {rec.line_no} col {first}-{last}"


@dataclass
class _Header:
    bank: str
    branch: str
    currency: str
    decimals: int | None
    account: str


_IDENTITY_FIELDS = (
    ("bank", "bank code", 3, 7),
    ("branch", "branch code", 12, 16),
    ("currency", "currency", 17, 19),
    ("account", "account", 22, 32),
)


def _header(rec: _Record, problems: list[_Problem]) -> _Header:
    decimals_text = rec.field(20, 20)
    decimals = "0123456789".find(decimals_text) if len(decimals_text) == 1 else -1
    if decimals < 0:
        problems.append(
            _Problem(
                _col(rec, 20, 20),
                f"line {rec.line_no} col 20: number of decimals {show(decimals_text)} "
                "is not a digit",
            )
        )
    return _Header(
        bank=rec.field(3, 7).strip(),
        branch=rec.field(12, 16).strip(),
        currency=rec.field(17, 19),
        decimals=decimals if decimals >= 0 else None,
        account=rec.field(22, 32).strip(),
    )


def _date_field(rec: _Record, first: int, what: str, problems: list[_Problem]) -> date | None:
    text = rec.field(first, first + 5)
    value = _decode_date(text)
    if value is None:
        problems.append(
            _Problem(
                _col(rec, first, first + 5),
                f"line {rec.line_no} col {first}-{first + 5}: {what} {show(text)} is not a "
                "valid DDMMYY date",
            )
        )
    return value


def _amount_field(
    rec: _Record, decimals: int | None, what: str, problems: list[_Problem]
) -> int | None:
    text = rec.field(91, 104)
    try:
        units = decode_amount(text)
    except ValueError as exc:
        problems.append(_Problem(_col(rec, 91, 104), f"line {rec.line_no} col 91-104: {exc}"))
        return None
    if decimals is None:
        return None
    if decimals <= 2:
        return units * 10 ** (2 - decimals)
    factor = 10 ** (decimals - 2)
    if units % factor:
        problems.append(
            _Problem(
                _col(rec, 91, 104),
                f"line {rec.line_no} col 91-104: {what} {text!r} with {decimals} decimals "
                "is not a whole number of cents",
            )
        )
        return None
    return units // factor


def _identity_problems(rec: _Record, header: _Header, reference: _Header, ref_line: int):
    problems = []
    for attr, label, first, last in _IDENTITY_FIELDS:
        found, expected = getattr(header, attr), getattr(reference, attr)
        if found != expected:
            problems.append(
                _Problem(
                    _col(rec, first, last),
                    f"line {rec.line_no} col {first}-{last}: {label} {found!r} does not "
                    f"match the statement's {expected!r} (record 01 at line {ref_line})",
                )
            )
    return problems


@dataclass
class _Balance:
    header: _Header
    on: date
    cents: int


def _parse_balance(rec: _Record, what: str) -> tuple[_Balance | None, list[_Problem]]:
    problem = _length_problem(rec)
    if problem:
        return None, [problem]
    problems: list[_Problem] = []
    header = _header(rec, problems)
    if not _CURRENCY.fullmatch(header.currency):
        problems.append(
            _Problem(
                _col(rec, 17, 19),
                f"line {rec.line_no} col 17-19: currency {show(header.currency)} is not a "
                "3-letter ISO code",
            )
        )
    on = _date_field(rec, 35, f"{what} date", problems)
    cents = _amount_field(rec, header.decimals, what, problems)
    if problems:
        return None, problems
    return _Balance(header, on, cents), []


def _parse_operation(
    op: _Operation, opening: _Balance, opening_line: int
) -> tuple[dict | None, list[_Problem]]:
    rec = op.records[0]
    problem = _length_problem(rec)
    problems: list[_Problem] = [problem] if problem else []
    row: dict = {}
    if not problem:
        header = _header(rec, problems)
        problems += _identity_problems(rec, header, opening.header, opening_line)
        row["booked_on"] = _date_field(rec, 35, "booking date", problems)
        row["value_on"] = _date_field(rec, 43, "value date", problems)
        row["amount_cents"] = _amount_field(rec, header.decimals, "amount", problems)
        row["label"] = rec.field(49, 79).strip()
        row["interbank_code"] = rec.field(33, 34).strip()
        row["internal_code"] = rec.field(8, 11).strip()
        row["reject_code"] = none_if_blank(rec.field(41, 42))
        row["entry_number"] = none_if_blank(rec.field(82, 88))
        row["reference"] = none_if_blank(rec.field(105, 120))
    details = []
    for detail in op.records[1:]:
        problem = _length_problem(detail)
        if problem:
            problems.append(problem)
            continue
        header = _header(detail, problems)
        problems += _identity_problems(detail, header, opening.header, opening_line)
        qualifier = detail.field(46, 48).strip()
        text = detail.field(49, 118).rstrip()
        details.append(f"{qualifier} {text}".strip() if qualifier else text.strip())
    if problems:
        return None, problems
    row["details"] = "\n".join(details) if op.records[1:] else None
    return row, []


def _locator_on(problems: list[_Problem], line_no: int) -> str:
    """The first problem's locator if it is on ``line_no``, else just that line."""
    for problem in problems:
        if problem.locator == f"line {line_no}" or problem.locator.startswith(f"line {line_no} "):
            return problem.locator
    return f"line {line_no}"


def _statement_key(header: _Header) -> str:
    return f"{header.bank}-{header.branch}-{header.account}"


def parse_cfonb(name: str, data: bytes) -> Parsed:
    """Parse a CFONB 120 file into ``bank_statement`` and ``bank_operation`` rows.

    Never raises on bad input: every record ends up in a loaded row or in the quarantine.
    """
    text = data.decode("latin-1")  # every byte is a Latin-1 character: this cannot fail
    records = _split_records(text)
    if not records:
        return file_rejected(KIND, "file holds no CFONB record (it is empty)", data, "latin-1")

    quarantine: list[tuple[int, Rejected]] = []  # (first line, item), sorted at the end

    # 1. Items: an operation is a 04 with the 05 records that follow it.
    items: list[tuple[str, object]] = []
    current: _Operation | None = None
    for rec in records:
        code = rec.text[:2]
        if code == "05" and current is not None:
            current.records.append(rec)
            continue
        current = None
        if code == "04":
            current = _Operation([rec])
            items.append(("04", current))
        elif code in ("01", "07"):
            items.append((code, rec))
        elif code == "05":
            reason = f"line {rec.line_no}: detail record 05 without a preceding operation record 04"
            items.append(("bad", (rec.line_no, Rejected(f"line {rec.line_no}", reason, rec.text))))
        else:
            reason = (
                f"line {rec.line_no} col 1-2: unknown record code {show(code)} "
                "(expected 01, 04, 05 or 07)"
            )
            length = _length_problem(rec)
            if length:
                reason += f"; {length.reason}"
            items.append(("bad", (rec.line_no, Rejected(_col(rec, 1, 2), reason, rec.text))))

    # 2. Statements: 01, its operations, 07.
    statements: list[_Statement] = []
    open_stmt: _Statement | None = None
    for code, item in items:
        if code == "01":
            if open_stmt is not None:
                open_stmt.end_note = f"a new statement starts at line {item.line_no}"
                statements.append(open_stmt)
            open_stmt = _Statement(opening=item)
        elif code == "04":
            if open_stmt is None:
                reason = (
                    f"line {item.line_no}: operation record 04 outside a statement (no open "
                    "01 record before it)"
                )
                quarantine.append(
                    (item.line_no, Rejected(f"line {item.line_no}", reason, item.raw))
                )
            else:
                open_stmt.operations.append(item)
        elif code == "07":
            if open_stmt is None:
                reason = (
                    f"line {item.line_no}: new-balance record 07 without an open statement "
                    "(no 01 record before it)"
                )
                quarantine.append(
                    (item.line_no, Rejected(f"line {item.line_no}", reason, item.text))
                )
            else:
                open_stmt.closing = item
                statements.append(open_stmt)
                open_stmt = None
        else:
            quarantine.append(item)
    if open_stmt is not None:
        open_stmt.end_note = "the file ends"
        statements.append(open_stmt)

    # 3. Validate statements and operations; build rows.
    statement_rows: list[dict] = []
    operation_rows: list[dict] = []
    same_key_count: dict[tuple[str, date], int] = {}
    for stmt in statements:
        opening_line = stmt.opening.line_no
        opening, problems = _parse_balance(stmt.opening, "old balance")
        closing = None
        if stmt.closing is None:
            problems.append(
                _Problem(
                    f"line {opening_line}",
                    f"no closing 07 record ({stmt.end_note} before one)",
                )
            )
        else:
            closing, closing_problems = _parse_balance(stmt.closing, "new balance")
            if closing is not None and opening is not None:
                closing_problems = _identity_problems(
                    stmt.closing, closing.header, opening.header, opening_line
                )
                if closing_problems:
                    closing = None
            problems += closing_problems
        if opening is None or closing is None:
            why = "; ".join(p.reason for p in problems)
            stmt_note = f"the statement opened at line {opening_line} is unusable: {why}"
            quarantine.append(
                (
                    opening_line,
                    Rejected(_locator_on(problems, opening_line), stmt_note, stmt.opening.text),
                )
            )
            for op in stmt.operations:
                quarantine.append(
                    (
                        op.line_no,
                        Rejected(
                            f"line {op.line_no}",
                            f"operation of the statement opened at line {opening_line}, which "
                            f"is unusable: {why}",
                            op.raw,
                        ),
                    )
                )
            if stmt.closing is not None:
                closing_line = stmt.closing.line_no
                quarantine.append(
                    (
                        closing_line,
                        Rejected(
                            _locator_on(problems, closing_line),
                            f"new-balance record of the statement opened at line "
                            f"{opening_line}, which is unusable: {why}",
                            stmt.closing.text,
                        ),
                    )
                )
            continue

        key = (_statement_key(opening.header), closing.on)
        same_key_count[key] = same_key_count.get(key, 0) + 1
        statement_id = f"{KIND}:{key[0]}:{closing.on:%Y%m%d}:{same_key_count[key]}"
        loaded = []
        for seq, op in enumerate(stmt.operations, start=1):
            row, op_problems = _parse_operation(op, opening, opening_line)
            if op_problems:
                quarantine.append(
                    (
                        op.line_no,
                        Rejected(
                            op_problems[0].locator,
                            "; ".join(p.reason for p in op_problems),
                            op.raw,
                        ),
                    )
                )
                continue
            loaded.append(
                {
                    "operation_id": f"{statement_id}:{seq}",
                    "statement_id": statement_id,
                    "seq": seq,
                    **row,
                    "file_name": name,
                    "line_no": op.line_no,
                }
            )
        operation_rows += loaded
        statement_rows.append(
            {
                "statement_id": statement_id,
                "format": KIND,
                "account": opening.header.account,
                "bank_code": opening.header.bank,
                "branch_code": opening.header.branch,
                "currency": opening.header.currency,
                "opening_on": opening.on,
                "opening_balance_cents": opening.cents,
                "closing_on": closing.on,
                "closing_balance_cents": closing.cents,
                "operations_total_cents": sum(r["amount_cents"] for r in loaded),
                "operations_count": len(loaded),
                "file_name": name,
                "line_no": opening_line,
            }
        )

    tables = empty_tables(KIND)
    tables["bank_statement"] = statement_rows
    tables["bank_operation"] = [_ordered_operation(r) for r in operation_rows]
    ordered = [item for _, item in sorted(quarantine, key=lambda pair: pair[0])]
    return finish(KIND, tables, ordered)


def _ordered_operation(row: dict) -> dict:
    return {key: row[key] for key in BANK_OPERATION_COLUMNS}
