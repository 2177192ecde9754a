"""Rows purged from the legacy program become flags for the stewards.

The core rows stay, marked with ``deleted_run_id``; this rule lists them all for a
table (the flag API wants complete findings), so a row that comes back at the source
resolves its flag by itself.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from pipelines.loading import read_frame
from schemas.tables import BY_NAME

# PIECE rows are the only legacy rows the program deletes on purpose (expired documents).
SEVERITY = {"document": "info"}
LABEL = {"household": "la famille", "person": "la personne", "membership": "le rattachement",
         "activity": "l'activité", "enrolment": "l'inscription", "reservation": "la réservation",
         "attendance": "le pointage", "invoice": "la facture", "invoice_line": "la ligne de facture",
         "document": "la pièce"}


def purge_findings(conn: sa.Connection, town: str, table: str) -> pd.DataFrame:
    pk = BY_NAME[table].key_columns
    gone = read_frame(conn, f"SELECT {', '.join(pk)}, deleted_run_id FROM {table} "
                            "WHERE town = ? AND deleted_run_id IS NOT NULL", [town])
    findings = gone[pk].astype(str)
    ids = gone[pk].astype(str).agg(" / ".join, axis=1) if len(gone) else pd.Series(dtype=str)
    findings["severity"] = SEVERITY.get(table, "warning")
    findings["message"] = [f"{LABEL[table].capitalize()} {i} a disparu du logiciel d'inscriptions "
                           "(supprimée à la source) ; elle reste dans l'entrepôt, marquée supprimée."
                           for i in ids]
    findings["suggestion"] = ("Vérifier que la suppression est voulue ; sinon, la ressaisir dans "
                              "le logiciel d'inscriptions.")
    findings["evidence"] = [{"records": [{"label": f"Entrepôt — {table} {i}",
                                          "values": {"supprimée au chargement": run}}],
                             "columns": ["supprimée au chargement"]}
                            for i, run in zip(ids, gone["deleted_run_id"])]
    return findings


def flag_purges(engine: sa.Engine, town: str, run_id: str, table: str) -> int:
    """Refresh the purge flags of one core table; returns how many are open."""
    from quality.flags import refresh_flags, register_rule_title
    from quality.store import town_transaction

    rule = f"legacy.purged.{table}"
    register_rule_title(rule, f"Logiciel — {LABEL[table]} supprimée à la source")
    with town_transaction(engine, town) as conn:
        findings = purge_findings(conn, town, table)
        refresh_flags(conn, town, run_id, rule, findings)
    return len(findings)
