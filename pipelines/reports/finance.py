"""Finance report of the single payment office, and its marts.

Two views of the money, both to the cent:

- **billed view** (``mart_finance_month``, per billed month x service): what the invoices
  of a month asked for, what was allocated to them by channel, what they still owe at the
  reference day and how late, what was cancelled, what went to the public treasury.
  Identity, per row: invoiced = collected + outstanding + cancelled; collected = sum of
  the channels; outstanding = sum of the ageing buckets.
- **cash-flow view** (``mart_receipts_month``, per payment month x channel): the money
  received, allocated or not (credits, doubles, unmatched), the direct-debit rejects
  and failed card attempts; received = allocated + unallocated.
The two views meet: all months together, collected (billed view) = allocated (cash-flow).
``verify`` recomputes these equalities on the stored marts (the blocking asset check).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.loading import read_frame
from pipelines.reconcile.allocation import received
from pipelines.reports.marts import (
    NO_DATA,
    OTHER_SERVICE,
    euros_fr,
    month_of,
    ratio,
    read_mart,
    reference_day,
    spread,
    town_name,
)
from pipelines.reports.model import Chart, Column, Report, Sheet, months

CHANNELS = ("online_card", "direct_debit", "cash", "cheque", "cesu", "desk_card", "transfer",
            "other")
CHANNEL_FR = {"online_card": "carte en ligne (PayFiP)", "direct_debit": "prélèvement",
              "cash": "espèces", "cheque": "chèque", "cesu": "CESU",
              "desk_card": "carte au guichet", "transfer": "virement",
              "other": "canal inconnu"}
BUCKETS = ("not_due", "overdue_0_30", "overdue_31_60", "overdue_61_90", "overdue_over_90")
BUCKET_FR = {"not_due": "Non échu", "overdue_0_30": "Retard 0 à 30 j",
             "overdue_31_60": "Retard 31 à 60 j", "overdue_61_90": "Retard 61 à 90 j",
             "overdue_over_90": "Retard > 90 j"}
REJECT_FR = {"AC01": "IBAN incorrect", "AC04": "compte clôturé",
             "AM04": "provision insuffisante", "MD06": "contestation du débiteur",
             "MS02": "refus du débiteur", "MD01": "pas de mandat", "AC06": "compte bloqué",
             "?": "motif non précisé"}
SERVICE_FR = {"RESTO": "Restauration scolaire", "PERI": "Périscolaire",
              "ALSH": "Centre de loisirs", "MULTI": "Multi-accueil (crèche)",
              "EMM": "École de musique", "SCOL": "Scolaire",
              OTHER_SERVICE: "Autre (sans ligne ou activité inconnue)"}

FINANCE_MONTH = "mart_finance_month"
RECEIPTS_MONTH = "mart_receipts_month"
DEBIT_REJECT = "mart_debit_reject"


# ================================================================== marts

def marts(td) -> dict[str, pd.DataFrame]:
    """The finance marts of a town (``TownData`` with its reference instant set)."""
    with td.engine.connect() as conn:
        shares = line_shares(conn, td.town)
        alloc = allocated_by_channel(conn, td.town)
        per_payment = allocated_by_payment(conn, td.town)
    return {FINANCE_MONTH: finance_month(td["invoice"], shares, alloc, reference_day(td)),
            RECEIPTS_MONTH: receipts_month(td, per_payment),
            DEBIT_REJECT: debit_rejects(td["payment"])}


def line_shares(conn: sa.Connection, town: str) -> pd.DataFrame:
    """Per invoice and service (of the line's enrolment's activity): the lines' cents."""
    sql = ("SELECT l.invoice_id, a.service, SUM(l.amount_cents) AS cents, COUNT(*) AS n "
           "FROM invoice_line l "
           "LEFT JOIN enrolment e ON e.town = l.town AND e.enrolment_id = l.enrolment_id "
           "AND e.deleted_run_id IS NULL "
           "LEFT JOIN activity a ON a.town = e.town AND a.activity_id = e.activity_id "
           "AND a.deleted_run_id IS NULL "
           "WHERE l.town = ? AND l.deleted_run_id IS NULL GROUP BY l.invoice_id, a.service")
    df = read_frame(conn, sql, [town])
    return pd.DataFrame({
        "invoice_id": pd.to_numeric(df["invoice_id"]).astype("int64"),
        "service": df["service"].where(df["service"].notna(), OTHER_SERVICE).astype(str),
        "lines_cents": pd.to_numeric(df["cents"]).fillna(0).astype("int64")})


