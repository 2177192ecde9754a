"""A small sample of a town's data with typical defects, for the web page's tests, its
screenshots and trying the steward workflow without a full synchronisation."""

from __future__ import annotations

import contextlib
import datetime as dt

import pandas as pd
import sqlalchemy as sa

from pipelines import loading
from schemas.tables import BY_NAME

HOUSEHOLDS = [
    # household_id, family_code, name, postcode, phone, email, direct_debit, iban
    (1001, "F00001001", "MARTIN", "44230", "06 12 34 56 78", "claire.martin@orange.fr", True,
     "FR7630006000011234567890189"),
    (1002, "F00001002", "BERNARD", "4230", "02 40 11 22 33", "j.bernard@gmail.con", False, None),
    (1003, "F00001003", "NGUYEN", "44230", "612345678", "thi.nguyen@free.fr", True, None),
    (1004, "F00001004", "LE GALL", "44 230", "07 98 76 54 32", "yann.legall@wanadoo,fr", False,
     None),
    (1005, "F00001005", "DIALLO", "44230", "06 55 44 33 22", "awa.diallo@laposte.net", True,
     "FR7630006000011234567890188"),
    (1006, "F00001006", "ROUSSEAU", "44230", "+33 6 10 20 30 40", "m.rousseau@sfr.fr", False,
     None),
]
PERSONS = [
    (10001, "MARTIN", "Claire", dt.date(1984, 5, 2), "F"),
    (10002, "MARTIN", "Léo", dt.date(2016, 3, 14), "M"),
    (10003, "BERNARD", "Jules", dt.date(2061, 9, 1), "M"),  # typed 2061 for 2016
    (10004, "NGUYEN", "Lina", dt.date(1894, 1, 1), "F"),
    (10005, "DIALLO", "Moussa", dt.date(2018, 11, 30), "M"),
]
ASSOCIATIONS = [
    ("asso-0101", "Amicale laïque", "W442783684", "73282932000074", "contact@amicale.fr"),
    ("asso-0102", "Rugby Club Sud Loire", "W44183202", None, "contact@rcsl.fr"),
    ("asso-0103", "Chorale des Bords de Loire", "w447223070", "73282932000075",
     "chorale@free.fr"),
]


def _frame(table: str, rows: list[dict]) -> pd.DataFrame:
    cols = [c for c in BY_NAME[table].data_columns if c != "town"]
    return pd.DataFrame([{**dict.fromkeys(cols), **r} for r in rows], columns=cols)


def seed_sample(engine: sa.Engine, town: str, *, run_id: str | None = None) -> str:
    """Load the sample rows as a run of ``town`` and run the quality checks on their
    tables: the queue then holds about fifteen open flags. Returns the run id."""
    from quality.checks import run_quality

    run_id = loading.start_run(engine, town, run_id=run_id)
    now = dt.datetime(2025, 9, 1, 8, 0)
    households = _frame("household", [
        {"household_id": h, "family_code": c, "name": n, "address": "1 rue de la Loire", "postcode": pc,
             "city": "Saint-Sébastien-sur-Loire", "phone": ph, "email": em, "direct_debit": dd, "iban": ib,
             "mandate_ref": f"RUM{c}" if dd else None, "created_on": dt.date(2019, 9, 1),
             "source_updated_at": now}
        for h, c, n, pc, ph, em, dd, ib in HOUSEHOLDS])
    persons = _frame("person", [
        {"person_id": p, "last_name": ln, "first_name": fn, "birth_date": b, "sex": s, "source_updated_at": now}
        for p, ln, fn, b, s in PERSONS])
    associations = _frame("association", [
        {"association_id": a, "name": n, "rna": r, "siret": s, "email": e, "source_updated_at": now}
        for a, n, r, s, e in ASSOCIATIONS])
    with engine.begin() as conn:
        loading.upsert_core(conn, town, run_id, "household", households)
        loading.upsert_core(conn, town, run_id, "person", persons)
        loading.upsert_core(conn, town, run_id, "association", associations)
    run_quality(engine, town, run_id, tables=["household", "person", "association"])
    loading.finish_run(engine, town, run_id, "success")
    return run_id


@contextlib.contextmanager
def running_server(engine: sa.Engine, *, secure_cookies: bool = False):
    """Serve the steward page from a background thread on a free 127.0.0.1 port; yields
    its base URL and stops the server on exit (tests and screenshots)."""
    import socket
    import threading
    import time

    import uvicorn

    from quality.web import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(engine, secure_cookies=secure_cookies),
                                           host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the steward web server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
