"""What the core suites validate: a town's current rows of a table, typed, plus the
derived columns some expectations need (the service of a reservation, a child's
age at the start of an enrolment, the total of an invoice's lines...)."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import sqlalchemy as sa

from pipelines.loading import read_current
from schemas.tables import BY_NAME, pandas_dtypes, table

# Columns shown beside the failing value, so a steward recognises the record.
CONTEXT = {
    "household": ("family_code", "name", "city"),
    "person": ("last_name", "first_name", "birth_date"),
    "membership": ("role",),
    "portal_account": ("last_name", "first_name", "email"),
    "portal_person": ("account_id", "last_name", "first_name"),
    "activity": ("activity_code", "label"),
    "enrolment": ("household_id", "person_id", "activity_id", "start_on", "end_on"),
    "reservation": ("enrolment_id", "day", "state", "origin"),
    "attendance": ("enrolment_id", "day", "status"),
    "invoice": ("invoice_number", "household_id", "period", "amount_cents"),
    "invoice_line": ("invoice_id", "enrolment_id", "day", "quantity", "unit_price_cents"),
    "payment": ("channel", "status", "amount_cents", "paid_on", "invoice_ref"),
    "bank_statement": ("account", "opening_on", "closing_on", "opening_balance_cents",
                       "operations_total_cents", "file_name"),
    "bank_operation": ("booked_on", "amount_cents", "label"),
    "allocation": ("payment_id", "invoice_number", "amount_cents"),
    "document": ("household_id", "person_id", "document_type", "valid_from", "valid_until"),
    "procedure_request": ("request_number", "procedure", "state", "submitted_at"),
    "procedure_state": ("state", "entered_at"),
    "association": ("name", "rna", "siret"),
    "room_booking": ("association_id", "room_code", "starts_at", "ends_at"),
    "login_stat": ("day", "space", "count"),
    "crosswalk": ("source", "source_entity", "source_id"),
}


def typed(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Give a frame the nullable dtypes of its table's columns (extra columns untouched)."""
    dtypes = pandas_dtypes(name)
    out = df.copy()
    for c in out.columns:
        kind = dtypes.get(c)
        if kind is None:
            continue
        if kind == "object":  # dates: datetime.date or None
            out[c] = pd.Series([_as_date(v) for v in out[c]], index=out.index, dtype=object)
        elif kind.startswith("datetime64"):
            out[c] = pd.to_datetime(out[c]).astype(kind)
        else:
            out[c] = out[c].astype(kind)
    return out


def _as_date(v):
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v)[:10])


def read_table(conn: sa.Connection, town: str, name: str,
               columns: list[str] | None = None) -> pd.DataFrame:
    """The town's current rows of a core table (purged rows left out), typed."""
    return typed(read_current(conn, town, name, columns), name)


def parent_values(conn: sa.Connection, town: str, name: str, column: str) -> list:
    """Distinct current values of a parent table's column (referential integrity)."""
    t = table(name)
    stmt = sa.select(t.c[column]).distinct().where(t.c.town == town, t.c[column].isnot(None))
    if BY_NAME[name].layer == "core":
        stmt = stmt.where(t.c.deleted_run_id.is_(None))
    return [v for (v,) in conn.execute(stmt)]


def core_frame(conn: sa.Connection, town: str, name: str) -> pd.DataFrame:
    """The frame a core suite validates: the table plus its derived columns."""
    df = read_table(conn, town, name)
    derive = DERIVED.get(name)
    return derive(conn, town, df) if derive else df


# ------------------------------------------------------------ derived
def _service_of_enrolments(conn, town) -> pd.DataFrame:
    enr = read_table(conn, town, "enrolment", ["enrolment_id", "activity_id"])
    act = read_table(conn, town, "activity", ["activity_id", "service", "activity_code"])
    return enr.merge(act, on="activity_id", how="left")[["enrolment_id", "service",
                                                          "activity_code"]]


def _enrolment(conn, town, df):
    act = read_table(conn, town, "activity", ["activity_id", "service", "activity_code"])
    per = read_table(conn, town, "person", ["person_id", "birth_date"])
    out = df.merge(act, on="activity_id", how="left").merge(per, on="person_id", how="left")
    ages = [round((s - b).days / 365.25, 1) if isinstance(s, dt.date) and isinstance(b, dt.date)
            else None for s, b in zip(out["start_on"], out["birth_date"])]
    out["age_at_start"] = pd.array(ages, dtype="Float64")
    out["service"] = out["service"].astype("string")
    return out


def _with_service(conn, town, df):
    svc = _service_of_enrolments(conn, town)
    out = df.merge(svc, on="enrolment_id", how="left")
    out["service"] = out["service"].astype("string")
    return out


def _invoice_line(conn, town, df):
    out = _with_service(conn, town, df)
    out["expected_amount_cents"] = (out["quantity"] * out["unit_price_cents"]).astype("Int64")
    return out


def _invoice(conn, town, df):
    lines = read_table(conn, town, "invoice_line", ["invoice_id", "amount_cents"])
    totals = (lines.groupby("invoice_id", as_index=False)["amount_cents"].sum()
              .rename(columns={"amount_cents": "lines_total_cents"}))
    out = df.merge(totals, on="invoice_id", how="left")
    out["lines_total_cents"] = out["lines_total_cents"].astype("Int64")
    out["number_period"] = out["invoice_number"].str.slice(0, 6).astype("string")
    return out


def _bank_statement(conn, town, df):
    out = df.copy()
    out["expected_closing_cents"] = (out["opening_balance_cents"]
                                     + out["operations_total_cents"]).astype("Int64")
    return out


def _procedure_request(conn, town, df):
    out = df.copy()
    out["requester"] = out["account_id"].fillna(out["association_id"]).astype("string")
    return out


DERIVED = {
    "enrolment": _enrolment,
    "reservation": _with_service,
    "attendance": _with_service,
    "invoice_line": _invoice_line,
    "invoice": _invoice,
    "bank_statement": _bank_statement,
    "procedure_request": _procedure_request,
}
