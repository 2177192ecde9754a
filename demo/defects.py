"""The catalogue of defects the simulated town injects, with their default rates.

Every class is recorded in the ground truth (``truth.jsonl``, kind ``defect``) with the exact
records involved. ``defect_rate`` multiplies every rate below (0 = a clean town).

Each rate is a probability applied to a stated *unit* (a portal booking, an invoice, ...);
the defaults are realistic (a few percent or less) yet give ≥ ~20 instances per class in the
default 3,000-household town where the unit count allows it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DefectClass:
    name: str
    family: str  # identity | bookings | billing | payments | documents | procedures | source
    rate: float
    unit: str
    description: str


CLASSES: list[DefectClass] = [
    # identity
    DefectClass("account_unlinked", "identity", 0.04, "portal account of a legacy family",
                "Portal account of a legacy family with no legacy_family_code; its data "
                "differs from the legacy (name and contact variants) so it needs matching."),
    DefectClass("account_wrong_family", "identity", 0.01, "linked portal account",
                "Portal account linked (legacy_family_code) to another family than its own."),
    DefectClass("legacy_duplicate_family", "identity", 0.012, "legacy family",
                "The same household entered twice in the legacy program (new FAMILLE and "
                "INDIVIDU rows with spelling/format variants)."),
    # bookings
    DefectClass("booking_not_propagated", "bookings", 0.003, "portal book action",
                "A portal booking that never reached the legacy RESERVATION table."),
    DefectClass("cancellation_not_applied", "bookings", 0.006, "portal cancel action",
                "A portal cancellation whose legacy reservation stayed 'RESA'."),
    DefectClass("booking_wrong_day_or_activity", "bookings", 0.002, "portal book action",
                "A portal booking propagated to another day, or to another activity of the "
                "child, in the legacy program (REF_PORTAIL = the portal booking id)."),
    DefectClass("no_show", "bookings", 0.012, "booked day",
                "Child booked (and the booking in the legacy) but absent without excuse (AI)."),
    DefectClass("present_without_booking", "bookings", 0.0015, "enrolled child and open day",
                "Child checked present (P) on a day booked in no system."),
    DefectClass("over_capacity", "bookings", 0.02, "activity day",
                "More 'RESA' reservations on a day than the activity's CAPACITE."),
    # billing
    DefectClass("billed_despite_timely_cancellation", "billing", 0.01,
                "day cancelled in time", "A day billed although cancelled within the notice."),
    DefectClass("billed_never_booked", "billing", 0.004, "invoice",
                "A day billed that was never booked nor attended."),
    DefectClass("invoice_total_mismatch", "billing", 0.004, "invoice",
                "FACTURE.MONTANT_CENTIMES differs from the sum of its lines."),
    # payments
    DefectClass("payment_mistyped_reference", "payments", 0.12, "desk/transfer payment",
                "The invoice number quoted by the payer is mistyped."),
    DefectClass("payment_no_reference", "payments", 0.25, "desk/transfer payment",
                "No invoice number quoted (blank num_facture, free transfer label)."),
    DefectClass("payment_partial", "payments", 0.02, "invoice",
                "The family paid only part of the invoice (the rest later, or never)."),
    DefectClass("payment_overpayment", "payments", 0.012, "invoice",
                "The family paid more than the invoice (rounded up)."),
    DefectClass("payment_double", "payments", 0.008, "invoice",
                "The same invoice paid twice (two channels or twice the same)."),
    DefectClass("direct_debit_reject", "payments", 0.025, "direct-debit transaction",
                "A SEPA direct debit rejected (pain.002 RJCT, then an 'IMPAYE PRLV SEPA' debit)."),
    DefectClass("payfip_refused_or_abandoned", "payments", 0.10, "online payment",
                "An online card payment attempt refused or abandoned before (or without) "
                "a successful one."),
    DefectClass("statement_unbalanced", "payments", 0.05, "bank statement",
                "A statement whose new balance is not old balance + sum of operations."),
    # documents
    DefectClass("document_missing_or_expired", "documents", 0.02,
                "required document of an enrolment",
                "A validated, current enrolment whose child/family lacks a valid required "
                "document (missing, or expired) at the simulated 'now'."),
    DefectClass("upload_accepted_not_in_piece", "documents", 0.02, "accepted portal upload",
                "A portal upload reviewed 'accepted' but never recorded in PIECE."),
    # procedures
    DefectClass("request_stuck", "procedures", 0.02, "portal request",
                "A request not decided beyond its service level at the simulated 'now'."),
    DefectClass("accepted_enrolment_without_inscription", "procedures", 0.02,
                "accepted enrolment request",
                "An accepted enrolment request with no INSCRIPTION whose REF_DEMANDE is its number."),
    # source defects (for the quarantine)
    DefectClass("legacy_malformed_row", "source", 0.0003, "legacy row",
                "An extra legacy row with an impossible date or an unknown code."),
    DefectClass("portal_malformed_line", "source", 0.0005, "portal line",
                "An extra JSONL line that is not valid JSON or lacks a required field."),
    DefectClass("treasury_malformed_line", "source", 0.003, "treasury data line",
                "A treasury line that cannot be parsed (bad amount, date, field count)."),
    DefectClass("treasury_redelivered", "source", 0.02, "treasury file",
                "A file delivered again (same name in a later day's folder, or a _2 suffix)."),
    DefectClass("treasury_stale_part", "source", 0.03, "treasury file",
                "A '.part' left behind, incomplete, never renamed."),
    DefectClass("treasury_sha256_mismatch", "source", 0.05, "sha256 sidecar",
                "A .sha256 sidecar that does not match its file (the file is re-delivered "
                "correctly the next day)."),
]

BY_NAME = {c.name: c for c in CLASSES}
DEFAULT_RATES = {c.name: c.rate for c in CLASSES}

#: sub-kinds of the name/contact variants of an unlinked account
ACCOUNT_VARIANTS = [
    "accents_dropped",
    "compound_hyphen_space",
    "birth_vs_married_name",
    "swapped_first_last",
    "birth_date_typo",
    "email_differs",
    "phone_differs",
    "moved_address",
]


class Rates:
    """Effective rates: default × defect_rate (capped at 1)."""

    def __init__(self, defect_rate: float = 1.0):
        self.defect_rate = float(defect_rate)
        self.rates = {k: min(1.0, v * self.defect_rate) for k, v in DEFAULT_RATES.items()}

    def __getitem__(self, name: str) -> float:
        return self.rates[name]

    def on(self) -> bool:
        return self.defect_rate > 0
