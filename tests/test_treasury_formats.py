"""Payment-office file formats: parsers and writers (schemas.treasury).

Hand-built fixtures checked against the spec's positions, writer -> parser round trips for
every format, every quarantine class, and property tests (hypothesis) that the parsers never
raise and never lose an item on arbitrary or mutated input.
"""

from __future__ import annotations

import math
import re
import string
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.treasury import (
    BANK_OPERATION_COLUMNS,
    BANK_STATEMENT_COLUMNS,
    PAYMENT_COLUMNS,
    PRIMARY_TABLE,
    BankOperation,
    Parsed,
    Statement,
    decode_amount,
    encode_amount,
    file_kind,
    is_balanced,
    parse_caisse,
    parse_camt053,
    parse_cfonb,
    parse_file,
    parse_pain002,
    parse_payfip,
    write_caisse_csv,
    write_camt053,
    write_cfonb,
    write_pain002,
    write_payfip_csv,
)
from schemas.treasury.camt053 import french_iban, iban_is_valid

PARIS = ZoneInfo("Europe/Paris")
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ROUND_TRIP = settings(max_examples=40, deadline=None, database=None)

PARSERS = {
    "cfonb120": (parse_cfonb, "RELEVE_20240202.cfonb"),
    "camt053": (parse_camt053, "RELEVE_20240202.xml"),
    "pain002": (parse_pain002, "PRLV_20240206.xml"),
    "payfip": (parse_payfip, "PAYFIP_20240202.csv"),
    "caisse": (parse_caisse, "CAISSE_20240202.csv"),
}
COLUMNS = {
    "bank_statement": set(BANK_STATEMENT_COLUMNS),
    "bank_operation": set(BANK_OPERATION_COLUMNS),
    "payment": set(PAYMENT_COLUMNS),
}


def check_invariants(parsed: Parsed, kind: str) -> None:
    """What every parse result must satisfy, whatever the input."""
    assert parsed.kind == kind
    primary = PRIMARY_TABLE[kind]
    assert primary in parsed.tables
    assert parsed.rows_read == len(parsed.tables[primary]) + len(parsed.quarantine)
    for table, rows in parsed.tables.items():
        for row in rows:
            assert set(row) == COLUMNS[table], table
    for rejected in parsed.quarantine:
        assert rejected.locator and rejected.reason
        assert isinstance(rejected.raw, str)
    file_items = [r for r in parsed.quarantine if r.locator == "file"]
    if file_items:  # a file-level failure is the only item
        assert parsed.rows_read == 1 and len(parsed.quarantine) == 1
        assert all(not rows for rows in parsed.tables.values())
    ids = [r["payment_id"] for r in parsed.tables.get("payment", [])]
    ids += [r["operation_id"] for r in parsed.tables.get("bank_operation", [])]
    ids += [r["statement_id"] for r in parsed.tables.get("bank_statement", [])]
    assert len(ids) == len(set(ids)), "ids must be unique within a file"


# =============================================================================================
# CFONB 120
# =============================================================================================

# A hand-built statement: account 00012345678 at bank 30004 / branch 01234, 2 Feb 2024.
L01 = (
    "0130004    01234EUR2 00012345678  010224                                "
    "                  0000000010000{                "
)
L04A = (
    "0430004011701234EUR2 0001234567805020224  020224VIR SEPA MARTIN 202401000042     "
    "A123456  0000000001234EREF-0001        "
)
L05A = (
    "0530004011701234EUR2 0001234567805020224     NPYMARTIN PAUL                      "
    "                                       "
)
L05B = (
    "0530004011701234EUR2 0001234567805020224     LIBFACTURE 202401000042             "
    "                                       "
)
L04B = (
    "0430004059901234EUR2 00012345678B1020224AM010224IMPAYE PRLV SEPA                 "
    "         0000000000450}                "
)
L05C = (
    "0530004059901234EUR2 00012345678B1020224     LIB202401000017 AM04                "
    "                                       "
)
L07 = (
    "0730004    01234EUR2 00012345678  020224                                "
    "                  0000000010784E                "
)
FIXTURE = [L01, L04A, L05A, L05B, L04B, L05C, L07]


def cfonb_bytes(lines: list[str], ending: str = "\r\n") -> bytes:
    return "".join(line + ending for line in lines).encode("latin-1")


def field(line: str, first: int, last: int) -> str:
    """Spec positions are 1-based and inclusive."""
    return line[first - 1 : last]


def test_fixture_lines_match_the_spec_positions():
    assert all(len(line) == 120 for line in FIXTURE)
    assert field(L04A, 1, 2) == "04"
    assert field(L04A, 3, 7) == "30004"
    assert field(L04A, 8, 11) == "0117"
    assert field(L04A, 12, 16) == "01234"
    assert field(L04A, 17, 19) == "EUR"
    assert field(L04A, 20, 20) == "2"
    assert field(L04A, 22, 32) == "00012345678"
    assert field(L04A, 33, 34) == "05"
    assert field(L04A, 35, 40) == "020224"
    assert field(L04A, 43, 48) == "020224"
    assert field(L04A, 49, 79).strip() == "VIR SEPA MARTIN 202401000042"
    assert field(L04A, 82, 88) == "A123456"
    assert field(L04A, 91, 104) == "0000000001234E"
    assert field(L04A, 105, 120).strip() == "REF-0001"
    assert field(L04B, 41, 42) == "AM"
    assert field(L05A, 46, 48) == "NPY"
    assert field(L05A, 49, 118).strip() == "MARTIN PAUL"


def test_amount_fields_decoded_by_hand():
    # "0000000001234E": digits 000000000123 4, then E = positive, last digit 5 -> 12345 cents.
    assert decode_amount(field(L04A, 91, 104)) == 12345
    # "0000000000450}": '}' = negative, last digit 0 -> -4500 cents.
    assert decode_amount(field(L04B, 91, 104)) == -4500
    assert decode_amount(field(L01, 91, 104)) == 100000
    # 1000.00 + 123.45 - 45.00 = 1078.45: "0000000010784E".
    assert decode_amount(field(L07, 91, 104)) == 107845


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "0000000000000{"),
        (1, "0000000000000A"),
        (9, "0000000000000I"),
        (-1, "0000000000000J"),
        (-9, "0000000000000R"),
        (-10, "0000000000001}"),
        (12345, "0000000001234E"),
        (-4500, "0000000000450}"),
        (10**14 - 1, "9999999999999I"),
        (-(10**14 - 1), "9999999999999R"),
    ],
)
def test_encode_amount_known_values(cents, text):
    assert encode_amount(cents) == text
    assert decode_amount(text) == cents


@given(st.integers(min_value=-(10**14 - 1), max_value=10**14 - 1))
@settings(max_examples=300, deadline=None, database=None)
def test_amount_round_trip(cents):
    text = encode_amount(cents)
    assert len(text) == 14
    assert decode_amount(text) == cents


@pytest.mark.parametrize("cents", [10**14, -(10**14)])
def test_encode_amount_out_of_range(cents):
    with pytest.raises(ValueError, match="14"):
        encode_amount(cents)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("000000000123X", "14"),
        ("0000000001234X", "sign character"),
        ("00000000012 4E", "digits"),
        ("0000000001²34E", "digits"),
        ("0000000001234E0", "14"),
    ],
)
def test_decode_amount_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        decode_amount(text)


def test_parse_hand_built_statement():
    parsed = parse_cfonb("RELEVE_20240202.cfonb", cfonb_bytes(FIXTURE))
    check_invariants(parsed, "cfonb120")
    assert parsed.quarantine == []
    assert parsed.rows_read == 2
    [stmt] = parsed.tables["bank_statement"]
    assert stmt == {
        "statement_id": "cfonb120:30004-01234-00012345678:20240202:1",
        "format": "cfonb120",
        "account": "00012345678",
        "bank_code": "30004",
        "branch_code": "01234",
        "currency": "EUR",
        "opening_on": date(2024, 2, 1),
        "opening_balance_cents": 100000,
        "closing_on": date(2024, 2, 2),
        "closing_balance_cents": 107845,
        "operations_total_cents": 7845,
        "operations_count": 2,
        "file_name": "RELEVE_20240202.cfonb",
        "line_no": 1,
    }
    assert is_balanced(stmt)
    first, second = parsed.tables["bank_operation"]
    assert first == {
        "operation_id": stmt["statement_id"] + ":1",
        "statement_id": stmt["statement_id"],
        "seq": 1,
        "booked_on": date(2024, 2, 2),
        "value_on": date(2024, 2, 2),
        "amount_cents": 12345,
        "label": "VIR SEPA MARTIN 202401000042",
        "interbank_code": "05",
        "internal_code": "0117",
        "reject_code": None,
        "entry_number": "A123456",
        "reference": "REF-0001",
        "details": "NPY MARTIN PAUL\nLIB FACTURE 202401000042",
        "file_name": "RELEVE_20240202.cfonb",
        "line_no": 2,
    }
    assert second["amount_cents"] == -4500
    assert second["reject_code"] == "AM"
    assert second["value_on"] == date(2024, 2, 1)
    assert second["details"] == "LIB 202401000017 AM04"
    assert second["entry_number"] is None and second["reference"] is None
    assert second["line_no"] == 5


