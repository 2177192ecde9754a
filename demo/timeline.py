"""Calendar of the simulated town: Europe/Paris time, public holidays, school holidays
(zone B, académie de Nantes), business days and the opening days of every service.

Dates are handled as ``datetime.date``; timestamps as naive *local* (Europe/Paris wall
clock) ``datetime`` objects, converted to aware ones only when they are written out.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
ONE_DAY = timedelta(days=1)

#: the hour at which a simulated day ("window") ends: window d = (d-1 18:00, d 18:00]
WINDOW_END = time(18, 0)


def easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return date(year, month, day + 1)


@cache
def public_holidays(year: int) -> frozenset[date]:
    e = easter(year)
    return frozenset(
        {
            date(year, 1, 1),
            e + timedelta(days=1),  # lundi de Pâques
            date(year, 5, 1),
            date(year, 5, 8),
            e + timedelta(days=39),  # Ascension
            e + timedelta(days=50),  # lundi de Pentecôte
            date(year, 7, 14),
            date(year, 8, 15),
            date(year, 11, 1),
            date(year, 11, 11),
            date(year, 12, 25),
        }
    )


def is_public_holiday(d: date) -> bool:
    return d in public_holidays(d.year)


def is_business_day(d: date) -> bool:
    return d.weekday() < 5 and not is_public_holiday(d)


def next_business_day(d: date, n: int = 1) -> date:
    """The n-th business day strictly after d."""
    while n > 0:
        d += ONE_DAY
        if is_business_day(d):
            n -= 1
    return d


def business_day_on_or_after(d: date) -> date:
    while not is_business_day(d):
        d += ONE_DAY
    return d


def nth_business_day_of_month(year: int, month: int, n: int) -> date:
    d = date(year, month, 1)
    d = business_day_on_or_after(d)
    for _ in range(n - 1):
        d = next_business_day(d)
    return d


# School holidays, zone B (académie de Nantes). First and last day *without school*
# (weekdays). 2025-2026 is the official calendar; later years follow the usual pattern
# (approximate, documented in docs/simulated-town.md).
_SCHOOL_YEARS = {
    2025: {
        "start": date(2025, 9, 1),
        "end": date(2026, 7, 3),
        "holidays": [
            (date(2025, 10, 20), date(2025, 10, 31)),  # Toussaint
            (date(2025, 12, 22), date(2026, 1, 2)),  # Noël
            (date(2026, 2, 16), date(2026, 2, 27)),  # hiver
            (date(2026, 4, 13), date(2026, 4, 24)),  # printemps
            (date(2026, 5, 15), date(2026, 5, 15)),  # pont de l'Ascension
        ],
    },
    2026: {
        "start": date(2026, 9, 1),
        "end": date(2027, 7, 2),
        "holidays": [
            (date(2026, 10, 19), date(2026, 10, 30)),
            (date(2026, 12, 21), date(2027, 1, 1)),
            (date(2027, 2, 22), date(2027, 3, 5)),
            (date(2027, 4, 19), date(2027, 4, 30)),
            (date(2027, 5, 7), date(2027, 5, 7)),
        ],
    },
}


def school_year_of(d: date) -> int:
    """The school year (by its starting calendar year) a date belongs to; July and August
    belong to the year that just ended (summer holidays)."""
    return d.year if d.month >= 9 else d.year - 1


def _year_info(y: int) -> dict:
    if y in _SCHOOL_YEARS:
        return _SCHOOL_YEARS[y]
    # Generic pattern for other years: start the first weekday of September, end the
    # first Friday of July, holidays at their usual places.
    start = date(y, 9, 1)
    while start.weekday() >= 5:
        start += ONE_DAY
    end = date(y + 1, 7, 1)
    while end.weekday() != 4:
        end += ONE_DAY

    def week_of(month: int, day: int, year: int, weeks: int) -> tuple[date, date]:
        d0 = date(year, month, day)
        d0 -= timedelta(days=d0.weekday())
        return d0, d0 + timedelta(days=7 * weeks - 3)

    return {
        "start": start,
        "end": end,
        "holidays": [
            week_of(10, 20, y, 2),
            week_of(12, 22, y, 2),
            week_of(2, 16, y + 1, 2),
            week_of(4, 15, y + 1, 2),
        ],
    }


@lru_cache(maxsize=4096)
def day_kind(d: date) -> str:
    """'school' (a school day), 'wednesday' (Wednesday in school period: no school, ALSH
    open), 'holiday' (school holidays, weekday), 'public' (public holiday), 'weekend',
    'summer' (summer holidays weekday)."""
    if d.weekday() >= 5:
        return "weekend"
    if is_public_holiday(d):
        return "public"
    y = school_year_of(d)
    info = _year_info(y)
    if d < info["start"]:
        return "summer"
    if d > info["end"]:
        return "summer"
    for a, b in info["holidays"]:
        if a <= d <= b:
            return "holiday"
    if d.weekday() == 2:
        return "wednesday"
    return "school"


def service_open(service: str, d: date) -> bool:
    """Whether a service runs on a date."""
    k = day_kind(d)
    if k in ("weekend", "public"):
        return False
    if service in ("RESTO", "PERI", "SCOL"):
        return k == "school"
    if service == "ALSH":
        if k in ("wednesday", "holiday"):
            # closed between Christmas and New Year
            return not (d.month == 12 and d.day >= 24 or d.month == 1 and d.day <= 2)
        if k == "summer":
            # open in July and August except the week of 15 August
            return d.month in (7, 8) and not (d.month == 8 and 10 <= d.day <= 21)
        return False
    if service == "MULTI":
        if d.month == 12 and d.day >= 24 or d.month == 1 and d.day <= 2:
            return False
        return not (d.month == 8 and 3 <= d.day <= 21)
    if service == "EMM":
        # lessons follow the school calendar (Wednesdays included)
        return k in ("school", "wednesday")
    return False


# ---------------------------------------------------------------------------
# timestamps


def window_of(ts: datetime) -> date:
    """The simulated day ("window") a local timestamp belongs to: (d-1 18:00, d 18:00]."""
    d = ts.date()
    t = ts.time()
    if t > WINDOW_END:
        return d + ONE_DAY
    return d


def window_end(d: date) -> datetime:
    return datetime.combine(d, WINDOW_END)


def at(d: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hour, minute, second)


@lru_cache(maxsize=8192)
def _dash_date(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def legacy_ts(ts: datetime) -> str:
    """DATE_MAJ format: 'YYYY-MM-DD HH:MM:SS', local time."""
    return f"{_dash_date(ts.date())} {ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}"


@lru_cache(maxsize=8192)
def ymd(d: date) -> str:
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


@lru_cache(maxsize=8192)
def dmy_slash(d: date) -> str:
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def parse_ymd(s: str) -> date:
    return date(int(s[:4]), int(s[4:6]), int(s[6:8]))


@lru_cache(maxsize=8192)
def _day_offset(d: date) -> str | None:
    """The UTC offset of a whole local day, or None on the two clock-change days."""
    a = datetime(d.year, d.month, d.day, 0, 0, tzinfo=PARIS).utcoffset()
    b = datetime(d.year, d.month, d.day, 23, 59, tzinfo=PARIS).utcoffset()
    if a != b:
        return None
    return "+02:00" if a == timedelta(hours=2) else "+01:00"


def iso_local(ts: datetime, utc: bool = False) -> str:
    """ISO 8601 with the Europe/Paris offset (or UTC 'Z' when ``utc``)."""
    if not utc and not ts.microsecond:
        d = ts.date()
        off = _day_offset(d)
        if off is not None:
            return f"{_dash_date(d)}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}{off}"
    aware = ts.replace(tzinfo=PARIS)
    if utc:
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return aware.isoformat()


def parse_iso(s: str) -> datetime:
    """Inverse of iso_local: a naive local timestamp."""
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    return datetime.fromisoformat(s).astimezone(PARIS).replace(tzinfo=None)


def add_hours_safe(ts: datetime, hours: float) -> datetime:
    """Add a delay and step out of the spring-forward gap (02:00-03:00 local)."""
    ts = ts + timedelta(hours=hours)
    if ts.hour == 2:
        ts = ts.replace(hour=3)
    return ts


@lru_cache(maxsize=16384)
def cancel_deadline(day: date, notice_h: int) -> datetime:
    """Latest local instant at which a cancellation is timely: 00:00 Europe/Paris of the
    booked day minus the notice, counted in real hours (DST-aware)."""
    midnight = datetime.combine(day, time(0, 0)).replace(tzinfo=PARIS)
    deadline = (midnight.astimezone(UTC) - timedelta(hours=notice_h)).astimezone(PARIS)
    return deadline.replace(tzinfo=None)
