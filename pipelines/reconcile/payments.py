"""Payments: the payment office's lettering (invoices vs money received) and its rules.

``allocations(td)`` is the ``allocation`` core table (computed once per reconciliation,
see ``allocation``); ``money_balance`` proves that money is conserved to the cent. The
rules below (family ``payments``) show the steward what needs a decision: references to
confirm, partial, over- and double payments, direct-debit rejects, failed card attempts,
unbalanced statements, money not allocated and bank settlements that do not match the
payments they carry (``settlement``).
"""

from __future__ import annotations

import pandas as pd

from pipelines.reconcile import allocation as al
from pipelines.reconcile.rules import day_fr, euros, evidence, findings, record, rule

FAMILY = "payments"
CHANNEL_FR = {"online_card": "carte en ligne (PayFiP)", "cash": "espèces", "cheque": "chèque",
              "cesu": "CESU", "desk_card": "carte au guichet", "direct_debit": "prélèvement",
              "transfer": "virement"}
DESK = ("caisse", "bank")  # sources whose payer types the reference


# ------------------------------------------------------------------ the ledger

def ledger(td) -> pd.DataFrame:
    """Every received payment with its invoice and applied / unallocated cents (cached)."""
    return td.cached("payment_ledger", al.ledger)


def allocations(td) -> pd.DataFrame:
    """The ``allocation`` table: one row per payment and invoice it pays (cents > 0)."""
    def build(td):
        led = ledger(td)
        a = led[led["applied_cents"] > 0]
        return pd.DataFrame({
            "allocation_id": (a["payment_id"] + ">" + a["invoice_number"]).values,
            "payment_id": a["payment_id"].values,
            "invoice_number": a["invoice_number"].values,
            "amount_cents": a["applied_cents"].astype("int64").values,
            "method": a["method"].values,
        })
    return td.cached("allocation", build)


def money_balance(td, allocs: pd.DataFrame) -> dict:
    """Money received = allocated + unallocated, to the cent, overall and per channel.

    ``unallocated`` is computed per payment from the allocation rows given, never as a
    difference of totals, so an allocation that overspends a payment or names an unknown
    payment breaks the equality."""
    led = ledger(td)
    got = allocs.groupby("payment_id")["amount_cents"].sum() if len(allocs) else pd.Series(
        dtype="int64")
    amount = led.set_index("payment_id")["amount_cents"].astype("int64")
    allocated = got.reindex(amount.index).fillna(0).astype("int64")
    left = (amount - allocated).clip(lower=0)
    out = {"received_cents": int(amount.sum()), "allocated_cents": int(allocs[
        "amount_cents"].sum()) if len(allocs) else 0, "unallocated_cents": int(left.sum()),
           "payments_received": len(amount), "payments_allocated": int((allocated > 0).sum())}
    by = pd.DataFrame({"channel": led["channel"].values, "received": amount.values,
                       "allocated": allocated.values, "unallocated": left.values})
    out["by_channel"] = {ch: {"received_cents": int(g["received"].sum()),
                              "allocated_cents": int(g["allocated"].sum()),
                              "unallocated_cents": int(g["unallocated"].sum())}
                         for ch, g in by.groupby("channel")}
    return out


def truth_payment_id(rec: dict) -> str | None:
    """The warehouse payment id of a simulated town's truth payment."""
    pid = rec.get("payment_id") or ""
    if pid.startswith("PAYFIP-"):
        return "payfip:" + pid[len("PAYFIP-"):]
    if pid.startswith("CAISSE-"):
        return "caisse:" + pid[len("CAISSE-"):]
    if pid.startswith("VIR-"):
        account, entry = pid[len("VIR-"):].rsplit("-", 1)
        return f"vir:{account}:{entry}"
    if pid.startswith("PRLV-"):
        day, invoice = pid[len("PRLV-"):].split("-", 1)
        return f"prlv:PAIN008-{day}:{invoice}"
    return None