def test_writer_reproduces_the_hand_built_lines():
    statement = Statement(
        account="00012345678",
        bank_code="30004",
        branch_code="01234",
        opening_on=date(2024, 2, 1),
        opening_balance_cents=100000,
        closing_on=date(2024, 2, 2),
        operations=[
            BankOperation(
                booked_on=date(2024, 2, 2),
                value_on=date(2024, 2, 2),
                amount_cents=12345,
                label="VIR SEPA MARTIN 202401000042",
                internal_code="0117",
                reference="REF-0001",
                entry_number="A123456",
                details=[("NPY", "MARTIN PAUL"), ("LIB", "FACTURE 202401000042")],
            ),
            BankOperation(
                booked_on=date(2024, 2, 2),
                value_on=date(2024, 2, 1),
                amount_cents=-4500,
                label="IMPAYE PRLV SEPA",
                interbank_code="B1",
                internal_code="0599",
                reject_code="AM",
                details=[("LIB", "202401000017 AM04")],
            ),
        ],
    )
    assert write_cfonb([statement]) == cfonb_bytes(FIXTURE)
    assert write_cfonb([statement], line_ending="\n") == cfonb_bytes(FIXTURE, "\n")
    assert write_cfonb([statement], line_ending="") == cfonb_bytes(FIXTURE, "")


def test_writer_labels_are_latin1_and_cut_to_31_characters():
    op = BankOperation(
        date(2024, 2, 2),
        date(2024, 2, 2),
        100,
        "Œuvre – réglement n°12\tfacture 202401000042 très longue",
    )
    data = write_cfonb([Statement("ABC", "1", "2", date(2024, 2, 1), 0, date(2024, 2, 2), [op])])
    line = data.decode("latin-1").split("\r\n")[1]
    assert len(line) == 120
    assert field(line, 49, 79) == "OEuvre - réglement n°12 facture"
    assert "é".encode("latin-1") in data  # Latin-1, not UTF-8


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reference": "X" * 17}, "reference"),
        ({"entry_number": "12345678"}, "entry_number"),
        ({"interbank_code": "123"}, "interbank_code"),
        ({"reference": "€"}, "Latin-1"),
    ],
)
def test_writer_refuses_identifiers_that_do_not_fit(change, message):
    op = BankOperation(date(2024, 2, 2), date(2024, 2, 2), 1, "X")
    for key, value in change.items():
        setattr(op, key, value)
    stmt = Statement("1", "1", "1", date(2024, 2, 1), 0, date(2024, 2, 2), [op])
    with pytest.raises(ValueError, match=message):
        write_cfonb([stmt])


def test_writer_refuses_bad_line_ending():
    with pytest.raises(ValueError):
        write_cfonb([], line_ending="\r")


@pytest.mark.parametrize("ending", ["\r\n", "\n", ""])
def test_line_endings_give_the_same_rows(ending):
    parsed = parse_cfonb("RELEVE_x.cfonb", cfonb_bytes(FIXTURE, ending))
    reference = parse_cfonb("RELEVE_x.cfonb", cfonb_bytes(FIXTURE))
    assert parsed.quarantine == []
    assert parsed.tables == reference.tables


def test_file_without_line_breaks_splits_every_120_characters():
    data = cfonb_bytes(FIXTURE, "")
    assert b"\n" not in data and len(data) == 7 * 120
    parsed = parse_cfonb("RELEVE_x.cfonb", data)
    assert [r["line_no"] for r in parsed.tables["bank_operation"]] == [2, 5]
    # A file without line breaks whose last record is cut short.
    parsed = parse_cfonb("RELEVE_x.cfonb", data[:-7])
    assert parsed.tables["bank_statement"] == []
    closing = parsed.quarantine[-1]
    assert closing.locator == "line 7"
    assert "truncated record of 113 characters, expected 120" in closing.reason


def test_blank_lines_are_ignored_and_lines_keep_their_numbers():
    data = cfonb_bytes([L01, "", L04A, L05A, L05B, "", L04B, L05C, "", L07, ""])
    parsed = parse_cfonb("RELEVE_x.cfonb", data)
    assert parsed.quarantine == []
    assert [r["line_no"] for r in parsed.tables["bank_operation"]] == [3, 7]


def with_field(line: str, first: int, value: str) -> str:
    return line[: first - 1] + value + line[first - 1 + len(value) :]


def only(parsed: Parsed):
    assert len(parsed.quarantine) == 1, parsed.quarantine
    return parsed.quarantine[0]


def test_truncated_operation_line_is_quarantined_with_its_details():
    lines = [L01, L04A[:100], L05A, L05B, L04B, L05C, L07]
    parsed = parse_cfonb("RELEVE_x.cfonb", cfonb_bytes(lines))
    check_invariants(parsed, "cfonb120")
    rejected = only(parsed)
    assert rejected.locator == "line 2"
    assert "truncated record of 100 characters, expected 120" in rejected.reason
    assert rejected.raw == "\n".join([L04A[:100], L05A, L05B])
    [stmt] = parsed.tables["bank_statement"]
    assert stmt["operations_count"] == 1
    assert not is_balanced(stmt)  # the quarantined credit is missing from the total


def test_overlong_line_is_quarantined():
    lines = [L01, L04A + "XX", L05A, L05B, L04B, L05C, L07]
    rejected = only(parse_cfonb("RELEVE_x.cfonb", cfonb_bytes(lines)))
    assert "overlong record of 122 characters, expected 120" in rejected.reason


def test_unknown_record_code_is_quarantined():
    bad = "03" + L04A[2:]
    parsed = parse_cfonb("RELEVE_x.cfonb", cfonb_bytes([L01, bad, *FIXTURE[4:]]))
    check_invariants(parsed, "cfonb120")
    # The unknown record cuts the 05s of nothing: they follow it, so they are orphans too.
    first = parsed.quarantine[0]
    assert first.locator == "line 2 col 1-2"
    assert "unknown record code '03'" in first.reason
    assert first.raw == bad


def test_bad_amount_character_is_quarantined():
    bad = with_field(L04A, 91, "0000000001234X")
    rejected = only(parse_cfonb("RELEVE_x.cfonb", cfonb_bytes([L01, bad, *FIXTURE[2:]])))
    assert rejected.locator == "line 2 col 91-104"
    assert "last character 'X' is not a sign character" in rejected.reason


def test_bad_date_is_quarantined():
    bad = with_field(L04B, 43, "310224")  # 31 February
    rejected = only(parse_cfonb("RELEVE_x.cfonb", cfonb_bytes([*FIXTURE[:4], bad, L05C, L07])))
    assert rejected.locator == "line 5 col 43-48"
    assert "value date '310224' is not a valid DDMMYY date" in rejected.reason


@pytest.mark.parametrize(
    ("decimals", "cents", "message"),
    [
        ("2", 12345, None),
        ("0", 1234500, None),
        ("1", 123450, None),
        ("3", None, "with 3 decimals is not a whole number of cents"),
        ("X", None, "line 2 col 20: number of decimals 'X' is not a digit"),
    ],
)
def test_decimals_position_scales_the_amount(decimals, cents, message):
    line = with_field(L04A, 20, decimals)
    parsed = parse_cfonb("R", cfonb_bytes([L01, line, L07]))
    if message is None:
        assert parsed.tables["bank_operation"][0]["amount_cents"] == cents
    else:
        assert message in only(parsed).reason


def test_date_pivot():
    def booked(year2: str) -> date:
        line = with_field(L04A, 35, "0102" + year2)
        parsed = parse_cfonb("R", cfonb_bytes([L01, line, L07]))
        return parsed.tables["bank_operation"][0]["booked_on"]

    assert booked("00") == date(2000, 2, 1)
    assert booked("79") == date(2079, 2, 1)
    assert booked("80") == date(1980, 2, 1)
    assert booked("99") == date(1999, 2, 1)


def test_operation_outside_a_statement_is_quarantined():
    parsed = parse_cfonb("RELEVE_x.cfonb", cfonb_bytes([L04B, L05C, *FIXTURE, L04B]))
    check_invariants(parsed, "cfonb120")
    assert [r.locator for r in parsed.quarantine] == ["line 1", "line 10"]
    assert all("outside a statement" in r.reason for r in parsed.quarantine)
    assert parsed.quarantine[0].raw == L04B + "\n" + L05C
    assert len(parsed.tables["bank_operation"]) == 2


