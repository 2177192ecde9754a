"""Bookings, cancellations and attendance.

Every (enrolment, day) that is or was booked is a ``Resv`` holding both the *true* state
(what the family did) and the legacy RESERVATION row. Days enter an activity's booking
horizon (``Activity.horizon`` days ahead) once; then the family's actions for that day are
decided and pushed as timed events (``rb``). Processing an action writes the portal log
item, updates the true state and propagates it to the legacy row, where the booking
defects are injected. The day after, attendance is checked, the billing rule applied to
the legacy view, and the final reservation row written.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from .identifiers import uuid4
from .timeline import (
    ONE_DAY,
    cancel_deadline,
    day_kind,
    legacy_ts,
    service_open,
    ymd,
)
from .world import Resv

CANCEL_P = {"RESTO": 0.05, "PERI": 0.06, "ALSH": 0.07, "MULTI": 0.06, "EMM": 0.0}
PORTAL_CANCEL_P = 0.07
REBOOK_P = 0.08
EXCUSED_P = 0.035
LEAD_DAYS = {"RESTO": 9, "PERI": 9, "ALSH": 28, "MULTI": 12, "EMM": 5}
ALSH_FACTOR = {"wednesday": 1.0, "holiday": 0.85, "summer": 0.6}
BOOKABLE = ("RESTO", "PERI", "ALSH", "MULTI", "EMM")


class BookingMixin:
    # ------------------------------------------------------------------ horizon
    def plan_horizon(self, d: date) -> None:
        st = self.st
        for act in st.activities.values():
            if act.horizon <= 0:
                continue
            last = st.horizon_done.get(act.id, d - ONE_DAY)
            target = d + timedelta(days=act.horizon)
            day = last + ONE_DAY
            while day <= target:
                if service_open(act.service, day):
                    self.plan_day(act, day)
                day += ONE_DAY
            st.horizon_done[act.id] = max(last, target)

    def plan_day(self, act, day: date) -> None:
        st = self.st
        live_d = st.live.get(day)
        if live_d is None:
            live_d = st.live[day] = {}
        wk = day.weekday()
        par = day.isocalendar()[1] & 1
        kind = day_kind(day)
        enrs = st.enrolments
        for eid in st.enr_by_act[act.id]:
            e = enrs[eid]
            if e.etat != "V" or day < e.debut or (e.fin is not None and day > e.fin):
                continue
            if e.parity is not None and e.parity != par:
                continue
            self.plan_entry(e, act, day, live_d, wk, kind)

    def plan_entry(self, e, act, day: date, live_d: dict, wk: int, kind: str) -> None:
        if e.mode == "AUTO":
            if wk not in e.days:
                return
            if act.service == "ALSH" and kind != "wednesday":
                return
            if e.auto_ts is None or e.auto_ts > self.w_end:
                return
            r = live_d.get(e.id)
            if r is None:
                r = self.new_auto_entry(e, day, live_d)
            if not r.planned:
                r.planned = True
                self.plan_auto(e, act, r)
            return
        if e.id in live_d:
            return
        if e.days and wk not in e.days:
            return
        p = e.p
        if act.service == "ALSH":
            p *= ALSH_FACTOR.get(kind, 0.0)
        if self.rng.random() >= p:
            return
        r = Resv(e.id, day)
        r.planned = True
        live_d[e.id] = r
        self.plan_booking(e, act, r, live_d)

    def new_auto_entry(self, e, day: date, live_d: dict) -> Resv:
        st = self.st
        r = Resv(e.id, day)
        r.rid = st.next_id("reservation")
        r.l_etat = "RESA"
        r.l_orig = "AUTO"
        r.l_ref = "" if e.id % 5 == 0 else None
        r.l_annul = r.l_ref
        r.l_maj = e.auto_maj
        r.booked = True
        r.chg = True
        live_d[e.id] = r
        k = (e.act, day)
        n = st.resa_count[k] = st.resa_count.get(k, 0) + 1
        if st.capacity_fixed:
            act = st.activities[e.act]
            if act.capacity is not None and n > act.capacity and \
                    self.rng.random() >= self.p("over_capacity"):
                # standing bookings are not refused: the town opens more places
                act.capacity = ((n * 11 // 10) + 4) // 5 * 5
                act.maj = legacy_ts(self.clock)
                st.mark("ACTIVITE", act.id)
        return r

    def cancel_time(self, act, day: date, timely: bool, desk: bool, after: datetime):
        deadline = cancel_deadline(day, act.delai)
        lo = max(after, self.clock + timedelta(seconds=1),
                 datetime.combine(day, datetime.min.time()) - timedelta(days=14))
        if timely:
            t = self.human_between(lo, deadline - timedelta(minutes=30), desk)
            if t is not None:
                return t
        lo2 = max(lo, deadline + timedelta(minutes=1))
        return self.human_between(lo2, datetime.combine(day, datetime.min.time())
                                  + timedelta(hours=9), desk)

    def plan_auto(self, e, act, r: Resv) -> None:
        rng = self.rng
        p = CANCEL_P.get(act.service, 0.0)
        if not p or rng.random() >= p:
            return
        channel = "P" if (e.acct and rng.random() < 0.78) else "G"
        t = self.cancel_time(act, r.day, rng.random() < 0.8, channel == "G", self.clock)
        if t is None:
            return
        self.st.push(t, "rb", (r, "cancel", channel))
        if rng.random() < REBOOK_P:
            deadline = cancel_deadline(r.day, act.delai)
            t2 = self.human_between(t + timedelta(minutes=10), deadline, channel == "G")
            if t2 is not None:
                self.st.push(t2, "rb", (r, "book", channel))

    def plan_booking(self, e, act, r: Resv, live_d: dict) -> None:
        rng = self.rng
        st = self.st
        if e.mode == "GUICHET" or not e.acct:
            channel = "G"
        else:
            channel = "P" if rng.random() < 0.96 else "G"
        desk = channel == "G"
        deadline = cancel_deadline(r.day, act.delai)
        lo = max(self.clock + timedelta(seconds=1),
                 deadline - timedelta(days=LEAD_DAYS.get(act.service, 10)))
        t = self.human_between(lo, deadline - timedelta(minutes=5), desk)
        if t is None:
            del live_d[e.id]
            return
        st.push(t, "rb", (r, "book", channel))
        if rng.random() < PORTAL_CANCEL_P:
            tc = self.cancel_time(act, r.day, rng.random() < 0.75, desk, t + timedelta(hours=1))
            if tc is not None:
                st.push(tc, "rb", (r, "cancel", channel))
                if rng.random() < REBOOK_P:
                    t2 = self.human_between(tc + timedelta(minutes=10), deadline, desk)
                    if t2 is not None:
                        st.push(t2, "rb", (r, "book", channel))

    def ev_enr_start(self, ts: datetime, eid: int) -> None:
        """Plan the days already inside the horizon for a new enrolment / new standing
        bookings."""
        st = self.st
        e = st.enrolments[eid]
        act = st.activities[e.act]
        done = st.horizon_done.get(act.id)
        if done is None or e.etat != "V":
            return
        day = max(e.debut, ts.date() + ONE_DAY, self.w_day)
        while day <= done and (e.fin is None or day <= e.fin):
            if service_open(act.service, day) and (e.parity is None or
                                                    (day.isocalendar()[1] & 1) == e.parity):
                live_d = st.live.setdefault(day, {})
                self.plan_entry(e, act, day, live_d, day.weekday(), day_kind(day))
            day += ONE_DAY

    # ------------------------------------------------------------------ actions
    def ev_rb(self, ts: datetime, payload) -> None:
        r, action, channel = payload
        if r.frozen:
            return
        st = self.st
        if st.last_closed_day is not None and r.day <= st.last_closed_day:
            return
        e = st.enrolments[r.enr]
        act = st.activities[e.act]
        rng = self.rng
        maj = min(ts + timedelta(seconds=rng.randint(5, 900)), self.w_end)
        if action == "book":
            if r.booked:
                return
            if st.capacity_fixed and act.capacity is not None and r.l_etat != "RESA" and \
                    st.resa_count.get((e.act, r.day), 0) >= act.capacity and \
                    rng.random() >= self.p("over_capacity"):
                return  # full: the portal / the desk refuses the booking
            if channel == "P":
                bid = uuid4(rng)
                made = self.iso(ts)
                self.portal_append("bookings", {
                    "id": bid, "updated_at": made, "account_id": e.acct,
                    "person_id": e.pperson, "activity_code": act.code,
                    "day": r.day.isoformat(), "action": "book", "made_at": made})
                r.booked = True
                x = rng.random()
                p_np = self.p("booking_not_propagated")
                if x < p_np:
                    r.frozen = True
                    self.truth.defect("booking_not_propagated", portal_booking_id=bid,
                                      account_id=e.acct, person_id=e.pperson,
                                      activity_code=act.code, day=r.day.isoformat(),
                                      enrolment_id=e.id, made_at=made,
                                      legacy_reservation_id=r.rid)
                    return
                if x < p_np + self.p("booking_wrong_day_or_activity") and \
                        self.misroute(e, act, r, bid, made, maj):
                    return
                self.legacy_book(r, e, maj, "PORTAIL", bid)
            else:
                r.booked = True
                self.legacy_book(r, e, ts, "GUICHET", None)
        else:
            if not r.booked:
                return
            r.booked = False
            if channel == "P":
                cid = uuid4(rng)
                made = self.iso(ts)
                self.portal_append("bookings", {
                    "id": cid, "updated_at": made, "account_id": e.acct,
                    "person_id": e.pperson, "activity_code": act.code,
                    "day": r.day.isoformat(), "action": "cancel", "made_at": made})
                if r.l_etat == "RESA" and rng.random() < self.p("cancellation_not_applied"):
                    r.frozen = True
                    self.truth.defect("cancellation_not_applied", portal_booking_id=cid,
                                      account_id=e.acct, person_id=e.pperson,
                                      activity_code=act.code, day=r.day.isoformat(),
                                      enrolment_id=e.id, reservation_id=r.rid, made_at=made)
                    return
                self.legacy_cancel(r, ts, maj)
            else:
                self.legacy_cancel(r, ts, ts)

    def legacy_book(self, r: Resv, e, maj: datetime, origin: str, ref) -> None:
        st = self.st
        if r.l_etat is None:
            r.rid = st.next_id("reservation")
            r.l_etat = "RESA"
            r.l_orig = origin
            r.l_ref = ref if ref else ("" if e.id % 5 == 0 else None)
            r.l_annul = None if e.id % 5 else ""
        elif r.l_etat == "ANNUL":
            r.l_etat = "RESA"
            r.l_annul = None if e.id % 5 else ""
            if r.l_orig == "PORTAIL" and ref:
                r.l_ref = ref
        else:
            if r.l_orig == "PORTAIL" and ref:
                r.l_ref = ref
            r.l_maj = legacy_ts(maj)
            r.chg = True
            return
        r.l_maj = legacy_ts(maj)
        r.chg = True
        k = (e.act, r.day)
        st.resa_count[k] = st.resa_count.get(k, 0) + 1

    def legacy_cancel(self, r: Resv, when: datetime, maj: datetime) -> None:
        if r.l_etat != "RESA":
            return
        st = self.st
        r.l_etat = "ANNUL"
        r.l_annul = legacy_ts(when)
        r.l_maj = legacy_ts(maj)
        r.chg = True
        k = (st.enrolments[r.enr].act, r.day)
        st.resa_count[k] -= 1

    def misroute(self, e, act, r: Resv, bid: str, made: str, maj: datetime) -> bool:
        """Propagate a portal booking to another activity of the child, or another day."""
        st = self.st
        rng = self.rng
        floor = self.w_day
        cands = []
        for oid in st.enr_by_child.get(e.ind, ()):
            if oid == e.id:
                continue
            o = st.enrolments[oid]
            oact = st.activities[o.act]
            if o.etat != "V" or oact.service not in ("RESTO", "PERI", "ALSH") or \
                    not o.active_on(r.day) or not service_open(oact.service, r.day):
                continue
            t = st.live.get(r.day, {}).get(oid)
            if t is None or (t.l_etat is None and not t.frozen and not t.booked):
                cands.append(("activity", o, oact, r.day))
        if not cands or rng.random() < 0.5:
            for delta in rng.sample([-7, -2, -1, 1, 2, 7], 6):
                day = r.day + timedelta(days=delta)
                if day < floor or not e.active_on(day) or not service_open(act.service, day):
                    continue
                live_d = st.live.get(day)
                if live_d is None:
                    continue
                t = live_d.get(e.id)
                if t is None or (t.l_etat is None and not t.frozen and not t.booked):
                    cands.insert(0, ("day", e, act, day))
                    break
        if not cands:
            return False
        variant, o, oact, day = cands[0]
        live_d = st.live.setdefault(day, {})
        t = live_d.get(o.id)
        if t is None:
            t = Resv(o.id, day)
            t.planned = True
            live_d[o.id] = t
        t.ghost = True
        t.frozen = True
        r.frozen = True
        self.legacy_book(t, o, maj, "PORTAIL", bid)
        self.truth.defect("booking_wrong_day_or_activity", variant=variant, portal_booking_id=bid,
                          account_id=e.acct, person_id=e.pperson, made_at=made,
                          portal_activity_code=act.code, portal_day=r.day.isoformat(),
                          portal_enrolment_id=e.id, reservation_id=t.rid,
                          legacy_enrolment_id=o.id, legacy_activity_code=oact.code,
                          legacy_day=day.isoformat())
        return True

    # ------------------------------------------------------------------ the day after
    def close_day(self, x: date) -> None:
        """Attendance of day x, its billing (legacy view) and its final reservation rows."""
        st = self.st
        rng = self.rng
        entries = st.live.pop(x, None) or {}
        month = (x.year, x.month)
        ledger = st.ledger.setdefault(month, {})
        touched = st.ledger_touched.setdefault(month, set())
        p_ns = self.p("no_show")
        p_btc = self.p("billed_despite_timely_cancellation")
        acts = st.activities
        enrs = st.enrolments
        check_base = {}
        lg = self.legacy
        add_pointage = lg.ins["POINTAGE"].append
        add_resa = lg.ins["RESERVATION"].append
        x_s = ymd(x)
        lo = datetime(x.year, x.month, x.day, 18, 5)
        hi = min(lo + timedelta(hours=15), self.w_end)
        for eid, r in entries.items():
            e = enrs[eid]
            act = acts[e.act]
            statut = None
            legacy_resa = r.l_etat == "RESA"
            if r.booked:
                if legacy_resa:
                    u = rng.random()
                    if u < p_ns:
                        statut = "AI"
                    elif u < p_ns + EXCUSED_P:
                        statut = "AJ"
                    else:
                        statut = "P"
                elif rng.random() < 0.97:
                    statut = "P"  # booked on the portal, unknown to the legacy: comes anyway
            elif legacy_resa:
                statut = "AI"  # cancelled (or misrouted) but still booked in the legacy
            pid = None
            if statut is not None:
                # the check lists of an activity are keyed in (synchronised) in one go
                sync = check_base.get(e.act)
                if sync is None:
                    sync = check_base[e.act] = legacy_ts(self.between(lo, hi))
                pid = st.next_id("pointage")
                add_pointage((pid, eid, x_s, statut, sync))
                if statut == "AI" and r.booked:
                    self.truth.defect("no_show", pointage_id=pid, reservation_id=r.rid,
                                      enrolment_id=eid, activity_code=act.code,
                                      day=x.isoformat())
            # billing rule, legacy view
            svc = act.service
            flag = None
            if svc in ("EMM", "SCOL"):
                billed = False
            elif legacy_resa:
                billed = statut != "AJ"
            elif statut == "P":
                billed = True
            elif r.l_etat == "ANNUL":
                late = (r.l_annul or "") > self.deadline_str(x, act.delai)
                if late:
                    billed = True
                elif rng.random() < p_btc:
                    billed = True
                    flag = ("btc", r.rid, r.l_annul)
                else:
                    billed = False
            else:
                billed = False
            touched.add((eid, x))
            if billed:
                qty = e.hours if svc == "MULTI" else 1
                ledger.setdefault(e.fam, []).append((eid, x, qty, flag))
            if r.l_etat is not None:
                row = (r.rid, eid, x_s, r.l_etat, r.l_orig, r.l_ref, r.l_annul, r.l_maj)
                if not r.pub:
                    add_resa(row)
                elif r.chg:
                    lg.update("RESERVATION", row)
        self.walk_ins(x, entries, ledger, touched, lo, hi)
        lg.maybe_flush()

    def walk_ins(self, x: date, entries: dict, ledger: dict, touched: set, lo, hi) -> None:
        """Children present on a day booked in no system."""
        st = self.st
        rng = self.rng
        p = self.p("present_without_booking")
        if p <= 0:
            return
        x_s = ymd(x)
        for act in st.activities.values():
            if act.service not in ("RESTO", "PERI", "ALSH", "MULTI") or \
                    not service_open(act.service, x):
                continue
            ids = st.enr_by_act[act.id]
            n = len(ids)
            i = _geometric_next(rng, -1, p)
            while i < n:
                eid = ids[i]
                e = st.enrolments[eid]
                r = entries.get(eid)
                if e.etat == "V" and e.active_on(x) and (r is None or
                                                         (not r.booked and r.l_etat is None)):
                    pid = st.next_id("pointage")
                    self.legacy.insert("POINTAGE", (pid, eid, x_s, "P",
                                                    legacy_ts(self.between(lo, hi))))
                    qty = e.hours if act.service == "MULTI" else 1
                    ledger.setdefault(e.fam, []).append((eid, x, qty, None))
                    touched.add((eid, x))
                    self.truth.defect("present_without_booking", pointage_id=pid,
                                      enrolment_id=eid, activity_code=act.code,
                                      day=x.isoformat())
                i = _geometric_next(rng, i, p)

    # ------------------------------------------------------------------ end of run
    def materialize_standing_bookings(self) -> None:
        """Standing (AUTO) bookings exist in the legacy for the whole enrolment period as
        soon as they are created: write the days beyond the planning horizon too."""
        st = self.st
        now = st.now
        for e in st.enrolments.values():
            if e.mode != "AUTO" or e.etat != "V" or e.auto_ts is None or e.auto_ts > now:
                continue
            act = st.activities[e.act]
            done = st.horizon_done.get(act.id)
            if done is None or e.fin is None:
                continue
            day = max(done + ONE_DAY, e.debut)
            while day <= e.fin:
                if service_open(act.service, day) and day.weekday() in e.days and \
                        (e.parity is None or (day.isocalendar()[1] & 1) == e.parity) and \
                        (act.service != "ALSH" or day_kind(day) == "wednesday"):
                    live_d = st.live.setdefault(day, {})
                    if e.id not in live_d:
                        self.new_auto_entry(e, day, live_d)
                day += ONE_DAY

    def fix_capacities(self) -> None:
        """Capacities of the first generation: from the observed bookings, leaving a few
        days over capacity (defect ``over_capacity``)."""
        st = self.st
        rng = self.rng
        p = self.p("over_capacity")
        per_act: dict[int, list[int]] = {}
        for (act_id, _day), n in st.resa_count.items():
            per_act.setdefault(act_id, []).append(n)
        for act in st.activities.values():
            if act.service == "SCOL":
                n = sum(1 for eid in st.enr_by_act[act.id] if st.enrolments[eid].etat == "V")
                act.capacity = max(25, (int(n * 1.1) // 25 + 1) * 25)
            else:
                counts = sorted((c for c in per_act.get(act.id, []) if c > 0), reverse=True)
                if not counts:
                    act.capacity = 12 if act.service in ("MULTI", "EMM") else 20
                else:
                    k = sum(1 for _ in counts if rng.random() < p)
                    if 0 < k < len(counts) and counts[k] < counts[0]:
                        act.capacity = counts[k]
                    else:
                        act.capacity = ((int(counts[0] * 1.1) + 4) // 5) * 5
            st.mark("ACTIVITE", act.id)
        st.capacity_fixed = True


def _geometric_next(rng, i: int, p: float) -> int:
    """Index of the next success after i in a Bernoulli(p) sequence (skip sampling)."""
    import math

    u = rng.random()
    if p >= 1:
        return i + 1
    return i + 1 + int(math.log(1.0 - u) / math.log(1.0 - p))
