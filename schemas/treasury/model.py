"""Data model shared by the treasury (payment office) parsers and writers.

The dataclasses ``BankOperation`` and ``Statement`` are what the writers take (the simulated
town builds them); ``Parsed`` / ``Rejected`` are what every parser returns. The column tuples
list the canonical warehouse columns each parser fills, and ``is_balanced`` tells whether a
``bank_statement`` row adds up.

The module also holds the few helpers the format modules share: building the "whole file is
unusable" result, strict text helpers, and a small XML loader that remembers where each element
was in the source bytes (so that a quarantined XML item keeps its exact raw text and line).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from xml.parsers import expat

# ---------------------------------------------------------------------------------------------
# Pinned dataclasses
# ---------------------------------------------------------------------------------------------


@dataclass
class BankOperation:
    booked_on: date
    value_on: date
    amount_cents: int  # signed: credit > 0, debit < 0
    label: str  # free label, truncated/padded to the 31-char CFONB field
    interbank_code: str = "05"  # 2 chars (CFONB positions 33-34)
    internal_code: str = "0000"  # 4 chars (positions 8-11)
    reference: str = ""  # 16 chars (105-120)
    entry_number: str = ""  # 7 chars (82-88)
    reject_code: str = ""  # 2 chars (41-42)
    # record 05: (qualifier e.g. "LIB"/"NPY"/"RCN"/"REF", text)
    details: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Statement:
    account: str  # 11 chars
    bank_code: str  # 5 digits
    branch_code: str  # 5 digits
    opening_on: date
    opening_balance_cents: int
    closing_on: date
    operations: list[BankOperation]
    currency: str = "EUR"
    # None = opening + sum(operations); set it to write an unbalanced statement
    closing_balance_cents: int | None = None


@dataclass
class Rejected:  # one quarantined source item
    locator: str  # precise place: "line 12", "line 12 col 91-104", "Ntry[3]/Amt", "header"...
    reason: str  # precise English reason (what was wrong, expected vs found)
    raw: str  # the raw text of the item (line, or XML fragment), never dropped


@dataclass
class Parsed:
    kind: str  # "cfonb120" | "camt053" | "pain002" | "payfip" | "caisse"
    tables: dict[str, list[dict]]  # warehouse table name -> canonical rows
    quarantine: list[Rejected]
    # source items considered; MUST equal len(primary table rows) + len(quarantine)
    rows_read: int


# ---------------------------------------------------------------------------------------------
# Canonical columns (the loader adds ``town`` itself)
# ---------------------------------------------------------------------------------------------

PAYMENT_COLUMNS: tuple[str, ...] = (
    "payment_id",
    "source",
    "channel",
    "status",
    "amount_cents",
    "paid_on",
    "paid_at",
    "invoice_ref",
    "payer_name",
    "payer_email",
    "operation_ref",
    "auth_number",
    "cheque_number",
    "reject_reason",
    "fiscal_year",
    "file_name",
    "line_no",
)

BANK_STATEMENT_COLUMNS: tuple[str, ...] = (
    "statement_id",
    "format",
    "account",
    "bank_code",
    "branch_code",
    "currency",
    "opening_on",
    "opening_balance_cents",
    "closing_on",
    "closing_balance_cents",
    "operations_total_cents",
    "operations_count",
    "file_name",
    "line_no",
)

BANK_OPERATION_COLUMNS: tuple[str, ...] = (
    "operation_id",
    "statement_id",
    "seq",
    "booked_on",
    "value_on",
    "amount_cents",
    "label",
    "interbank_code",
    "internal_code",
    "reject_code",
    "entry_number",
    "reference",
    "details",
    "file_name",
    "line_no",
)

#: The table whose rows are the "items" of each kind (rows_read = len(primary) + quarantine).
PRIMARY_TABLE: dict[str, str] = {
    "cfonb120": "bank_operation",
    "camt053": "bank_operation",
    "pain002": "payment",
    "payfip": "payment",
    "caisse": "payment",
}


def is_balanced(row: dict) -> bool:
    """True when a ``bank_statement`` row adds up: closing - opening == sum of its operations.

    An unbalanced statement is still loaded (it is a reconciliation finding, not a parse
    error); an operation quarantined out of a statement makes it unbalanced on purpose.
    """
    return (
        row["closing_balance_cents"] - row["opening_balance_cents"] == row["operations_total_cents"]
    )


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def empty_tables(kind: str) -> dict[str, list[dict]]:
    """The tables a parser of ``kind`` always returns (possibly empty)."""
    if kind in ("cfonb120", "camt053"):
        return {"bank_statement": [], "bank_operation": []}
    if kind in ("pain002", "payfip", "caisse"):
        return {"payment": []}
    return {}


def raw_text(data: bytes, encoding: str = "utf-8") -> str:
    """The bytes as text for a quarantine ``raw``, losslessly (undecodable bytes escaped)."""
    return data.decode(encoding, errors="backslashreplace")


def file_rejected(kind: str, reason: str, data: bytes, encoding: str = "utf-8") -> Parsed:
    """The result for a file that cannot be read at all: no rows, one item "file"."""
    return Parsed(
        kind=kind,
        tables=empty_tables(kind),
        quarantine=[Rejected("file", reason, raw_text(data, encoding))],
        rows_read=1,
    )


def finish(kind: str, tables: dict[str, list[dict]], quarantine: list[Rejected]) -> Parsed:
    """Build a ``Parsed`` whose ``rows_read`` counts the primary rows and the quarantine."""
    primary = PRIMARY_TABLE[kind]
    return Parsed(
        kind=kind,
        tables=tables,
        quarantine=quarantine,
        rows_read=len(tables[primary]) + len(quarantine),
    )


def none_if_blank(value: str | None) -> str | None:
    """Strip a text value; "" (or None) becomes None."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def show(value: str, limit: int = 60) -> str:
    """A value quoted for a reason message (shortened when very long)."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return repr(value)


_XML_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe_text(value: str) -> str:
    """Free text made writable in XML 1.0: characters XML forbids become spaces."""
    return _XML_FORBIDDEN.sub(" ", value)


def check_xml_text(value: str, what: str) -> str:
    """An identifier for XML: refuse characters XML 1.0 cannot carry (instead of altering)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if _XML_FORBIDDEN.search(value):
        raise ValueError(f"{what} {value!r} contains a character XML 1.0 cannot carry")
    return value