def test_detail_without_operation_is_quarantined():
    parsed = parse_cfonb("RELEVE_x.cfonb", cfonb_bytes([L01, L05A, *FIXTURE[1:]]))
    rejected = only(parsed)
    assert rejected.locator == "line 2"
    assert "detail record 05 without a preceding operation record 04" in rejected.reason
    assert rejected.raw == L05A
    assert is_balanced(parsed.tables["bank_statement"][0])


def test_statement_without_closing_record_is_quarantined_whole():
    data = cfonb_bytes([L01, L04A, L05A, L04B] + FIXTURE)
    parsed = parse_cfonb("RELEVE_x.cfonb", data)
    check_invariants(parsed, "cfonb120")
    assert len(parsed.tables["bank_statement"]) == 1  # the complete second one
    assert parsed.tables["bank_statement"][0]["line_no"] == 5
    locators = [r.locator for r in parsed.quarantine]
    assert locators == ["line 1", "line 2", "line 4"]
    assert all("no closing 07 record" in r.reason for r in parsed.quarantine)
    assert "a new statement starts at line 5" in parsed.quarantine[0].reason
    # At the end of the file too.
    parsed = parse_cfonb("RELEVE_x.cfonb", cfonb_bytes(FIXTURE[:-1]))
    assert parsed.rows_read == 3 and parsed.tables["bank_operation"] == []
    assert "the file ends" in parsed.quarantine[0].reason


def test_closing_record_without_statement_is_quarantined():
    parsed = parse_cfonb("RELEVE_x.cfonb", cfonb_bytes([*FIXTURE, L07]))
    rejected = only(parsed)
    assert rejected.locator == "line 8"
    assert "07 without an open statement" in rejected.reason


def test_mismatching_account_in_operation_is_quarantined():
    bad = with_field(L04B, 22, "99999999999")
    parsed = parse_cfonb("RELEVE_x.cfonb", cfonb_bytes([*FIXTURE[:4], bad, L05C, L07]))
    rejected = only(parsed)
    assert rejected.locator == "line 5 col 22-32"
    assert "account '99999999999' does not match the statement's '00012345678'" in (rejected.reason)
    [stmt] = parsed.tables["bank_statement"]
    assert stmt["operations_total_cents"] == 12345 and not is_balanced(stmt)


def test_mismatching_account_in_detail_quarantines_its_operation():
    bad = with_field(L05C, 22, "99999999999")
    rejected = only(parse_cfonb("R", cfonb_bytes([*FIXTURE[:5], bad, L07])))
    assert rejected.locator == "line 6 col 22-32"
    assert rejected.raw == L04B + "\n" + bad


def test_mismatching_account_in_closing_record_makes_the_statement_unusable():
    bad = with_field(L07, 22, "99999999999")
    parsed = parse_cfonb("RELEVE_x.cfonb", cfonb_bytes([*FIXTURE[:-1], bad]))
    check_invariants(parsed, "cfonb120")
    assert parsed.tables["bank_statement"] == [] and parsed.tables["bank_operation"] == []
    assert [r.locator for r in parsed.quarantine] == [
        "line 1",
        "line 2",
        "line 5",
        "line 7 col 22-32",
    ]
    assert all("account '99999999999' does not match" in r.reason for r in parsed.quarantine)


def test_bad_opening_balance_makes_the_statement_unusable():
    bad = with_field(L01, 35, "320124")
    parsed = parse_cfonb("RELEVE_x.cfonb", cfonb_bytes([bad, *FIXTURE[1:]]))
    assert parsed.rows_read == 4
    assert parsed.quarantine[0].locator == "line 1 col 35-40"
    assert "old balance date '320124' is not a valid DDMMYY date" in parsed.quarantine[0].reason


def test_unbalanced_statement_is_loaded_and_detected():
    stmt = Statement(
        "00012345678",
        "30004",
        "01234",
        date(2024, 2, 1),
        5000,
        date(2024, 2, 2),
        [BankOperation(date(2024, 2, 2), date(2024, 2, 2), 700, "VIR")],
        closing_balance_cents=9999,
    )
    parsed = parse_cfonb("RELEVE_x.cfonb", write_cfonb([stmt]))
    [row] = parsed.tables["bank_statement"]
    assert parsed.quarantine == []
    assert row["closing_balance_cents"] == 9999 and row["operations_total_cents"] == 700
    assert not is_balanced(row)
    stmt.closing_balance_cents = None
    assert is_balanced(parse_cfonb("R", write_cfonb([stmt])).tables["bank_statement"][0])


def test_several_accounts_and_statements_in_one_file():
    def stmt(account: str, day: int, amount: int) -> Statement:
        ops = [BankOperation(date(2024, 2, day), date(2024, 2, day), amount, f"OP {account}")]
        return Statement(
            account, "30004", "01234", date(2024, 2, day - 1), 0, date(2024, 2, day), ops
        )

    statements = [
        stmt("00000000001", 2, 100),
        stmt("00000000002", 2, -200),
        stmt("00000000001", 3, 300),
        stmt("00000000001", 3, 400),
    ]
    parsed = parse_cfonb("RELEVE_x.cfonb", write_cfonb(statements))
    check_invariants(parsed, "cfonb120")
    ids = [r["statement_id"] for r in parsed.tables["bank_statement"]]
    assert ids == [
        "cfonb120:30004-01234-00000000001:20240202:1",
        "cfonb120:30004-01234-00000000002:20240202:1",
        "cfonb120:30004-01234-00000000001:20240203:1",
        "cfonb120:30004-01234-00000000001:20240203:2",
    ]
    amounts = {r["statement_id"]: r["amount_cents"] for r in parsed.tables["bank_operation"]}
    assert amounts[ids[1]] == -200 and amounts[ids[3]] == 400


def test_statement_ids_do_not_depend_on_file_name_or_position():
    other = Statement("00000000009", "30004", "01234", date(2024, 1, 1), 0, date(2024, 1, 2), [])
    first = parse_cfonb("RELEVE_A.cfonb", cfonb_bytes(FIXTURE))
    again = parse_cfonb("RELEVE_A_2.cfonb", write_cfonb([other]) + cfonb_bytes(FIXTURE))
    ids = {r["operation_id"] for r in first.tables["bank_operation"]}
    assert ids == {r["operation_id"] for r in again.tables["bank_operation"]}


def test_empty_cfonb_file_is_rejected_as_a_whole():
    for data in (b"", b"\r\n\r\n"):
        parsed = parse_cfonb("RELEVE_x.cfonb", data)
        assert parsed.rows_read == 1 and parsed.quarantine[0].locator == "file"


def test_latin1_labels_are_read():
    line = with_field(L04A, 49, "VIR CAFÉ DÉJÀ ÉTÉ".ljust(31))
    parsed = parse_cfonb("R", cfonb_bytes([L01, line, L07]))
    assert parsed.tables["bank_operation"][0]["label"] == "VIR CAFÉ DÉJÀ ÉTÉ"


# --- property tests ----------------------------------------------------------------------------

LATIN1_TEXT = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_categories=("Cc",))
CODE = st.text(alphabet=string.ascii_uppercase + string.digits, max_size=2)
DATES = st.dates(date(1980, 1, 1), date(2079, 12, 31))


@st.composite
def operations(draw) -> BankOperation:
    return BankOperation(
        booked_on=draw(DATES),
        value_on=draw(DATES),
        amount_cents=draw(st.integers(-(10**11), 10**11)),
        label=draw(st.text(LATIN1_TEXT, max_size=31).map(str.strip)),
        interbank_code=draw(CODE),
        internal_code=draw(st.text(alphabet=string.digits, max_size=4)),
        reference=draw(st.text(alphabet=string.ascii_uppercase + string.digits, max_size=16)),
        entry_number=draw(st.text(alphabet=string.digits, max_size=7)),
        reject_code=draw(CODE),
        details=draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["LIB", "NPY", "RCN", "REF", "NBE", "MMO"]),
                    st.text(LATIN1_TEXT, max_size=70).map(str.strip),
                ),
                max_size=4,
            )
        ),
    )


@st.composite
def statements(draw) -> Statement:
    return Statement(
        account=draw(st.text(alphabet=string.digits + "ABCXYZ", min_size=11, max_size=11)),
        bank_code=draw(st.text(alphabet=string.digits, min_size=5, max_size=5)),
        branch_code=draw(st.text(alphabet=string.digits, min_size=5, max_size=5)),
        opening_on=draw(DATES),
        opening_balance_cents=draw(st.integers(-(10**12), 10**12)),
        closing_on=draw(DATES),
        operations=draw(st.lists(operations(), max_size=5)),
        closing_balance_cents=draw(st.none() | st.integers(-(10**12), 10**12)),
    )


