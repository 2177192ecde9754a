"""ISO 20022 pain.002.001.03 direct-debit status reports: writer and parser.

The report answers a direct-debit collection message (pain.008): for every transaction,
``OrgnlEndToEndId`` (= the invoice number), ``TxSts`` ``ACSC`` (settled) or ``RJCT``
(rejected, with ``StsRsnInf/Rsn/Cd``), and ``OrgnlTxRef/Amt/InstdAmt`` in euros, with the
requested collection date ``OrgnlTxRef/ReqdColltnDt`` when known.

One ``payment`` row per ``TxInfAndSts`` (source ``prlv``, channel ``direct_debit``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime
from zoneinfo import ZoneInfo

from .model import (
    Parsed,
    Rejected,
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
)

KIND = "pain002"
NS = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"
PARIS = ZoneInfo("Europe/Paris")
STATUSES = {"ACSC": "paid", "RJCT": "rejected"}

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def write_pain002(
    message_id: str,
    created_at: datetime,
    original_message_id: str,
    transactions: list[dict],
) -> bytes:
    """Write a pain.002.001.03 status report (UTF-8 XML, default namespace).

    Each transaction: ``end_to_end_id``, ``amount_cents``, ``status`` ("ACSC" | "RJCT"),
    ``reason`` (str or None), optional ``collection_date``. Consecutive transactions with the
    same collection date share one ``OrgnlPmtInfAndSts`` block (as in the original pain.008,
    where the date belongs to the payment information block); the order is kept.
    """
    for position, tx in enumerate(transactions, start=1):
        if tx.get("status") not in STATUSES:
            raise ValueError(
                f"transaction {position}: status {tx.get('status')!r}, expected ACSC or RJCT"
            )
        if not isinstance(tx["amount_cents"], int) or isinstance(tx["amount_cents"], bool):
            raise TypeError(f"transaction {position}: amount_cents must be an int")
        check_xml_text(tx["end_to_end_id"], f"transaction {position} end_to_end_id")
        if tx.get("reason") is not None:
            check_xml_text(tx["reason"], f"transaction {position} reason")
        collection_date = tx.get("collection_date")
        if collection_date is not None and (
            not isinstance(collection_date, date) or isinstance(collection_date, datetime)
        ):
            raise TypeError(f"transaction {position}: collection_date must be a date")

    root = ET.Element("Document", {"xmlns": NS})
    report = _sub(root, "CstmrPmtStsRpt")
    header = _sub(report, "GrpHdr")
    _sub(header, "MsgId", check_xml_text(message_id, "message_id"))
    _sub(header, "CreDtTm", created_at.isoformat(timespec="seconds"))

    group = _sub(report, "OrgnlGrpInfAndSts")
    _sub(group, "OrgnlMsgId", check_xml_text(original_message_id, "original_message_id"))
    _sub(group, "OrgnlMsgNmId", "pain.008.001.02")
    _sub(group, "OrgnlNbOfTxs", str(len(transactions)))
    _sub(group, "OrgnlCtrlSum", euros_text(sum(tx["amount_cents"] for tx in transactions)))
    statuses = {tx["status"] for tx in transactions}
    if statuses:
        _sub(group, "GrpSts", statuses.pop() if len(statuses) == 1 else "PART")

    block = None
    block_date: object = object()
    block_count = 0
    for tx in transactions:
        collection_date = tx.get("collection_date")
        if block is None or collection_date != block_date:
            block_count += 1
            block = _sub(report, "OrgnlPmtInfAndSts")
            _sub(block, "OrgnlPmtInfId", f"{original_message_id}-{block_count}"[:35])
            block_date = collection_date
        info = _sub(block, "TxInfAndSts")
        _sub(info, "OrgnlEndToEndId", tx["end_to_end_id"])
        _sub(info, "TxSts", tx["status"])
        if tx.get("reason") is not None:
            _sub(_sub(_sub(info, "StsRsnInf"), "Rsn"), "Cd", tx["reason"])
        ref = _sub(info, "OrgnlTxRef")
        _sub(_sub(ref, "Amt"), "InstdAmt", euros_text(tx["amount_cents"]), Ccy="EUR")
        if collection_date is not None:
            _sub(ref, "ReqdColltnDt", collection_date.isoformat())
    return xml_document(root)


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


def _q(path: str) -> str:
    return ns_path(NS, path)


def _text(element: ET.Element | None, path: str) -> str | None:
    return ns_text(element, NS, path)


_where = locate


def _report_date(report: ET.Element) -> tuple[date | None, str]:
    """The report's creation date (Europe/Paris), or None and why."""
    created = _text(report, "GrpHdr/CreDtTm")
    if created is None:
        return None, "the report has no GrpHdr/CreDtTm"
    try:
        moment = datetime.fromisoformat(created)
    except ValueError:
        return None, f"the report's GrpHdr/CreDtTm {show(created)} is not an ISO 8601 date-time"
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(PARIS)
        except (OverflowError, ValueError):
            return None, f"the report's GrpHdr/CreDtTm {show(created)} is out of range"
    return moment.date(), ""


