"""Generate a simulated town: the legacy database, the portal export folder, the
payment-office files and the ground truth, for one school year (2025-09-01 → 2026-07-03).

    from demo.generate import generate_town
    generate_town(Path("var/town"), households=3000, seed=0)

See docs/simulated-town.md.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from .legacy_writer import ensure_database
from .sim import running
from .timeline import ONE_DAY, window_end
from .world import INITIAL_COUNTERS, State

SIM_START = date(2025, 8, 18)  # first simulated window (bookings of September start)
HISTORY_START = datetime(2025, 3, 1)  # back history of online procedures
END = date(2026, 7, 3)  # the clock stops at 18:00 that day (Europe/Paris)


def default_legacy_url(out: Path) -> str:
    return f"sqlite:///{(Path(out) / 'legacy.sqlite').resolve()}"


def generate_town(out: Path, *, households: int = 3000, seed: int = 0, town: str = "44190",
                  name: str = "Saint-Sébastien-sur-Loire", legacy_url: str | None = None,
                  defect_rate: float = 1.0,
                  progress: Callable[[str, int, int], None] | None = None) -> dict:
    """(Re)create the simulated town in ``out``. Returns the counts written per system:
    ``{"legacy": {table: rows}, "portal": {collection: lines}, "treasury": {file kind: n},
    "truth": {defect class: n}}``."""
    if households < 2:
        raise ValueError("a town needs at least 2 households")
    if defect_rate < 0:
        raise ValueError("defect_rate must be >= 0")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("portal", "treasury", ".sim"):
        shutil.rmtree(out / sub, ignore_errors=True)
    for f in ("truth.jsonl", "town.json"):
        (out / f).unlink(missing_ok=True)
    url = legacy_url or default_legacy_url(out)
    if legacy_url is not None:
        # a database of a previous generation into the default SQLite file is stale now
        (out / "legacy.sqlite").unlink(missing_ok=True)
    ensure_database(url)

    st = State()
    st.seed = int(seed)
    st.town = town
    st.name = name
    st.households = int(households)
    st.legacy_url = url
    st.legacy_default = legacy_url is None
    st.defect_rate = float(defect_rate)
    st.sim_start = SIM_START
    st.run_started_at = HISTORY_START

    with running(st, out, progress, fresh=True) as eng:
        eng.legacy.recreate_tables()
        eng.init_banks()
        eng.populate(st.households)
        st.fam_ids = list(st.families)
        eng.run_prehistory(SIM_START)
        # malformed rows among the rows created so far (families, persons, enrolments...)
        eng.malformed_legacy_rows(
            {t: st.counters[k] - INITIAL_COUNTERS[k] for t, k in eng.MALFORMED_TABLES.items()},
            datetime(2025, 5, 1, 8, 0), datetime(2025, 8, 17, 18, 0))
        n = (END - SIM_START).days + 1
        eng.run_windows((SIM_START + i * ONE_DAY for i in range(n)), n)
        st.now = window_end(END)
        return eng.finish_run()