def expected_operation(op: BankOperation) -> dict:
    lines = [f"{q} {t}".strip() for q, t in op.details]
    return {
        "booked_on": op.booked_on,
        "value_on": op.value_on,
        "amount_cents": op.amount_cents,
        "label": op.label,
        "interbank_code": op.interbank_code,
        "internal_code": op.internal_code,
        "reject_code": op.reject_code or None,
        "entry_number": op.entry_number or None,
        "reference": op.reference or None,
        "details": lines,
    }


def check_statement_round_trip(parsed: Parsed, statement_list: list[Statement], fmt: str):
    check_invariants(parsed, fmt)
    assert parsed.quarantine == []
    assert len(parsed.tables["bank_statement"]) == len(statement_list)
    operations_by_stmt: dict[str, list[dict]] = {}
    for row in parsed.tables["bank_operation"]:
        operations_by_stmt.setdefault(row["statement_id"], []).append(row)
    for stmt, row in zip(statement_list, parsed.tables["bank_statement"]):
        total = sum(op.amount_cents for op in stmt.operations)
        closing = stmt.closing_balance_cents
        assert row["format"] == fmt
        assert (row["account"], row["bank_code"], row["branch_code"], row["currency"]) == (
            stmt.account,
            stmt.bank_code,
            stmt.branch_code,
            "EUR",
        )
        assert (row["opening_on"], row["closing_on"]) == (stmt.opening_on, stmt.closing_on)
        assert row["opening_balance_cents"] == stmt.opening_balance_cents
        expected_closing = stmt.opening_balance_cents + total if closing is None else closing
        assert row["closing_balance_cents"] == expected_closing
        assert row["operations_total_cents"] == total
        assert row["operations_count"] == len(stmt.operations)
        assert is_balanced(row) == (expected_closing - stmt.opening_balance_cents == total)
        ops = operations_by_stmt.get(row["statement_id"], [])
        assert [op["seq"] for op in ops] == list(range(1, len(stmt.operations) + 1))
        for op, op_row in zip(stmt.operations, ops):
            got = {k: op_row[k] for k in expected_operation(op)}
            got["details"] = [] if op_row["details"] is None else op_row["details"].split("\n")
            want = expected_operation(op)
            if fmt == "camt053":  # camt carries details in fixed elements: same lines, any order
                got["details"].sort()
                want["details"].sort()
            assert got == want


@given(st.lists(statements(), max_size=4), st.sampled_from(["\r\n", "\n", ""]))
@ROUND_TRIP
def test_cfonb_round_trip(statement_list, ending):
    data = write_cfonb(statement_list, line_ending=ending)
    parsed = parse_cfonb("RELEVE_x.cfonb", data)
    if not statement_list:  # an empty file is unusable as a whole
        assert parsed.quarantine[0].locator == "file"
        return
    check_statement_round_trip(parsed, statement_list, "cfonb120")


def count_cfonb_records(data: bytes) -> int:
    """Independent count of the non-empty records of a CFONB file."""
    text = data.decode("latin-1")
    text = re.sub(r"(\r\n|\r|\n)\Z", "", text)
    if not re.search(r"[\r\n]", text):
        return math.ceil(len(text) / 120)
    return sum(1 for line in re.split(r"\r\n|\r|\n", text) if line)


def check_cfonb_never_loses_a_record(data: bytes, parsed: Parsed) -> None:
    """Every record is in a loaded statement (01 + 07), a loaded operation (04 + 05s) or the
    quarantine (its raw text), exactly once."""
    if parsed.quarantine and parsed.quarantine[0].locator == "file":
        return
    covered = 2 * len(parsed.tables["bank_statement"])
    for row in parsed.tables["bank_operation"]:
        covered += 1 + (0 if row["details"] is None else row["details"].count("\n") + 1)
    covered += sum(len(r.raw.split("\n")) for r in parsed.quarantine)
    assert covered == count_cfonb_records(data)
    first_lines = [int(re.match(r"line (\d+)", r.locator).group(1)) for r in parsed.quarantine]
    assert first_lines == sorted(first_lines), "quarantine is in file order"


