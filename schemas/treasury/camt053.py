"""ISO 20022 camt.053.001.02 bank-to-customer statements: writer and parser.

One ``Stmt`` per account statement, with the opening (``OPBD``, or ``PRCD``) and closing
(``CLBD``) booked balances and one ``Ntry`` per operation. How CFONB concepts are carried
(and read back):

========================  ===========================================================
operation field           camt element
========================  ===========================================================
label                     ``Ntry/AddtlNtryInf`` (not cut to 31 characters; max 500)
reference                 ``Ntry/NtryRef``
entry_number              ``Ntry/AcctSvcrRef``
interbank_code            ``Ntry/BkTxCd/Prtry/Cd`` with ``Issr`` = ``CFONB``
internal_code             ``Ntry/NtryDtls/TxDtls/BkTxCd/Prtry/Cd`` with ``Issr`` = ``BANK``
reject_code               ``TxDtls/RtrInf/Rsn/Prtry`` (read back from ``Cd`` or ``Prtry``)
detail ``RCN`` (first)    ``TxDtls/Refs/EndToEndId`` (the SEPA end-to-end reference)
detail ``REF`` (first)    ``TxDtls/Refs/Prtry`` (``Tp`` = ``REF``, ``Ref`` = text)
detail ``NPY`` (first)    ``TxDtls/RltdPties/Dbtr/Nm`` (payer name)
detail ``NBE`` (first)    ``TxDtls/RltdPties/Cdtr/Nm`` (beneficiary name)
detail ``LIB`` (each)     ``TxDtls/RmtInf/Ustrd`` (unstructured remittance information)
any other detail          ``TxDtls/AddtlTxInf``, one ``QUAL text`` line each (also a
                          mapped qualifier that repeats, is empty or is too long)
========================  ===========================================================

The account is written as a French IBAN (``FRkk`` + bank + branch + account + RIB key) when
bank and branch are 5 digits and the account 11 letters/digits, else as ``Acct/Id/Othr/Id``.
The parser reads bank and branch codes back from a French (FR/MC) IBAN; for other accounts they
are None and ``account`` is the IBAN or the other identifier.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime
from zoneinfo import ZoneInfo

from .model import (
    BANK_OPERATION_COLUMNS,
    Parsed,
    Rejected,
    SourceElement,
    Statement,
    check_root,
    check_xml_text,
    empty_tables,
    euros_text,
    file_rejected,
    finish,
    load_xml,
    locate,
    none_if_blank,
    ns_path,
    ns_text,
    parse_euros,
    show,
    xml_document,
    xml_raw,
    xml_safe_text,
)

KIND = "camt053"
NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
PARIS = ZoneInfo("Europe/Paris")

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_IBAN_RE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
# RIB key: letters of the account count as digits (A/J -> 1, B/K/S -> 2, ... I/R/Z -> 9).
_RIB_LETTERS = dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "12345678912345678923456789"))


# ---------------------------------------------------------------------------------------------
# IBAN helpers
# ---------------------------------------------------------------------------------------------


def _iban_remainder(iban: str) -> int:
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97


def iban_is_valid(iban: str) -> bool:
    """ISO 13616 check: shape and mod-97 check digits."""
    return bool(_IBAN_RE.fullmatch(iban)) and _iban_remainder(iban) == 1


def french_iban(bank_code: str, branch_code: str, account: str) -> str | None:
    """The French IBAN of a RIB (5-digit bank, 5-digit branch, 11-character account)."""
    if not (
        re.fullmatch(r"[0-9]{5}", bank_code)
        and re.fullmatch(r"[0-9]{5}", branch_code)
        and re.fullmatch(r"[0-9A-Z]{11}", account)
    ):
        return None
    account_digits = "".join(_RIB_LETTERS.get(c, c) for c in account)
    key = 97 - (89 * int(bank_code) + 15 * int(branch_code) + 3 * int(account_digits)) % 97
    bban = f"{bank_code}{branch_code}{account}{key:02d}"
    check = 98 - _iban_remainder(f"FR00{bban}")
    return f"FR{check:02d}{bban}"


# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _cdt_dbt(cents: int) -> str:
    return "DBIT" if cents < 0 else "CRDT"


def _balance(stmt_el: ET.Element, code: str, cents: int, currency: str, on: date) -> None:
    bal = _sub(stmt_el, "Bal")
    _sub(_sub(_sub(bal, "Tp"), "CdOrPrtry"), "Cd", code)
    _sub(bal, "Amt", euros_text(abs(cents)), Ccy=currency)
    _sub(bal, "CdtDbtInd", _cdt_dbt(cents))
    _sub(_sub(bal, "Dt"), "Dt", on.isoformat())


def _details_elements(details: list[tuple[str, str]]) -> dict:
    """Distribute record-05 details over the camt elements (see the module docstring)."""
    out: dict = {"RCN": None, "REF": None, "NPY": None, "NBE": None, "LIB": [], "other": []}
    limits = {"RCN": 35, "REF": 35, "NPY": 140, "NBE": 140, "LIB": 140}
    for qualifier, text in details:
        check_xml_text(qualifier, "detail qualifier")
        text = xml_safe_text(text).strip()
        fits = qualifier in limits and 0 < len(text) <= limits[qualifier]
        if fits and qualifier == "LIB":
            out["LIB"].append(text)
        elif fits and out[qualifier] is None:
            out[qualifier] = text
        else:
            out["other"].append(f"{qualifier} {text}".strip())
    return out


def _entry(stmt_el: ET.Element, op, currency: str) -> None:
    ntry = _sub(stmt_el, "Ntry")
    if op.reference:
        _sub(ntry, "NtryRef", check_xml_text(op.reference, "reference"))
    _sub(ntry, "Amt", euros_text(abs(op.amount_cents)), Ccy=currency)
    _sub(ntry, "CdtDbtInd", _cdt_dbt(op.amount_cents))
    _sub(ntry, "Sts", "BOOK")
    _sub(_sub(ntry, "BookgDt"), "Dt", op.booked_on.isoformat())
    _sub(_sub(ntry, "ValDt"), "Dt", op.value_on.isoformat())
    if op.entry_number:
        _sub(ntry, "AcctSvcrRef", check_xml_text(op.entry_number, "entry_number"))
    bk_tx_cd = _sub(ntry, "BkTxCd")
    if op.interbank_code:
        prtry = _sub(bk_tx_cd, "Prtry")
        _sub(prtry, "Cd", check_xml_text(op.interbank_code, "interbank_code"))
        _sub(prtry, "Issr", "CFONB")

    parts = _details_elements(op.details)
    tx = ET.Element("TxDtls")
    if parts["RCN"] is not None or parts["REF"] is not None:
        refs = _sub(tx, "Refs")
        if parts["RCN"] is not None:
            _sub(refs, "EndToEndId", parts["RCN"])
        if parts["REF"] is not None:
            prtry = _sub(refs, "Prtry")
            _sub(prtry, "Tp", "REF")
            _sub(prtry, "Ref", parts["REF"])
    if op.internal_code:
        prtry = _sub(_sub(tx, "BkTxCd"), "Prtry")
        _sub(prtry, "Cd", check_xml_text(op.internal_code, "internal_code"))
        _sub(prtry, "Issr", "BANK")
    if parts["NPY"] is not None or parts["NBE"] is not None:
        parties = _sub(tx, "RltdPties")
        if parts["NPY"] is not None:
            _sub(_sub(parties, "Dbtr"), "Nm", parts["NPY"])
        if parts["NBE"] is not None:
            _sub(_sub(parties, "Cdtr"), "Nm", parts["NBE"])
    if parts["LIB"]:
        rmt = _sub(tx, "RmtInf")
        for text in parts["LIB"]:
            _sub(rmt, "Ustrd", text)
    if op.reject_code:
        rsn = _sub(_sub(tx, "RtrInf"), "Rsn")
        _sub(rsn, "Prtry", check_xml_text(op.reject_code, "reject_code"))
    if parts["other"]:
        _sub(tx, "AddtlTxInf", "\n".join(parts["other"])[:500])
    if len(tx):
        _sub(ntry, "NtryDtls").append(tx)
    _sub(ntry, "AddtlNtryInf", xml_safe_text(op.label)[:500])


def write_camt053(statements: list[Statement], message_id: str, created_at: datetime) -> bytes:
    """Write statements as one camt.053.001.02 message (UTF-8 XML, default namespace)."""
    created = created_at.isoformat(timespec="seconds")
    root = ET.Element("Document", {"xmlns": NS})
    message = _sub(root, "BkToCstmrStmt")
    header = _sub(message, "GrpHdr")
    _sub(header, "MsgId", check_xml_text(message_id, "message_id"))
    _sub(header, "CreDtTm", created)
    for index, st in enumerate(statements, start=1):
        closing = st.closing_balance_cents
        if closing is None:
            closing = st.opening_balance_cents + sum(op.amount_cents for op in st.operations)
        currency = check_xml_text(st.currency, "currency")
        stmt_el = _sub(message, "Stmt")
        _sub(stmt_el, "Id", f"{st.closing_on:%Y%m%d}-{index}")
        _sub(stmt_el, "CreDtTm", created)
        acct = _sub(stmt_el, "Acct")
        acct_id = _sub(acct, "Id")
        iban = french_iban(st.bank_code, st.branch_code, st.account)
        if iban:
            _sub(acct_id, "IBAN", iban)
        else:
            _sub(_sub(acct_id, "Othr"), "Id", check_xml_text(st.account, "account"))
        _sub(acct, "Ccy", currency)
        _balance(stmt_el, "OPBD", st.opening_balance_cents, currency, st.opening_on)
        _balance(stmt_el, "CLBD", closing, currency, st.closing_on)
        for op in st.operations:
            _entry(stmt_el, op, currency)
    return xml_document(root)


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


def _q(path: str) -> str:
    return ns_path(NS, path)


def _text(element: ET.Element | None, path: str) -> str | None:
    return ns_text(element, NS, path)


_where = locate


class _Problems(list):
    """(locator, reason) pairs."""

    def add(self, locator: str, reason: str) -> None:
        self.append((locator, reason))


def _date_of(element: SourceElement | None, base: str, path: str, problems: _Problems):
    """A ``Dt``/``DtTm`` choice (e.g. ``BookgDt``) as a date, or None with a problem."""
    holder = element.find(_q(path)) if element is not None else None
    if holder is None:
        problems.add(_where(base, element, path), f"{path} is missing")
        return None
    day = _text(holder, "Dt")
    if day is not None:
        if _DATE_RE.fullmatch(day):
            try:
                return date.fromisoformat(day)
            except ValueError:
                pass
        problems.add(
            _where(base, holder, f"{path}/Dt"),
            f"{path}/Dt {show(day)} is not a valid YYYY-MM-DD date",
        )
        return None
    moment = _text(holder, "DtTm")
    if moment is not None:
        try:
            value = datetime.fromisoformat(moment)
        except ValueError:
            problems.add(
                _where(base, holder, f"{path}/DtTm"),
                f"{path}/DtTm {show(moment)} is not an ISO 8601 date-time",
            )
            return None
        if value.tzinfo is not None:
            try:
                value = value.astimezone(PARIS)
            except (OverflowError, ValueError):
                problems.add(
                    _where(base, holder, f"{path}/DtTm"),
                    f"{path}/DtTm {show(moment)} is out of the supported date range",
                )
                return None
        return value.date()
    problems.add(_where(base, holder, path), f"{path} has neither Dt nor DtTm")
    return None


def _signed_amount(
    element: SourceElement, base: str, currency: str | None, problems: _Problems
) -> int | None:
    """``Amt`` (with ``@Ccy``) and ``CdtDbtInd`` as signed cents."""
    amt = element.find(_q("Amt"))
    if amt is None:
        problems.add(_where(base, element, "Amt"), "Amt is missing")
        return None
    cents, reason = parse_euros(amt.text)
    if reason:
        problems.add(_where(base, amt, "Amt"), f"Amt: {reason}")
    ccy = amt.get("Ccy")
    if currency is not None and ccy != currency:
        problems.add(
            _where(base, amt, "Amt"),
            f"Amt currency {ccy!r} differs from the account currency {currency!r}",
        )
    indicator = _text(element, "CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        found = "missing" if indicator is None else show(indicator)
        problems.add(
            _where(base, element, "CdtDbtInd"), f"CdtDbtInd is {found}, expected CRDT or DBIT"
        )
        return None
    if cents is None:
        return None
    return -cents if indicator == "DBIT" else cents


def _balance_of(stmt: SourceElement, base: str, codes: tuple[str, ...], currency, problems):
    for code in codes:
        for index, bal in enumerate(stmt.findall(_q("Bal")), start=1):
            if _text(bal, "Tp/CdOrPrtry/Cd") == code:
                where = f"{base}/Bal[{index}]"
                before = len(problems)
                cents = _signed_amount(bal, where, currency, problems)
                on = _date_of(bal, where, "Dt", problems)
                if len(problems) > before:
                    return None
                return cents, on
    problems.add(
        _where(base, stmt),
        f"no {' or '.join(codes)} balance (found: "
        + (", ".join(_text(b, "Tp/CdOrPrtry/Cd") or "?" for b in stmt.findall(_q("Bal"))) or "none")
        + ")",
    )
    return None


def _statement_header(stmt: SourceElement, base: str) -> tuple[dict | None, _Problems]:
    problems = _Problems()
    iban = _text(stmt, "Acct/Id/IBAN")
    other = _text(stmt, "Acct/Id/Othr/Id")
    bank = branch = None
    if iban is not None:
        account = iban
        if not iban_is_valid(iban):
            problems.add(
                _where(base, stmt.find(_q("Acct/Id/IBAN")), "Acct/Id/IBAN"),
                f"IBAN {show(iban)} is malformed or its check digits do not verify",
            )
        elif iban[:2] in ("FR", "MC") and len(iban) == 27:
            bank, branch, account = iban[4:9], iban[9:14], iban[14:25]
    elif other:
        account = other
    else:
        account = None
        problems.add(_where(base, stmt, "Acct/Id"), "Acct/Id has neither IBAN nor Othr/Id")
    currency = _text(stmt, "Acct/Ccy")
    if not currency:
        amounts = stmt.findall(_q("Bal/Amt"))
        currency = amounts[0].get("Ccy") if amounts else None
    if not currency:
        problems.add(_where(base, stmt, "Acct/Ccy"), "no account currency (Acct/Ccy or Bal)")
    opening = _balance_of(stmt, base, ("OPBD", "PRCD"), currency, problems)
    closing = _balance_of(stmt, base, ("CLBD",), currency, problems)
    if problems:
        return None, problems
    return {
        "account": account,
        "bank_code": bank,
        "branch_code": branch,
        "currency": currency,
        "opening_on": opening[1],
        "opening_balance_cents": opening[0],
        "closing_on": closing[1],
        "closing_balance_cents": closing[0],
    }, problems


def _detail_lines(tx: ET.Element) -> list[str]:
    lines = []
    e2e = _text(tx, "Refs/EndToEndId")
    if e2e is not None and e2e != "NOTPROVIDED":
        lines.append(f"RCN {e2e}")
    prtry_type, prtry_ref = _text(tx, "Refs/Prtry/Tp"), _text(tx, "Refs/Prtry/Ref")
    if prtry_ref is not None:
        lines.append(f"{prtry_type or ''} {prtry_ref}".strip())
    for qualifier, path in (("NPY", "RltdPties/Dbtr/Nm"), ("NBE", "RltdPties/Cdtr/Nm")):
        name = _text(tx, path)
        if name is not None:
            lines.append(f"{qualifier} {name}".strip())
    for ustrd in tx.findall(_q("RmtInf/Ustrd")):
        lines.append(f"LIB {(ustrd.text or '').strip()}".strip())
    extra = _text(tx, "AddtlTxInf")
    if extra:
        lines += [line.strip() for line in extra.split("\n") if line.strip()]
    return lines


def _operation(ntry: SourceElement, base: str, currency: str) -> tuple[dict | None, _Problems]:
    problems = _Problems()
    status = _text(ntry, "Sts")
    if status != "BOOK":
        found = "missing" if status is None else show(status)
        problems.add(
            _where(base, ntry, "Sts"),
            f"entry status Sts is {found}: only booked (BOOK) entries are statement operations",
        )
    amount = _signed_amount(ntry, base, currency, problems)
    booked_on = _date_of(ntry, base, "BookgDt", problems)
    value_on = _date_of(ntry, base, "ValDt", problems)
    if problems:
        return None, problems
    transactions = ntry.findall(_q("NtryDtls/TxDtls"))
    internal = reject = None
    details: list[str] = []
    for tx in transactions:
        internal = internal if internal is not None else _text(tx, "BkTxCd/Prtry/Cd")
        if reject is None:
            reject = _text(tx, "RtrInf/Rsn/Cd") or _text(tx, "RtrInf/Rsn/Prtry")
        details += _detail_lines(tx)
    return {
        "booked_on": booked_on,
        "value_on": value_on,
        "amount_cents": amount,
        "label": _text(ntry, "AddtlNtryInf") or "",
        "interbank_code": _text(ntry, "BkTxCd/Prtry/Cd") or "",
        "internal_code": internal or "",
        "reject_code": none_if_blank(reject),
        "entry_number": none_if_blank(_text(ntry, "AcctSvcrRef")),
        "reference": none_if_blank(_text(ntry, "NtryRef")),
        "details": "\n".join(details) if details else None,
    }, problems


def _raw_without(data: bytes, element: SourceElement, children: list[SourceElement]) -> str:
    """Source text of ``element`` with the given children cut out (they are items of their own)."""
    pieces, pos = [], element.start
    for child in children:
        pieces.append(data[pos : child.start])
        pos = child.end
    pieces.append(data[pos : element.end])
    return b"".join(pieces).decode("utf-8", errors="backslashreplace")


def parse_camt053(name: str, data: bytes) -> Parsed:
    """Parse a camt.053.001.02 file into ``bank_statement`` and ``bank_operation`` rows."""
    root, reason = load_xml(data)
    if reason:
        return file_rejected(KIND, reason, data)
    message, reason = check_root(root, NS, "BkToCstmrStmt")
    if reason:
        return file_rejected(KIND, reason, data)
    statements = message.findall(_q("Stmt"))
    if not statements:
        return file_rejected(KIND, "BkToCstmrStmt holds no Stmt (statement) element", data)

    quarantine: list[Rejected] = []
    statement_rows: list[dict] = []
    operation_rows: list[dict] = []
    same_key_count: dict[tuple[str, date], int] = {}
    entry_index = 0
    for stmt_index, stmt in enumerate(statements, start=1):
        base = f"Stmt[{stmt_index}]"
        entries = stmt.findall(_q("Ntry"))
        header, problems = _statement_header(stmt, base)
        if header is None:
            why = "; ".join(f"{loc}: {reason}" for loc, reason in problems)
            quarantine.append(
                Rejected(
                    problems[0][0],
                    f"statement {base} is unusable: {why}",
                    _raw_without(data, stmt, entries),
                )
            )
            for entry_pos, ntry in enumerate(entries, start=1):
                entry_index += 1
                quarantine.append(
                    Rejected(
                        _where(f"{base}/Ntry[{entry_pos}]", ntry),
                        f"entry of the unusable statement {base}: {why}",
                        xml_raw(data, ntry),
                    )
                )
            continue

        if header["bank_code"] is not None:
            key = f"{header['bank_code']}-{header['branch_code']}-{header['account']}"
        else:
            key = header["account"]
        count_key = (key, header["closing_on"])
        same_key_count[count_key] = same_key_count.get(count_key, 0) + 1
        statement_id = f"{KIND}:{key}:{header['closing_on']:%Y%m%d}:{same_key_count[count_key]}"
        loaded = []
        for seq, ntry in enumerate(entries, start=1):
            entry_index += 1
            entry_base = f"{base}/Ntry[{seq}]"
            row, problems = _operation(ntry, entry_base, header["currency"])
            if row is None:
                quarantine.append(
                    Rejected(
                        problems[0][0],
                        "; ".join(f"{loc}: {reason}" for loc, reason in problems),
                        xml_raw(data, ntry),
                    )
                )
                continue
            row.update(
                operation_id=f"{statement_id}:{seq}",
                statement_id=statement_id,
                seq=seq,
                file_name=name,
                line_no=entry_index,
            )
            loaded.append({col: row[col] for col in BANK_OPERATION_COLUMNS})
        operation_rows += loaded
        statement_rows.append(
            {
                "statement_id": statement_id,
                "format": KIND,
                **header,
                "operations_total_cents": sum(r["amount_cents"] for r in loaded),
                "operations_count": len(loaded),
                "file_name": name,
                "line_no": stmt_index,
            }
        )

    tables = empty_tables(KIND)
    tables["bank_statement"] = statement_rows
    tables["bank_operation"] = operation_rows
    return finish(KIND, tables, quarantine)