def euros_text(cents: int) -> str:
    """Non-negative integer cents as an ISO 20022 amount in euros: 1250 -> "12.50"."""
    if cents < 0:
        raise ValueError(f"ISO 20022 amounts are non-negative, got {cents} cents")
    return f"{cents // 100}.{cents % 100:02d}"


_AMOUNT_RE = re.compile(r"[0-9]{1,18}(\.[0-9]{1,17})?")


def parse_euros(text: str | None) -> tuple[int | None, str | None]:
    """ISO 20022 amount text ("12.50") -> (cents, None), or (None, reason)."""
    if text is None or not text.strip():
        return None, "amount is empty"
    value = text.strip()
    if not _AMOUNT_RE.fullmatch(value):
        return None, f"amount {show(value)} is not a non-negative decimal number like 12.50"
    try:
        cents = Decimal(value) * 100
    except InvalidOperation:  # pragma: no cover - the regex already guarantees a decimal
        return None, f"amount {show(value)} is not a decimal number"
    if cents != cents.to_integral_value():
        return None, f"amount {show(value)} has more than 2 decimals (sub-cent amount)"
    return int(cents), None


# ---------------------------------------------------------------------------------------------
# XML loading with source positions
# ---------------------------------------------------------------------------------------------


class SourceElement(ET.Element):
    """An ``Element`` that remembers its place in the source bytes.

    Attributes set by ``load_xml``: ``line`` (1-based line of the start tag), ``start`` and
    ``end`` (byte offsets of the element's text in the source, end exclusive).
    """

    line: int = 0
    start: int = 0
    end: int = 0


def xml_document(root: ET.Element) -> bytes:
    """An indented UTF-8 document with its declaration, as the writers deliver it."""
    ET.indent(root)
    body = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n"


def ns_path(ns: str, path: str) -> str:
    """'Acct/Id/IBAN' -> the ElementTree path in namespace ``ns``."""
    return "/".join(f"{{{ns}}}{part}" for part in path.split("/"))