def _channel_sql(alias_p: str, alias_a: str) -> str:
    # no LIKE 'vir:%': a literal % is a placeholder for the PostgreSQL driver
    return (f"COALESCE({alias_p}.channel, CASE WHEN SUBSTR({alias_a}.payment_id, 1, 4) = "
            "'vir:' THEN 'transfer' ELSE 'other' END)")


def allocated_by_channel(conn: sa.Connection, town: str) -> pd.DataFrame:
    """Cents allocated per invoice number and channel of the paying payment (transfers,
    ``vir:...``, are not in the payment table)."""
    sql = (f"SELECT a.invoice_number, {_channel_sql('p', 'a')} AS channel, "
           "SUM(a.amount_cents) AS cents FROM allocation a "
           "LEFT JOIN payment p ON p.town = a.town AND p.payment_id = a.payment_id "
           "AND p.deleted_run_id IS NULL "
           "WHERE a.town = ? AND a.deleted_run_id IS NULL GROUP BY a.invoice_number, 2")
    df = read_frame(conn, sql, [town])
    df["cents"] = pd.to_numeric(df["cents"]).fillna(0).astype("int64")
    df["channel"] = df["channel"].where(df["channel"].isin(CHANNELS), "other")
    return df


def allocated_by_payment(conn: sa.Connection, town: str) -> pd.Series:
    df = read_frame(conn, "SELECT payment_id, SUM(amount_cents) AS cents FROM allocation "
                          "WHERE town = ? AND deleted_run_id IS NULL GROUP BY payment_id",
                    [town])
    return pd.to_numeric(df.set_index("payment_id")["cents"]).astype("int64") if len(df) \
        else pd.Series(dtype="int64")


def bucket_of(due_on: pd.Series, ref_day) -> pd.Series:
    """Ageing bucket of each invoice at the reference day (no due date: not due)."""
    late = (pd.Timestamp(ref_day) - pd.to_datetime(due_on)).dt.days
    out = np.select([late.isna() | (late <= 0), late <= 30, late <= 60, late <= 90],
                    list(BUCKETS[:4]), BUCKETS[4])
    return pd.Series(out, index=due_on.index)


def invoice_month(inv: pd.DataFrame) -> pd.Series:
    """The billed month: the invoice's period YYYYMM, else its issue month."""
    p = inv["period"].astype("string").str.strip()
    ok = p.str.fullmatch(r"\d{4}(0[1-9]|1[0-2])").fillna(False).astype(bool)
    by_period = p.str[:4] + "-" + p.str[4:6]
    out = by_period.where(ok, month_of(inv["issued_on"]))
    return out.fillna("inconnu").astype(str)