@st.composite
def mutated(draw, valid: bytes, garbage: st.SearchStrategy[bytes]) -> bytes:
    """A valid file truncated, with a byte changed, or with garbage lines inserted."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["truncate", "flip", "insert", "delete_line"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if how == "truncate":
            del data[pos:]
        elif how == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif how == "insert":
            start = data.rfind(b"\n", 0, pos) + 1
            data[start:start] = draw(garbage) + b"\n"
        else:
            start = data.rfind(b"\n", 0, pos) + 1
            end = data.find(b"\n", pos)
            del data[start : (len(data) if end < 0 else end + 1)]
    return bytes(data)


VALID_CFONB = write_cfonb(
    [
        Statement(
            "00012345678",
            "30004",
            "01234",
            date(2024, 2, 1),
            100000,
            date(2024, 2, 2),
            [
                BankOperation(
                    date(2024, 2, 2),
                    date(2024, 2, 2),
                    12345,
                    "VIR MARTIN",
                    details=[("NPY", "MARTIN"), ("LIB", "202401000042")],
                ),
                BankOperation(
                    date(2024, 2, 2),
                    date(2024, 2, 1),
                    -4500,
                    "IMPAYE PRLV SEPA",
                    reject_code="AM",
                    details=[("LIB", "202401000017 AM04")],
                ),
                BankOperation(date(2024, 2, 2), date(2024, 2, 2), -120, "FRAIS"),
            ],
        ),
        Statement(
            "00000000002",
            "30004",
            "01234",
            date(2024, 2, 1),
            0,
            date(2024, 2, 2),
            [BankOperation(date(2024, 2, 2), date(2024, 2, 2), 700, "REMISE CHQ")],
        ),
    ]
)


@given(st.binary(max_size=2000))
@FUZZ
def test_cfonb_parser_never_raises_on_arbitrary_bytes(data):
    parsed = parse_cfonb("RELEVE_x.cfonb", data)
    check_invariants(parsed, "cfonb120")
    check_cfonb_never_loses_a_record(data, parsed)


@given(mutated(VALID_CFONB, st.binary(max_size=150)))
@FUZZ
def test_cfonb_parser_on_mutated_files(data):
    parsed = parse_cfonb("RELEVE_x.cfonb", data)
    check_invariants(parsed, "cfonb120")
    check_cfonb_never_loses_a_record(data, parsed)


@given(
    mutated(
        VALID_CFONB,
        st.sampled_from([L04A, L05A, L01, L07, "0" * 120]).map(lambda s: s.encode("latin-1")),
    )
)
@FUZZ
def test_cfonb_parser_with_misplaced_records(data):
    parsed = parse_cfonb("RELEVE_x.cfonb", data)
    check_invariants(parsed, "cfonb120")
    check_cfonb_never_loses_a_record(data, parsed)


# =============================================================================================
# camt.053
# =============================================================================================

CREATED = datetime(2024, 2, 3, 6, 30, tzinfo=PARIS)


def fixture_statement(**changes) -> Statement:
    stmt = Statement(
        "00012345678",
        "30004",
        "01234",
        date(2024, 2, 1),
        100000,
        date(2024, 2, 2),
        [
            BankOperation(
                date(2024, 2, 2),
                date(2024, 2, 2),
                12345,
                "VIR SEPA MARTIN",
                reference="NTRY-1",
                entry_number="A123456",
                internal_code="0117",
                details=[
                    ("RCN", "202401000042"),
                    ("NPY", "MARTIN PAUL"),
                    ("LIB", "FACTURE 202401000042"),
                ],
            ),
            BankOperation(
                date(2024, 2, 2),
                date(2024, 2, 1),
                -4500,
                "IMPAYE PRLV SEPA",
                interbank_code="B1",
                reject_code="AM",
                details=[("LIB", "202401000017 AM04")],
            ),
        ],
    )
    for key, value in changes.items():
        setattr(stmt, key, value)
    return stmt


def test_french_iban():
    # Published example: RIB 30006 00001 12345678901 key 89.
    assert french_iban("30006", "00001", "12345678901") == "FR7630006000011234567890189"
    assert iban_is_valid("FR7630006000011234567890189")
    assert not iban_is_valid("FR7630006000011234567890188")
    assert french_iban("3000", "00001", "12345678901") is None


def test_camt_writer_layout():
    data = write_camt053([fixture_statement()], "MSG-1", CREATED)
    text = data.decode("utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert 'xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"' in text
    assert "<Cd>OPBD</Cd>" in text and "<Cd>CLBD</Cd>" in text
    assert '<Amt Ccy="EUR">1078.45</Amt>' in text  # closing = 1000.00 + 123.45 - 45.00
    assert '<Amt Ccy="EUR">45.00</Amt>' in text and "<CdtDbtInd>DBIT</CdtDbtInd>" in text
    assert "<EndToEndId>202401000042</EndToEndId>" in text
    assert "<Ustrd>FACTURE 202401000042</Ustrd>" in text
    assert "<AddtlNtryInf>IMPAYE PRLV SEPA</AddtlNtryInf>" in text
    assert "<NtryRef>NTRY-1</NtryRef>" in text
    assert "<IBAN>" + french_iban("30004", "01234", "00012345678") + "</IBAN>" in text
    assert "<CreDtTm>2024-02-03T06:30:00+01:00</CreDtTm>" in text


def test_camt_parse_fixture():
    parsed = parse_camt053(
        "RELEVE_20240202.xml", write_camt053([fixture_statement()], "M", CREATED)
    )
    check_invariants(parsed, "camt053")
    [stmt] = parsed.tables["bank_statement"]
    assert stmt["statement_id"] == "camt053:30004-01234-00012345678:20240202:1"
    assert stmt["closing_balance_cents"] == 107845 and is_balanced(stmt)
    first, second = parsed.tables["bank_operation"]
    assert first["details"] == "RCN 202401000042\nNPY MARTIN PAUL\nLIB FACTURE 202401000042"
    assert (first["reference"], first["entry_number"], first["internal_code"]) == (
        "NTRY-1",
        "A123456",
        "0117",
    )
    assert (second["amount_cents"], second["reject_code"], second["interbank_code"]) == (
        -4500,
        "AM",
        "B1",
    )
    assert (first["line_no"], second["line_no"]) == (1, 2)


@given(st.lists(statements(), min_size=1, max_size=3))
@ROUND_TRIP
def test_camt_round_trip(statement_list):
    data = write_camt053(statement_list, "MSG-RT", CREATED)
    parsed = parse_camt053("RELEVE_x.xml", data)
    check_statement_round_trip(parsed, statement_list, "camt053")


def test_camt_account_that_is_not_a_french_rib():
    stmt = fixture_statement(account="ACC-42", bank_code="", branch_code="")
    parsed = parse_camt053("R.xml", write_camt053([stmt], "M", CREATED))
    [row] = parsed.tables["bank_statement"]
    assert (row["account"], row["bank_code"], row["branch_code"]) == ("ACC-42", None, None)
    assert row["statement_id"] == "camt053:ACC-42:20240202:1"


def camt(**changes) -> bytes:
    return write_camt053([fixture_statement(**changes)], "M", CREATED)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<Document><unclosed></Document>", "invalid XML: mismatched tag at line 1"),
        (b"", "invalid XML: no element found"),
        (b"\xff\xfe<\x00", "not valid UTF-8"),
        (camt().replace(b"camt.053.001.02", b"camt.053.001.08"), "expected 'Document' in"),
        (camt().replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"'), "requires UTF-8"),
        (
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><d>&a;</d>',
            "DTDs and entities are not accepted",
        ),
        (
            (
                b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
                b"<GrpHdr/></BkToCstmrStmt></Document>"
            ),
            "holds no Stmt",
        ),
    ],
)
def test_camt_unreadable_files(data, message):
    parsed = parse_camt053("RELEVE_x.xml", data)
    check_invariants(parsed, "camt053")
    rejected = only(parsed)
    assert rejected.locator == "file" and parsed.rows_read == 1
    assert message in rejected.reason


def test_camt_bad_entry_amount_is_quarantined_and_statement_still_loaded():
    data = camt().replace(b'<Amt Ccy="EUR">123.45</Amt>', b'<Amt Ccy="EUR">123,45</Amt>')
    parsed = parse_camt053("RELEVE_x.xml", data)
    check_invariants(parsed, "camt053")
    rejected = only(parsed)
    assert rejected.locator.startswith("Stmt[1]/Ntry[1]/Amt (line ")
    assert "'123,45' is not a non-negative decimal number" in rejected.reason
    assert rejected.raw.startswith("<Ntry>") and rejected.raw.endswith("</Ntry>")
    assert rejected.raw in data.decode()
    [stmt] = parsed.tables["bank_statement"]
    assert not is_balanced(stmt)
    assert parsed.tables["bank_operation"][0]["seq"] == 2  # seq keeps the entry's position


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b'Ccy="EUR">123.45<', b'Ccy="EUR">123.456<', "more than 2 decimals"),
        (b'Ccy="EUR">123.45<', b'Ccy="USD">123.45<', "currency 'USD' differs"),
        (b"<Sts>BOOK</Sts>", b"<Sts>PDNG</Sts>", "only booked (BOOK) entries"),
        (b"<CdtDbtInd>CRDT</CdtDbtInd>\n        <Sts>", b"<Sts>", "CdtDbtInd is missing"),
        (
            b"<ValDt>\n          <Dt>2024-02-02</Dt>",
            b"<ValDt>\n          <Dt>2024-02-30</Dt>",
            "ValDt/Dt '2024-02-30' is not a valid",
        ),
    ],
)
def test_camt_entry_problems(old, new, message):
    data = camt()
    assert old in data
    parsed = parse_camt053("RELEVE_x.xml", data.replace(old, new, 1))
    check_invariants(parsed, "camt053")
    rejected = only(parsed)
    assert rejected.locator.startswith("Stmt[1]/Ntry[1]")
    assert message in rejected.reason
    assert len(parsed.tables["bank_statement"]) == 1


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"<Cd>CLBD</Cd>", b"<Cd>XXXX</Cd>", "no CLBD balance (found: OPBD, XXXX)"),
        (b"<IBAN>FR", b"<IBAN>DE", "check digits do not verify"),
        (b"<Dt>2024-02-01</Dt>", b"<Dt>01/02/2024</Dt>", "'01/02/2024' is not a valid"),
    ],
)
def test_camt_unusable_statement(old, new, message):
    data = camt()
    assert old in data
    parsed = parse_camt053("RELEVE_x.xml", data.replace(old, new, 1))
    check_invariants(parsed, "camt053")
    assert parsed.tables["bank_statement"] == [] and parsed.tables["bank_operation"] == []
    assert parsed.rows_read == 3  # the statement itself and its two entries
    statement_item, *entries = parsed.quarantine
    assert statement_item.reason.startswith("statement Stmt[1] is unusable")
    assert message in statement_item.reason
    assert "<Ntry>" not in statement_item.raw  # its entries are items of their own
    assert [e.locator.split(" ")[0] for e in entries] == ["Stmt[1]/Ntry[1]", "Stmt[1]/Ntry[2]"]
    assert all(message in e.reason for e in entries)


def test_camt_prcd_opening_balance_and_datetime_dates_are_accepted():
    data = camt().replace(b"<Cd>OPBD</Cd>", b"<Cd>PRCD</Cd>")
    data = data.replace(
        b"<BookgDt>\n          <Dt>2024-02-02</Dt>",
        b"<BookgDt>\n          <DtTm>2024-02-01T23:30:00Z</DtTm>",
        1,
    )
    parsed = parse_camt053("RELEVE_x.xml", data)
    assert parsed.quarantine == []
    assert parsed.tables["bank_statement"][0]["opening_balance_cents"] == 100000
    # 23:30 UTC on 1 Feb is 00:30 on 2 Feb in Paris.
    assert parsed.tables["bank_operation"][0]["booked_on"] == date(2024, 2, 2)


VALID_CAMT = write_camt053(
    [fixture_statement(), fixture_statement(account="00000000002", operations=[])], "M", CREATED
)


@given(st.binary(max_size=2000))
@FUZZ
def test_camt_parser_never_raises_on_arbitrary_bytes(data):
    check_invariants(parse_camt053("RELEVE_x.xml", data), "camt053")


@given(mutated(VALID_CAMT, st.binary(max_size=80)))
@FUZZ
def test_camt_parser_on_mutated_files(data):
    check_invariants(parse_camt053("RELEVE_x.xml", data), "camt053")


@given(
    st.data(),
    st.sampled_from(["Amt", "CdtDbtInd", "Sts", "Dt", "IBAN", "Cd", "Ccy", "AddtlNtryInf"]),
)
@FUZZ
def test_camt_parser_with_mutated_element_text(data, tag):
    """Well-formed XML with one element's text replaced: items are never lost."""
    pattern = re.compile(rf"<{tag}( [^>]*)?>[^<]*</{tag}>".encode())
    matches = list(pattern.finditer(VALID_CAMT))
    match = data.draw(st.sampled_from(matches))
    text = data.draw(st.text(alphabet="0123456789.-ABCDRTXZ ", max_size=12)).encode()
    open_tag = match.group(0).split(b">")[0] + b">"
    mutated_file = (
        VALID_CAMT[: match.start()]
        + open_tag
        + text
        + f"</{tag}>".encode()
        + VALID_CAMT[match.end() :]
    )
    parsed = parse_camt053("RELEVE_x.xml", mutated_file)
    check_invariants(parsed, "camt053")
    assert parsed.rows_read >= 2  # the two entries of the first statement, loaded or not


