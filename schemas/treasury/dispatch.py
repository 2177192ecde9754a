"""Pick the parser of a payment-office file from its name.

=========================  =============  ===============================================
file name                  kind           parser
=========================  =============  ===============================================
``RELEVE_*.cfonb``         ``cfonb120``   ``cfonb.parse_cfonb``
``RELEVE_*.xml``           ``camt053``    ``camt053.parse_camt053``
``PAYFIP_YYYYMMDD.csv``    ``payfip``     ``csv_files.parse_payfip``
``CAISSE_YYYYMMDD.csv``    ``caisse``     ``csv_files.parse_caisse``
``PRLV_YYYYMMDD.xml``      ``pain002``    ``pain002.parse_pain002``
=========================  =============  ===============================================

A re-delivery suffix (``_2``, ``_3``...) may stand before the extension. Only the base name
counts (a leading folder path is ignored); ``.part`` and ``.sha256`` files match nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .camt053 import parse_camt053
from .cfonb import parse_cfonb
from .csv_files import parse_caisse, parse_payfip
from .model import Parsed, file_rejected
from .pain002 import parse_pain002

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"RELEVE_.+\.cfonb"), "cfonb120"),
    (re.compile(r"RELEVE_.+\.xml"), "camt053"),
    (re.compile(r"PAYFIP_[0-9]{8}(_[0-9]+)?\.csv"), "payfip"),
    (re.compile(r"CAISSE_[0-9]{8}(_[0-9]+)?\.csv"), "caisse"),
    (re.compile(r"PRLV_[0-9]{8}(_[0-9]+)?\.xml"), "pain002"),
)

PARSERS: dict[str, Callable[[str, bytes], Parsed]] = {
    "cfonb120": parse_cfonb,
    "camt053": parse_camt053,
    "payfip": parse_payfip,
    "caisse": parse_caisse,
    "pain002": parse_pain002,
}


def _base_name(name: str) -> str:
    return re.split(r"[/\\]", name)[-1]


def file_kind(name: str) -> str | None:
    """The kind of a payment-office file from its name, or None if the name matches no format."""
    base = _base_name(name)
    for pattern, kind in _PATTERNS:
        if pattern.fullmatch(base):
            return kind
    return None


def parse_file(name: str, data: bytes) -> Parsed:
    """Parse a payment-office file, the format chosen from its name. Never raises on bad input.

    An unknown name gives kind "unknown" with one quarantined item (locator "file"). A parser
    failure that is a bug rather than bad input is also turned into one "file" item, so that
    one file never stops a whole run; the parsers' own tests call them directly.
    """
    kind = file_kind(name)
    if kind is None:
        return file_rejected(
            "unknown",
            f"unknown file name pattern {_base_name(name)!r}: expected RELEVE_*.cfonb, "
            "RELEVE_*.xml, PAYFIP_YYYYMMDD.csv, CAISSE_YYYYMMDD.csv or PRLV_YYYYMMDD.xml "
            "(optionally with a re-delivery suffix such as _2 before the extension)",
            data,
        )
    try:
        return PARSERS[kind](name, data)
    except Exception as exc:  # noqa: BLE001 - last-resort net, see the docstring
        return file_rejected(
            kind, f"internal parser error ({type(exc).__name__}: {exc}); please report it", data
        )