def finance_month(inv: pd.DataFrame, shares: pd.DataFrame, alloc: pd.DataFrame,
                  ref_day) -> pd.DataFrame:
    """``mart_finance_month``: per billed month and service (see the module docstring).

    Each invoice's header amount is laid out as components — what each channel paid,
    then what was cancelled (header - allocated, state A), then what is still owed
    (header - allocated, live) — and split on its lines' services (``spread``)."""
    inv = inv[inv["invoice_id"].notna()].drop_duplicates("invoice_id").copy()
    inv["invoice_id"] = inv["invoice_id"].astype("int64")
    inv["header"] = inv["amount_cents"].fillna(0).astype("int64")
    inv["state"] = inv["state"].fillna("E").astype(str)
    inv["month"] = invoice_month(inv)
    inv["bucket"] = bucket_of(inv["due_on"], ref_day)
    paid = alloc.pivot_table(index="invoice_number", columns="channel", values="cents",
                             aggfunc="sum", fill_value=0)
    paid = paid.reindex(columns=list(CHANNELS), fill_value=0)
    got = paid.reindex(inv["invoice_number"].astype(str).values).fillna(0).astype("int64")
    got.index = inv.index
    allocated = got.sum(axis=1)
    left = inv["header"] - allocated
    cancelled = inv["state"] == "A"
    comp = pd.DataFrame({f"collected_{c}": got[c] for c in CHANNELS})
    comp["cancelled"] = left.where(cancelled, 0)
    comp["outstanding"] = left.where(~cancelled, 0)
    # credit notes (negative headers) are laid out on their absolute value
    sign = np.where(inv["header"] < 0, -1, 1)
    comp = comp.mul(sign, axis=0).clip(lower=0)
    comp["invoice_id"] = inv["invoice_id"].values
    long = comp.melt(id_vars="invoice_id", var_name="component", value_name="cents")
    order = {c: i for i, c in enumerate(comp.columns[:-1])}
    long = long[long["cents"] > 0].assign(o=lambda d: d["component"].map(order))
    long = long.sort_values(["invoice_id", "o"], kind="stable")

    sh = shares[shares["invoice_id"].isin(inv["invoice_id"])]
    sh = sh.groupby(["invoice_id", "service"], as_index=False)["lines_cents"].sum()
    sh["weight"] = sh["lines_cents"].clip(lower=0)
    weighted = sh.groupby("invoice_id")["weight"].transform("sum") > 0
    # an invoice with no line (or no positive line) keeps its lines' service, else AUTRE
    lone = inv.loc[~inv["invoice_id"].isin(sh.loc[weighted, "invoice_id"]), ["invoice_id"]]
    first = sh[~weighted].drop_duplicates("invoice_id").set_index("invoice_id")["service"]
    fallback = pd.DataFrame({"invoice_id": lone["invoice_id"].values,
                             "service": lone["invoice_id"].map(first).astype(object)
                             .fillna(OTHER_SERVICE).values, "weight": 1})
    parts = pd.concat([sh.loc[weighted, ["invoice_id", "service", "weight"]], fallback],
                      ignore_index=True)
    split = spread(parts, long, key="invoice_id", part="service", item="component")
    sgn = pd.Series(sign, index=inv["invoice_id"].values)
    split["cents"] = split["cents"] * split["invoice_id"].map(sgn).astype("int64")
    attrs = inv.set_index("invoice_id")[["month", "state", "bucket"]]
    split = split.join(attrs, on="invoice_id")

    keys = ["month", "service"]
    money = split.pivot_table(index=keys, columns="component", values="cents", aggfunc="sum",
                              fill_value=0)
    money = money.reindex(columns=list(order), fill_value=0)
    out = pd.DataFrame(index=money.index)
    for c in CHANNELS:
        out[f"collected_{c}_cents"] = money[f"collected_{c}"]
    out["collected_cents"] = out[[f"collected_{c}_cents" for c in CHANNELS]].sum(axis=1)
    out["cancelled_cents"] = money["cancelled"]
    out["outstanding_cents"] = money["outstanding"]
    out["invoiced_cents"] = money.sum(axis=1)
    owed = split[split["component"] == "outstanding"]
    ageing = owed.pivot_table(index=keys, columns="bucket", values="cents", aggfunc="sum",
                              fill_value=0).reindex(columns=list(BUCKETS), fill_value=0)
    for b in BUCKETS:
        out[f"{b}_cents"] = ageing[b].reindex(out.index).fillna(0)
    tre = split[split["state"] == "T"]
    out["treasury_cents"] = tre.groupby(keys)["cents"].sum().reindex(out.index).fillna(0)
    out["treasury_outstanding_cents"] = tre[tre["component"] == "outstanding"].groupby(
        keys)["cents"].sum().reindex(out.index).fillna(0)

    # counts: each invoice once, under its main service (largest share, ties by code), so
    # they add up across services; lines per (month, service)
    main = parts.sort_values(["invoice_id", "weight", "service"], ascending=[True, False, True])
    cnt = main.drop_duplicates("invoice_id")[["invoice_id", "service"]].join(attrs,
                                                                              on="invoice_id")
    lines = sh.join(attrs, on="invoice_id").groupby(keys)["lines_cents"].sum()
    counts = pd.DataFrame({
        "invoices": cnt.groupby(keys).size(),
        "cancelled_invoices": cnt[cnt["state"] == "A"].groupby(keys).size(),
        "treasury_invoices": cnt[cnt["state"] == "T"].groupby(keys).size()})
    idx = out.index.union(counts.index).union(lines.index)
    out = out.reindex(idx)
    out["invoices"] = counts["invoices"].reindex(idx)
    out["cancelled_invoices"] = counts["cancelled_invoices"].reindex(idx)
    out["treasury_invoices"] = counts["treasury_invoices"].reindex(idx)
    out["lines_cents"] = lines.reindex(idx)
    out = out.fillna(0).astype("int64").reset_index()
    out["reference_day"] = ref_day
    return out