# =============================================================================================
# pain.002
# =============================================================================================

PAIN_CREATED = datetime(2024, 2, 5, 23, 30, tzinfo=UTC)  # 6 Feb 00:30 in Paris
PAIN_TXS = [
    {
        "end_to_end_id": "202401000042",
        "amount_cents": 1250,
        "status": "ACSC",
        "reason": None,
        "collection_date": date(2024, 2, 5),
    },
    {
        "end_to_end_id": "202401000017",
        "amount_cents": 4500,
        "status": "RJCT",
        "reason": "AM04",
        "collection_date": date(2024, 2, 5),
    },
    {"end_to_end_id": "202401000018", "amount_cents": 3000, "status": "RJCT", "reason": "MD06"},
]


def pain(transactions=None) -> bytes:
    return write_pain002("STS-1", PAIN_CREATED, "PRLV-2024-02", transactions or PAIN_TXS)


def test_pain_writer_layout():
    text = pain().decode("utf-8")
    assert 'xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"' in text
    assert "<OrgnlMsgId>PRLV-2024-02</OrgnlMsgId>" in text
    assert '<InstdAmt Ccy="EUR">12.50</InstdAmt>' in text
    assert "<ReqdColltnDt>2024-02-05</ReqdColltnDt>" in text
    assert "<Cd>AM04</Cd>" in text
    assert "<GrpSts>PART</GrpSts>" in text
    assert text.count("<OrgnlPmtInfAndSts>") == 2  # one block per collection date


def test_pain_parse():
    parsed = parse_pain002("PRLV_20240206.xml", pain())
    check_invariants(parsed, "pain002")
    assert parsed.quarantine == []
    paid, rejected, undated = parsed.tables["payment"]
    assert paid == {
        "payment_id": "prlv:PRLV-2024-02:202401000042",
        "source": "prlv",
        "channel": "direct_debit",
        "status": "paid",
        "amount_cents": 1250,
        "paid_on": date(2024, 2, 5),
        "paid_at": None,
        "invoice_ref": "202401000042",
        "payer_name": None,
        "payer_email": None,
        "operation_ref": "202401000042",
        "auth_number": None,
        "cheque_number": None,
        "reject_reason": None,
        "fiscal_year": None,
        "file_name": "PRLV_20240206.xml",
        "line_no": 1,
    }
    assert (rejected["status"], rejected["reject_reason"]) == ("rejected", "AM04")
    # No collection date: the report's creation date, in Paris time.
    assert undated["paid_on"] == date(2024, 2, 6)
    assert undated["line_no"] == 3


@st.composite
def pain_transactions(draw) -> list[dict]:
    ids = draw(
        st.lists(
            st.text(
                alphabet=string.ascii_uppercase + string.digits + "-/", min_size=1, max_size=35
            ),
            max_size=8,
            unique=True,
        )
    )
    return [
        {
            "end_to_end_id": e2e,
            "amount_cents": draw(st.integers(0, 10**11)),
            "status": (status := draw(st.sampled_from(["ACSC", "RJCT"]))),
            "reason": draw(st.sampled_from(["AC01", "AC04", "AM04", "MD06", "MS02"]))
            if status == "RJCT"
            else None,
            **({"collection_date": draw(st.dates())} if draw(st.booleans()) else {}),
        }
        for e2e in ids
    ]


@given(
    pain_transactions(),
    st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
)
@ROUND_TRIP
def test_pain_round_trip(transactions, created):
    data = write_pain002("STS", created, "ORIG-1", transactions)
    parsed = parse_pain002("PRLV_20240206.xml", data)
    if not transactions:
        assert only(parsed).locator == "file"
        assert "lists no transaction" in parsed.quarantine[0].reason
        return
    check_invariants(parsed, "pain002")
    assert parsed.quarantine == []
    for tx, row in zip(transactions, parsed.tables["payment"], strict=True):
        assert row["payment_id"] == f"prlv:ORIG-1:{tx['end_to_end_id']}"
        assert row["amount_cents"] == tx["amount_cents"]
        assert row["status"] == {"ACSC": "paid", "RJCT": "rejected"}[tx["status"]]
        assert row["reject_reason"] == tx["reason"]
        # Without a collection date: the report's creation date, in Paris time.
        assert row["paid_on"] == tx.get("collection_date", created.astimezone(PARIS).date())


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"<TxSts>ACSC</TxSts>", b"<TxSts>PDNG</TxSts>", "TxSts is 'PDNG', expected ACSC or RJCT"),
        (b'Ccy="EUR">12.50<', b'Ccy="EUR">12,50<', "'12,50' is not a non-negative decimal"),
        (b'Ccy="EUR">12.50<', b'Ccy="USD">12.50<', "currency 'USD', expected 'EUR'"),
        (b"<ReqdColltnDt>2024-02-05<", b"<ReqdColltnDt>2024-13-05<", "'2024-13-05' is not a valid"),
        (b"<OrgnlEndToEndId>202401000042<", b"<OrgnlEndToEndId><", "OrgnlEndToEndId is empty"),
    ],
)
def test_pain_transaction_problems(old, new, message):
    parsed = parse_pain002("PRLV_20240206.xml", pain().replace(old, new, 1))
    check_invariants(parsed, "pain002")
    rejected = only(parsed)
    assert rejected.locator.startswith("TxInfAndSts[1]")
    assert message in rejected.reason
    assert rejected.raw.startswith("<TxInfAndSts>") and rejected.raw.endswith("</TxInfAndSts>")
    assert len(parsed.tables["payment"]) == 2


def test_pain_duplicate_end_to_end_id():
    txs = [*PAIN_TXS, dict(PAIN_TXS[0])]
    parsed = parse_pain002("PRLV_20240206.xml", pain(txs))
    rejected = only(parsed)
    assert rejected.locator.startswith("TxInfAndSts[4]/OrgnlEndToEndId")
    assert "duplicate OrgnlEndToEndId '202401000042' (already in TxInfAndSts[1]" in rejected.reason


def test_pain_without_original_message_id_quarantines_every_transaction():
    data = pain().replace(b"<OrgnlMsgId>PRLV-2024-02</OrgnlMsgId>", b"")
    parsed = parse_pain002("PRLV_20240206.xml", data)
    assert parsed.tables["payment"] == [] and parsed.rows_read == 3
    assert all("no OrgnlGrpInfAndSts/OrgnlMsgId" in r.reason for r in parsed.quarantine)


def test_pain_without_dates_quarantines_undated_transactions():
    data = pain().replace(b"<CreDtTm>2024-02-05T23:30:00+00:00</CreDtTm>", b"")
    parsed = parse_pain002("PRLV_20240206.xml", data)
    rejected = only(parsed)
    assert rejected.locator.startswith("TxInfAndSts[3]")
    assert "no ReqdColltnDt and the report has no GrpHdr/CreDtTm" in rejected.reason


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<Document", "invalid XML"),
        (pain().replace(b"pain.002.001.03", b"pain.002.001.10"), "expected 'Document' in"),
        (pain().replace(b"CstmrPmtStsRpt", b"Other"), "no CstmrPmtStsRpt"),
        ("<?xml version='1.0' encoding='UTF-8'?><a>é</a>".encode("latin-1"), "not valid UTF-8"),
    ],
)
def test_pain_unreadable_files(data, message):
    parsed = parse_pain002("PRLV_20240206.xml", data)
    check_invariants(parsed, "pain002")
    assert only(parsed).locator == "file" and message in parsed.quarantine[0].reason


@given(st.binary(max_size=2000))
@FUZZ
def test_pain_parser_never_raises_on_arbitrary_bytes(data):
    check_invariants(parse_pain002("PRLV_20240206.xml", data), "pain002")


@given(mutated(pain(), st.binary(max_size=80)))
@FUZZ
def test_pain_parser_on_mutated_files(data):
    check_invariants(parse_pain002("PRLV_20240206.xml", data), "pain002")


# =============================================================================================
# PayFiP and desk CSV files
# =============================================================================================