def parse_pain002(name: str, data: bytes) -> Parsed:
    """Parse a pain.002.001.03 status report into ``payment`` rows."""
    root, reason = load_xml(data)
    if reason:
        return file_rejected(KIND, reason, data)
    report, reason = check_root(root, NS, "CstmrPmtStsRpt")
    if reason:
        return file_rejected(KIND, reason, data)
    transactions = list(report.iter(f"{{{NS}}}TxInfAndSts"))
    if not transactions:
        group_status = _text(report, "OrgnlGrpInfAndSts/GrpSts")
        return file_rejected(
            KIND,
            "the status report lists no transaction (no TxInfAndSts; group status "
            f"{group_status or 'absent'}); every transaction must be listed",
            data,
        )

    original_id = _text(report, "OrgnlGrpInfAndSts/OrgnlMsgId")
    report_date, report_date_problem = _report_date(report)
    rows: list[dict] = []
    quarantine: list[Rejected] = []
    first_seen: dict[str, int] = {}
    for index, tx in enumerate(transactions, start=1):
        base = f"TxInfAndSts[{index}]"
        problems: list[tuple[str, str]] = []
        if not original_id:
            problems.append(
                (
                    _where(base, tx),
                    (
                        "the report has no OrgnlGrpInfAndSts/OrgnlMsgId (original message id), "
                        "needed to identify its payments"
                    ),
                )
            )
        e2e = _text(tx, "OrgnlEndToEndId")
        if not e2e:
            problems.append(
                (
                    _where(base, tx, "OrgnlEndToEndId"),
                    "OrgnlEndToEndId is " + ("missing" if e2e is None else "empty"),
                )
            )
        elif e2e in first_seen:
            problems.append(
                (
                    _where(base, tx, "OrgnlEndToEndId"),
                    (
                        f"duplicate OrgnlEndToEndId {e2e!r} (already in "
                        f"TxInfAndSts[{first_seen[e2e]}] of this report)"
                    ),
                )
            )
        status = _text(tx, "TxSts")
        if status not in STATUSES:
            found = "missing" if status is None else show(status)
            problems.append((_where(base, tx, "TxSts"), f"TxSts is {found}, expected ACSC or RJCT"))
        amount_el = tx.find(_q("OrgnlTxRef/Amt/InstdAmt"))
        cents = None
        if amount_el is None:
            problems.append(
                (_where(base, tx, "OrgnlTxRef/Amt/InstdAmt"), "OrgnlTxRef/Amt/InstdAmt is missing")
            )
        else:
            where = _where(base, amount_el, "OrgnlTxRef/Amt/InstdAmt")
            cents, reason = parse_euros(amount_el.text)
            if reason:
                problems.append((where, f"InstdAmt: {reason}"))
            if amount_el.get("Ccy") != "EUR":
                problems.append(
                    (where, (f"InstdAmt currency {amount_el.get('Ccy')!r}, expected 'EUR'"))
                )
        collection_text = _text(tx, "OrgnlTxRef/ReqdColltnDt")
        paid_on = None
        if collection_text is not None:
            try:
                if not _DATE_RE.fullmatch(collection_text):
                    raise ValueError
                paid_on = date.fromisoformat(collection_text)
            except ValueError:
                problems.append(
                    (
                        _where(base, tx, "OrgnlTxRef/ReqdColltnDt"),
                        f"ReqdColltnDt {show(collection_text)} is not a valid YYYY-MM-DD date",
                    )
                )
        elif report_date is None:
            problems.append(
                (
                    _where(base, tx, "OrgnlTxRef/ReqdColltnDt"),
                    f"no ReqdColltnDt and {report_date_problem}: no payment date",
                )
            )
        else:
            paid_on = report_date

        if problems:
            quarantine.append(
                Rejected(
                    problems[0][0],
                    "; ".join(f"{base}: {reason}" for _, reason in problems),
                    xml_raw(data, tx),
                )
            )
            continue
        first_seen[e2e] = index
        reject = None
        if status == "RJCT":
            reject = none_if_blank(
                _text(tx, "StsRsnInf/Rsn/Cd") or _text(tx, "StsRsnInf/Rsn/Prtry")
            )
        rows.append(
            {
                "payment_id": f"prlv:{original_id}:{e2e}",
                "source": "prlv",
                "channel": "direct_debit",
                "status": STATUSES[status],
                "amount_cents": cents,
                "paid_on": paid_on,
                "paid_at": None,
                "invoice_ref": e2e,
                "payer_name": None,
                "payer_email": None,
                "operation_ref": e2e,
                "auth_number": None,
                "cheque_number": None,
                "reject_reason": reject,
                "fiscal_year": None,
                "file_name": name,
                "line_no": index,
            }
        )
    tables = empty_tables(KIND)
    tables["payment"] = rows
    return finish(KIND, tables, quarantine)
