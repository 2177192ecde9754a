"""Bank settlements vs the payments they carry, per channel and day.

What reaches the statement (SOURCES.md): PayFiP card payments as one credit per
transaction day (``PAYFIP CB dd/mm/yy``), desk card payments one per day on the second
account (``REMISE CB TPE ddmmyy``), direct debits one credit per collection
(``REMISE PRLV SEPA ddmmyy``, every transaction, the rejects debited later), cheques and
cash as remittances without a number (``REMISE CHEQUES``, ``VERSEMENT ESPECES``): those
carry the payments of the days since the previous remittance, the remittance day
excluded. CESU reimbursements (monthly lots) and transfers (one by one, they *are* the
payments) are not checked here.
"""

from __future__ import annotations

import pandas as pd

from pipelines.reconcile.rules import day_fr, euros, evidence, findings, record, rule

LABEL_FR = {"online_card": "PayFiP (carte en ligne)", "desk_card": "carte au guichet (TPE)",
            "direct_debit": "prélèvements", "cheque": "remise de chèques",
            "cash": "versement d'espèces"}


def _dated(ops: pd.DataFrame, prefix: str, fmt: str, width: int) -> pd.DataFrame:
    o = ops[ops["label"].fillna("").str.startswith(prefix)].copy()
    o["day"] = pd.to_datetime(o["label"].str.strip().str[-width:], format=fmt,
                              errors="coerce")
    return o[o["day"].notna()]


def settlements(td) -> pd.DataFrame:
    """One row per settlement: channel, day, bank_cents, payments_cents, payments count."""
    from pipelines.reconcile.payments import ledger

    ops = td["bank_operation"]
    led = ledger(td)
    p = td["payment"]
    out = []

    def by_day(channel, o, sums, counts):
        for r in o.itertuples():
            out.append({"channel": channel, "day": r.day, "operation_id": r.operation_id,
                        "booked_on": r.booked_on, "label": r.label,
                        "bank_cents": int(r.amount_cents),
                        "payments_cents": int(sums.get(r.day, 0)),
                        "payments": int(counts.get(r.day, 0))})

    for channel, prefix, fmt, width in (("online_card", "PAYFIP CB", "%d/%m/%y", 8),
                                        ("desk_card", "REMISE CB TPE", "%d%m%y", 6)):
        g = led[led["channel"] == channel].groupby("paid_on")["amount_cents"]
        by_day(channel, _dated(ops, prefix, fmt, width), g.sum(), g.size())
    dd = p[p["source"] == "prlv"]
    coll = pd.to_datetime(dd["payment_id"].str.extract(r"PAIN008-(\d{8})")[0],
                          format="%Y%m%d", errors="coerce")
    g = dd["amount_cents"].groupby(coll)
    by_day("direct_debit", _dated(ops, "REMISE PRLV", "%d%m%y", 6), g.sum(), g.size())
    for channel, prefix in (("cheque", "REMISE CHEQUES"), ("cash", "VERSEMENT ESPECES")):
        o = ops[ops["label"].fillna("").str.startswith(prefix)].sort_values("booked_on")
        pays = led[led["channel"] == channel]
        prev = None
        for r in o.itertuples():
            inside = pays[(pays["paid_on"] < r.booked_on)
                          & ((pays["paid_on"] >= prev) if prev is not None else True)]
            out.append({"channel": channel, "day": r.booked_on, "operation_id": r.operation_id,
                        "booked_on": r.booked_on, "label": r.label,
                        "bank_cents": int(r.amount_cents),
                        "payments_cents": int(inside["amount_cents"].sum()),
                        "payments": len(inside), "since": prev})
            prev = r.booked_on
    cols = ["channel", "day", "operation_id", "booked_on", "label", "bank_cents",
            "payments_cents", "payments", "since"]
    return pd.DataFrame(out, columns=cols)


@rule("payments", "settlement_mismatch", "Banque — remise différente des paiements",
      ("channel", "day"))
def settlement_mismatch(td) -> pd.DataFrame:
    """A bank settlement whose amount differs from the payments of its channel and day."""
    s = settlements(td)
    f = s[s["bank_cents"] != s["payments_cents"]].copy()
    f["gap"] = f["bank_cents"] - f["payments_cents"]
    f["on"] = f["day"]
    f["day"] = pd.to_datetime(f["day"]).dt.strftime("%Y-%m-%d")  # plain-text entity id

    def what(r):
        if r["channel"] in ("cheque", "cash"):
            since = day_fr(r["since"]) if r["since"] is not None and not pd.isna(
                r["since"]) else "le début"
            return f"depuis {since}"
        return f"du {day_fr(r['on'])}"

    return findings(
        f, ["channel", "day"],
        message=lambda r: (f"{LABEL_FR[r['channel']].capitalize()} {what(r)} : la banque a "
                           f"crédité {euros(r['bank_cents'])}, les paiements enregistrés "
                           f"font {euros(r['payments_cents'])} (écart {euros(r['gap'])})."),
        suggestion=("Chercher le paiement manquant ou en trop (ligne en quarantaine, fichier "
                    "non reçu, paiement saisi à une autre date) et le corriger."),
        evidence=lambda r: evidence(
            record("Relevé bancaire", {"identifiant": r["operation_id"],
                                       "date": day_fr(r["booked_on"]), "libellé": r["label"],
                                       "montant": euros(r["bank_cents"])}),
            record("Paiements", {"canal": LABEL_FR[r["channel"]], "période": what(r),
                                 "nombre": r["payments"],
                                 "montant": euros(r["payments_cents"])}),
            expected="La remise bancaire égale la somme des paiements qu'elle porte."))