def ns_text(element: ET.Element | None, ns: str, path: str) -> str | None:
    """The stripped text at ``path`` under ``element``, or None when absent."""
    found = element.find(ns_path(ns, path)) if element is not None else None
    if found is None:
        return None
    return (found.text or "").strip()


def locate(base: str, element: SourceElement | None, path: str = "") -> str:
    """A quarantine locator: the element path, with its source line when known."""
    locator = f"{base}/{path}" if path else base
    if element is not None and element.line:
        locator += f" (line {element.line})"
    return locator


class _DtdForbidden(Exception):
    pass


_DECLARED_ENCODING = re.compile(
    r"\A\ufeff?\s*<\?xml[^>]*?\bencoding\s*=\s*[\"']([^\"']*)[\"']", re.DOTALL
)


def _tag_end(data: bytes, index: int) -> int:
    """Offset just past the tag starting at ``index`` (quote-aware scan for '>')."""
    quote = 0
    for pos in range(index, len(data)):
        char = data[pos]
        if quote:
            if char == quote:
                quote = 0
        elif char in (0x22, 0x27):  # " or '
            quote = char
        elif char == 0x3E:  # >
            return pos + 1
    return len(data)  # pragma: no cover - expat only reports complete tags


def load_xml(data: bytes) -> tuple[SourceElement | None, str | None]:
    """Parse UTF-8 XML bytes into a tree of ``SourceElement``: (root, None) or (None, reason).

    Refuses, with a precise reason: bytes that are not UTF-8, a declared encoding other than
    UTF-8, any document type declaration (no DTD, hence no entity expansion), and anything
    that is not well-formed.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, (
            f"file is not valid UTF-8: byte {exc.start} ({data[exc.start : exc.start + 1]!r}) "
            f"{exc.reason}; the format requires UTF-8"
        )
    declared = _DECLARED_ENCODING.match(text[:400])
    if declared and declared.group(1).strip().lower() not in ("utf-8", "utf8"):
        return None, (
            f"XML declaration says encoding={declared.group(1)!r}; the format requires UTF-8"
        )

    parser = expat.ParserCreate("UTF-8", "}")
    builder = ET.TreeBuilder(element_factory=SourceElement)

    def qualified(name: str) -> str:
        return "{" + name if "}" in name else name

    def on_start(name: str, attrs: dict[str, str]) -> None:
        element = builder.start(qualified(name), {qualified(k): v for k, v in attrs.items()})
        element.line = parser.CurrentLineNumber
        element.start = parser.CurrentByteIndex

    def on_end(name: str) -> None:
        element = builder.end(qualified(name))
        element.end = _tag_end(data, parser.CurrentByteIndex)

    def on_doctype(*_args: object) -> None:
        raise _DtdForbidden

    parser.StartElementHandler = on_start
    parser.EndElementHandler = on_end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = on_doctype
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except _DtdForbidden:
        return None, (
            f"document type declaration at line {parser.CurrentLineNumber}: DTDs and "
            "entities are not accepted in payment files"
        )
    except expat.ExpatError as exc:
        return None, (
            f"invalid XML: {expat.ErrorString(exc.code)} at line {exc.lineno}, "
            f"column {exc.offset + 1}"
        )
    return builder.close(), None


def local_name(tag: str) -> str:
    """``{namespace}Name`` -> ``Name``."""
    return tag.rsplit("}", 1)[-1]


def namespace_of(tag: str) -> str:
    """``{namespace}Name`` -> ``namespace`` ("" when the tag has none)."""
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def xml_raw(data: bytes, element: SourceElement) -> str:
    """The exact source text of an element."""
    return data[element.start : element.end].decode("utf-8", errors="backslashreplace")


def check_root(
    root: SourceElement, namespace: str, message_tag: str
) -> tuple[SourceElement | None, str | None]:
    """Check ``Document`` in ``namespace`` with one ``message_tag`` child; return that child."""
    expected = f"{{{namespace}}}Document"
    if root.tag != expected:
        found_ns = namespace_of(root.tag) or "no namespace"
        return None, (
            f"root element is {local_name(root.tag)!r} in {found_ns!r}; expected 'Document' "
            f"in namespace {namespace!r}"
        )
    message = root.find(f"{{{namespace}}}{message_tag}")
    if message is None:
        return None, f"Document has no {message_tag} element"
    return message, None
