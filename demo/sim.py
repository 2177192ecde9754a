"""The day-by-day engine of the simulated town.

Time is cut into *windows*: window ``d`` is the 24 hours (d-1 18:00, d 18:00] local time,
and the simulated clock ``now`` always sits at the end of a window. Each window is simulated
with its own random generator seeded by (town seed, d), so a town advanced by 3 days in one
call or in three calls ends up identical.

In a window the engine:
1. closes the previous day (attendance checks, billing ledger, final reservation rows);
2. plans the bookings of the days entering each activity's booking horizon;
3. runs the daily generators (procedures, documents, edits, logins, invoices...);
4. processes the window's events in time order (booking actions, payments, request state
   changes, document reviews...);
5. does the payment office's day (files, remittances, bank statements).

The subsystems live in mixins (``populate``, ``bookings``, ``billing``, ``money``,
``admin``); this module holds the loop, the shared helpers and the end-of-run publication.
"""

from __future__ import annotations

import contextlib
import gc
import json
import pickle
import random
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

from .admin import AdminMixin
from .billing import BillingMixin
from .bookings import BookingMixin
from .defects import ACCOUNT_VARIANTS, CLASSES, Rates
from .legacy_writer import LegacySink
from .money import MoneyMixin
from .names import ENROLMENT_PROCEDURES, PROCEDURES
from .populate import PopulateMixin
from .portal_writer import FIELDS, MUTABLE, PortalSink, dumps
from .timeline import ONE_DAY, iso_local, legacy_ts, window_end, ymd
from .treasury_writer import TreasurySink
from .truth import STATE_CLASSES, TruthSink
from .world import FAMILY_DOCS, State

STATE_FILE = Path(".sim") / "state.pickle"
ENROLMENT_PROCS = frozenset(ENROLMENT_PROCEDURES.values())

Progress = Callable[[str, int, int], None] | None


@contextlib.contextmanager
def running(st: State, out: Path, progress: Progress, *, fresh: bool) -> Iterator[Engine]:
    """An engine writing to the town's legacy database; on failure the portal files are
    left as they were; the sinks are closed whatever happens. The garbage collector is
    off meanwhile: millions of long-lived small objects, no cycles (~15 % faster)."""
    eng = Engine(st, out, progress, fresh=fresh)
    eng.legacy = LegacySink(st.legacy_url)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield eng
    except BaseException:
        eng.portal.abort()
        raise
    finally:
        eng.truth.close()
        eng.legacy.close()
        if gc_was_enabled:
            gc.enable()


