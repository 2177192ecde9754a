"""Every warehouse column, defined once with its type and description.

Tables (``schemas.tables``) are declared from these names; the SQLAlchemy
metadata, the pandas dtypes and ``docs/warehouse.md`` are all generated from
here, so a column means the same thing wherever it appears. A table may
override a description when the same name needs a more precise sense there.
"""

from __future__ import annotations

from dataclasses import dataclass

# Logical types, mapped to SQLAlchemy and pandas in schemas.tables.
TYPES = ("string", "integer", "boolean", "date", "datetime", "json")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    description: str

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"field {self.name}: unknown type {self.type}")


_F = [
    # --- identity of a row -------------------------------------------------
    ("town", "string", "INSEE code of the town the row belongs to (e.g. 44190); every row carries it."),
    ("household_id", "integer", "Legacy family id (FAMILLE.ID_FAMILLE): the canonical household id."),
    ("person_id", "integer", "Legacy person id (INDIVIDU.ID_INDIVIDU): the canonical person id."),
    ("activity_id", "integer", "Legacy activity id (ACTIVITE.ID_ACTIVITE)."),
    ("enrolment_id", "integer", "Legacy enrolment id (INSCRIPTION.ID_INSCRIPTION)."),
    ("reservation_id", "integer", "Legacy reservation id (RESERVATION.ID_RESERVATION)."),
    ("attendance_id", "integer", "Legacy attendance check id (POINTAGE.ID_POINTAGE)."),
    ("invoice_id", "integer", "Legacy invoice id (FACTURE.ID_FACTURE)."),
    ("line_id", "integer", "Legacy invoice line id (LIGNE_FACTURE.ID_LIGNE)."),
    ("document_id", "string", "Document id: 'legacy:<ID_PIECE>' or 'portal:<id>'."),
    ("account_id", "string", "Portal account id."),
    ("portal_person_id", "string", "Portal person id (a parent or child declared on a portal account)."),
    ("booking_id", "string", "Portal booking log item id."),
    ("request_id", "string", "Portal procedure request id."),
    ("association_id", "string", "Portal association id."),
    ("room_booking_id", "string", "Portal room booking id."),
    ("payment_id", "string", "Stable payment id derived from its source: 'payfip:<idop>', 'caisse:<recu>', 'prlv:<msg>:<end-to-end>', 'portal:<id>'."),
    ("statement_id", "string", "Bank statement id derived from its content: '<format>:<account>:<closing date>:<n>'."),
    ("operation_id", "string", "Bank statement operation id: '<statement_id>:<seq>'."),
    ("allocation_id", "string", "Allocation id: '<payment_id>><invoice number>'."),
    ("run_id", "string", "Load run that wrote the row (load_run.run_id)."),
    ("first_run_id", "string", "Load run that first loaded the row."),
    ("last_run_id", "string", "Load run that last changed the row."),
    ("deleted_run_id", "string", "Load run that noticed the row had disappeared from its source (purged); NULL while present."),
    ("row_hash", "string", "Hash of the row's canonical content, used to load only what changed."),
    ("source_updated_at", "datetime", "When the source says the row last changed (legacy DATE_MAJ in Europe/Paris, portal updated_at), in UTC."),
    # --- people and households --------------------------------------------
    ("family_code", "string", "Family code printed on invoices and quoted in bank labels (e.g. F00012345)."),
    ("name", "string", "Name."),
    ("address", "string", "Street address line."),
    ("postcode", "string", "French postcode (5 digits)."),
    ("city", "string", "City."),
    ("phone", "string", "Phone number as entered."),
    ("email", "string", "E-mail address, lower-cased."),
    ("caf_number", "string", "Family-benefit office (CAF) number."),
    ("family_quotient", "integer", "Quotient familial that drives prices; NULL = full price."),
    ("direct_debit", "boolean", "Whether invoices are paid by SEPA direct debit."),
    ("mandate_ref", "string", "SEPA mandate reference (RUM)."),
    ("iban", "string", "IBAN for direct debits."),
    ("created_on", "date", "Creation date in the source."),
    ("last_name", "string", "Last (used) name."),
    ("birth_name", "string", "Birth name, when different from the used name."),
    ("first_name", "string", "First name(s)."),
    ("birth_date", "date", "Birth date; NULL when unknown."),
    ("sex", "string", "'M', 'F' or NULL."),
    ("role", "string", "Role in the household: 'responsible', 'child' or 'contact' (legacy); 'parent' or 'child' (portal)."),
    ("is_holder", "boolean", "Account holder / payer of the family."),
    ("status", "string", "Status."),
    ("legacy_family_code", "string", "Legacy family code the portal account is linked to; NULL until linked."),
    ("legacy_person_id", "integer", "Legacy person id the portal person is linked to; NULL until linked."),
    # --- activities, enrolments, bookings ----------------------------------
    ("activity_code", "string", "Activity code shared by portal and legacy (e.g. RESTO-JAURES)."),
    ("label", "string", "Label."),
    ("service", "string", "Town service code: RESTO, PERI, ALSH, MULTI, EMM, SCOL, ..."),
    ("site", "string", "Site (school, centre) where the activity takes place."),
    ("capacity", "integer", "Places per day."),
    ("unit_price_cents", "integer", "Unit price in cents."),
    ("cancel_notice_hours", "integer", "Cancellation notice in hours before 00:00 Europe/Paris of the booked day; a later cancellation is billed."),
    ("required_documents", "string", "';'-separated document types required to attend."),
    ("start_on", "date", "First day."),
    ("end_on", "date", "Last day; NULL = open-ended."),
    ("state", "string", "State in its source's vocabulary (see the table's description)."),
    ("request_number", "string", "Portal request number."),
    ("day", "date", "Day concerned."),
    ("origin", "string", "Where a legacy reservation came from: PORTAIL, GUICHET (front desk) or AUTO (standing booking)."),
    ("portal_ref", "string", "Portal booking id a legacy reservation came from."),
    ("cancelled_at", "datetime", "When the family cancelled, in UTC."),
    ("action", "string", "Portal booking action: 'book' or 'cancel'."),
    ("made_at", "datetime", "When the family acted on the portal, in UTC."),
    # --- billing -------------------------------------------------------------
    ("invoice_number", "string", "Invoice number (billed period YYYYMM + 7-digit sequence): the reference families quote."),
    ("period", "string", "Billed month, YYYYMM."),
    ("issued_on", "date", "Issue date."),
    ("due_on", "date", "Due date."),
    ("amount_cents", "integer", "Amount in cents."),
    ("quantity", "integer", "Quantity."),
    # --- payments and statements -----------------------------------------------
    ("source", "string", "Source system or file kind the row came from."),
    ("channel", "string", "Payment channel: online_card, direct_debit, cash, cheque, cesu, desk_card, transfer."),
    ("paid_on", "date", "Day the payment was made or collected."),
    ("paid_at", "datetime", "Instant of payment when known, in UTC."),
    ("invoice_ref", "string", "Invoice reference as given by the payer or the provider (may be blank or mistyped)."),
    ("payer_name", "string", "Payer's name as given."),
    ("payer_email", "string", "Payer's e-mail as given."),
    ("operation_ref", "string", "The source's own operation reference (PayFiP idop, desk receipt number, end-to-end id)."),
    ("auth_number", "string", "Card authorisation number."),
    ("cheque_number", "string", "Cheque number or CESU title number."),
    ("reject_reason", "string", "Direct-debit reject reason code (AC01, AC04, AM04, MD06, MS02, ...)."),
    ("fiscal_year", "integer", "Fiscal year of the invoice paid (PayFiP exer)."),
    ("file_name", "string", "Source file name."),
    ("line_no", "integer", "Line (or element index) in the source file."),
    ("format", "string", "File format: cfonb120, camt053, pain002, payfip, caisse."),
    ("account", "string", "Bank account number."),
    ("bank_code", "string", "Bank code."),
    ("branch_code", "string", "Branch code."),
    ("currency", "string", "ISO currency code."),
    ("opening_on", "date", "Date of the opening balance."),
    ("opening_balance_cents", "integer", "Opening balance in cents (signed)."),
    ("closing_on", "date", "Date of the closing balance."),
    ("closing_balance_cents", "integer", "Closing balance in cents (signed)."),
    ("operations_total_cents", "integer", "Sum of the statement's operations in cents (signed)."),
    ("operations_count", "integer", "Number of operations in the statement."),
    ("seq", "integer", "Position within its parent, from 1."),
    ("booked_on", "date", "Booking date."),
    ("value_on", "date", "Value date."),
    ("interbank_code", "string", "CFONB interbank operation code."),
    ("internal_code", "string", "Bank-internal operation code."),
    ("reject_code", "string", "Reject code on the statement line."),
    ("entry_number", "string", "Bank entry number."),
    ("reference", "string", "Reference."),
    ("details", "string", "Detail records (CFONB 05 / camt details), one 'QUALIFIER text' per line."),
    ("method", "string", "How the row was obtained (matching method, allocation method)."),
    ("score", "string", "Match score when probabilistic, as text for portability."),
    # --- documents, procedures, associations ------------------------------------
    ("document_type", "string", "Document type code (ASSURANCE, VACCINS, CERTIF_MEDICAL, JUSTIF_DOMICILE, ATTEST_CAF, ...)."),
    ("valid_from", "date", "First day of validity."),
    ("valid_until", "date", "Last day of validity; NULL = no end."),
    ("uploaded_at", "datetime", "When the document was uploaded, in UTC."),
    ("review", "string", "Portal review state: pending, accepted, rejected."),
    ("procedure", "string", "Procedure code (INSCRIPTION_SCOLAIRE, ACTE_NAISSANCE, SUBVENTION_ASSOCIATION, ...)."),
    ("submitted_at", "datetime", "When the request was submitted, in UTC."),
    ("instruction_started_at", "datetime", "When instruction started, in UTC."),
    ("decided_at", "datetime", "When the decision was taken, in UTC."),
    ("fields", "json", "Procedure-specific fields as JSON text."),
    ("amount_requested_cents", "integer", "Subsidy amount requested, in cents."),
    ("amount_granted_cents", "integer", "Subsidy amount granted, in cents."),
    ("purpose", "string", "Purpose of the subsidy."),
    ("entered_at", "datetime", "When the request entered this state, in UTC."),
    ("rna", "string", "Associations register number (W + 9 digits)."),
    ("siret", "string", "SIRET (14 digits, Luhn key), NULL when none."),
    ("room_code", "string", "Room code."),
    ("starts_at", "datetime", "Start instant, in UTC."),
    ("ends_at", "datetime", "End instant, in UTC."),
    ("equipment", "string", "Equipment codes, ';'-separated."),
    ("space", "string", "Portal space: citoyens, famille, associations."),
    ("count", "integer", "Count."),
    # --- bookkeeping -------------------------------------------------------------
    ("started_at", "datetime", "Start instant, in UTC."),
    ("finished_at", "datetime", "End instant, in UTC (NULL while running or after a crash)."),
    ("dagster_run_id", "string", "Dagster run id, when the run came from Dagster."),
    ("entity", "string", "Source entity (legacy table, portal collection, treasury file kind)."),
    ("value", "string", "Watermark value: legacy DATE_MAJ text, portal ISO instant, treasury folder date."),
    ("updated_at", "datetime", "When the row was last written, in UTC."),
    ("source_key", "string", "Key of the record in its source (primary key values joined by '|', or file:line)."),
    ("content_hash", "string", "SHA-256 of the raw record as extracted."),
    ("extracted_at", "datetime", "When the record was extracted, in UTC."),
    ("payload", "json", "The raw record as extracted, as JSON text."),
    ("reason", "string", "Why the record was quarantined: what was wrong, where."),
    ("resolved_run_id", "string", "Load run in which a valid version of the quarantined record loaded."),
    ("rows_read", "integer", "Rows read from the source in the run."),
    ("rows_loaded", "integer", "Rows that passed staging (new, changed or unchanged)."),
    ("rows_quarantined", "integer", "Rows sent to quarantine."),
    ("rows_inserted", "integer", "Core rows inserted."),
    ("rows_updated", "integer", "Core rows updated."),
    ("rows_deleted", "integer", "Core rows marked deleted (purged at source)."),
    ("sha256", "string", "SHA-256 of a file's content (hex)."),
    ("size_bytes", "integer", "File size in bytes."),
    ("folder_day", "date", "Drop folder day (outgoing/YYYY/MM/DD) where the file was found."),
    ("landed_path", "string", "Where the file was copied in the local landing area."),
    ("canonical_entity", "string", "Canonical entity a source record maps to: household or person."),
    ("canonical_id", "integer", "Canonical id the source record maps to."),
    ("source_entity", "string", "Entity in the source system (account, person, family, individual)."),
    ("source_id", "string", "Id in the source system."),
    ("flag_key", "string", "Stable flag key: rule + entity ids; re-runs never duplicate it."),
    ("rule", "string", "Rule that raised the flag."),
    ("severity", "string", "Severity: info, warning, error."),
    ("entity_ids", "json", "Ids of the entities concerned, as JSON."),
    ("evidence", "json", "The conflicting source records side by side, as JSON."),
    ("message", "string", "What is wrong, in French, for the stewards."),
    ("suggestion", "string", "Suggested fix, in French."),
    ("first_seen_run_id", "string", "Run that first saw the problem."),
    ("last_seen_run_id", "string", "Last run that saw the problem."),
    ("decision_id", "integer", "Steward decision id."),
    ("decision", "string", "Decision: accept, override, dismiss, fixed_at_source."),
    ("author", "string", "Who acted."),
    ("decided_on_at", "datetime", "When the steward decided, in UTC."),
    ("audit_id", "integer", "Audit log entry id."),
    ("at", "datetime", "When it happened, in UTC."),
]

FIELDS: dict[str, Field] = {}
for _name, _type, _desc in _F:
    if _name in FIELDS:
        raise ValueError(f"field {_name} defined twice")
    FIELDS[_name] = Field(_name, _type, _desc)
