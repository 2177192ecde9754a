"""Identifiers with real check digits (IBAN, RIB key, SIRET/SIREN Luhn, RNA), phone
numbers, e-mail addresses and opaque ids, all drawn from a seeded ``random.Random``."""

from __future__ import annotations

import random

from .names import EMAIL_DOMAINS, strip_accents


def luhn_check_digit(payload: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(payload)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and luhn_check_digit(number[:-1]) == number[-1]


def siret(rng: random.Random) -> str:
    siren8 = str(rng.randint(10_000_000, 99_999_999))
    siren = siren8 + luhn_check_digit(siren8)
    nic4 = f"{rng.randint(1, 9999):04d}"
    body = siren + nic4
    return body + luhn_check_digit(body)


def rna(rng: random.Random) -> str:
    # W + department (44) + 7 digits = W + 9 digits
    return f"W44{rng.randint(0, 9_999_999):07d}"


def rib_key(bank: str, branch: str, account: str) -> str:
    return f"{97 - ((89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97):02d}"


def iban_fr(bank: str, branch: str, account: str) -> str:
    bban = bank + branch + account + rib_key(bank, branch, account)
    numeric = bban + "1527" + "00"  # F=15 R=27
    check = 98 - int(numeric) % 97
    return f"FR{check:02d}{bban}"


FR_BANKS = [("30004", "BNP"), ("30003", "SG"), ("10278", "CM"), ("14445", "CE"),
            ("16606", "CA"), ("20041", "LBP"), ("13807", "BP"), ("30002", "LCL")]


def random_iban(rng: random.Random) -> str:
    bank = rng.choice(FR_BANKS)[0]
    branch = f"{rng.randint(1, 99999):05d}"
    account = f"{rng.randint(0, 99_999_999_999):011d}"
    return iban_fr(bank, branch, account)


def mobile(rng: random.Random) -> str:
    """A 06/07 mobile number, as ten digits."""
    return "0" + rng.choice("67") + f"{rng.randint(0, 99_999_999):08d}"


def format_phone(digits: str, style: int) -> str:
    """Render a 10-digit French number in one of the styles people type."""
    if style == 0:
        return digits
    if style == 1:
        return " ".join(digits[i:i + 2] for i in range(0, 10, 2))
    if style == 2:
        return ".".join(digits[i:i + 2] for i in range(0, 10, 2))
    if style == 3:
        return "+33 " + digits[1] + " " + " ".join(digits[i:i + 2] for i in range(2, 10, 2))
    return "+33" + digits[1:]


def email_for(rng: random.Random, first: str, last: str, birth_year: int | None = None) -> str:
    f = strip_accents(first).lower().replace(" ", "").replace("'", "")
    last_ = strip_accents(last).lower().replace(" ", "").replace("'", "")
    domains = [d for d, _ in EMAIL_DOMAINS]
    weights = [w for _, w in EMAIL_DOMAINS]
    dom = rng.choices(domains, weights)[0]
    k = rng.random()
    if k < 0.45:
        local = f"{f}.{last_}"
    elif k < 0.6:
        local = f"{f[0]}.{last_}"
    elif k < 0.72:
        local = f"{last_}.{f}"
    elif k < 0.85:
        local = f"{f}{last_}{(birth_year or 80) % 100:02d}"
    elif k < 0.93:
        local = f"{f}.{last_}{rng.randint(1, 99)}"
    else:
        local = f"{f}{rng.choice(['44', '85', '49', '56', '29'])}"
    return f"{local}@{dom}"


def uuid4(rng: random.Random) -> str:
    n = rng.getrandbits(128)
    h = f"{n:032x}"
    h = h[:12] + "4" + h[13:16] + "89ab"[int(h[16], 16) & 3] + h[17:]
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def hex_id(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"