def receipts_month(td, per_payment: pd.Series) -> pd.DataFrame:
    """``mart_receipts_month``: money received per payment month and channel."""
    rec = received(td)
    amount = rec["amount_cents"].astype("int64")
    alloc = rec["payment_id"].map(per_payment).fillna(0).astype("int64")
    rec = rec.assign(month=month_of(rec["paid_on"]).fillna("inconnu"), amount=amount,
                     allocated=alloc, unallocated=(amount - alloc).clip(lower=0))
    keys = ["month", "channel"]
    g = rec.groupby(keys)
    out = pd.DataFrame({"payments_received": g.size(), "received_cents": g["amount"].sum(),
                        "allocated_cents": g["allocated"].sum(),
                        "unallocated_cents": g["unallocated"].sum(),
                        "payments_unallocated": g["unallocated"].apply(lambda s: (s > 0).sum())})
    p = td["payment"]
    rej = p[(p["status"] == "rejected")].assign(month=lambda d: month_of(d["paid_on"]))
    rej = rej.assign(month=rej["month"].fillna("inconnu"),
                     channel=rej["channel"].fillna("direct_debit"))
    r = rej.groupby(keys).agg(rejected_debits=("payment_id", "size"),
                              rejected_debit_cents=("amount_cents", "sum"))
    failed = p[p["source"].isin(["payfip", "portal"]) & p["status"].isin(["refused",
                                                                          "abandoned"])]
    failed = failed.assign(attempt=failed["operation_ref"].fillna(failed["payment_id"]),
                           month=month_of(failed["paid_on"].fillna(failed["paid_at"])))
    failed = failed.assign(month=failed["month"].fillna("inconnu"))
    f = failed.drop_duplicates("attempt").groupby(keys).size().rename("failed_card_attempts")
    out = out.join(r, how="outer").join(f, how="outer")
    return out.fillna(0).astype("int64").reset_index()


def debit_rejects(p: pd.DataFrame) -> pd.DataFrame:
    """``mart_debit_reject``: rejected direct debits per month and reason."""
    rej = p[p["status"] == "rejected"]
    rej = pd.DataFrame({"month": month_of(rej["paid_on"]).fillna("inconnu"),
                        "reject_reason": rej["reject_reason"].fillna("?").str.strip()
                        .replace("", "?"),
                        "amount_cents": rej["amount_cents"].fillna(0).astype("int64")})
    g = rej.groupby(["month", "reject_reason"])
    return pd.DataFrame({"payments": g.size(), "amount_cents": g["amount_cents"].sum()}
                        ).astype("int64").reset_index()