class Engine(PopulateMixin, BookingMixin, BillingMixin, MoneyMixin, AdminMixin):
    def __init__(self, st: State, out: Path, progress: Progress = None, fresh: bool = False):
        self.st = st
        self.out = Path(out)
        self.progress = progress
        self.rates = Rates(st.defect_rate)
        self.rng = random.Random(f"{st.seed}|init")
        self.legacy: LegacySink | None = None
        self.portal = PortalSink(self.out / "portal", fresh=fresh)
        self.treasury = TreasurySink(self.out / "treasury")
        self.truth = TruthSink(self.out, fresh=fresh)
        self.fresh = fresh
        self.w_day: date | None = None
        self.w_start: datetime | None = None
        self.w_end: datetime | None = None
        self.clock: datetime | None = None
        self._deadline_cache: dict = {}
        self._handlers: dict = {}
        self.new_rows_since_malformed = {}

    # ------------------------------------------------------------------ helpers
    def p(self, name: str) -> float:
        return self.rates[name]

    def between(self, a: datetime, b: datetime) -> datetime:
        """A uniform instant in [a, b] (second resolution)."""
        span = int((b - a).total_seconds())
        if span <= 0:
            return a
        return a + timedelta(seconds=int(self.rng.random() * (span + 1)))

    def human_between(self, a: datetime, b: datetime, desk: bool = False) -> datetime | None:
        """An instant in [a, b] at a plausible hour (portal: 06-23h; desk: 08:30-17:30 on
        weekdays). None if the interval has no such instant."""
        if b <= a:
            return None
        rng = self.rng
        for _ in range(6):
            t = self.between(a, b)
            h = t.hour
            if desk:
                if t.weekday() < 5 and (8 <= h < 17 or (h == 17 and t.minute < 30)):
                    if h == 8 and t.minute < 30:
                        continue
                    return t
            elif 6 <= h <= 23 and h != 2:
                return t
        if desk:
            # first desk opening after a (if before b)
            t = a
            for _ in range(10):
                if t.weekday() < 5:
                    c = t.replace(hour=9, minute=rng.randint(0, 59), second=rng.randint(0, 59))
                    if a <= c <= b:
                        return c
                t = (t + ONE_DAY).replace(hour=0, minute=0, second=0)
                if t > b:
                    break
            return None
        return self.between(a, b) if b > a else None

    def next_desk_time(self, a: datetime) -> datetime:
        """The first front-desk instant (Monday-Friday 08:30-17:30, not a public holiday)
        at or after a, plus a few minutes."""
        from .timeline import is_business_day

        t = a
        for _ in range(15):
            day = t.date()
            if is_business_day(day):
                opening = datetime(day.year, day.month, day.day, 8, 30)
                closing = datetime(day.year, day.month, day.day, 17, 30)
                if t < closing:
                    return max(t, opening) + timedelta(minutes=self.rng.randint(0, 25))
            t = datetime(day.year, day.month, day.day) + ONE_DAY
        return a

    def iso(self, ts: datetime) -> str:
        """A portal timestamp: Europe/Paris offset, 3 % in UTC 'Z'."""
        return iso_local(ts, utc=self.rng.random() < 0.03)

    def deadline_str(self, day: date, notice_h: int) -> str:
        k = (day, notice_h)
        s = self._deadline_cache.get(k)
        if s is None:
            from .timeline import cancel_deadline

            s = legacy_ts(cancel_deadline(day, notice_h))
            self._deadline_cache[k] = s
        return s

    def progress_step(self, label: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(label, done, total)

    # ------------------------------------------------------------------ portal records
    def portal_new(self, coll: str, rec: dict) -> None:
        st = self.st
        st.portal[coll][rec["id"]] = rec
        slots = st.portal_slots[coll]
        slots.append(rec["id"])
        self.portal.counts[coll]["new"] += 1
        if self.rng.random() < self.p("portal_malformed_line"):
            raw, kind = self.malformed_line(coll, rec)
            slots.append((raw,))
            self.truth.defect("portal_malformed_line", collection=coll, file=f"portal/{coll}.jsonl",
                              line=len(slots), problem=kind, raw=raw, record_id=rec.get("id"))

    def portal_touch(self, coll: str, rid: str, ts: datetime, **changes) -> dict:
        rec = self.st.portal[coll][rid]
        rec.update(changes)
        rec["updated_at"] = self.iso(ts)
        if rid not in self.st.portal_dirty[coll]:
            self.st.portal_dirty[coll][rid] = None
            self.portal.counts[coll]["updated"] += 1
        return rec

    def portal_append(self, coll: str, rec: dict) -> None:
        st = self.st
        self.portal.append_line(coll, dumps(rec))
        st.portal_lines[coll] += 1
        self.portal.counts[coll]["new"] += 1
        if self.rng.random() < self.p("portal_malformed_line"):
            raw, kind = self.malformed_line(coll, rec)
            self.portal.append_line(coll, raw)
            st.portal_lines[coll] += 1
            self.truth.defect("portal_malformed_line", collection=coll, file=f"portal/{coll}.jsonl",
                              line=st.portal_lines[coll], problem=kind, raw=raw,
                              record_id=rec.get("id"))

    def malformed_line(self, coll: str, rec: dict) -> tuple[str, str]:
        rng = self.rng
        text = dumps(rec)
        if rng.random() < 0.5:
            cut = rng.randint(max(2, len(text) // 3), len(text) - 2)
            return text[:cut], "invalid_json"
        present = [f for f in FIELDS[coll] if f in rec]
        drop = rng.choice(present)
        return dumps({k: v for k, v in rec.items() if k != drop}), f"missing_field:{drop}"

    # ------------------------------------------------------------------ legacy rows
    def emit_resv(self, r) -> None:
        row = (r.rid, r.enr, ymd(r.day), r.l_etat, r.l_orig, r.l_ref, r.l_annul, r.l_maj)
        if r.pub:
            self.legacy.update("RESERVATION", row)
        else:
            self.legacy.insert("RESERVATION", row)
            r.pub = True
        r.chg = False

    def publish_mutable(self) -> None:
        st = self.st
        maps = {"FAMILLE": st.families, "INDIVIDU": st.persons, "RATTACHEMENT": st.ratt,
                "ACTIVITE": st.activities, "INSCRIPTION": st.enrolments,
                "FACTURE": st.invoices, "PIECE": st.pieces}
        for table, keys in st.dirty.items():
            m = maps[table]
            for k in keys:
                obj = m.get(k)
                if obj is None:
                    continue
                if obj.pub:
                    self.legacy.update(table, obj.row())
                else:
                    self.legacy.insert(table, obj.row())
                    obj.pub = True
            st.dirty[table] = {}
        for pid in st.deleted_pieces:
            self.legacy.delete("PIECE", (pid,))
        st.deleted_pieces = []

    def publish_live(self) -> None:
        """Reservation rows of days still open: insert new ones, update changed ones."""
        for day in sorted(self.st.live):
            for r in self.st.live[day].values():
                if r.l_etat is not None and (not r.pub or r.chg):
                    self.emit_resv(r)

    # ------------------------------------------------------------------ the loop
    def run_windows(self, days: Iterable[date], total: int) -> None:
        """Simulate the windows of ``days`` in order, reporting progress."""
        for i, d in enumerate(days, 1):
            self.run_window(d)
            self.st.windows += 1
            if self.progress is not None:
                self.progress("simulating days", i, total)

    def run_window(self, d: date) -> None:
        st = self.st
        self.rng = random.Random(f"{st.seed}|{d.isoformat()}")
        self.w_day = d
        self.w_end = window_end(d)
        self.w_start = self.w_end - ONE_DAY
        self.clock = self.w_start
        ctr0 = dict(st.counters)
        # 1. yesterday's attendance, billing ledger, final reservation rows
        y = d - ONE_DAY
        if st.last_closed_day is None or y > st.last_closed_day:
            self.close_day(y)
            st.last_closed_day = y
        # 2. booking horizon
        self.plan_horizon(d)
        # 3. daily generators
        self.daily_admin(d)
        self.daily_billing(d)
        # 4. events
        self.process_events(d)
        # 5. treasury
        self.treasury_day(d)
        # 6. a few malformed legacy rows, in proportion to the rows created today
        self.malformed_legacy_rows(self.new_rows_since(ctr0), self.w_start + timedelta(hours=1),
                                   self.w_end)
        self.clock = self.w_end
        st.now = self.w_end

    def new_rows_since(self, ctr0: dict) -> dict:
        return {t: self.st.counters[k] - ctr0[k] for t, k in self.MALFORMED_TABLES.items()}

    def process_events(self, d: date) -> None:
        st = self.st
        late = [k for k in st.events if k < d]
        for k in late:  # defensive: an event dated in a past window is run now, and counted
            evs = st.events.pop(k)
            st.late_events += len(evs)
            st.events.setdefault(d, []).extend(evs)
        while True:
            evs = st.events.pop(d, None)
            if not evs:
                break
            evs.sort(key=lambda e: (e[0], e[1]))
            handlers = self._handlers
            for ts, _seq, kind, payload in evs:
                self.clock = ts
                h = handlers.get(kind)
                if h is None:
                    h = handlers[kind] = getattr(self, "ev_" + kind)
                h(ts, payload)
            # handlers may have pushed more events into this same window: loop

    def run_prehistory(self, first_window: date) -> None:
        """Events dated before the first simulated window (backdated history)."""
        st = self.st
        while True:
            early = [k for k in st.events if k < first_window]
            if not early:
                break
            k = min(early)
            self.rng = random.Random(f"{st.seed}|pre|{k.isoformat()}")
            self.w_day = k
            self.w_end = window_end(k)
            self.w_start = self.w_end - ONE_DAY
            self.process_events(k)

    # ------------------------------------------------------------------ end of run
    def finish_run(self) -> dict:
        st = self.st
        self.progress_step("publishing", 0, 3)
        self.rng = random.Random(f"{st.seed}|finish|{st.now.isoformat()}")
        self.materialize_standing_bookings()
        if not st.capacity_fixed:
            self.fix_capacities()
        self.publish_live()
        self.publish_mutable()
        self.legacy.commit()
        self.progress_step("publishing", 1, 3)
        self.portal.close(st)
        for coll in MUTABLE:
            st.portal_dirty[coll] = {}
        self.progress_step("publishing", 2, 3)
        computed = self.computed_truth()
        for c, n in self.truth.counts.items():
            st.truth_counts[c] = st.truth_counts.get(c, 0) + n
        counts = dict(st.truth_counts)
        for rec in computed:
            if rec.get("kind") == "defect":
                counts[rec["class"]] = counts.get(rec["class"], 0) + 1
        meta = {
            "kind": "meta", "town": st.town, "name": st.name, "seed": st.seed,
            "households": st.households, "now": iso_local(st.now),
            "defect_rate": st.defect_rate,
            "rates": dict(self.rates.rates),
            "defect_counts": {c.name: counts.get(c.name, 0) for c in CLASSES},
            "state_classes": list(STATE_CLASSES),
            "account_variants": ACCOUNT_VARIANTS,
        }
        self.truth.compose(meta, computed)
        self.progress_step("publishing", 3, 3)
        self.save_state()
        self.write_town_json()
        return self.result_counts(meta)

    def result_counts(self, meta: dict) -> dict:
        lg = self.legacy.counts
        return {
            "legacy": {t: (v["inserted"] if self.fresh else dict(v)) for t, v in lg.items()},
            "portal": {c: (v["new"] if self.fresh else dict(v))
                       for c, v in self.portal.counts.items()},
            "treasury": dict(sorted(self.treasury.counts.items())),
            "truth": meta["defect_counts"],
        }

    def save_state(self) -> None:
        path = self.out / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(self.st, fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)

    def write_town_json(self) -> None:
        st = self.st
        doc = {
            "town": st.town,
            "name": st.name,
            "seed": st.seed,
            "households": st.households,
            "now": iso_local(st.now),
            "legacy_url": st.legacy_url,
            "portal_base": (self.out / "portal").resolve().as_uri(),
            "treasury_root": str((self.out / "treasury").resolve()),
            "defect_rate": st.defect_rate,
            "simulation": {
                "state_file": str(STATE_FILE),
                "last_closed_day": st.last_closed_day.isoformat(),
                "counters": dict(st.counters),
                "windows_simulated": st.windows,
            },
        }
        tmp = self.out / ".town.json.tmp"
        tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.out / "town.json")

    # ------------------------------------------------------------------ computed truth
    def computed_truth(self) -> list[dict]:
        st = self.st
        today = st.now.date()
        out: list[dict] = []
        # identity ---------------------------------------------------------
        for acc_id, t in st.account_truth.items():
            rec = st.portal["accounts"][acc_id]
            fam = t.get("family_id")
            code = st.families[fam].code if fam else None
            out.append({"kind": "account_link", "account_id": acc_id, "family_id": fam,
                        "family_code": code, "published_code": rec["legacy_family_code"],
                        "status": rec["status"]})
            if fam is None:
                continue
            if rec["legacy_family_code"] is None:
                out.append({"kind": "defect", "class": "account_unlinked", "account_id": acc_id,
                            "family_id": fam, "family_code": code,
                            "variants": t.get("variants", []),
                            "persons": [p for p in t.get("persons", [])]})
            elif rec["legacy_family_code"] != code:
                wrong = st.fam_by_code.get(rec["legacy_family_code"])
                out.append({"kind": "defect", "class": "account_wrong_family",
                            "account_id": acc_id, "family_id": fam, "family_code": code,
                            "linked_code": rec["legacy_family_code"], "linked_family_id": wrong})
        for pid, true_id in st.pperson_truth.items():
            rec = st.portal["persons"][pid]
            also = [p.id for p in st.dups_of_person.get(true_id, [])] if true_id else []
            out.append({"kind": "person_link", "person_id": pid, "account_id": rec["account_id"],
                        "legacy_person_id": true_id, "also_legacy_person_ids": also,
                        "published_legacy_person_id": rec["legacy_person_id"]})
        for dup in st.dup_families:
            out.append({"kind": "duplicate_family", **dup})
            out.append({"kind": "defect", "class": "legacy_duplicate_family", **dup})
        # capacity ------------------------------------------------------------
        for (act_id, day), n in sorted(st.resa_count.items()):
            act = st.activities[act_id]
            if act.capacity is not None and n > act.capacity:
                out.append({"kind": "defect", "class": "over_capacity", "activity_id": act_id,
                            "activity_code": act.code, "day": day.isoformat(), "booked": n,
                            "capacity": act.capacity})
        # documents -------------------------------------------------------------
        out.extend(self.document_findings(today))
        # procedures --------------------------------------------------------------
        refs = {e.ref for e in st.enrolments.values() if e.ref}
        for rid, req in st.portal["requests"].items():
            proc = req["procedure"]
            state = req["state"]
            if state in ("en_construction", "en_instruction"):
                sla = PROCEDURES[proc][2]
                sub = st.req_submitted[rid]
                if (st.now - sub).days > sla:
                    out.append({"kind": "defect", "class": "request_stuck", "request_id": rid,
                                "number": req["number"], "procedure": proc, "state": state,
                                "submitted_at": req["submitted_at"], "sla_days": sla,
                                "days_open": (st.now - sub).days})
            elif state == "accepte" and proc in ENROLMENT_PROCS and req["number"] not in refs:
                out.append({"kind": "defect", "class": "accepted_enrolment_without_inscription",
                            "request_id": rid, "number": req["number"], "procedure": proc,
                            "account_id": req["account_id"],
                            "child_person_id": req["fields"].get("child_person_id"),
                            "activity_code": req["fields"].get("activity_code")})
        return out

    def document_findings(self, today: date) -> list[dict]:
        st = self.st
        out = []
        for e in st.enrolments.values():
            if e.etat != "V" or not e.active_on(today):
                continue
            act = st.activities[e.act]
            if not act.pieces:
                continue
            fams_of_child = st.persons[e.ind].families
            for typ in act.pieces.split(";"):
                if typ in FAMILY_DOCS:
                    holders = [(e.fam, None)]
                else:
                    holders = [(f, e.ind) for f in fams_of_child]
                found_any = False
                valid = False
                for h in holders:
                    for pid in st.pieces_by_holder.get((*h, typ), ()):
                        pc = st.pieces.get(pid)
                        if pc is None:
                            continue
                        found_any = True
                        if pc.d_from <= today and (pc.d_until is None or today <= pc.d_until):
                            valid = True
                            break
                    if valid:
                        break
                if not valid:
                    out.append({"kind": "defect", "class": "document_missing_or_expired",
                                "enrolment_id": e.id, "family_id": e.fam, "person_id": e.ind,
                                "activity_code": act.code, "type": typ,
                                "problem": "expired" if found_any else "missing",
                                "as_of": today.isoformat()})
        return out


# ---------------------------------------------------------------------------
# entry points used by generate.py / advance.py


def load_state(out: Path) -> State:
    with open(Path(out) / STATE_FILE, "rb") as fh:
        return pickle.load(fh)