def _pid(rec: dict) -> tuple:
    return (truth_payment_id(rec),)


# ------------------------------------------------------------------ evidence helpers

def _payment_record(r: dict) -> dict:
    return record("Paiement", {
        "identifiant": r["payment_id"], "canal": CHANNEL_FR.get(r["channel"], r["channel"]),
        "date": day_fr(r["paid_on"]), "montant": euros(r["amount_cents"]),
        "référence citée": r.get("invoice_ref"), "payeur": r.get("payer_name")})


def _invoice_record(r: dict, label: str = "Facture") -> dict:
    return record(label, {
        "identifiant": r.get("invoice_number"), "famille": r.get("household_id"),
        "montant": euros(r.get("invoice_amount_cents")),
        "restant dû avant": euros(r.get("owed_before")),
        "affecté": euros(r.get("applied_cents")),
        "non affecté": euros(r.get("unallocated_cents"))})


def _both(r: dict, expected: str) -> dict:
    recs = [_payment_record(r)]
    if r.get("invoice_number") is not None and not pd.isna(r.get("invoice_number")):
        recs.append(_invoice_record(r))
    return evidence(*recs, expected=expected)


# ------------------------------------------------------------------ reference rules

def _reference_rule(td, case: str) -> pd.DataFrame:
    led = ledger(td)
    f = led[led["source"].isin(DESK) & (led["reference_case"] == case)]
    quoted = "une référence erronée" if case == "mistyped" else "aucune référence de facture"

    def message(r):
        if r["invoice_number"] is None or pd.isna(r["invoice_number"]):
            return (f"Paiement de {euros(r['amount_cents'])} du {day_fr(r['paid_on'])} "
                    f"({r['payer_name'] or 'payeur inconnu'}) avec {quoted} : aucune facture "
                    "trouvée, l'argent reste non affecté.")
        return (f"Paiement de {euros(r['amount_cents'])} du {day_fr(r['paid_on'])} avec "
                f"{quoted}, affecté à la facture {r['invoice_number']} (à confirmer).")

    def suggestion(r):
        if r["invoice_number"] is None or pd.isna(r["invoice_number"]):
            return "Identifier la facture payée (payeur, montant, date) et l'affecter à la main."
        return f"Confirmer l'affectation à la facture {r['invoice_number']}, ou la corriger."

    return findings(
        f, ["payment_id"], message=message, suggestion=suggestion,
        severity=lambda r: "info" if isinstance(r["invoice_number"], str) else "warning",
        evidence=lambda r: _both(r, "La référence citée devrait être le numéro de la facture "
                                    "payée (période AAAAMM + 7 chiffres)."))


@rule(FAMILY, "payment_mistyped_reference", "Paiements — référence de facture erronée",
      ("payment_id",), truth_key=_pid)
def payment_mistyped_reference(td) -> pd.DataFrame:
    """Desk and transfer payments quoting a reference that is not the invoice they pay."""
    return _reference_rule(td, "mistyped")


@rule(FAMILY, "payment_no_reference", "Paiements — paiement sans référence de facture",
      ("payment_id",), truth_key=_pid)
def payment_no_reference(td) -> pd.DataFrame:
    """Desk and transfer payments quoting no invoice number (matched by amount and payer)."""
    return _reference_rule(td, "none")


# ------------------------------------------------------------------ amount rules

@rule(FAMILY, "payment_partial", "Paiements — paiement partiel d'une facture", ("payment_id",),
      truth_key=_pid)
