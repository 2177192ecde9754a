"""French formatting of report values, shared by the Excel and HTML renderers.

The finance team reads ``1 234,56 €``, ``03/07/2026``, ``12,5 %``, ``juillet 2026`` and
``S27 2026``; every renderer calls these functions so a figure never reads one way in the
workbook's cover sheet and another way in the HTML page. Thousands are separated by a
narrow no-break space (U+202F) and units by a no-break space (U+00A0), as the French
typographic rules (and Excel/LibreOffice in French) write them, so a figure never breaks
across two lines.

Missing values (``None``, ``NaN``, ``NaT``) are written as an empty string.
Percentages are fractions (0.125 is 12,5 %), as in Excel.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from zoneinfo import ZoneInfo

import pandas as pd

THIN = "\u202f"  # narrow no-break space: thousands separator, before % and €
NBSP = "\u00a0"  # no-break space
PARIS = ZoneInfo("Europe/Paris")

MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")
MONTHS_SHORT = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août",
                "sept.", "oct.", "nov.", "déc.")
_WEEK_RE = re.compile(r"^(\d{4})-?W(\d{1,2})$")


def missing(value) -> bool:
    """None, NaN, NaT or pandas' NA."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, arrays: not a scalar, not missing
        return False


def number(value, decimals: int = 0) -> str:
    """``1 234`` or ``1 234,5``: French separators, rounded half away from zero."""
    if missing(value):
        return ""
    x = float(value)
    q = round(abs(x) * 10 ** decimals + 1e-9) / 10 ** decimals  # half away from zero
    whole, _, frac = f"{q:.{decimals}f}".partition(".")
    groups = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    text = THIN.join(groups) + ("," + frac if decimals else "")
    return ("-" if x < 0 and q != 0 else "") + text


def euros(cents, decimals: int = 2) -> str:
    """Integer cents as ``1 234,56 €`` (``decimals=0`` for an axis: ``1 235 €``)."""
    if missing(cents):
        return ""
    return f"{number(int(cents) / 100, decimals)}{NBSP}€"


def cents_to_euros(cents) -> float | None:
    """The amount in euros as a number (what a spreadsheet cell holds)."""
    if missing(cents):
        return None
    return int(cents) / 100


def percent(fraction, decimals: int = 1) -> str:
    """A fraction as ``12,5 %``."""
    if missing(fraction):
        return ""
    return f"{number(float(fraction) * 100, decimals)}{THIN}%"


def as_date(value) -> dt.date | None:
    """A date from a date, datetime, Timestamp or ISO string (``2026-07-03``)."""
    if missing(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, pd.Period):
        return value.start_time.date()
    return pd.Timestamp(str(value)).date()


def date_fr(value) -> str:
    """``03/07/2026``."""
    d = as_date(value)
    return "" if d is None else f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def datetime_fr(value) -> str:
    """An instant as the town reads it: ``03/07/2026 à 14:05`` in Europe/Paris time
    (a naive value is taken as UTC, as the warehouse stores it)."""
    if missing(value):
        return ""
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    local = ts.tz_convert(PARIS)
    return f"{date_fr(local.date())} à {local.hour:02d}:{local.minute:02d}"


def month_start(value) -> dt.date | None:
    """The first day of a month given as ``2026-07``, a Period, a date or a Timestamp."""
    if missing(value):
        return None
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}", value.strip()):
        y, m = value.strip().split("-")
        return dt.date(int(y), int(m), 1)
    d = as_date(value)
    return d.replace(day=1)


def month_fr(value) -> str:
    """``juillet 2026``."""
    d = month_start(value)
    return "" if d is None else f"{MONTHS[d.month - 1]} {d.year}"


def month_short_fr(value) -> str:
    """``juil. 2026``: the same month, short enough for a chart axis."""
    d = month_start(value)
    return "" if d is None else f"{MONTHS_SHORT[d.month - 1]} {d.year}"


def period_fr(start: str, end: str) -> str:
    """``de janvier 2026 à juillet 2026`` (``juillet 2026`` when one month)."""
    if start == end:
        return month_fr(start)
    return f"de {month_fr(start)} à {month_fr(end)}"


def iso_week(value) -> tuple[int, int] | None:
    """(ISO year, ISO week) from ``2026-W27``, ``2026W27``, a weekly Period or any day."""
    if missing(value):
        return None
    if isinstance(value, str):
        m = _WEEK_RE.match(value.strip())
        if m:
            return int(m.group(1)), int(m.group(2))
    d = as_date(value)
    y, w, _ = d.isocalendar()
    return y, w


def week_fr(value) -> str:
    """``S27 2026`` (ISO week number and ISO year)."""
    yw = iso_week(value)
    return "" if yw is None else f"S{yw[1]:02d} {yw[0]}"


def hours(value) -> str:
    """``1,5`` (the header says the unit)."""
    return number(value, 1)


def days(value) -> str:
    """``12,3`` (the header says the unit)."""
    return number(value, 1)


def integer(value) -> str:
    return number(value, 0)


def text(value) -> str:
    return "" if missing(value) else str(value)


#: how a value of each column kind (``model.KINDS``) reads in French
BY_KIND = {
    "text": text, "int": integer, "cents": euros, "pct": percent, "date": date_fr,
    "month": month_fr, "week": week_fr, "hours": hours, "days": days,
}


def cell(value, kind: str) -> str:
    """A value of a column of that kind, as text."""
    return BY_KIND[kind](value)


def axis(value, kind: str) -> str:
    """A value on a chart's axis: euros without cents, otherwise as in a table."""
    if kind == "cents":
        return euros(value, 0)
    if kind == "pct":
        return percent(value, 0)
    if kind in ("hours", "days"):
        return number(value, 0 if not missing(value) and float(value) == int(float(value))
                      else 1)
    if kind == "month":
        return month_short_fr(value)
    return cell(value, kind)


def is_finite(value) -> bool:
    return not missing(value) and math.isfinite(float(value))
