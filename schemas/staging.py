"""Staging: shared helpers and the result type of every source's staging step.

Staging turns raw source records (legacy rows, portal items) into canonical core
rows: parse, type, normalise and validate. A record that fails goes to quarantine
with a reason naming the column, the bad value and what was expected; nothing is
dropped and nothing is guessed. See ``docs/staging.md``.

The helpers here are vectorised: a column is factorised once and its distinct
values are parsed (dates, codes, flags and most text have few distinct values even
in tables of half a million rows), or it is handed to a pandas parser as a whole.
Per-row Python work happens only for the rows that have a problem (to word the
reason) and for the rare text values that look like mojibake.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from schemas.tables import BY_NAME, pandas_dtypes

PARIS = "Europe/Paris"

# Largest integer kept exactly by a float64 (used when numbers arrive as floats).
_MAX_EXACT_FLOAT = 2**53
_MAX_INT64 = 2**63 - 1


@dataclass
class Staged:
    """The outcome of staging one source entity.

    Invariant: ``len(rows) + len(quarantine)`` is the number of input rows, and
    every input source key appears in ``source_keys`` or in
    ``quarantine.source_key`` (exactly once when the input keys are distinct).
    """

    table: str  # core table name (schemas.tables.BY_NAME)
    rows: pd.DataFrame  # canonical rows: BY_NAME[table].data_columns minus "town", in order
    quarantine: pd.DataFrame  # columns ["source_key", "reason"]: one row per rejected input row
    source_keys: pd.Series  # source_key of each row of `rows` (same length, same order)
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)  # other core tables


def output_columns(table: str) -> list[str]:
    """Columns of a core table that staging supplies (data columns but ``town``)."""
    return [c for c in BY_NAME[table].data_columns if c != "town"]


def output_dtypes(table: str) -> dict[str, str]:
    dtypes = pandas_dtypes(table)
    return {c: dtypes[c] for c in output_columns(table)}


# --------------------------------------------------------------------- problems
class Problems:
    """Problems found in the rows of one input, column by column.

    ``add`` takes a boolean mask of the rows with a problem and the message of each
    (an object array aligned with the input, read only where the mask is set, or a
    single message for all of them). Reasons keep the order in which they were
    added and are joined with ``"; "``.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._parts: list[tuple[np.ndarray, Any]] = []
        self.bad = np.zeros(n, dtype=bool)

    def add(self, mask: np.ndarray | None, messages: Any) -> None:
        if mask is None:
            return
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        self._parts.append((mask, messages))
        self.bad |= mask

    def reasons(self) -> np.ndarray:
        """Joined reason of every row (None where the row has no problem)."""
        out = np.full(self.n, None, dtype=object)
        for mask, messages in self._parts:
            idx = np.flatnonzero(mask)
            if isinstance(messages, str):
                msgs: Iterable = [messages] * len(idx)
            else:
                msgs = np.asarray(messages, dtype=object)[idx]
            for i, m in zip(idx.tolist(), msgs):
                out[i] = m if out[i] is None else f"{out[i]}; {m}"
        return out


def show(value: Any, limit: int = 60) -> str:
    """A value as quoted in a reason: its repr, shortened when long."""
    if isinstance(value, str):
        value = value.rstrip()
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 4] + "...'"
    return text


# ------------------------------------------------------------------ factorising
def object_array(values: Iterable[Any]) -> np.ndarray:
    """A 1-D object array of the values (lists and dicts stay elements)."""
    values = list(values) if not isinstance(values, (list, np.ndarray)) else values
    return np.fromiter(values, dtype=object, count=len(values))


