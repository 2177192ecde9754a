"""Spools: the chunks a sync passes between its steps, on local disk."""

from __future__ import annotations

import stat

import pandas as pd
import pytest

from pipelines.spool import Spool, SpoolGone, clear_stale


def test_chunks_come_back_in_order_with_their_dtypes(tmp_path):
    sp = Spool.new(tmp_path / "run" / "legacy.FAMILLE.extract")
    a = pd.DataFrame({"id": pd.array([1, None], dtype="Int64"),
                      "name": pd.array(["Lefèvre", None], dtype="string"),
                      "at": pd.to_datetime(["2026-01-01 10:00", None])})
    b = a.iloc[0:1].assign(id=pd.array([3], dtype="Int64"))
    sp.append(a)
    sp.append(b)
    assert sp.rows == 3 and sp.chunks_written == 2
    back = list(sp.chunks())
    assert len(back) == 2
    pd.testing.assert_frame_equal(back[0], a)
    pd.testing.assert_frame_equal(back[1], b)
    assert pd.concat(back)["id"].tolist() == [1, pd.NA, 3]
    # personal data: only the owner reads it
    assert stat.S_IMODE(sp.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(sp.path.parent.stat().st_mode) == 0o700


def test_a_new_spool_discards_a_failed_attempt_and_a_dropped_one_says_so(tmp_path):
    path = tmp_path / "x"
    first = Spool.new(path)
    first.append(pd.DataFrame({"a": [1, 2]}))
    again = Spool.new(path)  # the step is retried within the same run
    again.append(pd.DataFrame({"a": [3]}))
    assert [c["a"].tolist() for c in again.chunks()] == [[3]]
    again.drop()
    with pytest.raises(SpoolGone, match="already consumed"):
        list(again.chunks())
    assert list(Spool(tmp_path / "never").chunks()) == []  # nothing written, nothing read


def test_only_the_spools_of_runs_still_running_are_kept(tmp_path):
    for run in ("crashed", "running"):
        Spool.new(tmp_path / "44190" / run / "f").append(pd.DataFrame({"a": [1]}))
    clear_stale(tmp_path / "44190", {"running"})
    assert sorted(p.name for p in (tmp_path / "44190").iterdir()) == ["running"]