def payment_partial(td) -> pd.DataFrame:
    """A payment smaller than what its invoice still owed."""
    led = ledger(td)
    f = led[led["case"] == "partial"]
    return findings(
        f, ["payment_id"],
        message=lambda r: (f"Paiement partiel de {euros(r['applied_cents'])} sur la facture "
                           f"{r['invoice_number']} ({euros(r['owed_before'])} dus) ; reste dû "
                           f"aujourd'hui : {euros(r['owed_now'])}."),
        severity=lambda r: "warning" if r["owed_now"] > 0 else "info",
        suggestion=lambda r: ("Relancer la famille pour le solde." if r["owed_now"] > 0
                              else "Solde réglé depuis : rien à faire."),
        evidence=lambda r: _both(r, "Le paiement devrait couvrir le montant restant dû."))


@rule(FAMILY, "payment_overpayment", "Paiements — trop-perçu sur une facture", ("payment_id",),
      truth_key=_pid)
def payment_overpayment(td) -> pd.DataFrame:
    """A payment larger than what its invoice owed: the rest is a credit."""
    led = ledger(td)
    f = led[led["case"] == "overpayment"]
    return findings(
        f, ["payment_id"],
        message=lambda r: (f"Trop-perçu de {euros(r['unallocated_cents'])} : "
                           f"{euros(r['amount_cents'])} reçus pour la facture "
                           f"{r['invoice_number']} qui devait {euros(r['owed_before'])}."),
        suggestion="Garder l'excédent en avoir sur la prochaine facture ou le rembourser.",
        evidence=lambda r: _both(r, "Le paiement devrait égaler le montant restant dû."))


@rule(FAMILY, "payment_double", "Paiements — facture payée deux fois", ("payment_id",), truth_key=_pid)
def payment_double(td) -> pd.DataFrame:
    """A payment of an invoice already settled by an earlier one (refund candidate)."""
    led = ledger(td)
    f = led[led["case"] == "double"]
    first = led[led["applied_cents"] > 0].groupby("invoice_number")["payment_id"].agg(
        lambda s: ", ".join(s))
    return findings(
        f, ["payment_id"],
        message=lambda r: (f"Facture {r['invoice_number']} déjà réglée : le paiement de "
                           f"{euros(r['amount_cents'])} du {day_fr(r['paid_on'])} est un "
                           "double paiement."),
        suggestion=lambda r: (f"Rembourser {euros(r['amount_cents'])} à la famille (ou le "
                              "garder en avoir avec son accord)."),
        evidence=lambda r: evidence(
            _payment_record(r), _invoice_record(r),
            record("Déjà payée par", {"identifiant": first.get(r["invoice_number"])}),
            expected="Une facture n'est payée qu'une fois."))


# ------------------------------------------------------------------ failed payments

def _impaye(td) -> pd.DataFrame:
    """Reject debits of the statements ('IMPAYE PRLV SEPA'), by the invoice in their LIB."""
    ops = td["bank_operation"]
    r = ops[ops["label"].fillna("").str.startswith("IMPAYE PRLV")].copy()
    lib = [al.detail(d, "LIB") or "" for d in r["details"]]
    r["invoice_number"] = [x.split()[0] if x.split() else None for x in lib]
    return r.drop_duplicates("invoice_number", keep="last").set_index("invoice_number")