PAYFIP_ROWS = [
    {
        "refdet": "202401000042",
        "idop": "OP0001",
        "numauto": "123456",
        "montant": 1250,
        "dattrans": date(2024, 2, 2),
        "heurtrans": time(14, 5),
        "resultrans": "P",
        "mel": "marie@example.org",
        "exer": 2024,
    },
    {
        "refdet": "202401000043",
        "idop": "OP0002",
        "numauto": "",
        "montant": 990,
        "dattrans": date(2024, 7, 2),
        "heurtrans": time(9, 0),
        "resultrans": "R",
        "mel": "",
        "exer": 2024,
    },
    {
        "refdet": "20240100044",
        "idop": "OP0003",
        "numauto": "",
        "montant": 3000,
        "dattrans": date(2024, 2, 2),
        "heurtrans": time(23, 59),
        "resultrans": "A",
        "mel": "",
        "exer": 2024,
    },
]
CAISSE_ROWS = [
    {
        "recu": "R-1",
        "date": date(2024, 2, 2),
        "mode": "ESPECES",
        "montant_centimes": 2000,
        "num_facture": "202401000042",
        "payeur": "Élodie Dupré",
        "num_cheque": "",
    },
    {
        "recu": "R-2",
        "date": date(2024, 2, 2),
        "mode": "CHEQUE",
        "montant_centimes": 4550,
        "num_facture": "",
        "payeur": "MARTIN",
        "num_cheque": "1234567",
    },
    {
        "recu": "R-3",
        "date": date(2024, 2, 3),
        "mode": "CESU",
        "montant_centimes": 1500,
        "num_facture": "2024010000X",
        "payeur": "N'Diaye",
        "num_cheque": "CESU-99",
    },
    {
        "recu": "R-4",
        "date": date(2024, 2, 3),
        "mode": "CB",
        "montant_centimes": 800,
        "num_facture": "202401000050",
        "payeur": "",
        "num_cheque": "",
    },
]


def test_payfip_writer_layout():
    data = write_payfip_csv(PAYFIP_ROWS[:1])
    assert data == (
        b"refdet;idop;numauto;montant;dattrans;heurtrans;resultrans;mel;exer\n"
        b"202401000042;OP0001;123456;1250;02022024;1405;P;marie@example.org;2024\n"
    )


def test_caisse_writer_layout():
    data = write_caisse_csv(CAISSE_ROWS[:1])
    assert (
        data
        == (
            "recu;date;mode;montant_centimes;num_facture;payeur;num_cheque\n"
            "R-1;02/02/2024;ESPECES;2000;202401000042;Élodie Dupré;\n"
        ).encode()
    )


def test_payfip_parse():
    parsed = parse_payfip("PAYFIP_20240202.csv", write_payfip_csv(PAYFIP_ROWS))
    check_invariants(parsed, "payfip")
    paid, refused, abandoned = parsed.tables["payment"]
    assert paid == {
        "payment_id": "payfip:OP0001",
        "source": "payfip",
        "channel": "online_card",
        "status": "paid",
        "amount_cents": 1250,
        "paid_on": date(2024, 2, 2),
        "paid_at": datetime(2024, 2, 2, 14, 5, tzinfo=PARIS),
        "invoice_ref": "202401000042",
        "payer_name": None,
        "payer_email": "marie@example.org",
        "operation_ref": "OP0001",
        "auth_number": "123456",
        "cheque_number": None,
        "reject_reason": None,
        "fiscal_year": 2024,
        "file_name": "PAYFIP_20240202.csv",
        "line_no": 2,
    }
    assert paid["paid_at"].utcoffset() == timedelta(hours=1)
    assert refused["paid_at"].utcoffset() == timedelta(hours=2)  # summer time
    assert (refused["status"], refused["auth_number"], refused["payer_email"]) == (
        "refused",
        None,
        None,
    )
    assert abandoned["status"] == "abandoned" and abandoned["line_no"] == 4


def test_caisse_parse():
    parsed = parse_caisse("CAISSE_20240202.csv", write_caisse_csv(CAISSE_ROWS))
    check_invariants(parsed, "caisse")
    rows = parsed.tables["payment"]
    assert [r["channel"] for r in rows] == ["cash", "cheque", "cesu", "desk_card"]
    assert all(r["status"] == "paid" and r["paid_at"] is None for r in rows)
    assert rows[0]["payer_name"] == "Élodie Dupré" and rows[0]["cheque_number"] is None
    assert rows[1]["invoice_ref"] is None and rows[1]["cheque_number"] == "1234567"
    assert rows[2]["invoice_ref"] == "2024010000X"  # mistyped references are kept as they are
    assert rows[3]["payer_name"] is None
    assert rows[0]["payment_id"] == "caisse:R-1" and rows[0]["paid_on"] == date(2024, 2, 2)


CSV_TEXT = st.text(
    alphabet=st.characters(exclude_characters=";\r\n", exclude_categories=("Cs",)), max_size=20
).map(str.strip)
IDS = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=20)


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "refdet": CSV_TEXT,
                "idop": IDS,
                "numauto": CSV_TEXT,
                "montant": st.integers(0, 10**12),
                "dattrans": st.dates(date(1900, 1, 1), date(2100, 12, 31)),
                "heurtrans": st.times(),
                "resultrans": st.sampled_from("PRA"),
                "mel": CSV_TEXT,
                "exer": st.integers(1000, 9999),
            }
        ),
        max_size=6,
        unique_by=lambda r: r["idop"],
    )
)
@ROUND_TRIP
def test_payfip_round_trip(rows):
    parsed = parse_payfip("PAYFIP_20240202.csv", write_payfip_csv(rows))
    check_invariants(parsed, "payfip")
    assert parsed.quarantine == []
    for row, out in zip(rows, parsed.tables["payment"], strict=True):
        at = row["heurtrans"]
        assert out["payment_id"] == f"payfip:{row['idop']}"
        assert out["amount_cents"] == row["montant"]
        assert out["paid_at"] == datetime.combine(
            row["dattrans"], time(at.hour, at.minute), tzinfo=PARIS
        )
        assert out["invoice_ref"] == (row["refdet"] or None)
        assert out["auth_number"] == (row["numauto"] or None)
        assert out["payer_email"] == (row["mel"] or None)
        assert out["fiscal_year"] == row["exer"]


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "recu": IDS,
                "date": st.dates(date(1900, 1, 1), date(2100, 12, 31)),
                "mode": st.sampled_from(["ESPECES", "CHEQUE", "CESU", "CB"]),
                "montant_centimes": st.integers(0, 10**12),
                "num_facture": CSV_TEXT,
                "payeur": CSV_TEXT,
                "num_cheque": CSV_TEXT,
            }
        ),
        max_size=6,
        unique_by=lambda r: r["recu"],
    )
)
@ROUND_TRIP
def test_caisse_round_trip(rows):
    parsed = parse_caisse("CAISSE_20240202.csv", write_caisse_csv(rows))
    check_invariants(parsed, "caisse")
    assert parsed.quarantine == []
    for row, out in zip(rows, parsed.tables["payment"], strict=True):
        assert out["payment_id"] == f"caisse:{row['recu']}"
        assert (out["amount_cents"], out["paid_on"]) == (row["montant_centimes"], row["date"])
        assert out["invoice_ref"] == (row["num_facture"] or None)
        assert out["payer_name"] == (row["payeur"] or None)
        assert out["cheque_number"] == (row["num_cheque"] or None)


PAYFIP_HEADER = "refdet;idop;numauto;montant;dattrans;heurtrans;resultrans;mel;exer"
CAISSE_HEADER = "recu;date;mode;montant_centimes;num_facture;payeur;num_cheque"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (PAYFIP_HEADER + ";extra", "unknown column(s) 'extra'"),
        (PAYFIP_HEADER.replace(";mel", ""), "missing column(s) 'mel'"),
        (PAYFIP_HEADER.replace("montant", "amount"), "unknown column(s) 'amount'; missing"),
        (PAYFIP_HEADER + ";idop", "repeated column(s) 'idop'"),
        ("", "missing column(s)"),
    ],
)
def test_payfip_wrong_header_rejects_the_file(header, message):
    data = (header + "\nX;OP1;;100;02022024;1000;P;;2024\n").encode()
    parsed = parse_payfip("PAYFIP_20240202.csv", data)
    check_invariants(parsed, "payfip")
    assert only(parsed).locator == "file"
    assert message in parsed.quarantine[0].reason


def test_csv_columns_in_another_order_are_read_by_name():
    data = (
        b"idop;refdet;numauto;montant;dattrans;heurtrans;resultrans;mel;exer\n"
        b"OP1;202401000042;;100;02022024;1000;P;;2024\n"
    )
    [row] = parse_payfip("PAYFIP_20240202.csv", data).tables["payment"]
    assert (row["operation_ref"], row["invoice_ref"]) == ("OP1", "202401000042")


