"""Treasury (single payment office, "régie unique") file formats: parsers and writers.

Formats: CFONB 120 and camt.053 bank statements, PayFiP and desk-receipt CSV files, pain.002
direct-debit status reports. Parsers turn a file into canonical warehouse rows plus a
quarantine (``Parsed``); writers produce files for the simulated town. See
docs/treasury-formats.md.
"""

from .camt053 import parse_camt053, write_camt053
from .cfonb import decode_amount, encode_amount, parse_cfonb, write_cfonb
from .csv_files import parse_caisse, parse_payfip, write_caisse_csv, write_payfip_csv
from .dispatch import file_kind, parse_file
from .model import (
    BANK_OPERATION_COLUMNS,
    BANK_STATEMENT_COLUMNS,
    PAYMENT_COLUMNS,
    PRIMARY_TABLE,
    BankOperation,
    Parsed,
    Rejected,
    Statement,
    is_balanced,
)
from .pain002 import parse_pain002, write_pain002

__all__ = [
    "BANK_OPERATION_COLUMNS",
    "BANK_STATEMENT_COLUMNS",
    "PAYMENT_COLUMNS",
    "PRIMARY_TABLE",
    "BankOperation",
    "Parsed",
    "Rejected",
    "Statement",
    "decode_amount",
    "encode_amount",
    "file_kind",
    "is_balanced",
    "parse_caisse",
    "parse_camt053",
    "parse_cfonb",
    "parse_file",
    "parse_pain002",
    "parse_payfip",
    "write_caisse_csv",
    "write_camt053",
    "write_cfonb",
    "write_pain002",
    "write_payfip_csv",
]
