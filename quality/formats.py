"""Formats of French administrative identifiers and contact data, as plain Python.

Each ``is_*`` function says whether one value is valid (``None`` is never valid:
callers decide whether a missing value is a problem); each ``suggest_*``
function returns a corrected value when the correction is certain (spaces,
case, a lost leading zero, a well-known mistyped e-mail domain), else ``None``.
The Great Expectations suites (``quality.suites``) use the same functions, so
what the web page suggests and what the nightly run checks never disagree.
"""

from __future__ import annotations

import re

EMAIL_RE = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}$")
# Metropolitan départements 01-95 (Corsica's postcodes start with 20), overseas 97x/98x.
POSTCODE_RE = re.compile(r"^(?:0[1-9]|[1-8]\d|9[0-8])\d{3}$")
RNA_RE = re.compile(r"^W\d{9}$")
SIRET_RE = re.compile(r"^\d{14}$")
IBAN_RE = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
IBAN_LENGTHS = {"FR": 27, "MC": 27, "DE": 22, "BE": 16, "ES": 24, "IT": 27, "LU": 20, "CH": 21,
                "GB": 22, "NL": 18, "PT": 25}
# Domains people mistype often, and what they meant.
EMAIL_DOMAIN_TYPOS = {
    "gmail.con": "gmail.com", "gmail.co": "gmail.com", "gmail.cm": "gmail.com",
    "gmial.com": "gmail.com", "gmai.com": "gmail.com", "gmal.com": "gmail.com",
    "gamil.com": "gmail.com", "gmail.fr": "gmail.com", "hotmial.fr": "hotmail.fr",
    "hotmail.con": "hotmail.com", "hotmal.fr": "hotmail.fr", "homail.fr": "hotmail.fr",
    "orange.f": "orange.fr", "oragne.fr": "orange.fr", "orange.com": "orange.fr",
    "wanadoo.f": "wanadoo.fr", "wanado.fr": "wanadoo.fr", "free.f": "free.fr",
    "yahoo.f": "yahoo.fr", "yaho.fr": "yahoo.fr", "laposte.fr": "laposte.net",
    "outlok.fr": "outlook.fr", "outlook.f": "outlook.fr", "sfr.f": "sfr.fr",
}
_PHONE_SEPARATORS = re.compile(r"[\s.\-/()\u00a0]")


def _text(value) -> str | None:
    if value is None or not isinstance(value, str):
        return None
    return value


# ------------------------------------------------------------------ e-mail
def is_email(value) -> bool:
    """Syntactically valid, lower-case, and not on a well-known mistyped domain."""
    v = _text(value)
    if not v or len(v) > 254 or EMAIL_RE.match(v) is None:
        return False
    return v.rsplit("@", 1)[1] not in EMAIL_DOMAIN_TYPOS


def suggest_email(value) -> str | None:
    """The address with blanks removed, lower-cased, commas and doubled dots fixed and a
    well-known mistyped domain corrected, when that makes it valid."""
    v = _text(value)
    if not v:
        return None
    s = re.sub(r"\s+", "", v).lower().replace(",", ".").rstrip(".")
    s = re.sub(r"\.{2,}", ".", s)
    if s.count("@") == 1:
        local, domain = s.split("@")
        domain = EMAIL_DOMAIN_TYPOS.get(domain, domain)
        s = f"{local}@{domain}"
    return s if s != v and is_email(s) else None


# ------------------------------------------------------------------ phone
def phone_digits(value) -> str | None:
    """A French number as its ten national digits (0XXXXXXXXX), or None."""
    v = _text(value)
    if not v:
        return None
    s = _PHONE_SEPARATORS.sub("", v.replace("(0)", ""))
    if s.startswith("+33"):
        s = "0" + s[3:]
    elif s.startswith("0033"):
        s = "0" + s[4:]
    if re.fullmatch(r"0[1-9]\d{8}", s):
        return s
    return None


def is_french_phone(value) -> bool:
    """A French number in any usual writing (06 12 34 56 78, 06.12.34.56.78,
    +33 6 12 34 56 78, 0033612345678), or a foreign number in international form."""
    if phone_digits(value) is not None:
        return True
    v = _text(value)
    if not v:
        return False
    s = _PHONE_SEPARATORS.sub("", v)
    return bool(re.fullmatch(r"\+(?!33)[1-9]\d{7,14}", s))


def suggest_phone(value) -> str | None:
    """A lost leading zero restored (612345678 -> 06 12 34 56 78)."""
    v = _text(value)
    if not v:
        return None
    s = _PHONE_SEPARATORS.sub("", v)
    if re.fullmatch(r"[1-9]\d{8}", s):
        d = "0" + s
        return " ".join(d[i:i + 2] for i in range(0, 10, 2))
    return None


# --------------------------------------------------------------- postcode
def is_postcode(value) -> bool:
    v = _text(value)
    return bool(v) and POSTCODE_RE.match(v) is not None


def suggest_postcode(value) -> str | None:
    """Blanks removed, or the leading zero a spreadsheet dropped (1000 -> 01000)."""
    v = _text(value)
    if not v:
        return None
    s = re.sub(r"\s+", "", v)
    if re.fullmatch(r"\d{4}", s):
        s = "0" + s
    return s if s != v and is_postcode(s) else None


# -------------------------------------------------------------------- RNA
def is_rna(value) -> bool:
    v = _text(value)
    return bool(v) and RNA_RE.match(v) is not None


def suggest_rna(value) -> str | None:
    v = _text(value)
    if not v:
        return None
    s = re.sub(r"\s+", "", v).upper()
    return s if s != v and is_rna(s) else None


# ------------------------------------------------------------------ SIRET
def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def is_siret(value) -> bool:
    """14 digits whose SIREN and SIRET Luhn keys are right (La Poste's establishments,
    SIREN 356000000, may use a sum of digits divisible by 5 instead)."""
    v = _text(value)
    if not v or SIRET_RE.match(v) is None:
        return False
    if luhn_ok(v[:9]) and luhn_ok(v):
        return True
    return v.startswith("356000000") and sum(int(c) for c in v) % 5 == 0


def suggest_siret(value) -> str | None:
    v = _text(value)
    if not v:
        return None
    s = re.sub(r"[\s.]+", "", v)
    return s if s != v and is_siret(s) else None


# ------------------------------------------------------------------- IBAN
def iban_check_ok(iban: str) -> bool:
    moved = iban[4:] + iban[:4]
    numeric = "".join(str(int(c, 36)) for c in moved)
    return int(numeric) % 97 == 1


def is_iban(value) -> bool:
    """ISO 13616: country, two check digits (mod 97 = 1), the national length."""
    v = _text(value)
    if not v or IBAN_RE.match(v) is None:
        return False
    expected = IBAN_LENGTHS.get(v[:2])
    if expected is not None and len(v) != expected:
        return False
    return iban_check_ok(v)


def suggest_iban(value) -> str | None:
    v = _text(value)
    if not v:
        return None
    s = re.sub(r"[\s-]+", "", v).upper()
    return s if s != v and is_iban(s) else None
