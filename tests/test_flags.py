"""The flag machinery and steward decisions, on both warehouse backends, without Dagster."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pandas as pd
import pytest
import sqlalchemy as sa

from connectors.warehouse import make_engine
from pipelines import loading
from quality import decisions, flags, store
from quality.decisions import DecisionError, decide
from quality.flags import Filters, FlagError, refresh_flags
from schemas.tables import BY_NAME

TOWN = "44190"
RULE = "gx.household.email_format"


def household_rows(changes: dict | None = None) -> pd.DataFrame:
    """Two staged household rows (1001 has a bad e-mail), with optional column changes."""
    cols = [c for c in BY_NAME["household"].data_columns if c != "town"]
    rows = []
    for hid, email in ((1001, "jean.dupont@gmail.con"), (1002, "marie@orange.fr")):
        r = dict.fromkeys(cols)
        r.update(household_id=hid, family_code=f"F0000{hid}", name="DUPONT", email=email,
                 phone="06 12 34 56 78", source_updated_at=dt.datetime(2025, 1, 1))
        r.update((changes or {}).get(hid, {}))
        rows.append(r)
    return pd.DataFrame(rows, columns=cols)


def findings(*hids, email="jean.dupont@gmail.con", severity="warning") -> pd.DataFrame:
    return pd.DataFrame([{
        "household_id": h, "severity": severity, "service": None,
        "message": f"Adresse e-mail invalide pour la famille {h}",
        "suggestion": "Remplacer par jean.dupont@gmail.com",
        "evidence": {"records": [{"label": "Entrepôt", "values": {"email": email}}]},
        "fix": {"table": "household", "key": {"household_id": h}, "column": "email",
                "value": "jean.dupont@gmail.com"},
    } for h in hids])


@pytest.fixture
def engine(warehouse_url):
    e = make_engine(warehouse_url)
    yield e
    e.dispose()


def new_run(engine) -> str:
    return loading.start_run(engine, TOWN)


def refresh(engine, run_id, df, rule=RULE, **kw):
    with store.town_transaction(engine, TOWN) as conn:
        return refresh_flags(conn, TOWN, run_id, rule, df, **kw)


def flag(engine, key):
    with engine.connect() as conn:
        return flags.get_flag(conn, TOWN, key)


def scalar(engine, sql, **p):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), p).scalar()


KEY = f"{RULE}|household_id=1001"


def test_flag_key_is_stable_and_names_rule_and_entities():
    assert flags.flag_key("r", {"b": 2, "a": "x"}) == "r|a=x|b=2"
    assert flags.flag_key("r", {"a": "x", "b": 2.0}) == "r|a=x|b=2"
    with pytest.raises(FlagError):
        flags.flag_key("bad|rule", {"a": 1})


def test_lifecycle_open_keep_autoresolve_reopen_without_duplicates(engine):
    r1 = new_run(engine)
    c = refresh(engine, r1, findings(1001, 1002))
    assert (c.opened, c.kept_open) == (2, 0)
    r2 = new_run(engine)
    c = refresh(engine, r2, findings(1001, 1002))
    assert (c.opened, c.kept_open) == (0, 2)
    assert scalar(engine, "SELECT COUNT(*) FROM flag") == 2
    f = flag(engine, KEY)
    assert f["status"] == "open" and f["first_seen_run_id"] == r1 and f["last_seen_run_id"] == r2
    assert f["entity_ids"] == {"household_id": 1001}
    assert f["fix"]["value"] == "jean.dupont@gmail.com"
    # the next run no longer sees 1001: it closes itself, 1002 stays open
    r3 = new_run(engine)
    c = refresh(engine, r3, findings(1002))
    assert c.auto_resolved == 1
    f = flag(engine, KEY)
    assert (f["status"], f["resolution"]) == ("resolved", "auto") and f["closed_at"] is not None
    # it comes back: reopened, counted, audited
    r4 = new_run(engine)
    c = refresh(engine, r4, findings(1001, 1002))
    assert c.reopened == 1 and c.opened == 0
    f = flag(engine, KEY)
    assert f["status"] == "open" and f["times_reopened"] == 1 and f["closed_at"] is None
    assert [h["action"] for h in f["history"]] == ["flag_auto_resolved", "flag_reopened"]
    assert scalar(engine, "SELECT COUNT(*) FROM flag") == 2


def test_findings_must_name_entities_and_valid_severities(engine):
    r = new_run(engine)
    with pytest.raises(FlagError):
        refresh(engine, r, pd.DataFrame([{"message": "x", "severity": "warning"}]))
    with pytest.raises(FlagError):
        refresh(engine, r, findings(1001, severity="grave"))
    assert scalar(engine, "SELECT COUNT(*) FROM flag") == 0


def test_override_survives_the_next_sync(engine):
    r1 = new_run(engine)
    with engine.begin() as conn:
        loading.upsert_core(conn, TOWN, r1, "household", household_rows())
    refresh(engine, r1, findings(1001))
    decide(engine, TOWN, KEY, "override", author="marie", reason="vu avec la famille",
           value="jean.dupont@gmail.com")
    assert scalar(engine, "SELECT email FROM household WHERE household_id = 1001") \
        == "jean.dupont@gmail.com"
    f = flag(engine, KEY)
    assert (f["status"], f["resolution"]) == ("resolved", "override")
    # the source changes another column of the row: the load writes the source's e-mail back...
    r2 = new_run(engine)
    with engine.begin() as conn:
        c = loading.upsert_core(conn, TOWN, r2, "household",
                                household_rows({1001: {"phone": "07 00 00 00 00"}}))
    assert c.updated == 1
    assert scalar(engine, "SELECT email FROM household WHERE household_id = 1001") \
        == "jean.dupont@gmail.con"
    # ...and the decisions, re-applied after the load, put the steward's value back
    with store.town_transaction(engine, TOWN) as conn:
        assert decisions.apply_decisions(conn, TOWN, ["household"]) == 1
        assert decisions.apply_decisions(conn, TOWN, ["household"]) == 0  # idempotent
    assert scalar(engine, "SELECT email FROM household WHERE household_id = 1001") \
        == "jean.dupont@gmail.com"
    # the check then no longer sees the problem: the flag stays resolved by the decision
    c = refresh(engine, r2, findings(1002))
    f = flag(engine, KEY)
    assert (f["status"], f["resolution"]) == ("resolved", "override")
    assert [d["decision"] for d in f["decisions"]] == ["override"]
    d = f["decisions"][0]
    assert d["author"] == "marie" and d["reason"] == "vu avec la famille"
    assert d["decided_at"] is not None


def test_accept_applies_the_suggested_value(engine):
    r1 = new_run(engine)
    with engine.begin() as conn:
        loading.upsert_core(conn, TOWN, r1, "household", household_rows())
    refresh(engine, r1, findings(1001))
    decide(engine, TOWN, KEY, "accept", author="marie")
    assert scalar(engine, "SELECT email FROM household WHERE household_id = 1001") \
        == "jean.dupont@gmail.com"
    assert flag(engine, KEY)["decisions"][0]["value"] == "jean.dupont@gmail.com"


def test_dismissal_holds_while_the_evidence_is_the_same(engine):
    r1 = new_run(engine)
    refresh(engine, r1, findings(1001))
    with pytest.raises(DecisionError, match="motif"):
        decide(engine, TOWN, KEY, "dismiss", author="marie", reason="  ")
    decide(engine, TOWN, KEY, "dismiss", author="marie", reason="adresse réelle, domaine local")
    refresh(engine, new_run(engine), findings(1001))
    assert flag(engine, KEY)["status"] == "dismissed"
    # different evidence: the dismissal no longer covers it
    refresh(engine, new_run(engine), findings(1001, email="autre@@orange.fr"))
    f = flag(engine, KEY)
    assert f["status"] == "open" and f["times_reopened"] == 1


def test_fixed_at_source_is_confirmed_or_reopened_by_the_next_run(engine):
    refresh(engine, new_run(engine), findings(1001, 1002))
    decide(engine, TOWN, KEY, "fixed_at_source", author="marie")
    decide(engine, TOWN, f"{RULE}|household_id=1002", "fixed_at_source", author="marie")
    time.sleep(0.01)
    # the source was fixed for 1001 but not for 1002
    c = refresh(engine, new_run(engine), findings(1002))
    assert c.reopened == 1 and c.auto_resolved == 0
    assert flag(engine, KEY)["status"] == "resolved"
    f2 = flag(engine, f"{RULE}|household_id=1002")
    assert f2["status"] == "open"
    assert "toujours constaté" in f2["history"][-1]["message"]


def test_a_run_older_than_the_decision_cannot_overturn_it(engine):
    r = new_run(engine)  # the nightly run starts and reads its data...
    refresh(engine, r, findings(1001))
    time.sleep(0.01)
    decide(engine, TOWN, KEY, "fixed_at_source", author="marie")  # ...a steward decides...
    c = refresh(engine, r, findings(1001))  # ...and the run refreshes with what it read
    assert c.kept_closed == 1 and c.reopened == 0
    assert flag(engine, KEY)["status"] == "resolved"


def test_a_failed_decision_leaves_nothing_half_applied(engine):
    r1 = new_run(engine)
    with engine.begin() as conn:
        loading.upsert_core(conn, TOWN, r1, "household", household_rows())
    refresh(engine, r1, findings(1001))

    def crash(conn):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        decide(engine, TOWN, KEY, "override", author="marie", reason="r",
               value="jean.dupont@gmail.com", _before_commit=crash)
    assert flag(engine, KEY)["status"] == "open"
    assert scalar(engine, "SELECT COUNT(*) FROM steward_decision") == 0
    assert scalar(engine, "SELECT COUNT(*) FROM audit_log") == 0
    assert scalar(engine, "SELECT email FROM household WHERE household_id = 1001") \
        == "jean.dupont@gmail.con"


def test_override_checks_the_value_and_the_target(engine):
    r1 = new_run(engine)
    with engine.begin() as conn:
        loading.upsert_core(conn, TOWN, r1, "household", household_rows())
    refresh(engine, r1, findings(1001))
    with pytest.raises(DecisionError, match="ne convient pas"):
        decide(engine, TOWN, KEY, "override", author="m", reason="r", value="pas-un-email")
    with pytest.raises(DecisionError, match="introuvable"):
        decide(engine, TOWN, "nope|x=1", "dismiss", author="m", reason="r")
    bad = findings(1002)
    bad.at[0, "fix"] = {"table": "household", "key": {"household_id": 1002},
                        "column": "household_id", "value": "9"}
    refresh(engine, r1, bad, rule="test.bad_target")
    with pytest.raises(DecisionError, match="non modifiable"):
        decide(engine, TOWN, "test.bad_target|household_id=1002", "override", author="m",
               reason="r", value="9")
    assert scalar(engine, "SELECT COUNT(*) FROM steward_decision") == 0


def test_superseded_override_gives_the_row_back_to_the_source(engine):
    r1 = new_run(engine)
    with engine.begin() as conn:
        loading.upsert_core(conn, TOWN, r1, "household", household_rows())
    refresh(engine, r1, findings(1001))
    decide(engine, TOWN, KEY, "override", author="m", reason="r", value="j.dupont@gmail.com")
    decide(engine, TOWN, KEY, "dismiss", author="m", reason="finalement correct")
    with engine.begin() as conn:  # the next load, with unchanged source rows
        loading.upsert_core(conn, TOWN, new_run(engine), "household", household_rows())
    assert scalar(engine, "SELECT email FROM household WHERE household_id = 1001") \
        == "jean.dupont@gmail.con"


def test_audit_log_is_append_only(engine):
    refresh(engine, new_run(engine), findings(1001))
    decide(engine, TOWN, KEY, "dismiss", author="marie", reason="ok")
    assert scalar(engine, "SELECT COUNT(*) FROM audit_log WHERE action = 'dismiss'") == 1
    for sql in ("UPDATE audit_log SET author = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(sql))
    assert scalar(engine, "SELECT author FROM audit_log WHERE action = 'dismiss'") == "marie"


def test_queue_filters_and_counts(engine):
    r = new_run(engine)
    refresh(engine, r, findings(1001, 1002))
    other = findings(1003, severity="error")
    other["service"] = "RESTO"
    refresh(engine, r, other, rule="gx.enrolment.age_RESTO")
    with engine.connect() as conn:
        assert flags.count_flags(conn, TOWN) == 3
        assert flags.count_flags(conn, TOWN, Filters(rule="gx.household.*")) == 2
        assert flags.count_flags(conn, TOWN, Filters(severity="error")) == 1
        assert flags.count_flags(conn, TOWN, Filters(service="RESTO")) == 1
        assert flags.count_flags(conn, TOWN, Filters(older_than_days=1)) == 0
        assert flags.count_flags(conn, TOWN, Filters(newer_than_days=1)) == 3
        assert flags.count_flags(conn, TOWN, Filters(status="resolved")) == 0
        assert flags.counts_by(conn, TOWN, "rule") == [(RULE, 2), ("gx.enrolment.age_RESTO", 1)]
        first = flags.list_flags(conn, TOWN)[0]
        assert first["severity"] == "error"  # most severe first
        assert flags.count_flags(conn, "44036") == 0  # towns never see each other's flags


def test_decision_waits_for_a_refresh_in_progress(engine):
    """A decision taken while the run holds the lock is applied after, not lost."""
    refresh(engine, new_run(engine), findings(1001, 1002))
    run = new_run(engine)
    holding, release = threading.Event(), threading.Event()
    errors = []

    def nightly():
        try:
            with store.town_transaction(engine, TOWN) as conn:
                refresh_flags(conn, TOWN, run, RULE, findings(1001, 1002),
                              observed_at=store.utcnow())
                holding.set()
                release.wait(10)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=nightly)
    t.start()
    assert holding.wait(10)
    done = threading.Event()
    steward = threading.Thread(target=lambda: (decide(
        engine, TOWN, KEY, "dismiss", author="marie", reason="vérifié"), done.set()))
    steward.start()
    time.sleep(0.3)
    assert not done.is_set()  # waiting for the run's transaction
    release.set()
    t.join(10)
    steward.join(30)
    assert not errors and done.is_set()
    f = flag(engine, KEY)
    assert f["status"] == "dismissed" and len(f["decisions"]) == 1


def test_older_empty_stewardship_tables_are_brought_up_to_date(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE steward_decision"))
        conn.execute(sa.text("CREATE TABLE steward_decision (town TEXT, decision_id BIGINT, "
                             "decided_on_at TIMESTAMP, PRIMARY KEY (town, decision_id))"))
    store._checked.clear()
    store.ensure_schema(engine)
    cols = {c["name"] for c in sa.inspect(engine).get_columns("steward_decision")}
    assert {"decided_at", "evidence_hash", "fix"} <= cols and "decided_on_at" not in cols
    with engine.begin() as conn:  # an older table that holds rows is not touched
        conn.execute(sa.text("DROP TABLE flag"))
        conn.execute(sa.text("CREATE TABLE flag (town TEXT, flag_key TEXT, "
                             "PRIMARY KEY (town, flag_key))"))
        conn.execute(sa.text("INSERT INTO flag VALUES ('44190', 'x')"))
    store._checked.clear()
    with pytest.raises(RuntimeError, match="migrate"):
        store.ensure_schema(engine)
    store._checked.clear()