# ================================================================== the identity

def verify(fm: pd.DataFrame, rm: pd.DataFrame | None = None) -> dict:
    """The finance identities on mart rows; every gap in cents (0 = verified).

    - ``channels``: sum over rows of |sum of channels - collected|;
    - ``identity``: |invoiced - (collected + outstanding + cancelled)|;
    - ``ageing``: |outstanding - sum of the buckets|;
    - ``receipts``: |received - (allocated + unallocated)| (cash-flow mart);
    - ``views``: |collected (billed view) - allocated (cash-flow view)|, all months.
    Gaps are summed as absolute values per row, so two errors never cancel out."""
    ch = fm[[f"collected_{c}_cents" for c in CHANNELS]].sum(axis=1)
    out = {
        "channels": int((ch - fm["collected_cents"]).abs().sum()),
        "identity": int((fm["invoiced_cents"] - fm["collected_cents"] - fm["outstanding_cents"]
                         - fm["cancelled_cents"]).abs().sum()),
        "ageing": int((fm["outstanding_cents"] - fm[[f"{b}_cents" for b in BUCKETS]]
                       .sum(axis=1)).abs().sum()),
        "invoiced_cents": int(fm["invoiced_cents"].sum()),
        "collected_cents": int(fm["collected_cents"].sum()),
        "outstanding_cents": int(fm["outstanding_cents"].sum()),
        "cancelled_cents": int(fm["cancelled_cents"].sum()),
    }
    if rm is not None:
        out["receipts"] = int((rm["received_cents"] - rm["allocated_cents"]
                               - rm["unallocated_cents"]).abs().sum())
        out["views"] = abs(int(fm["collected_cents"].sum()) - int(rm["allocated_cents"].sum()))
        out["received_cents"] = int(rm["received_cents"].sum())
        out["unallocated_cents"] = int(rm["unallocated_cents"].sum())
    return out


GAPS = ("channels", "identity", "ageing", "receipts", "views")


def verify_town(engine: sa.Engine, town: str) -> dict:
    """``verify`` on the stored marts of a town (what the asset check runs)."""
    return verify(read_mart(engine, FINANCE_MONTH, town), read_mart(engine, RECEIPTS_MONTH, town))


# ================================================================== the report

def build(engine: sa.Engine, town: str, start: str, end: str) -> Report:
    """The finance report of the months ``start``..``end`` (billed months for invoices,
    payment months for receipts and rejects, reconciliation nights in those months)."""
    ms = months(start, end)
    fm = read_mart(engine, FINANCE_MONTH, town, months=ms)
    rm = read_mart(engine, RECEIPTS_MONTH, town, months=ms)
    dr = read_mart(engine, DEBIT_REJECT, town, months=ms)
    ref = fm["reference_day"].dropna().max() if len(fm) else None
    sheets = [summary_sheet(fm, ms, ref), service_sheet(fm), channel_sheet(fm),
              ageing_sheet(fm, ms, ref), treasury_sheet(fm, ms), receipts_sheet(rm),
              rejects_sheet(dr), nights_sheet(engine, town, ms)]
    charts = [
        Chart("line", "Facturé, encaissé et restant dû par mois", "Synthèse mensuelle",
              "month", ("invoiced_net_cents", "collected_cents", "outstanding_cents")),
        Chart("stacked", "Encaissements par canal (mois facturé)", "Encaissé par canal",
              "month", tuple(f"collected_{c}_cents" for c in CHANNELS[:-1])),
        Chart("stacked", "Restant dû par ancienneté", "Impayés par ancienneté", "month",
              tuple(f"{b}_cents" for b in BUCKETS)),
        Chart("line", "Taux de recouvrement par mois", "Synthèse mensuelle", "month",
              ("collection_rate",)),
    ]
    said = checks(fm, rm) if len(fm) or len(rm) else [NO_DATA]
    return Report("finance", "Rapport financier de la régie unique", town, town_name(town),
                  start, end, sheets, charts, checks=said)


