"""Warehouse tables, declared from the fields of ``schemas.fields``.

This module is the one source of truth for DDL: ``METADATA`` (SQLAlchemy
Core), ``pandas_dtypes()`` and ``docs/warehouse.md`` are all generated from
``TABLES``. Core tables carry their town in the primary key and lineage
columns (row hash, first/last/deleting run) appended automatically.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from schemas.fields import FIELDS

LINEAGE = ("row_hash", "first_run_id", "last_run_id", "deleted_run_id")


@dataclass(frozen=True)
class TableSpec:
    name: str
    layer: str  # "core", "raw", "ops" or "mart" (report tables, no lineage)
    description: str
    columns: tuple  # field names, or (name, description override)
    primary_key: tuple[str, ...]
    not_null: tuple[str, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    overrides: dict = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        names = [c if isinstance(c, str) else c[0] for c in self.columns]
        if self.layer == "core":
            names += [c for c in LINEAGE if c not in names]
        return names

    @property
    def key_columns(self) -> list[str]:
        """The primary key within a town (every table's key starts with ``town``)."""
        return [c for c in self.primary_key if c != "town"]

    @property
    def data_columns(self) -> list[str]:
        """Columns a loader supplies (everything but the lineage columns)."""
        return [c for c in self.column_names if c not in LINEAGE]

    def description_of(self, column: str) -> str:
        for c in self.columns:
            if not isinstance(c, str) and c[0] == column:
                return c[1]
        return FIELDS[column].description


def _t(name, layer, description, columns, pk, **kw) -> TableSpec:
    return TableSpec(name, layer, description, tuple(columns), tuple(pk), **kw)


T = "town"

TABLES: list[TableSpec] = [
    # ------------------------------------------------------------------ core
    _t("household", "core", "Families of the legacy program (FAMILLE): the canonical households.",
       [T, "household_id", "family_code", "name", "address", "postcode", "city", "phone", "email",
        "caf_number", "family_quotient", "direct_debit", "mandate_ref", "iban", "created_on",
        "source_updated_at"], [T, "household_id"]),
    _t("person", "core", "People of the legacy program (INDIVIDU): the canonical persons.",
       [T, "person_id", "last_name", "birth_name", "first_name", "birth_date", "sex", "phone",
        "email", "source_updated_at"], [T, "person_id"]),
    _t("membership", "core", "Who belongs to which household and how (RATTACHEMENT). A child of separated parents belongs to two households.",
       [T, "household_id", "person_id", "role", "is_holder", "source_updated_at"],
       [T, "household_id", "person_id"]),
    _t("portal_account", "core", "Citizen portal accounts.",
       [T, "account_id", "email", "phone", "first_name", "last_name", "address", "postcode", "city",
        "legacy_family_code", ("status", "Account status: active or closed."),
        ("created_on", "Day the account was created (Europe/Paris)."), "source_updated_at"],
       [T, "account_id"]),
    _t("portal_person", "core", "Parents and children declared on portal accounts.",
       [T, "portal_person_id", "account_id", "role", "first_name", "last_name", "birth_date",
        "legacy_person_id", "source_updated_at"], [T, "portal_person_id"]),
    _t("crosswalk", "core", "Source records mapped to canonical households and persons, with how they were matched.",
       [T, "source", "source_entity", "source_id", "canonical_entity", "canonical_id", "method",
        "score", "run_id"], [T, "source", "source_entity", "source_id"]),
    _t("activity", "core", "Activities (ACTIVITE): a service at a site, with capacity, price, notice and required documents.",
       [T, "activity_id", "activity_code", "label", "service", "site", "capacity",
        "unit_price_cents", "cancel_notice_hours", "required_documents", "source_updated_at"],
       [T, "activity_id"]),
    _t("enrolment", "core", "Enrolments of a person in an activity for a household (INSCRIPTION).",
       [T, "enrolment_id", "household_id", "person_id", "activity_id", "start_on", "end_on",
        ("state", "Enrolment state: V validated, A waiting list, R refused."), "request_number",
        "source_updated_at"], [T, "enrolment_id"],
       indexes=((T, "household_id"), (T, "person_id"))),
    _t("reservation", "core", "Days booked in the legacy program (RESERVATION), one row per enrolment and day.",
       [T, "reservation_id", "enrolment_id", "day", ("state", "RESA booked, ANNUL cancelled."),
        "origin", "portal_ref", "cancelled_at", "source_updated_at"], [T, "reservation_id"],
       indexes=((T, "enrolment_id", "day"),)),
    _t("portal_booking", "core", "The portal's append-only log of family booking actions.",
       [T, "booking_id", "account_id", "portal_person_id", "activity_code", "day", "action",
        "made_at", "source_updated_at"], [T, "booking_id"], indexes=((T, "portal_person_id", "day"),)),
    _t("attendance", "core", "Attendance checked on site (POINTAGE).",
       [T, "attendance_id", "enrolment_id", "day",
        ("status", "P present, AJ excused absence, AI unexcused absence."), "source_updated_at"],
       [T, "attendance_id"], indexes=((T, "enrolment_id", "day"),)),
    _t("invoice", "core", "Invoices (FACTURE). A cancelled invoice owes nothing.",
       [T, "invoice_id", "invoice_number", "household_id", "period", "issued_on", "due_on",
        ("amount_cents", "Invoice amount in cents as the header states it."),
        ("state", "E issued, A cancelled, T handed to the public treasury for recovery."),
        "source_updated_at"], [T, "invoice_id"], indexes=((T, "invoice_number"),)),
    _t("invoice_line", "core", "Invoice lines (LIGNE_FACTURE); amount = quantity x unit price.",
       [T, "line_id", "invoice_id", "enrolment_id", "day", "label", "quantity", "unit_price_cents",
        "amount_cents"], [T, "line_id"], indexes=((T, "invoice_id"),)),
    _t("payment", "core", "Payments of every channel: PayFiP, desk receipts, direct-debit results, portal online payment attempts.",
       [T, "payment_id", "source", "channel",
        ("status", "paid, refused, abandoned (card) or rejected (direct debit)."), "amount_cents",
        "paid_on", "paid_at", "invoice_ref", "payer_name", "payer_email", "operation_ref",
        "auth_number", "cheque_number", "reject_reason", "fiscal_year", "account_id",
        "file_name", "line_no", "source_updated_at"], [T, "payment_id"],
       indexes=((T, "invoice_ref"),)),
    _t("bank_statement", "core", "Bank statements of the payment office's accounts (CFONB 120, camt.053).",
       [T, "statement_id", "format", "account", "bank_code", "branch_code", "currency", "opening_on",
        "opening_balance_cents", "closing_on", "closing_balance_cents", "operations_total_cents",
        "operations_count", "file_name", "line_no"], [T, "statement_id"]),
    _t("bank_operation", "core", "Operations of the bank statements (signed cents: credit > 0).",
       [T, "operation_id", "statement_id", "seq", "booked_on", "value_on", "amount_cents", "label",
        "interbank_code", "internal_code", "reject_code", "entry_number", "reference", "details",
        "file_name", "line_no"], [T, "operation_id"]),
    _t("allocation", "core", "Money of a payment allocated to an invoice.",
       [T, "allocation_id", "payment_id", "invoice_number", "amount_cents", "method", "run_id"],
       [T, "allocation_id"]),
    _t("document", "core", "Supporting documents: held in the legacy family file (PIECE) or uploaded on the portal.",
       [T, "document_id", "source", "household_id", "person_id", "account_id", "portal_person_id",
        "document_type", "valid_from", "valid_until", "uploaded_at", "review", "source_updated_at"],
       [T, "document_id"]),
    _t("procedure_request", "core", "Online procedures (démarches) submitted on the portal.",
       [T, "request_id", "request_number", "procedure", "account_id", "association_id",
        ("state", "en_construction, en_instruction, accepte, refuse, sans_suite."), "submitted_at",
        "instruction_started_at", "decided_at", "service", "fields", "amount_requested_cents",
        "amount_granted_cents", "purpose", "source_updated_at"], [T, "request_id"]),
    _t("procedure_state", "core", "State history of each procedure request, from its timestamps.",
       [T, "request_id", ("state", "State entered."), "entered_at"], [T, "request_id", "state"]),
    _t("association", "core", "Associations registered on the portal.",
       [T, "association_id", "name", "rna", "siret", "email", "source_updated_at"],
       [T, "association_id"]),
    _t("room_booking", "core", "Room bookings by associations.",
       [T, "room_booking_id", "association_id", "room_code", "starts_at", "ends_at",
        ("status", "requested, confirmed, cancelled."), "equipment", "source_updated_at"],
       [T, "room_booking_id"]),
    _t("login_stat", "core", "Daily portal logins per space.",
       [T, "day", "space", "count", "source_updated_at"], [T, "day", "space"]),
    # ------------------------------------------------------------------- raw
    _t("raw_record", "raw", "Every version of every source record as extracted, with its load run and content hash.",
       [T, "source", "entity", "source_key",
        ("content_hash", "SHA-256 (first 128 bits) of source, entity, key and raw text: one row per version."),
        "run_id", "extracted_at", "payload"],
       # keyed by record, then version: a table read in key order lands near the end of
       # the index (a key of hashes alone scatters every insert over an index far larger
       # than the cache), and a record's history is one index range
       [T, "source", "entity", "source_key", "content_hash"]),
    _t("treasury_file", "raw", "Files taken from the payment office's drop, identified by content.",
       [T, "sha256", "file_name", "folder_day", "size_bytes", "format", "landed_path",
        ("status", "loaded, or quarantined when the file as a whole could not be used."),
        "reason", "run_id"], [T, "sha256"]),
    # ------------------------------------------------------------------- ops
    _t("load_run", "ops", "Every sync run of a town.",
       [T, "run_id", "dagster_run_id", "started_at", "finished_at",
        ("status", "running, success or failed.")], [T, "run_id"]),
    _t("load_stat", "ops", "Row counts per run and source entity: read = loaded + quarantined.",
       [T, "run_id", "source", "entity", "rows_read", "rows_loaded", "rows_quarantined",
        "rows_inserted", "rows_updated", "rows_deleted"], [T, "run_id", "source", "entity"]),
    _t("watermark", "ops", "Incremental extraction state per source entity, moved only when the core load committed.",
       [T, "source", "entity", "value", "run_id", "updated_at"], [T, "source", "entity"]),
    _t("quarantine", "ops", "Source records that could not be loaded, with the reason. Nothing is dropped.",
       [T, "source", "entity", "source_key", "content_hash", "reason", "payload", "run_id",
        "resolved_run_id"], [T, "source", "entity", "content_hash"]),
    _t("reconciliation_run", "ops", "The figures of every reconciliation of a town: money received, "
       "allocated and not allocated (the night's reconciliation rate), open flags.",
       [T, "run_id", "reconciled_at", "received_cents", "allocated_cents", "unallocated_cents",
        "payments_received", "payments_allocated", "open_flags"], [T, "run_id"],
       not_null=("reconciled_at",)),
    _t("flag", "ops", "Findings for the data stewards, one per stable key (rule + entity ids). "
       "open -> resolved (by a decision, or automatically when a run no longer sees the problem) "
       "-> reopened if it returns; dismissed flags stay dismissed while their evidence is unchanged.",
       [T, "flag_key", "rule", "severity", "service", "entity_ids", "evidence", "evidence_hash",
        "message", "suggestion", "fix", ("status", "open, resolved or dismissed."), "resolution",
        "first_seen_run_id", "first_seen_at", "last_seen_run_id",
        ("last_seen_at", "When a run last saw the problem, in UTC."), "closed_at",
        "times_reopened", "updated_at"], [T, "flag_key"],
       not_null=("rule", "severity", "status"),
       indexes=((T, "status", "rule"), (T, "rule"))),
    _t("steward_decision", "ops", "Decisions taken by stewards on flags, re-applied on every run "
       "(the latest decision of a flag is the one in force). Never updated nor deleted.",
       [T, "decision_id", "flag_key", "rule", "decision",
        ("value", "Value set by an override (or the accepted suggestion), as text."),
        ("reason", "Why the steward decided, in their words."), "author",
        ("decided_at", "When the steward decided, in UTC."), "evidence_hash",
        ("fix", "Target of the decision's value (table, key, column), as JSON; NULL when none.")],
       [T, "decision_id"], not_null=("flag_key", "decision", "author", "decided_at"),
       indexes=((T, "flag_key"),)),
    _t("audit_log", "ops", "Append-only log of steward actions and of the flag changes made by runs "
       "(who, when, what, why). The database refuses updates and deletes.",
       [T, "audit_id", "at", "author",
        ("action", ("What happened: a decision (accept, override, dismiss, fixed_at_source), "
                    "flag_reopened, flag_auto_resolved, login, login_failed, logout, "
                    "account_created, password_changed, account_disabled, ...")),
        "flag_key", "decision_id",
        ("run_id", "Load run that made the change, for changes made by a run."),
        ("message", "What happened, in French.")], [T, "audit_id"],
       not_null=("at", "author", "action"), indexes=((T, "flag_key"),)),
    _t("steward_user", "ops", "Accounts of the steward web page (created with `guichet steward user add`).",
       [T, "login", ("name", "Full name shown on the page."),
        ("role", "steward (may decide on flags) or lecture (read-only)."), "password_hash",
        "active", "created_at", "failed_logins", "locked_until", "last_login_at"],
       [T, "login"], not_null=("role", "password_hash")),
    _t("steward_session", "ops", "Open sessions of the steward web page; they expire when idle "
       "and after a maximum duration.",
       [T, "session_hash", "login", "csrf_token", "created_at",
        ("last_seen_at", "Last request of the session, in UTC (idle expiry counts from it)."),
        "expires_at"], [T, "session_hash"], not_null=("login", "csrf_token", "expires_at")),
    _t("validation_result", "ops", "Outcome of every Great Expectations expectation of every run: "
       "what the run's HTML validation summary shows.",
       [T, "run_id", "suite", ("rule", "Rule id of the expectation (its flags carry the same rule)."),
        "expectation", "column_name",
        "check_kind", "success", "element_count", "unexpected_count", "unexpected_sample",
        "validated_at", "duration_ms"], [T, "run_id", "suite", "rule"]),
    # ------------------------------------------------------------------ mart
    _t("mart_finance_month", "mart", "Finance per billed month and service (docs/reports.md): "
       "invoiced = collected + outstanding + cancelled, to the cent; collected = sum of the "
       "channels. An invoice's money is split on its lines' services prorata of the line "
       "amounts (cumulative rounding: every cent goes to one service).",
       [T, ("month", "Billed month (the invoices' period), YYYY-MM."), "service",
        "invoices", "lines_cents", "invoiced_cents", "cancelled_invoices", "cancelled_cents",
        "collected_cents", "collected_online_card_cents", "collected_direct_debit_cents",
        "collected_cash_cents", "collected_cheque_cents", "collected_cesu_cents",
        "collected_desk_card_cents", "collected_transfer_cents", "collected_other_cents",
        "outstanding_cents", "not_due_cents", "overdue_0_30_cents", "overdue_31_60_cents",
        "overdue_61_90_cents", "overdue_over_90_cents", "treasury_invoices", "treasury_cents",
        "treasury_outstanding_cents", "reference_day"],
       [T, "month", "service"]),
    _t("mart_receipts_month", "mart", "Money received per payment month and channel (cash-flow "
       "view): received = allocated + unallocated; rejected direct debits and failed card "
       "attempts beside, they brought no money.",
       [T, ("month", "Month the payment was made (paid_on), YYYY-MM."), "channel",
        "payments_received", "received_cents", "allocated_cents", "unallocated_cents",
        "payments_unallocated", "rejected_debits", "rejected_debit_cents",
        "failed_card_attempts"], [T, "month", "channel"]),
    _t("mart_debit_reject", "mart", "Rejected direct debits per month and reason code.",
       [T, ("month", "Month of the status report that rejected them (paid_on), YYYY-MM."),
        ("reject_reason", "Reject reason code (AC01, AC04, AM04, MD06, MS02, ...; '?' when none)."),
        "payments", ("amount_cents", "Amount rejected, in cents.")],
       [T, "month", "reject_reason"]),
    _t("mart_attendance_day", "mart", "Bookings and attendance per activity and day (counts "
       "only: no child in it). An activity-day appears when it has a reservation or a check.",
       [T, "day", "activity_code", "service", "site", ("week", "ISO week of the day, YYYY-Www."),
        ("month", "Month of the day, YYYY-MM."), "booked", "booked_portal", "booked_desk",
        "booked_standing", "cancelled_bookings", "present", "excused", "unexcused",
        "present_without_booking", ("capacity", "Places of the activity that day (CAPACITE).")],
       [T, "day", "activity_code"]),
    _t("mart_portal_week", "mart", "Portal logins per ISO week and space.",
       [T, "week", "space", "week_start", "logins", "days_reported"], [T, "week", "space"]),
    _t("mart_request", "mart", "Online procedure requests with their processing time and "
       "service level (no applicant data).",
       [T, "request_id", "procedure", "service",
        ("state", "Current state: en_construction, en_instruction, accepte, refuse, sans_suite."),
        "submitted_at", "decided_at", "processing_minutes", "sla_days", "beyond_sla", "reference_day"], [T, "request_id"]),
]

BY_NAME: dict[str, TableSpec] = {t.name: t for t in TABLES}


def _sa_type(logical: str) -> sa.types.TypeEngine:
    return {
        "string": sa.Text(),
        "integer": sa.BigInteger(),
        "boolean": sa.Boolean(),
        "date": sa.Date(),
        "datetime": sa.DateTime(),  # naive UTC on every backend
        "json": sa.Text(),
    }[logical]


def _build_metadata() -> sa.MetaData:
    md = sa.MetaData()
    for spec in TABLES:
        cols = []
        for name in spec.column_names:
            cols.append(sa.Column(
                name, _sa_type(FIELDS[name].type),
                primary_key=name in spec.primary_key,
                nullable=name not in spec.primary_key and name not in spec.not_null,
                comment=spec.description_of(name),
            ))
        args = [sa.Index(f"ix_{spec.name}_{'_'.join(ix)}", *ix) for ix in spec.indexes]
        t = sa.Table(spec.name, md, *cols, *args, comment=spec.description)
        assert t is not None
    return md


METADATA = _build_metadata()

# The audit log is append-only: the database itself refuses to change or remove an entry.
_APPEND_ONLY = {
    "sqlite": [
        ("CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
         "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"),
        ("CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
         "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"),
    ],
    "postgresql": [
        ("CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql "
         "AS $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"),
        ("CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
         "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"),
    ],
}


def _append_only(target, connection, **_kw) -> None:
    for stmt in _APPEND_ONLY.get(connection.dialect.name, []):
        connection.exec_driver_sql(stmt)


sa.event.listen(METADATA.tables["audit_log"], "after_create", _append_only)


def table(name: str) -> sa.Table:
    return METADATA.tables[name]


def pandas_dtypes(name: str) -> dict[str, str]:
    """pandas dtypes of a table's columns (nullable extension types)."""
    mapping = {"string": "string", "integer": "Int64", "boolean": "boolean",
               "date": "object", "datetime": "datetime64[us]", "json": "string"}
    return {c: mapping[FIELDS[c].type] for c in BY_NAME[name].column_names}