def factorize(series: pd.Series | Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Codes (-1 for NULL: None, NaN, NA) and distinct values of a column."""
    if isinstance(series, pd.Series):
        values = series.to_numpy(dtype=object)
    else:
        values = object_array(series)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object)


def expand(per_unique: Sequence, codes: np.ndarray, null: Any = None) -> np.ndarray:
    """Spread values computed per distinct value back to the rows (object array)."""
    arr = np.empty(len(per_unique) + 1, dtype=object)
    arr[: len(per_unique)] = list(per_unique)
    arr[-1] = null
    return arr[codes]


def mask_of(messages: np.ndarray) -> np.ndarray:
    """Rows whose message is set."""
    return pd.notna(messages) if len(messages) else np.zeros(0, dtype=bool)


# ------------------------------------------------------------------------- text
def _cp1252_char(b: int) -> str:
    try:
        return bytes([b]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(b)


# A UTF-8 lead byte (0xC2-0xF4) read as CP1252/Latin-1, followed by a continuation
# byte (0x80-0xBF) read the same way: the mark of UTF-8 text decoded as CP1252.
_CONTINUATION = "".join(_cp1252_char(b) for b in range(0x80, 0xC0))
SUSPICIOUS = re.compile("[\u00c2-\u00f4][" + re.escape(_CONTINUATION) + "]")


def count_suspicious(text: str) -> int:
    """Number of mojibake-looking sequences (e.g. 'Ã©') in a string."""
    return len(SUSPICIOUS.findall(text))


def repair_mojibake(text: str) -> str:
    """Undo UTF-8-read-as-CP1252 mojibake when it is certain, else return ``text``.

    A repair is applied only when ``text.encode("cp1252").decode("utf-8")``
    succeeds and the result has fewer suspicious sequences; it is repeated (at
    most three times) for text that was mangled twice.
    """
    for _ in range(3):
        before = count_suspicious(text)
        if not before:
            break
        try:
            fixed = text.encode("cp1252").decode("utf-8")
        except UnicodeError:
            break
        if count_suspicious(fixed) >= before:
            break
        text = fixed
    return text


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_WHITESPACE = re.compile(r"\s+")

TextMode = Literal["text", "code", "email", "compact", "list"]


def _code_list(value: str) -> str:
    return ";".join(p.strip() for p in value.split(";") if p.strip())


def text_column(series: pd.Series, mode: TextMode = "text") -> pd.Series:
    """Clean a text column; NULL and what cleans to '' give NA.

    text    trailing blanks stripped, mojibake repaired when certain
    code    blanks stripped on both sides (codes and references)
    email   blanks stripped, lower-cased
    compact every blank removed, upper-cased (IBAN)
    list    ';'-separated codes: items stripped, empty items dropped

    The column is factorised and its distinct values cleaned with pandas string
    methods; only the values that look like mojibake go through Python.
    """
    codes, uniques = factorize(series)
    if pd.api.types.infer_dtype(uniques, skipna=True) not in ("string", "empty"):
        uniques = np.array([_as_text(v) for v in uniques], dtype=object)
    u = pd.Series(pd.array(uniques, dtype="string"))
    if mode == "text":
        u = u.str.rstrip()
        odd = u.str.contains(SUSPICIOUS.pattern, regex=True).fillna(False).to_numpy(dtype=bool)
        if odd.any():
            idx = np.flatnonzero(odd)
            u.iloc[idx] = [repair_mojibake(v) for v in u.iloc[idx]]
    elif mode == "code":
        u = u.str.strip()
    elif mode == "email":
        u = u.str.strip().str.lower()
    elif mode == "compact":
        u = u.str.replace(_WHITESPACE.pattern, "", regex=True).str.upper()
    elif mode == "list":
        u = u.str.strip().map(_code_list, na_action="ignore").astype("string")
    else:  # pragma: no cover - programming error
        raise ValueError(f"unknown text mode {mode!r}")
    arr = u.array
    arr[(u == "").fillna(False).to_numpy(dtype=bool)] = pd.NA
    return pd.Series(arr.take(codes, allow_fill=True))


def is_blank(value: Any) -> bool:
    """NULL or a string of blanks."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------- numbers
def _integer_of(value: Any) -> tuple[int | None, bool]:
    """(the integer, ok) of one value; (None, True) for no value."""
    if is_blank(value):
        return None, True
    if isinstance(value, (bool, np.bool_)):
        return None, False
    if isinstance(value, (int, np.integer)):
        v = int(value)
        return (v, True) if abs(v) <= _MAX_INT64 else (None, False)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if np.isfinite(f) and f.is_integer() and abs(f) < _MAX_EXACT_FLOAT:
            return int(f), True
        return None, False
    s = _as_text(value).strip()
    try:
        v = int(s)
    except ValueError:
        m = re.fullmatch(r"([+-]?[0-9]+)\.0*", s)
        if not m:
            return None, False
        v = int(m.group(1))
    return (v, True) if abs(v) <= _MAX_INT64 else (None, False)


_CHUNK = 8192


def _ints_by_chunk(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``int()`` of str or int values, a chunk at a time: (ints, mask of chunks that worked)."""
    n = len(values)
    out = np.zeros(n, dtype=np.int64)
    ok = np.ones(n, dtype=bool)
    for start in range(0, n, _CHUNK):
        chunk = values[start : start + _CHUNK]
        try:
            out[start : start + len(chunk)] = np.fromiter(map(int, chunk), np.int64, len(chunk))
        except (ValueError, TypeError, OverflowError):
            ok[start : start + len(chunk)] = False
    return out, ok


def _object_ints(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values as object array of int/None, ok mask, null mask) of an object column.

    Columns of str or int (the usual shapes) are converted with ``int()`` a chunk
    at a time; whatever a chunk could not convert is parsed per distinct value.
    """
    raw = series.to_numpy(dtype=object)
    n = len(raw)
    null = np.asarray(pd.isna(raw), dtype=bool)
    values = np.full(n, None, dtype=object)
    ok = np.ones(n, dtype=bool)
    todo = np.flatnonzero(~null)
    if pd.api.types.infer_dtype(raw, skipna=True) in ("integer", "string"):
        ints, worked = _ints_by_chunk(raw[todo])
        values[todo[worked]] = ints[worked]
        todo = todo[~worked]
    if len(todo):
        codes, uniques = factorize(raw[todo])
        parsed = [_integer_of(u) for u in uniques]
        values[todo] = expand([p[0] for p in parsed], codes)
        ok[todo] = expand([p[1] for p in parsed], codes, null=True).astype(bool)
        null[todo] = ok[todo] & pd.isna(values[todo])
    return values, ok, null


def int_column(
    series: pd.Series, column: str, *, required: bool = False, non_negative: bool = False
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Parse an integer column: values arrive as int, float (NULL as NaN) or str.

    Returns (Int64 values, mask of rows with a problem, messages).
    """
    n = len(series)
    dtype = series.dtype
    msgs = np.full(n, None, dtype=object)
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        values = pd.array(series, dtype="Int64")
        ok_null = np.asarray(pd.isna(values), dtype=bool)
        bad_type = np.zeros(n, dtype=bool)
    elif pd.api.types.is_float_dtype(dtype):
        f = series.to_numpy(dtype=float, na_value=np.nan)
        null = np.isnan(f)
        with np.errstate(invalid="ignore"):
            good = ~null & np.isfinite(f) & (np.floor(f) == f) & (np.abs(f) < _MAX_EXACT_FLOAT)
        ints = np.where(good, f, 0).astype(np.int64)
        values = pd.array(ints, dtype="Int64")
        values[~good] = pd.NA
        ok_null = null
        bad_type = ~null & ~good
    else:
        vals, oks, ok_null = _object_ints(series)
        values = pd.array(vals, dtype="Int64")
        bad_type = ~oks
    if bad_type.any():
        raw = series.to_numpy(dtype=object)
        idx = np.flatnonzero(bad_type)
        msgs[idx] = [f"{column}: {show(raw[i])} is not an integer" for i in idx]
    bad = bad_type.copy()
    if required:
        missing = ok_null
        msgs[missing] = f"{column}: missing value (NOT NULL column)"
        bad |= missing
    if non_negative:
        arr = values.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            neg = arr < 0
        if neg.any():
            idx = np.flatnonzero(neg)
            msgs[idx] = [f"{column}: {int(arr[i])} is negative (expected >= 0)" for i in idx]
            bad |= neg
    return pd.Series(values), bad, msgs


# ------------------------------------------------------------------------ dates
_COMPACT_DATE = re.compile(r"[0-9]{8}")
_COMPACT_MONTH = re.compile(r"[0-9]{6}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date_or_none(y: int, m: int, d: int) -> dt.date | None:
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def compact_date_column(
    series: pd.Series, column: str, *, required: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a legacy CHAR(8) 'YYYYMMDD' column into ``datetime.date`` objects.

    '' / NULL / '00000000' are unknown (None), a problem only when ``required``.
    (An empty end date means open-ended: also None, never a problem.)
    """
    missing = f"{column}: missing value (NOT NULL column)" if required else None
    unknown = (
        f"{column}: '00000000' is an unknown date but a date is required" if required else None
    )
    codes, uniques = factorize(series)
    values: list[dt.date | None] = []
    messages: list[str | None] = []
    for u in uniques:
        s = _as_text(u).strip()
        d = None
        if not s:
            message = missing
        elif s == "00000000":
            message = unknown
        else:
            if _COMPACT_DATE.fullmatch(s):
                d = _date_or_none(int(s[:4]), int(s[4:6]), int(s[6:]))
            message = None if d else f"{column}: {show(u)} is not a valid YYYYMMDD date"
        values.append(d)
        messages.append(message)
    msgs = expand(messages, codes, null=missing)
    return expand(values, codes), mask_of(msgs), msgs


def month_column(series: pd.Series, column: str) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Parse a required CHAR(6) 'YYYYMM' month; returned as text 'YYYYMM'."""
    codes, uniques = factorize(series)
    values: list[str | None] = []
    messages: list[str | None] = []
    for u in uniques:
        s = _as_text(u).strip()
        if not s:
            values.append(None)
            messages.append(f"{column}: missing value (NOT NULL column)")
        elif _COMPACT_MONTH.fullmatch(s) and int(s[:4]) >= 1 and 1 <= int(s[4:]) <= 12:
            values.append(s)
            messages.append(None)
        else:
            values.append(None)
            messages.append(f"{column}: {show(u)} is not a valid YYYYMM month")
    msgs = expand(messages, codes, null=f"{column}: missing value (NOT NULL column)")
    values_arr = pd.array(expand(values, codes), dtype="string")
    return pd.Series(values_arr), mask_of(msgs), msgs


def iso_date_values(values: Sequence[Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse 'YYYY-MM-DD' strings (portal dates). NULL stays None.

    Returns (dates as object array, messages) where a message is set for a value
    that is not a string or not a real date.
    """
    arr = object_array(values)
    n = len(arr)
    is_str = np.fromiter((type(v) is str for v in arr), dtype=bool, count=n)
    out = np.full(n, None, dtype=object)
    msgs = np.full(n, None, dtype=object)
    str_idx = np.flatnonzero(is_str)
    codes, uniques = factorize(arr[str_idx])
    dates: list[dt.date | None] = []
    messages: list[str | None] = []
    for u in uniques:
        d = _date_or_none(int(u[:4]), int(u[5:7]), int(u[8:])) if _ISO_DATE.fullmatch(u) else None
        dates.append(d)
        messages.append(None if d else f"{name}: {show(u)} is not a valid YYYY-MM-DD date")
    out[str_idx] = expand(dates, codes)
    msgs[str_idx] = expand(messages, codes)
    for i in np.flatnonzero(~is_str & ~np.asarray(pd.isna(arr), dtype=bool)).tolist():
        v = arr[i]
        msgs[i] = f"{name}: expected a YYYY-MM-DD date string, got {json_type(v)} {show(v)}"
    return out, msgs


# ------------------------------------------------------------------- timestamps
LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"
_ZERO_TIMESTAMP = "0000-00-00 00:00:00"


def paris_to_utc(naive_local: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Europe/Paris wall-clock times to naive UTC (datetime64[us]).

    Ambiguous times (the repeated hour of the last Sunday of October) are taken as
    their first occurrence (summer time, UTC+2); nonexistent times (the skipped hour
    of the last Sunday of March) are shifted forward to 03:00 summer time, so that
    UTC never goes backwards when the local text goes forwards.
    """
    idx = pd.DatetimeIndex(naive_local)
    local = idx.tz_localize(
        PARIS, ambiguous=np.ones(len(idx), dtype=bool), nonexistent="shift_forward"
    )
    return local.tz_convert("UTC").tz_localize(None).as_unit("us").to_numpy()


def local_timestamp_column(
    series: pd.Series, column: str, *, required: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a legacy 'YYYY-MM-DD HH:MM:SS' Europe/Paris column to naive UTC.

    '' and NULL (and the zero date '0000-00-00 00:00:00') are no value.
    """
    n = len(series)
    raw = series.to_numpy(dtype=object)
    null = np.asarray(pd.isna(raw), dtype=bool)
    first = raw
    if pd.api.types.infer_dtype(raw, skipna=True) not in ("string", "empty"):
        # Only strings go to the fast parser; other objects are retried as text.
        first = np.where(np.fromiter((type(v) is str for v in raw), bool, n), raw, None)
    parsed = pd.to_datetime(pd.Series(first, dtype=object), format=LOCAL_FORMAT, errors="coerce")
    naive = parsed.to_numpy(dtype="datetime64[us]", copy=True)
    failed = np.flatnonzero(np.isnat(naive) & ~null)
    msgs = np.full(n, None, dtype=object)
    if len(failed):
        # Rare: trailing blanks, empty strings, non-str values, or real garbage.
        retry = [_as_text(raw[i]).strip() for i in failed]
        again = pd.to_datetime(pd.Series(retry, dtype=object), format=LOCAL_FORMAT, errors="coerce")
        again_arr = again.to_numpy(dtype="datetime64[us]")
        for j, i in enumerate(failed.tolist()):
            if not np.isnat(again_arr[j]):
                naive[i] = again_arr[j]
            elif retry[j] in ("", _ZERO_TIMESTAMP):
                null[i] = True
            else:
                msgs[i] = f"{column}: {show(raw[i])} is not a valid 'YYYY-MM-DD HH:MM:SS' timestamp"
    if required:
        msgs[null] = f"{column}: missing value (NOT NULL column)"
    out = paris_to_utc(naive)
    return out, mask_of(msgs), msgs


_MAX_TIMESTAMP_LEN = 40


def _offset_mask(strings: np.ndarray) -> np.ndarray:
    """Which ISO 8601 timestamp strings end with an offset: 'Z' or +/- after the date.

    The date part holds the only '-' before position 10, and the time part never
    holds a '+' or '-' except in its offset. Pandas then checks the rest.
    """
    n = len(strings)
    if not n:
        return np.zeros(0, dtype=bool)
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=n)
    out = np.zeros(n, dtype=bool)
    short = np.flatnonzero((lengths > 11) & (lengths <= _MAX_TIMESTAMP_LEN))
    a = strings[short].astype(f"U{_MAX_TIMESTAMP_LEN}")
    out[short] = (
        np.strings.endswith(a, "Z")
        | (np.strings.rfind(a, "+") > 10)
        | (np.strings.rfind(a, "-") > 10)
    )
    return out


def iso_timestamp_values(values: Sequence[Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse ISO 8601 timestamps that carry an offset (or Z) into naive UTC.

    Returns (datetime64[us] array, messages); None stays NaT without a message.
    """
    arr = object_array(values)
    n = len(arr)
    null = np.asarray(pd.isna(arr), dtype=bool)
    if pd.api.types.infer_dtype(arr, skipna=True) in ("string", "empty"):
        is_str = ~null
    else:
        is_str = np.fromiter((type(v) is str for v in arr), dtype=bool, count=n)
    with_offset = np.zeros(n, dtype=bool)
    str_idx = np.flatnonzero(is_str)
    with_offset[str_idx] = _offset_mask(arr[str_idx])
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    ok_idx = np.flatnonzero(with_offset)
    if len(ok_idx):
        parsed = pd.to_datetime(
            pd.Series(arr[ok_idx], dtype=object), format="ISO8601", utc=True, errors="coerce"
        )
        out[ok_idx] = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    msgs = np.full(n, None, dtype=object)
    bad_str = is_str & np.isnat(out)
    for i in np.flatnonzero(bad_str).tolist():
        v = arr[i]
        if with_offset[i]:
            msgs[i] = f"{name}: {show(v)} is not a valid ISO 8601 timestamp"
        else:
            msgs[i] = f"{name}: {show(v)} is not an ISO 8601 timestamp with an offset"
    for i in np.flatnonzero(~is_str & ~null).tolist():
        v = arr[i]
        msgs[i] = f"{name}: expected an ISO 8601 timestamp string, got {json_type(v)} {show(v)}"
    return out, msgs


def paris_day(utc_naive: np.ndarray | pd.Series) -> np.ndarray:
    """Europe/Paris calendar day (``datetime.date`` or None) of naive UTC instants."""
    idx = pd.DatetimeIndex(utc_naive).tz_localize("UTC").tz_convert(PARIS)
    days = idx.tz_localize(None).normalize()
    codes, uniques = pd.factorize(days, use_na_sentinel=True)
    return expand([u.date() for u in uniques], codes)


# ------------------------------------------------------------------------- misc
def json_type(value: Any) -> str:
    """JSON type name of a Python value, for reasons."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def luhn_ok(digits: str) -> bool:
    """Luhn check of a string of digits (SIRET, SIREN)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# ------------------------------------------------------------------------ build
def _typed(values: Any, dtype: str, n: int) -> Any:
    """Values of one output column, typed (a scalar is broadcast)."""
    if values is None or np.isscalar(values):
        if dtype == "datetime64[us]" and values is None:
            return np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
        values = np.full(n, values, dtype=object)
    if dtype == "datetime64[us]":
        return np.asarray(values, dtype="datetime64[us]")
    if dtype == "object":  # dates: datetime.date objects or None
        return np.asarray(values, dtype=object)
    return pd.array(values, dtype=dtype)


def build_staged(
    table: str,
    data: dict[str, Any],
    source_keys: pd.Series,
    problems: Problems,
) -> Staged:
    """Assemble a ``Staged`` from per-column values and the problems found.

    ``data`` maps every output column to its values for all input rows (arrays
    aligned with the input, or a scalar). Rows with a problem go to quarantine;
    among the remaining rows, several rows with the same core primary key keep the
    one with the latest ``source_updated_at`` (then the last in input order), the
    others go to quarantine as superseded duplicates.
    """
    n = problems.n
    dtypes = output_dtypes(table)
    missing = [c for c in dtypes if c not in data]
    if missing:  # pragma: no cover - programming error
        raise ValueError(f"staging of {table}: no value for {missing}")
    frame = pd.DataFrame({c: _typed(data[c], t, n) for c, t in dtypes.items()})
    frame = frame.astype(dtypes)
    keys = pd.Series(pd.array(source_keys.to_numpy(dtype=object), dtype="string"))
    reasons = problems.reasons()
    bad = problems.bad
    good_idx = np.flatnonzero(~bad)
    bad_idx = np.flatnonzero(bad)
    rows = frame.take(good_idx).reset_index(drop=True)
    row_keys = keys.take(good_idx).reset_index(drop=True)
    q_keys = [keys.take(bad_idx)]
    q_reasons = [pd.Series(reasons[bad_idx], dtype="string")]

    pk = BY_NAME[table].key_columns
    dup = rows.duplicated(subset=pk, keep=False)
    if dup.any():
        order = np.arange(len(rows))
        if "source_updated_at" in rows.columns:
            ts = rows["source_updated_at"].to_numpy(dtype="datetime64[us]")
            order = np.lexsort((order, ts))  # by time, then input order; NaT sorts last
        ranked = rows.take(order)
        drop_sorted = ranked.duplicated(subset=pk, keep="last").to_numpy()
        drop = np.zeros(len(rows), dtype=bool)
        drop[order[drop_sorted]] = True
        drop_idx = np.flatnonzero(drop)
        labels = rows.take(drop_idx)[pk].astype(str).agg("|".join, axis=1)
        q_keys.append(row_keys.take(drop_idx))
        q_reasons.append(
            pd.Series(
                [
                    f"duplicate of key {k!r} in the same extraction: superseded by a later version"
                    for k in labels
                ],
                dtype="string",
            )
        )
        keep_idx = np.flatnonzero(~drop)
        rows = rows.take(keep_idx).reset_index(drop=True)
        row_keys = row_keys.take(keep_idx).reset_index(drop=True)

    quarantine = pd.DataFrame(
        {
            "source_key": pd.concat(q_keys, ignore_index=True).astype("string"),
            "reason": pd.concat(q_reasons, ignore_index=True).astype("string"),
        }
    )
    return Staged(table=table, rows=rows, quarantine=quarantine, source_keys=row_keys)
