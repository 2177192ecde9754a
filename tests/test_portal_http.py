"""The portal API client against the stand-in portal on 127.0.0.1, with faults injected."""

from __future__ import annotations

import datetime as dt

import pytest
from helpers import core_digest, count, town_config

from connectors.portal import PortalExportFolder
from connectors.portal_http import PortalAPI, PortalError
from connectors.warehouse import make_engine
from demo.portal_server import PortalStandIn
from pipelines.config import parse_config
from pipelines.steps import run_town


def _ids(items):
    return sorted((i.item["id"], i.item["updated_at"]) for i in items if i.item and "id" in i.item)


def test_every_item_once_whatever_the_faults(town_dir):
    folder = town_dir / "portal"
    expected = _ids(PortalExportFolder(f"file://{folder}").items("bookings", None))
    assert len(expected) > 50
    with PortalStandIn(folder) as srv:
        srv.faults.too_many_requests = 2
        srv.faults.unavailable = 1
        srv.faults.drop_connection = 2
        srv.faults.repeat_page = 3
        api = PortalAPI(srv.base, token="test-token", page_size=40, max_backoff=0.05)
        got = list(api.items("bookings", None))
        assert {"429", "503", "drop", "repeat"} <= set(srv.faults.log)
    assert _ids(got) == expected  # nothing lost, nothing duplicated
    # the repeats were told apart in bounded memory: a window of pages, not every item
    assert len(api.repeats.recent) == 4 * 40 < len(expected)
    assert api.repeats.out_of_order == 0


def test_repeats_are_told_apart_in_bounded_memory():
    """Items in (updated_at, id) order: a repeat within the window or at the latest
    instant is dropped; an earlier item outside the window is kept (counted), never lost;
    instants are compared as instants whatever their offset."""
    from connectors.portal_http import Repeats

    def t(minute, offset="+00:00"):
        return dt.datetime.fromisoformat(f"2026-03-01T10:{minute:02d}:00{offset}")

    r = Repeats(window=3)
    assert all(r.first_time(f"d{k}", t(k)) for k in range(10))
    assert not r.first_time("d9", t(9)) and not r.first_time("d8", t(8))  # in the window
    assert len(r.recent) == 3
    assert r.first_time("d0", t(0)) and r.out_of_order == 1  # beyond the window: kept
    # one instant written with two offsets; several items share it
    r = Repeats(window=1)
    assert r.first_time("a", t(5)) and r.first_time("b", t(5)) and r.first_time("c", t(5))
    assert not r.first_time("a", dt.datetime.fromisoformat("2026-03-01T11:05:00+01:00"))
    assert r.at_latest == {"a", "b", "c"} and r.out_of_order == 0
    assert r.first_time("z", None) and not r.first_time("z", None)  # no instant: window


def test_updated_since_is_inclusive_and_compared_as_instants(town_dir):
    folder = town_dir / "portal"
    all_items = [i.item for i in PortalExportFolder(f"file://{folder}").items("accounts", None)
                 if i.item]
    instants = sorted(dt.datetime.fromisoformat(i["updated_at"]) for i in all_items)
    since = instants[len(instants) // 2]
    with PortalStandIn(folder) as srv:
        got = list(PortalAPI(srv.base, token="test-token", page_size=7).items("accounts", since))
    want = [i for i in all_items if dt.datetime.fromisoformat(i["updated_at"]) >= since]
    assert len(got) == len(want) and any(
        dt.datetime.fromisoformat(g.item["updated_at"]) == since for g in got)


def test_wrong_token_and_endless_unavailability_fail_clearly(town_dir):
    with PortalStandIn(town_dir / "portal") as srv:
        with pytest.raises(PortalError, match="refused the token"):
            list(PortalAPI(srv.base, token="nope").items("accounts", None))
        srv.faults.unavailable = 1000
        api = PortalAPI(srv.base, token="test-token", max_backoff=0.05, deadline=0.5)
        with pytest.raises(PortalError, match="giving up"):
            list(api.items("accounts", None))


def test_sync_through_the_api_equals_sync_from_the_export(warehouse_url, town_dir, tmp_path):
    ref_cfg = town_config(f"sqlite:///{tmp_path / 'ref.sqlite'}", {"44190": town_dir},
                          tmp_path / "l1")
    ref = make_engine(ref_cfg.warehouse_url)
    run_town(ref_cfg, "44190", ref)
    with PortalStandIn(town_dir / "portal") as srv:
        srv.faults.malformed_item = 1
        srv.faults.drop_connection = 1
        cfg = town_config(warehouse_url, {"44190": town_dir}, tmp_path / "l2")
        t = cfg.towns[0]
        cfg = parse_config({"warehouse": {"url": warehouse_url, "landing_dir": str(tmp_path / "l2")},
                            "towns": {"44190": {"legacy_url": t.legacy_url, "portal_base": srv.base,
                                                "portal_token": "test-token",
                                                "treasury_root": t.treasury_root}}})
        engine = make_engine(warehouse_url)
        run_town(cfg, "44190", engine)
    got, want = core_digest(engine), core_digest(ref)
    for table in ("portal_account", "portal_person", "portal_booking", "procedure_request",
                  "association", "room_booking", "login_stat"):
        assert got[table].split(":")[0] == want[table].split(":")[0], table
    assert count(engine, "SELECT COUNT(*) FROM quarantine WHERE source = 'portal' "
                         "AND source_key LIKE 'malformed-%'") == 1
    engine.dispose()
    ref.dispose()


def test_plain_http_is_refused_except_on_loopback():
    with pytest.raises(ValueError, match="https://"):
        PortalAPI("http://portail.example.fr/api", token="t")
    PortalAPI("http://127.0.0.1:8080", token="t")  # the stand-in of the tests
    PortalAPI("https://portail.example.fr/api", token="t")
