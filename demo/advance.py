"""Advance a simulated town by N days: the same engine as the generation continues from
the saved state (``<town>/.sim/state.pickle``) with the same defect rates, and writes only
what changed (new and updated legacy rows, purged PIECE rows, rewritten portal files, new
treasury files, updated ground truth and ``town.json``). See docs/simulated-town.md."""

from __future__ import annotations

import gc
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from .legacy_writer import LegacySink
from .sim import STATE_FILE, Engine, load_state


def advance_town(out: Path, *, days: int = 1,
                 progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Move the town's clock forward ``days`` days. Returns the counts written per system:
    ``{"legacy": {table: {"inserted", "updated", "deleted"}}, "portal": {collection:
    {"new", "updated"}}, "treasury": {file kind: n}, "truth": {defect class: n}}``."""
    out = Path(out)
    if days < 0:
        raise ValueError("days must be >= 0")
    if not (out / STATE_FILE).exists():
        raise FileNotFoundError(f"{out} is not a simulated town (no {STATE_FILE}): "
                                "generate it first with demo.generate.generate_town")
    st = load_state(out)
    if getattr(st, "legacy_default", False):
        # the default SQLite database lives in the town folder: follow the folder if moved
        from .generate import default_legacy_url

        st.legacy_url = default_legacy_url(out)
    eng = Engine(st, out, progress, fresh=False)
    eng.legacy = LegacySink(st.legacy_url)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # see generate.py
    try:
        st.run_started_at = st.now
        start = st.now.date() + timedelta(days=1)
        for i in range(days):
            eng.run_window(start + timedelta(days=i))
            st.windows += 1
            if progress is not None:
                progress("simulating days", i + 1, days)
        return eng.finish_run()
    except BaseException:
        eng.portal.abort()
        raise
    finally:
        eng.truth.close()
        eng.legacy.close()
        if gc_was_enabled:
            gc.enable()