@pytest.mark.parametrize(
    ("line", "locator", "message"),
    [
        (
            "X;OP1;;12,50;02022024;1000;P;;2024",
            "field montant",
            "montant '12,50' is not a whole non-negative number of cents",
        ),
        ("X;OP1;;-100;02022024;1000;P;;2024", "field montant", "montant '-100'"),
        (
            "X;OP1;;100;30022024;1000;P;;2024",
            "field dattrans",
            "dattrans '30022024' is not a valid DDMMYYYY date",
        ),
        ("X;OP1;;100;2024-02-02;1000;P;;2024", "field dattrans", "'2024-02-02'"),
        ("X;OP1;;100;02022024;2460;P;;2024", "field heurtrans", "heurtrans '2460' is not"),
        ("X;OP1;;100;02022024;1000;OK;;2024", "field resultrans", "resultrans 'OK' is not P"),
        ("X;OP1;;100;02022024;1000;P;;24", "field exer", "exer '24' is not a 4-digit year"),
        ("X;;;100;02022024;1000;P;;2024", "field idop", "idop is empty"),
        ("X;OP1;;100;02022024;1000;P;2024", "line 2", "8 fields, expected 9"),
    ],
)
def test_payfip_bad_lines_are_quarantined(line, locator, message):
    good = "Y;OP9;;100;02022024;1000;P;;2024"
    data = f"{PAYFIP_HEADER}\n{line}\n{good}\n".encode()
    parsed = parse_payfip("PAYFIP_20240202.csv", data)
    check_invariants(parsed, "payfip")
    rejected = only(parsed)
    assert rejected.locator.startswith("line 2") and rejected.locator.endswith(locator)
    assert message in rejected.reason
    assert rejected.raw == line
    assert [r["line_no"] for r in parsed.tables["payment"]] == [3]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("R-1;2024-02-02;ESPECES;100;;A;", "date '2024-02-02' is not a valid DD/MM/YYYY date"),
        ("R-1;31/04/2024;ESPECES;100;;A;", "date '31/04/2024' is not a valid"),
        ("R-1;02/02/2024;VIREMENT;100;;A;", "mode 'VIREMENT' is not ESPECES, CHEQUE, CESU or CB"),
        ("R-1;02/02/2024;CB;1.5;;A;", "montant_centimes '1.5' is not a whole"),
        (";02/02/2024;CB;100;;A;", "recu is empty"),
        ('R-1;02/02/2024;CB;100;;"A;B";', "8 fields, expected 7"),
    ],
)
def test_caisse_bad_lines_are_quarantined(line, message):
    data = f"{CAISSE_HEADER}\n{line}\n".encode()
    parsed = parse_caisse("CAISSE_20240202.csv", data)
    check_invariants(parsed, "caisse")
    assert message in only(parsed).reason


def test_csv_duplicate_ids_are_quarantined():
    rows = [CAISSE_ROWS[0], CAISSE_ROWS[1], dict(CAISSE_ROWS[0], montant_centimes=1)]
    parsed = parse_caisse("CAISSE_20240202.csv", write_caisse_csv(rows))
    rejected = only(parsed)
    assert rejected.locator == "line 4 field recu"
    assert "duplicate recu 'R-1' (already on line 2" in rejected.reason


def test_csv_wrong_encoding_rejects_the_file():
    data = write_caisse_csv(CAISSE_ROWS).decode("utf-8").encode("latin-1")
    parsed = parse_caisse("CAISSE_20240202.csv", data)
    check_invariants(parsed, "caisse")
    rejected = only(parsed)
    assert rejected.locator == "file"
    assert "not valid UTF-8" in rejected.reason and "(line 2)" in rejected.reason
    assert "\\xc9lodie" in rejected.raw  # the undecodable byte is kept, escaped


def test_csv_crlf_bom_and_blank_lines_are_accepted():
    data = b"\xef\xbb\xbf" + write_caisse_csv(CAISSE_ROWS).replace(b"\n", b"\r\n") + b"\r\n"
    parsed = parse_caisse("CAISSE_20240202.csv", data)
    assert parsed.quarantine == [] and len(parsed.tables["payment"]) == 4
    assert parsed.tables["payment"][0]["operation_ref"] == "R-1"


def test_csv_empty_file_is_rejected():
    parsed = parse_payfip("PAYFIP_20240202.csv", b"")
    assert only(parsed).locator == "file" and "empty" in parsed.quarantine[0].reason
    # A header alone is a valid file without payments.
    parsed = parse_payfip("PAYFIP_20240202.csv", (PAYFIP_HEADER + "\n").encode())
    assert parsed.rows_read == 0 and parsed.quarantine == []


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ([dict(CAISSE_ROWS[0], payeur="A;B")], ValueError),
        ([dict(CAISSE_ROWS[0], payeur="A\nB")], ValueError),
        ([dict(CAISSE_ROWS[0], montant_centimes="20")], TypeError),
        ([dict(CAISSE_ROWS[0], date="02/02/2024")], TypeError),
    ],
)
def test_csv_writers_refuse_what_the_format_cannot_carry(rows, error):
    with pytest.raises(error):
        write_caisse_csv(rows)


@pytest.mark.parametrize("kind", ["payfip", "caisse"])
@given(data=st.binary(max_size=1500))
@FUZZ
def test_csv_parsers_never_raise_on_arbitrary_bytes(kind, data):
    parser, name = PARSERS[kind]
    check_invariants(parser(name, data), kind)


@given(
    mutated(write_payfip_csv(PAYFIP_ROWS), st.text(max_size=60).map(str.encode)),
    mutated(write_caisse_csv(CAISSE_ROWS), st.text(max_size=60).map(str.encode)),
)
@FUZZ
def test_csv_parsers_on_mutated_files(payfip, caisse):
    check_invariants(parse_payfip("PAYFIP_20240202.csv", payfip), "payfip")
    check_invariants(parse_caisse("CAISSE_20240202.csv", caisse), "caisse")


# =============================================================================================
# Dispatch
# =============================================================================================


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("RELEVE_20240202.cfonb", "cfonb120"),
        ("RELEVE_30004_20240202_2.cfonb", "cfonb120"),
        ("RELEVE_20240202.xml", "camt053"),
        ("PAYFIP_20240202.csv", "payfip"),
        ("PAYFIP_20240202_2.csv", "payfip"),
        ("CAISSE_20240202.csv", "caisse"),
        ("PRLV_20240206.xml", "pain002"),
        ("PRLV_20240206_3.xml", "pain002"),
        ("outgoing/2024/02/06/PRLV_20240206.xml", "pain002"),
        ("PRLV_20240206.xml.part", None),
        ("PRLV_20240206.xml.sha256", None),
        ("PAYFIP_202402.csv", None),
        ("PAYFIP_20240202.CSV", None),
        ("payfip_20240202.csv", None),
        ("RELEVE_.cfonb", None),
        ("README.txt", None),
    ],
)
def test_file_kind(name, kind):
    assert file_kind(name) == kind


def test_parse_file_dispatches_on_the_name():
    assert parse_file("RELEVE_1.cfonb", cfonb_bytes(FIXTURE)).kind == "cfonb120"
    assert parse_file("RELEVE_1.xml", camt()).kind == "camt053"
    assert parse_file("PRLV_20240206.xml", pain()).rows_read == 3
    assert parse_file("PAYFIP_20240202.csv", write_payfip_csv(PAYFIP_ROWS)).kind == "payfip"
    parsed = parse_file("CAISSE_20240202_2.csv", write_caisse_csv(CAISSE_ROWS))
    assert parsed.kind == "caisse"
    assert {r["file_name"] for r in parsed.tables["payment"]} == {"CAISSE_20240202_2.csv"}


def test_parse_file_unknown_name():
    parsed = parse_file("notes.txt", b"hello")
    assert parsed.kind == "unknown" and parsed.tables == {} and parsed.rows_read == 1
    rejected = only(parsed)
    assert rejected.locator == "file" and rejected.raw == "hello"
    assert rejected.reason.startswith("unknown file name pattern 'notes.txt'")


def test_parse_file_turns_a_parser_bug_into_a_file_item(monkeypatch):
    from schemas.treasury import dispatch

    def broken(name, data):
        raise RuntimeError("boom")

    monkeypatch.setitem(dispatch.PARSERS, "payfip", broken)
    parsed = parse_file("PAYFIP_20240202.csv", b"x")
    assert only(parsed).locator == "file" and "RuntimeError: boom" in parsed.quarantine[0].reason


@given(
    st.sampled_from(sorted(name for _, name in PARSERS.values()) + ["other.bin"]),
    st.binary(max_size=500),
)
@FUZZ
def test_parse_file_never_raises(name, data):
    parsed = parse_file(name, data)
    assert parsed.rows_read == sum(
        len(rows) for table, rows in parsed.tables.items() if table != "bank_statement"
    ) + len(parsed.quarantine)