@rule(FAMILY, "direct_debit_reject", "Paiements — prélèvement rejeté", ("payment_id",), truth_key=_pid)
def direct_debit_reject(td) -> pd.DataFrame:
    """Direct debits the bank rejected: the invoice is not paid by them."""
    p = td["payment"]
    f = p[(p["source"] == "prlv") & (p["status"] == "rejected")].copy()
    imp = _impaye(td)
    led = ledger(td)
    paid = led[led["applied_cents"] > 0].groupby("invoice_number")["applied_cents"].sum()
    f["paid_since"] = f["invoice_ref"].map(paid).fillna(0).astype("int64")

    def ev(r):
        recs = [record("Rejet (pain.002)", {
            "identifiant": r["payment_id"], "facture": r["invoice_ref"],
            "montant": euros(r["amount_cents"]), "date": day_fr(r["paid_on"]),
            "motif": r["reject_reason"]})]
        if r["invoice_ref"] in imp.index:
            o = imp.loc[r["invoice_ref"]]
            recs.append(record("Relevé bancaire", {
                "identifiant": o["operation_id"], "date": day_fr(o["booked_on"]),
                "montant": euros(o["amount_cents"]), "libellé": o["label"]}))
        return evidence(*recs, expected="Un prélèvement rejeté ne paie pas la facture.")

    return findings(
        f, ["payment_id"],
        message=lambda r: (f"Prélèvement de {euros(r['amount_cents'])} pour la facture "
                           f"{r['invoice_ref']} rejeté (motif {r['reject_reason']})."
                           + (f" Réglé depuis : {euros(r['paid_since'])}."
                              if r["paid_since"] else "")),
        severity=lambda r: "info" if r["paid_since"] else "warning",
        suggestion=lambda r: ("Rien à faire : la facture a été réglée autrement."
                              if r["paid_since"] else
                              "Demander un autre moyen de paiement et vérifier le mandat "
                              "SEPA (motif AC01/AC04/MD06 : IBAN ou mandat à revoir)."),
        evidence=ev)


@rule(FAMILY, "payfip_refused_or_abandoned", "Paiements — paiement en ligne refusé ou abandonné",
      ("payment_id",),
      truth_key=lambda d: ("payfip:" + d["idop"],))
def payfip_refused_or_abandoned(td) -> pd.DataFrame:
    """Card attempts refused or abandoned: no money (one flag per attempt)."""
    p = td["payment"]
    failed = p[p["source"].isin(["payfip", "portal"]) & p["status"].isin(
        ["refused", "abandoned"])]
    # one flag per attempt: the PayFiP line, or the portal's when the line is missing
    payfip_ops = set(p.loc[p["source"] == "payfip", "operation_ref"].dropna())
    f = failed[(failed["source"] == "payfip") | ~failed["operation_ref"].isin(payfip_ops)]
    led = ledger(td)
    paid = led[led["applied_cents"] > 0].groupby("invoice_number")["applied_cents"].sum()
    f = f.assign(paid_since=f["invoice_ref"].map(paid).fillna(0).astype("int64"))
    status_fr = {"refused": "refusé", "abandoned": "abandonné"}
    return findings(
        f, ["payment_id"],
        message=lambda r: (f"Paiement en ligne {status_fr[r['status']]} de "
                           f"{euros(r['amount_cents'])} pour la facture {r['invoice_ref']} "
                           f"le {day_fr(r['paid_on'])} : aucun argent reçu."),
        severity="info",
        suggestion=lambda r: ("Rien à faire : la facture a été réglée depuis."
                              if r["paid_since"] else
                              "Vérifier que la famille a pu payer autrement ; sinon la relancer."),
        evidence=lambda r: evidence(record("Tentative", {
            "identifiant": r["payment_id"], "idop": r["operation_ref"],
            "statut": status_fr[r["status"]], "montant": euros(r["amount_cents"]),
            "facture": r["invoice_ref"], "réglé depuis": euros(r["paid_since"])}),
            expected="Seule une transaction payée (P) est de l'argent reçu."))


@rule(FAMILY, "unallocated_payment", "Paiements — argent reçu non affecté", ("payment_id",))
def unallocated_payment(td) -> pd.DataFrame:
    """Money received that pays no invoice although it quotes an exact one (unknown or
    cancelled invoice); payments quoting no or a wrong reference are flagged by the
    reference rules instead."""
    led = ledger(td)
    f = led[(led["case"].isin(["unmatched", "cancelled_invoice"]))
            & ~(led["source"].isin(DESK) & led["reference_case"].isin(["none", "mistyped"]))]
    return findings(
        f, ["payment_id"],
        message=lambda r: (f"{euros(r['amount_cents'])} reçus le {day_fr(r['paid_on'])} "
                           f"(référence {r['invoice_ref'] or 'aucune'}) ne sont affectés à "
                           "aucune facture" + (" : la facture est annulée."
                                               if r["case"] == "cancelled_invoice" else ".")),
        suggestion="Affecter le paiement à la facture qui la remplace, ou le rembourser.",
        evidence=lambda r: _both(r, "Tout argent reçu est affecté à une facture."))


