"""End to end, on both warehouse backends: full sync, idempotent re-run, incremental
after a simulated day, conservation, quarantine, purges, and two towns side by side."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
import sqlalchemy as sa
from conftest import copy_town
from helpers import core_digest, count, stats, town_config

from connectors.warehouse import make_engine
from demo.advance import advance_town
from pipelines import loading
from pipelines.steps import run_town


@pytest.fixture
def synced(warehouse_url, town_dir, tmp_path):
    cfg = town_config(warehouse_url, {"44190": town_dir}, tmp_path / "landing")
    engine = make_engine(warehouse_url)
    first = run_town(cfg, "44190", engine)
    yield cfg, engine, first
    engine.dispose()


def test_full_sync_loads_every_entity_and_conserves_rows(synced):
    _, engine, first = synced
    st = stats(engine, "44190", first["run_id"])
    assert len(st) >= 20  # 10 legacy tables, 9 portal collections, the treasury drop
    for (source, entity), s in st.items():
        assert s["rows_read"] == s["rows_loaded"] + s["rows_quarantined"], (source, entity, s)
    for table in ("household", "person", "membership", "activity", "enrolment", "reservation",
                  "attendance", "invoice", "invoice_line", "document", "portal_account",
                  "portal_person", "portal_booking", "procedure_request", "payment",
                  "bank_statement", "bank_operation", "association", "login_stat"):
        assert count(engine, f"SELECT COUNT(*) FROM {table} WHERE town = '44190'") > 0, table
    # every legacy reservation read is either in core or in quarantine
    res = st[("legacy", "RESERVATION")]
    in_core = count(engine, "SELECT COUNT(*) FROM reservation WHERE town = '44190'")
    assert in_core == res["rows_loaded"]
    assert count(engine, "SELECT COUNT(*) FROM load_run WHERE status = 'success'") == 1


def test_rerun_changes_nothing(synced):
    cfg, engine, _ = synced
    before = core_digest(engine)
    raw_before = count(engine, "SELECT COUNT(*) FROM raw_record")
    q_before = count(engine, "SELECT COUNT(*) FROM quarantine")
    second = run_town(cfg, "44190", engine)
    assert core_digest(engine) == before
    assert count(engine, "SELECT COUNT(*) FROM raw_record") == raw_before
    assert count(engine, "SELECT COUNT(*) FROM quarantine") == q_before
    for key, s in stats(engine, "44190", second["run_id"]).items():
        assert s["rows_inserted"] == 0 and s["rows_updated"] == 0 and s["rows_deleted"] == 0, key


def test_incremental_after_one_simulated_day(synced, town_dir):
    cfg, engine, first = synced
    full = stats(engine, "44190", first["run_id"])
    with engine.connect() as conn:
        wm_before = dict(conn.execute(sa.text(
            "SELECT source || '.' || entity, value FROM watermark WHERE town = '44190'")).all())
    advance_town(town_dir, days=1)
    second = run_town(cfg, "44190", engine)
    inc = stats(engine, "44190", second["run_id"])
    # only what changed (plus the overlap window) is read again
    for entity in ("RESERVATION", "POINTAGE", "FAMILLE", "INDIVIDU"):
        assert inc[("legacy", entity)]["rows_read"] < full[("legacy", entity)]["rows_read"], entity
    changed = sum(s["rows_inserted"] + s["rows_updated"] for s in inc.values())
    assert changed > 0
    for key, s in inc.items():
        assert s["rows_read"] == s["rows_loaded"] + s["rows_quarantined"], key
    with engine.connect() as conn:
        wm_after = dict(conn.execute(sa.text(
            "SELECT source || '.' || entity, value FROM watermark WHERE town = '44190'")).all())
    assert wm_after["legacy.RESERVATION"] > wm_before["legacy.RESERVATION"]
    assert wm_after["treasury.files"] >= wm_before["treasury.files"]
    # a third run with no change is a no-op again
    digest = core_digest(engine)
    run_town(cfg, "44190", engine)
    assert core_digest(engine) == digest


def _legacy_db(town_dir):
    return json.loads((town_dir / "town.json").read_text())["legacy_url"].split("sqlite:///", 1)[1]


def test_malformed_rows_are_quarantined_with_reason_and_resolved_later(warehouse_url, town_dir,
                                                                       tmp_path):
    db = sqlite3.connect(_legacy_db(town_dir))
    ins = db.execute("SELECT ID_INSCRIPTION FROM INSCRIPTION LIMIT 1").fetchone()[0]
    db.execute("INSERT INTO RESERVATION VALUES (99999901, ?, '20251345', 'RESA', 'GUICHET', "
               "NULL, NULL, '2026-07-03 12:00:00')", (ins,))
    db.execute("INSERT INTO RESERVATION VALUES (99999902, ?, '20260105', 'PEUT-ETRE', 'GUICHET', "
               "NULL, NULL, '2026-07-03 12:00:00')", (ins,))
    db.commit()
    portal = town_dir / "portal" / "bookings.jsonl"
    with portal.open("a", encoding="utf-8") as fh:
        fh.write('{"id": "broken", "updated_at": \n')
        fh.write('{"id": "bk-no-action", "updated_at": "2026-07-03T10:00:00+02:00", '
                 '"account_id": "a", "person_id": "p", "activity_code": "RESTO-X", '
                 '"day": "2026-07-06", "made_at": "2026-07-03T10:00:00+02:00"}\n')
    cfg = town_config(warehouse_url, {"44190": town_dir}, tmp_path / "landing")
    engine = make_engine(warehouse_url)
    run_town(cfg, "44190", engine)
    with engine.connect() as conn:
        q = dict(conn.execute(sa.text(
            "SELECT source_key, reason FROM quarantine WHERE town = '44190' AND "
            "((source = 'legacy' AND entity = 'RESERVATION') OR "
            "(source = 'portal' AND entity = 'bookings'))")).all())
    assert "DATE_JOUR" in q["99999901"] and "20251345" in q["99999901"]
    assert "ETAT" in q["99999902"]
    assert any("line:" in k for k in q), q  # the invalid JSON line, by its line number
    assert "action" in q["bk-no-action"]
    # the desk fixes the row: the next run loads it and closes the quarantine entry
    db.execute("UPDATE RESERVATION SET DATE_JOUR = '20251215', DATE_MAJ = '2026-07-03 19:00:00' "
               "WHERE ID_RESERVATION = 99999901")
    db.commit()
    db.close()
    run_town(cfg, "44190", engine)
    assert count(engine, "SELECT COUNT(*) FROM reservation WHERE reservation_id = 99999901") == 1
    assert count(engine, "SELECT COUNT(*) FROM quarantine WHERE source_key = '99999901' "
                         "AND resolved_run_id IS NOT NULL") == 1
    engine.dispose()


def test_purged_document_is_marked_not_dropped(warehouse_url, town_dir, tmp_path):
    cfg = town_config(warehouse_url, {"44190": town_dir}, tmp_path / "landing")
    engine = make_engine(warehouse_url)
    run_town(cfg, "44190", engine)
    db = sqlite3.connect(_legacy_db(town_dir))
    pid = db.execute("SELECT MIN(ID_PIECE) FROM PIECE").fetchone()[0]
    db.execute("DELETE FROM PIECE WHERE ID_PIECE = ?", (pid,))
    db.commit()
    db.close()
    second = run_town(cfg, "44190", engine)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT deleted_run_id FROM document WHERE document_id = :d"),
                           {"d": f"legacy:{pid}"}).one()
    assert row[0] == second["run_id"]
    assert stats(engine, "44190", second["run_id"])[("legacy", "PIECE")]["rows_deleted"] == 1
    with engine.connect() as conn:  # and the stewards see it, once
        flags = conn.execute(sa.text("SELECT flag_key, status, message FROM flag "
                                     "WHERE rule = 'legacy.purged.document'")).all()
    assert [f.status for f in flags] == ["open"] and f"legacy:{pid}" in flags[0].flag_key
    assert "supprimée à la source" in flags[0].message
    run_town(cfg, "44190", engine)
    assert count(engine, "SELECT COUNT(*) FROM flag WHERE rule = 'legacy.purged.document'") == 1
    engine.dispose()


def test_two_towns_share_a_warehouse_without_seeing_each_other(warehouse_url, town_template,
                                                               tmp_path):
    from demo.generate import generate_town

    a = copy_town(town_template, tmp_path / "a" / "44190")
    b = tmp_path / "b" / "44036"
    generate_town(b, households=30, seed=11, town="44036", name="Carquefou")
    cfg = town_config(warehouse_url, {"44190": a, "44036": b}, tmp_path / "landing")
    engine = make_engine(warehouse_url)
    run_town(cfg, "44190", engine)
    digest_a = core_digest(engine, "44190")
    run_town(cfg, "44036", engine)
    assert core_digest(engine, "44190") == digest_a  # syncing B did not touch A
    hh_a = count(engine, "SELECT COUNT(*) FROM household WHERE town = '44190'")
    hh_b = count(engine, "SELECT COUNT(*) FROM household WHERE town = '44036'")
    assert hh_a > 0 and hh_b > 0
    total = count(engine, "SELECT COUNT(*) FROM household")
    assert total == hh_a + hh_b
    # the same legacy ids exist in both towns, as distinct rows
    both = count(engine, "SELECT COUNT(*) FROM household h1 JOIN household h2 ON "
                         "h1.household_id = h2.household_id AND h1.town = '44190' "
                         "AND h2.town = '44036'")
    assert both > 0
    with engine.connect() as conn:
        for table in ("watermark", "load_stat", "raw_record"):
            towns = {r[0] for r in conn.execute(sa.text(f"SELECT DISTINCT town FROM {table}"))}
            assert towns == {"44190", "44036"}, table
    engine.dispose()


def test_crash_leaves_previous_state_and_watermarks(warehouse_url, town_dir, tmp_path,
                                                    monkeypatch):
    cfg = town_config(warehouse_url, {"44190": town_dir}, tmp_path / "landing")
    engine = make_engine(warehouse_url)
    run_town(cfg, "44190", engine)
    digest = core_digest(engine)
    with engine.connect() as conn:
        wms = conn.execute(sa.text("SELECT source, entity, value FROM watermark ORDER BY 1, 2")).all()
    advance_town(town_dir, days=1)

    real = loading.upsert_core
    calls = {"n": 0}

    def flaky(conn, town, run_id, table, rows, **kw):
        calls["n"] += 1
        if table == "reservation":
            raise RuntimeError("disk full (simulated)")
        return real(conn, town, run_id, table, rows, **kw)

    monkeypatch.setattr(loading, "upsert_core", flaky)
    with pytest.raises(RuntimeError):
        run_town(cfg, "44190", engine)
    monkeypatch.setattr(loading, "upsert_core", real)
    with engine.connect() as conn:
        wm_res = conn.execute(sa.text("SELECT value FROM watermark WHERE entity = 'RESERVATION'")
                              ).scalar()
        failed = conn.execute(sa.text("SELECT COUNT(*) FROM load_run WHERE status = 'failed'")
                              ).scalar()
    assert wm_res == {(s, e): v for s, e, v in wms}[("legacy", "RESERVATION")]
    assert failed == 1
    assert core_digest(engine)["reservation"] == digest["reservation"]
    # the next run catches up completely
    run_town(cfg, "44190", engine)
    after = core_digest(engine)
    assert after["reservation"] != digest["reservation"]
    engine.dispose()


def test_file_refused_for_its_sidecar_is_taken_when_redelivered_correctly(synced, town_dir):
    """The bank re-delivers a file whose .sha256 was wrong: the same content, now with a
    matching sidecar, must load (it used to be skipped as 'already seen')."""
    _, engine, _ = synced
    truth = [json.loads(line) for line in (town_dir / "truth.jsonl").open(encoding="utf-8")]
    refused = [t for t in truth if t.get("class") == "treasury_sha256_mismatch"]
    assert refused, "the test town should have a checksum mismatch"
    with engine.connect() as conn:
        for t in refused:
            name = t["file"].rsplit("/", 1)[1]
            sha = hashlib.sha256((town_dir / "treasury" / t["file"]).read_bytes()).hexdigest()
            statuses = {r[0] for r in conn.execute(sa.text(
                "SELECT status FROM treasury_file WHERE sha256 = :s"), {"s": sha})}
            assert statuses == {"loaded"}, (name, statuses)
            open_q = conn.execute(sa.text(
                "SELECT COUNT(*) FROM quarantine WHERE source_key = :k AND resolved_run_id "
                "IS NULL"), {"k": f"{name}:file"}).scalar()
            assert open_q == 0, name


def test_file_refused_in_one_run_is_taken_when_redelivered_in_a_later_run(warehouse_url,
                                                                          town_dir, tmp_path):
    cfg = town_config(warehouse_url, {"44190": town_dir}, tmp_path / "landing")
    engine = make_engine(warehouse_url)
    truth = [json.loads(line) for line in (town_dir / "truth.jsonl").open(encoding="utf-8")]
    bad = next(t for t in truth if t.get("class") == "treasury_sha256_mismatch")
    root = town_dir / "treasury"
    refused = root / bad["file"]
    sha = hashlib.sha256(refused.read_bytes()).hexdigest()
    # keep every good copy of that content out of the first run
    held = tmp_path / "held"
    held.mkdir()
    for p in root.rglob("*"):
        if p.is_file() and p != refused and not p.name.endswith(".sha256") \
                and hashlib.sha256(p.read_bytes()).hexdigest() == sha:
            p.rename(held / p.name)
            side = p.with_name(p.name + ".sha256")
            if side.exists():
                side.unlink()
    run_town(cfg, "44190", engine)
    status = "SELECT status FROM treasury_file WHERE sha256 = :s"
    assert count(engine, "SELECT COUNT(*) FROM treasury_file WHERE sha256 = :s "
                         "AND status = 'quarantined'", s=sha) == 1
    # the bank re-delivers it, with a correct sidecar, in a new day's folder
    last = max(p for p in root.glob("outgoing/*/*/*") if p.is_dir())
    new_day = root / "outgoing" / "2099" / "01" / "02"
    new_day.mkdir(parents=True)
    (new_day / refused.name).write_bytes(refused.read_bytes())
    (new_day / (refused.name + ".sha256")).write_text(f"{sha}  {refused.name}\n")
    assert last < new_day
    second = run_town(cfg, "44190", engine)["run_id"]
    with engine.connect() as conn:
        assert {r[0] for r in conn.execute(sa.text(status), {"s": sha})} == {"loaded"}
        assert conn.execute(sa.text(
            "SELECT resolved_run_id FROM quarantine WHERE source_key = :k"),
            {"k": f"{refused.name}:file"}).scalar() == second
    assert count(engine, "SELECT COUNT(*) FROM bank_statement WHERE file_name = :n",
                 n=refused.name) >= 1
    engine.dispose()


def test_a_batch_drops_its_rows_once_every_table_it_feeds_is_loaded(tmp_path):
    """What a run keeps to its end (Dagster's in-memory outputs) holds no rows: an
    extract's spool goes once staged, a staged batch's once all its core tables are
    written."""
    import pandas as pd

    from pipelines.spool import Spool
    from pipelines.steps import Extracted, StagedBatch, mark_loaded

    sp = Spool.new(tmp_path / "x")
    sp.append(pd.DataFrame({"ID_FACTURE": [1, 2]}))
    ext = Extracted("legacy", "FACTURE", sp, 2, present=pd.DataFrame({"ID_FACTURE": [1, 2]}),
                    invoice_ids=[1, 2])
    ext.release()
    assert not sp.path.exists()
    assert ext.present is None and ext.invoice_ids == [1, 2] and ext.rows_read == 2
    staged = {}
    for name in ("procedure_request", "procedure_state"):
        staged[name] = Spool.new(tmp_path / name)
        staged[name].append(pd.DataFrame({"k": [1]}))
    b = StagedBatch("portal", "requests", dict(staged), 3, 3, 0, None, pd.DataFrame({"k": [1]}), [])
    mark_loaded("procedure_request", [b])
    assert set(b.staged) == {"procedure_request", "procedure_state"} and not b.released
    assert all(s.path.exists() for s in staged.values())
    mark_loaded("procedure_state", [b])
    assert b.released and b.rows_loaded == 3
    assert not any(s.path.exists() for s in staged.values())


def test_small_chunks_load_what_whole_tables_load(warehouse_url, town_dir, tmp_path, monkeypatch):
    """The sync streams every table in chunks (source read, spools, core upsert, purge
    check): with chunks of 23 rows it loads exactly what it loads in one chunk, so a
    run with the usual chunk size afterwards finds nothing to change."""
    from pipelines import bulk

    cfg = town_config(warehouse_url, {"44190": town_dir}, tmp_path / "landing")
    engine = make_engine(warehouse_url)
    for day in (0, 1):
        if day:
            advance_town(town_dir, days=1)
        monkeypatch.setattr(bulk, "CHUNK_ROWS", 41)
        small = run_town(cfg, "44190", engine)
        if not day:
            assert small["extract"]["legacy.RESERVATION"]["read"] > 41
        digest = core_digest(engine)
        quarantined = count(engine, "SELECT COUNT(*) FROM quarantine")
        for key, s in stats(engine, "44190", small["run_id"]).items():
            assert s["rows_read"] == s["rows_loaded"] + s["rows_quarantined"], key
        monkeypatch.setattr(bulk, "CHUNK_ROWS", 50_000)
        whole = run_town(cfg, "44190", engine)
        assert core_digest(engine) == digest, day
        assert count(engine, "SELECT COUNT(*) FROM quarantine") == quarantined, day
        for key, s in stats(engine, "44190", whole["run_id"]).items():
            assert s["rows_inserted"] == s["rows_updated"] == s["rows_deleted"] == 0, (day, key)
    # nothing is left in the spool once a run is over
    assert not any((tmp_path / "spool").rglob("*.*"))
    engine.dispose()


def test_a_first_load_in_chunks_looks_keys_up_by_the_primary_key(warehouse_url, monkeypatch):
    """A table loaded for the first time has no statistics: PostgreSQL then planned each
    chunk's key lookup as a read of every row of the town (99 s instead of 3.8 s for the
    default town's portal bookings). The load analyses the table as it grows; SQLite
    plans by its indexes."""
    import pandas as pd

    from pipelines import bulk
    from schemas.tables import BY_NAME

    monkeypatch.setattr(bulk, "CHUNK_ROWS", 4_000)
    engine = make_engine(warehouse_url)
    cols = [c for c in BY_NAME["portal_booking"].data_columns if c != "town"]
    rows = pd.DataFrame({c: None for c in cols}, index=range(24_000))
    rows["booking_id"] = [f"{i * 7919 % 24_000:05d}-b" for i in range(len(rows))]  # not in order
    run = loading.start_run(engine, "44190")
    with engine.begin() as conn:
        c = loading.upsert_core(conn, "44190", run, "portal_booking", rows)
        assert c.inserted == len(rows)
        keys = rows["booking_id"].head(900).tolist()
        sql = (f"SELECT booking_id, row_hash FROM portal_booking WHERE town = ? "
               f"AND booking_id IN ({', '.join('?' * len(keys))})")
        if conn.dialect.name == "postgresql":  # the planner knows the rows just written
            known = conn.exec_driver_sql("SELECT reltuples FROM pg_class "
                                         "WHERE relname = 'portal_booking'").scalar()
            assert known >= len(rows) / 2, known
        else:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, ("44190", *keys)).all()
            assert "booking_id=?" in str(plan), plan
        again = loading.upsert_core(conn, "44190", run, "portal_booking", rows)
        assert again.unchanged == len(rows) and again.inserted == again.updated == 0
    engine.dispose()


def test_a_table_read_in_chunks_is_the_whole_table_with_its_codes_shared(synced, monkeypatch):
    """``read_current`` (what reconciliation, quality suites and marts read) steps through
    the rows a chunk at a time and keeps one object per repeated text: the frame is the
    same as a read in one chunk, and a column of codes holds as many objects as codes."""
    import pandas as pd

    from pipelines import bulk

    _, engine, _ = synced
    with engine.connect() as conn:
        whole = loading.read_current(conn, "44190", "reservation")
        monkeypatch.setattr(bulk, "CHUNK_ROWS", 97)
        chunked = loading.read_current(conn, "44190", "reservation")
        none = loading.read_current(conn, "44190", "reservation", where=("1 = 0", []))
    assert len(whole) > 97 * 3
    pd.testing.assert_frame_equal(chunked, whole)
    states = chunked["state"].dropna()
    assert len({id(v) for v in states}) == states.nunique() < len(states)
    assert none.empty and list(none.columns) == list(whole.columns)
    assert none["state"].dtype == whole["state"].dtype


def test_shared_text_leaves_identifiers_and_missing_values_alone():
    import numpy as np

    share = loading.SharedText()
    codes = np.array(["RESA", "ANNUL", None, "RESA"], dtype=object)
    out = share("state", codes)
    assert list(out) == ["RESA", "ANNUL", None, "RESA"] and out[0] is out[3]
    fresh = b"RESA".decode()  # equal to "RESA", another object
    assert fresh is not out[0]
    again = share("state", np.array([fresh, "RESA"], dtype=object))
    assert again[0] is out[0]  # shared across the chunks of one read
    ids = np.array(["a1", "b2", "c3"], dtype=object)
    assert share("booking_id", ids) is ids  # mostly distinct: nothing to share
