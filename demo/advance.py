"""Advance a simulated town by N days: the same engine as the generation continues from
the saved state (``<town>/.sim/state.pickle``) with the same defect rates, and writes only
what changed (new and updated legacy rows, purged PIECE rows, rewritten portal files, new
treasury files, updated ground truth and ``town.json``). See docs/simulated-town.md."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from .sim import STATE_FILE, load_state, running


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
    with running(st, out, progress, fresh=False) as eng:
        st.run_started_at = st.now
        start = st.now.date() + timedelta(days=1)
        eng.run_windows((start + timedelta(days=i) for i in range(days)), days)
        return eng.finish_run()