def _net(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["invoiced_net_cents"] = df["invoiced_cents"] - df["cancelled_cents"]
    df["collection_rate"] = ratio(df["collected_cents"], df["invoiced_net_cents"])
    return df


MONEY_COLS = ["invoices", "invoiced_cents", "cancelled_cents", "collected_cents",
              "outstanding_cents", "lines_cents"]


def _month_col() -> Column:
    return Column("month", "Mois facturé", "month", "Mois de la période facturée (les "
                  "consommations de ce mois, facturées au début du mois suivant).")


def _money_columns() -> list[Column]:
    return [
        Column("invoices", "Factures", "int", "Nombre de factures de la période ; une facture "
               "portant sur plusieurs services est comptée une fois, dans son service principal "
               "(la plus grande part de ses lignes)."),
        Column("invoiced_cents", "Facturé", "cents", "Montant total des factures émises "
               "(montant de l'en-tête), annulées comprises, réparti entre services au prorata "
               "des lignes."),
        Column("cancelled_cents", "Annulé", "cents", "Ce que les factures annulées (état A) ne "
               "doivent plus : montant moins ce qui leur avait été affecté."),
        Column("invoiced_net_cents", "Facturé net", "cents", "Facturé moins annulé."),
        Column("collected_cents", "Encaissé", "cents", "Paiements affectés aux factures de la "
               "période, quel que soit le mois du paiement (somme des canaux)."),
        Column("outstanding_cents", "Restant dû", "cents", "Ce que les factures non annulées "
               "doivent encore au jour de référence : montant moins encaissé."),
        Column("collection_rate", "Taux de recouvrement", "pct", "Encaissé / facturé net."),
        Column("lines_cents", "Total des lignes", "cents", "Somme des lignes des factures ; "
               "diffère du facturé quand un en-tête ne correspond pas à ses lignes "
               "(anomalie signalée aux référents)."),
    ]


def summary_sheet(fm, ms, ref) -> Sheet:
    g = fm.groupby("month")[MONEY_COLS + ["treasury_invoices", "treasury_cents"]].sum()
    g = _net(g.reindex(ms, fill_value=0).rename_axis("month").reset_index())
    cols = [_month_col(), *_money_columns()]
    note = (f"Restant dû calculé au {ref.strftime('%d/%m/%Y')} (données les plus récentes)."
            if ref is not None else None)
    return Sheet("Synthèse mensuelle", "Facturé, encaissé et restant dû par mois facturé",
                 cols, g, note)


def service_sheet(fm) -> Sheet:
    g = _net(fm.groupby(["month", "service"], as_index=False)[MONEY_COLS].sum())
    g.insert(2, "service_label", g["service"].map(SERVICE_FR).fillna(g["service"]))
    cols = [_month_col(), Column("service", "Service", "text", "Code du service de la ligne "
            "facturée (activité de l'inscription) ; AUTRE : facture sans ligne ou activité "
            "inconnue."), Column("service_label", "Libellé du service", "text",
                                 "Nom du service."), *_money_columns()]
    return Sheet("Par service", "Facturé, encaissé et restant dû par mois et par service",
                 cols, g)


def channel_sheet(fm) -> Sheet:
    cc = [f"collected_{c}_cents" for c in CHANNELS]
    g = fm.groupby("month", as_index=False)[cc + ["collected_cents"]].sum()
    cols = [_month_col()] + [
        Column(f"collected_{c}_cents", CHANNEL_FR[c].capitalize(), "cents",
               f"Montant affecté aux factures du mois payé par {CHANNEL_FR[c]}"
               + (" (paiement absent de l'entrepôt ; normalement nul)." if c == "other" else "."))
        for c in CHANNELS] + [Column("collected_cents", "Total encaissé", "cents",
                                     "Somme des canaux (vérifiée).")]
    return Sheet("Encaissé par canal", "Encaissements par canal de paiement, par mois facturé",
                 cols, g)


def ageing_sheet(fm, ms, ref) -> Sheet:
    bc = [f"{b}_cents" for b in BUCKETS]
    g = fm.groupby("month")[["outstanding_cents", *bc, "treasury_outstanding_cents"]].sum()
    g = g.reindex(ms, fill_value=0).rename_axis("month").reset_index()
    day = ref.strftime("%d/%m/%Y") if ref is not None else "jour de référence"
    defs = {"not_due": f"pas encore échu au {day} (échéance ce jour ou après)",
            "overdue_0_30": "échéance dépassée de 1 à 30 jours",
            "overdue_31_60": "échéance dépassée de 31 à 60 jours",
            "overdue_61_90": "échéance dépassée de 61 à 90 jours",
            "overdue_over_90": "échéance dépassée de plus de 90 jours"}
    cols = [_month_col(), Column("outstanding_cents", "Restant dû", "cents",
                                 "Ce que les factures du mois doivent encore.")] + [
        Column(f"{b}_cents", BUCKET_FR[b], "cents", f"Restant dû des factures dont l'{defs[b]}"
               if b != "not_due" else f"Restant dû des factures {defs[b]}.") for b in BUCKETS] + [
        Column("treasury_outstanding_cents", "Dont transmis au Trésor", "cents",
               "Part du restant dû des factures transmises au comptable public (état T).")]
    return Sheet("Impayés par ancienneté", f"Restant dû par ancienneté au {day}", cols, g)


def treasury_sheet(fm, ms) -> Sheet:
    g = fm.groupby("month")[["treasury_invoices", "treasury_cents",
                             "treasury_outstanding_cents"]].sum()
    g = g.reindex(ms, fill_value=0).rename_axis("month").reset_index()
    cols = [_month_col(),
            Column("treasury_invoices", "Factures transmises", "int", "Factures du mois "
                   "transmises au comptable public pour recouvrement (état T)."),
            Column("treasury_cents", "Montant transmis", "cents", "Montant de ces factures."),
            Column("treasury_outstanding_cents", "Encore dû", "cents",
                   "Ce que ces factures doivent encore au jour de référence.")]
    return Sheet("Transmis au Trésor", "Factures transmises au Trésor public pour recouvrement",
                 cols, g)


def receipts_sheet(rm) -> Sheet:
    g = rm.copy()
    g["channel_label"] = g["channel"].map(CHANNEL_FR).fillna(g["channel"])
    g = g.sort_values(["month", "channel"]).reset_index(drop=True)
    cols = [Column("month", "Mois du paiement", "month", "Mois où le paiement a été fait "
                   "(encaissement, date de valeur du virement, date du compte rendu de "
                   "prélèvement)."),
            Column("channel_label", "Canal", "text", "Canal de paiement."),
            Column("payments_received", "Paiements reçus", "int", "Paiements qui ont apporté de "
                   "l'argent (paiements carte réussis, reçus de caisse, prélèvements acceptés, "
                   "virements reçus)."),
            Column("received_cents", "Reçu", "cents", "Montant reçu."),
            Column("allocated_cents", "Affecté", "cents", "Part affectée à des factures."),
            Column("unallocated_cents", "Non affecté", "cents", "Part affectée à aucune facture : "
                   "trop-perçus, doubles paiements, paiements non identifiés (reçu = affecté + "
                   "non affecté)."),
            Column("payments_unallocated", "Paiements non affectés", "int",
                   "Paiements dont une part n'est affectée à aucune facture."),
            Column("rejected_debits", "Prélèvements rejetés", "int", "Prélèvements rejetés par "
                   "la banque (aucun argent reçu)."),
            Column("rejected_debit_cents", "Montant rejeté", "cents",
                   "Montant des prélèvements rejetés."),
            Column("failed_card_attempts", "Paiements carte échoués", "int",
                   "Tentatives de paiement en ligne refusées ou abandonnées.")]
    return Sheet("Trésorerie par mois", "Argent reçu par mois de paiement et par canal",
                 cols, g)


def rejects_sheet(dr) -> Sheet:
    g = dr.sort_values(["month", "reject_reason"]).reset_index(drop=True)
    g["reason_label"] = g["reject_reason"].map(REJECT_FR).fillna("autre motif")
    cols = [Column("month", "Mois", "month", "Mois du compte rendu de la banque."),
            Column("reject_reason", "Code motif", "text", "Code motif SEPA du rejet."),
            Column("reason_label", "Motif", "text", "Signification du code."),
            Column("payments", "Rejets", "int", "Nombre de prélèvements rejetés."),
            Column("amount_cents", "Montant", "cents", "Montant rejeté (la facture reste due).")]
    return Sheet("Rejets de prélèvement", "Prélèvements rejetés par motif", cols, g)


def nights_sheet(engine: sa.Engine, town: str, ms: list[str]) -> Sheet:
    """The reconciliation rate of each night whose run falls in the months asked."""
    with engine.connect() as conn:
        runs = read_frame(conn, "SELECT run_id, reconciled_at, received_cents, "
                                "allocated_cents, unallocated_cents, open_flags FROM "
                                "reconciliation_run WHERE town = ?", [town])
    runs["reconciled_at"] = pd.to_datetime(runs["reconciled_at"], format="ISO8601") \
        if runs["reconciled_at"].map(lambda v: isinstance(v, str)).any() \
        else pd.to_datetime(runs["reconciled_at"])
    local = runs["reconciled_at"].dt.tz_localize("UTC").dt.tz_convert("Europe/Paris")
    runs["day"] = local.dt.date
    runs["month"] = local.dt.strftime("%Y-%m")
    runs = runs[runs["month"].isin(ms)].sort_values("reconciled_at")
    runs = runs.drop_duplicates("day", keep="last")  # the last run of each night
    for c in ("received_cents", "allocated_cents", "unallocated_cents", "open_flags"):
        runs[c] = pd.to_numeric(runs[c]).fillna(0).astype("int64")
    runs["rate"] = ratio(runs["allocated_cents"], runs["received_cents"])
    cols = [Column("day", "Nuit du", "date", "Jour du rapprochement (heure de Paris) ; le dernier "
                   "de la journée quand il y en a eu plusieurs."),
            Column("received_cents", "Reçu", "cents", "Argent reçu connu de l'entrepôt ce "
                   "jour-là (cumul depuis le début des données)."),
            Column("allocated_cents", "Affecté", "cents", "Part affectée à des factures."),
            Column("unallocated_cents", "Non affecté", "cents", "Part non affectée."),
            Column("rate", "Taux de rapprochement", "pct", "Affecté / reçu."),
            Column("open_flags", "Anomalies ouvertes", "int",
                   "Anomalies du rapprochement ouvertes après la nuit.")]
    return Sheet("Rapprochement par nuit", "Taux de rapprochement de chaque nuit",
                 cols, runs.reset_index(drop=True),
                 None if len(runs) else "Aucun rapprochement enregistré sur la période.")


def checks(fm: pd.DataFrame, rm: pd.DataFrame) -> list[str]:
    """The totals verified, as French sentences (an 'ÉCART' names a gap)."""
    v = verify(fm, rm)
    out = []

    def say(label, gap, amount):
        if gap == 0:
            out.append(f"{label} : vérifié ({euros_fr(amount)}).")
        else:
            out.append(f"{label} : ÉCART de {euros_fr(gap)} (sur {euros_fr(amount)}).")

    say("Somme des canaux = encaissé", v["channels"], v["collected_cents"])
    say("Facturé = encaissé + restant dû + annulé", v["identity"], v["invoiced_cents"])
    say("Restant dû = somme des tranches d'ancienneté", v["ageing"], v["outstanding_cents"])
    say("Reçu = affecté + non affecté (trésorerie)", v["receipts"], v["received_cents"])
    return out
