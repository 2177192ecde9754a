"""French labels of tables, columns and values, for what stewards read."""

from __future__ import annotations

import math

TABLES = {
    "household": "Famille", "person": "Personne", "membership": "Rattachement",
    "portal_account": "Compte du portail", "portal_person": "Personne du portail",
    "crosswalk": "Correspondance", "activity": "Activité", "enrolment": "Inscription",
    "reservation": "Réservation", "portal_booking": "Réservation du portail",
    "attendance": "Pointage", "invoice": "Facture", "invoice_line": "Ligne de facture",
    "payment": "Paiement", "bank_statement": "Relevé bancaire",
    "bank_operation": "Opération bancaire", "allocation": "Affectation de paiement",
    "document": "Pièce justificative", "procedure_request": "Démarche",
    "procedure_state": "État de démarche", "association": "Association",
    "room_booking": "Réservation de salle", "login_stat": "Connexions",
}

COLUMNS = {
    "household_id": "n° famille", "person_id": "n° personne", "family_code": "code famille",
    "name": "nom", "address": "adresse", "postcode": "code postal", "city": "commune",
    "phone": "téléphone", "email": "e-mail", "caf_number": "n° allocataire CAF",
    "family_quotient": "quotient familial", "direct_debit": "prélèvement",
    "mandate_ref": "référence de mandat (RUM)", "iban": "IBAN", "created_on": "créé le",
    "last_name": "nom", "birth_name": "nom de naissance", "first_name": "prénom",
    "birth_date": "date de naissance", "sex": "sexe", "role": "rôle",
    "account_id": "compte portail", "portal_person_id": "personne portail",
    "legacy_family_code": "code famille lié", "legacy_person_id": "personne liée",
    "status": "statut", "activity_id": "n° activité", "activity_code": "code activité",
    "label": "libellé", "service": "service", "site": "site", "capacity": "capacité",
    "unit_price_cents": "prix unitaire (centimes)", "cancel_notice_hours": "délai d'annulation (h)",
    "enrolment_id": "n° inscription", "start_on": "début", "end_on": "fin", "state": "état",
    "request_number": "n° de demande", "reservation_id": "n° réservation", "day": "jour",
    "origin": "origine", "cancelled_at": "annulée le", "attendance_id": "n° pointage",
    "invoice_id": "n° facture (id)", "invoice_number": "n° facture", "period": "période",
    "issued_on": "émise le", "due_on": "échéance", "amount_cents": "montant (centimes)",
    "line_id": "n° ligne", "quantity": "quantité", "payment_id": "paiement",
    "channel": "canal", "paid_on": "payé le", "payer_email": "e-mail du payeur",
    "statement_id": "relevé", "opening_balance_cents": "ancien solde (centimes)",
    "closing_balance_cents": "nouveau solde (centimes)",
    "operations_total_cents": "total des opérations (centimes)", "currency": "devise",
    "operation_id": "opération", "document_id": "pièce", "document_type": "type de pièce",
    "valid_from": "valable du", "valid_until": "valable jusqu'au", "review": "validation",
    "request_id": "démarche", "procedure": "procédure", "submitted_at": "déposée le",
    "decided_at": "décidée le", "association_id": "association", "rna": "n° RNA",
    "siret": "SIRET", "room_booking_id": "réservation de salle", "starts_at": "début",
    "ends_at": "fin", "space": "espace", "count": "nombre",
    "age_at_start": "âge au début (ans)", "lines_total_cents": "total des lignes (centimes)",
    "expected_amount_cents": "quantité × prix (centimes)",
    "expected_closing_cents": "ancien solde + opérations (centimes)",
    "number_period": "période du n° de facture", "allocation_id": "affectation",
    "amount_requested_cents": "montant demandé (centimes)",
    "amount_granted_cents": "montant accordé (centimes)", "requester": "demandeur",
    "canonical_entity": "entité", "source": "source",
}


def table_fr(name: str) -> str:
    return TABLES.get(name, name)


def column_fr(name: str) -> str:
    return COLUMNS.get(name, name.replace("_", " "))


def value_fr(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "(vide)"
    if v is True:
        return "oui"
    if v is False:
        return "non"
    return str(v)