# ------------------------------------------------------------------ statements

def statement_balances(td) -> pd.DataFrame:
    """Statements whose operations do not add up, with what the next statement says."""
    st = td["bank_statement"].copy()
    if not len(st):
        return st.assign(gap=pd.Series(dtype="int64"), next_opening=None, confirmed=False)
    st = st.sort_values(["account", "closing_on", "statement_id"])
    st["gap"] = (st["closing_balance_cents"] - st["opening_balance_cents"]
                 - st["operations_total_cents"]).astype("int64")
    nxt = st.groupby("account").shift(-1)
    st["next_opening"] = nxt["opening_balance_cents"]
    contiguous = nxt["opening_on"] == st["closing_on"]
    # the next statement opens with this one's declared closing: the closing is right and
    # operations are missing (an operation line quarantined), not an unbalanced statement
    st["confirmed"] = contiguous & (st["next_opening"] == st["closing_balance_cents"])
    st = st[st["gap"] != 0].copy()
    st["closing_day"] = st["closing_on"]
    # entity ids are plain text: the day as 2026-02-16, however the flags store them
    st["closing_on"] = st["closing_on"].dt.strftime("%Y-%m-%d")
    return st


def _statement_ev(r: dict, expected: str) -> dict:
    return evidence(record("Relevé", {
        "compte": r["account"], "fichier": r["file_name"], "du": day_fr(r["opening_on"]),
        "au": day_fr(r["closing_day"]), "solde initial": euros(r["opening_balance_cents"]),
        "opérations": euros(r["operations_total_cents"]),
        "solde final déclaré": euros(r["closing_balance_cents"]),
        "solde final calculé": euros(r["opening_balance_cents"]
                                     + r["operations_total_cents"]),
        "solde initial suivant": euros(r["next_opening"])}), expected=expected)


@rule(FAMILY, "statement_unbalanced", "Banque — relevé déséquilibré",
      ("account", "closing_on"), truth_key=lambda d: (d["account"], d["closing_on"]))
def statement_unbalanced(td) -> pd.DataFrame:
    """Opening balance + operations != closing balance, the closing not confirmed by the
    next statement's opening."""
    st = statement_balances(td)
    f = st[~st["confirmed"]]
    return findings(
        f, ["account", "closing_on"],
        message=lambda r: (f"Relevé du compte {r['account']} au {day_fr(r['closing_day'])} "
                           f"déséquilibré : écart de {euros(r['gap'])} entre le solde final "
                           "déclaré et solde initial + opérations."),
        suggestion="Demander à la banque un relevé rectificatif.",
        evidence=lambda r: _statement_ev(r, "Solde initial + opérations = solde final."))


@rule(FAMILY, "statement_operations_missing", "Banque — opérations manquantes dans un relevé",
      ("account", "closing_on"))
def statement_operations_missing(td) -> pd.DataFrame:
    """The statement's balances are confirmed by the next one but its loaded operations do
    not add up: an operation line was quarantined."""
    st = statement_balances(td)
    f = st[st["confirmed"]]
    return findings(
        f, ["account", "closing_on"],
        message=lambda r: (f"Relevé du compte {r['account']} au {day_fr(r['closing_day'])} : "
                           f"{euros(r['gap'])} d'opérations manquent (ligne mise en "
                           "quarantaine ?)."),
        suggestion="Corriger la ligne en quarantaine du fichier et le recharger.",
        evidence=lambda r: _statement_ev(r, "Les opérations chargées expliquent les soldes."))


from pipelines.reconcile import settlement  # noqa: F401  (registers its rule)
