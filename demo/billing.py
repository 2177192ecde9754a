"""Monthly invoicing (legacy FACTURE / LIGNE_FACTURE) and the invoices' later life
(cancel-and-reissue, hand-over to the public treasury for recovery)."""

from __future__ import annotations

from calendar import monthrange
from datetime import date, datetime, timedelta

from .names import MONTHS_FR
from .timeline import (
    dmy_slash,
    legacy_ts,
    nth_business_day_of_month,
    service_open,
    ymd,
)
from .world import Invoice, unit_price

EMISSION_BUSINESS_DAY = 3  # invoices of month M are issued the 3rd business day of M+1
DUE_DAYS = 30
HANDOVER_BUSINESS_DAY = 10
HANDOVER_AFTER_DUE = 60
REISSUE_P = 0.006


def _prev_month(d: date) -> tuple[int, int]:
    return (d.year - 1, 12) if d.month == 1 else (d.year, d.month - 1)


class BillingMixin:
    def daily_billing(self, d: date) -> None:
        if d == nth_business_day_of_month(d.year, d.month, EMISSION_BUSINESS_DAY):
            self.emit_invoices(_prev_month(d), d)
        if d == nth_business_day_of_month(d.year, d.month, HANDOVER_BUSINESS_DAY):
            self.hand_over(d)

    # ------------------------------------------------------------------ emission
    def emit_invoices(self, month: tuple[int, int], d: date) -> None:
        st = self.st
        rng = self.rng
        ledger = st.ledger.pop(month, {})
        touched = st.ledger_touched.pop(month, set())
        y, m = month
        first, last = date(y, m, 1), date(y, m, monthrange(y, m)[1])
        # music school: flat monthly fee, September to June
        emm: dict[int, list] = {}
        if m not in (7, 8):
            for act in st.activities.values():
                if act.service != "EMM":
                    continue
                for eid in st.enr_by_act[act.id]:
                    e = st.enrolments[eid]
                    if e.etat == "V" and e.debut <= last and (e.fin is None or e.fin >= first):
                        emm.setdefault(e.fam, []).append(eid)
        fams = sorted(set(ledger) | set(emm))
        base_ts = datetime(d.year, d.month, d.day, 6, 30)
        for i, fam_id in enumerate(fams):
            ts = base_ts + timedelta(seconds=i * 2)
            lines = []
            for eid, x, qty, flag in sorted(ledger.get(fam_id, ()), key=lambda t: (t[0], t[1])):
                lines.append((eid, x, qty, flag))
            for eid in emm.get(fam_id, ()):
                lines.append((eid, None, 1, None))
            if not lines:
                continue
            reissue = rng.random() < REISSUE_P
            inv = self.new_invoice(fam_id, month, d, ts, lines, touched,
                                   defects=not reissue, record_btc=not reissue)
            if reissue:
                t2 = datetime.combine(d + timedelta(days=rng.randint(2, 5)),
                                      datetime.min.time()) + timedelta(hours=rng.randint(9, 16))
                st.push(t2, "reissue", (inv.id, lines))
            else:
                self.plan_payments(inv, ts)
        self.progress_step("invoices", len(fams), len(fams))

    def new_invoice(self, fam_id: int, month, d: date, ts: datetime, lines, touched,
                    defects: bool, record_btc: bool = True) -> Invoice:
        st = self.st
        rng = self.rng
        fam = st.families[fam_id]
        y, m = month
        inv = Invoice()
        inv.id = st.next_id("facture")
        inv.num = f"{y:04d}{m:02d}{st.next_id('num_facture'):07d}"
        inv.fam = fam_id
        inv.periode = f"{y:04d}{m:02d}"
        inv.emission = ymd(d)
        inv.echeance = ymd(d + timedelta(days=DUE_DAYS))
        inv.etat = "E"
        inv.maj = legacy_ts(ts)
        inv.pub = False
        inv.applied = 0
        inv.payments = 0
        inv.reissue_of = None
        inv.year = y
        total = 0
        rows = []
        btc = []
        for eid, x, qty, flag in lines:
            e = st.enrolments[eid]
            act = st.activities[e.act]
            pu = unit_price(act.pu, fam.qf)
            if x is None:
                label = f"{act.label_short} - {MONTHS_FR[m - 1]} {y}"
                day_s = None if rng.random() < 0.7 else ""
            else:
                label = f"{act.label_short} {dmy_slash(x)}"
                if act.service == "MULTI":
                    label += f" ({qty} h)"
                day_s = ymd(x)
            lid = st.next_id("ligne")
            rows.append((lid, inv.id, eid, day_s, label, qty, pu, qty * pu))
            total += qty * pu
            if flag and flag[0] == "btc" and record_btc:
                btc.append((lid, eid, x, flag))
        if defects and rng.random() < self.p("billed_never_booked"):
            extra = self.never_booked_line(fam, month, touched, inv.id)
            if extra is not None:
                rows.append(extra)
                total += extra[7]
                e = st.enrolments[extra[2]]
                self.truth.defect("billed_never_booked", invoice_number=inv.num,
                                  invoice_id=inv.id, line_id=extra[0], enrolment_id=extra[2],
                                  activity_code=st.activities[e.act].code,
                                  day=f"{extra[3][:4]}-{extra[3][4:6]}-{extra[3][6:]}",
                                  amount_cents=extra[7])
        amount = total
        if defects and rng.random() < self.p("invoice_total_mismatch"):
            delta = rng.choice([-1, 1]) * rng.choice([rows[-1][7], rng.randint(1, 499), 100,
                                                      1000])
            if total + delta > 0:
                amount = total + delta
                self.truth.defect("invoice_total_mismatch", invoice_number=inv.num,
                                  invoice_id=inv.id, header_cents=amount, lines_cents=total)
        inv.amount = amount
        inv.lines_sum = total
        for lid, eid, x, flag in btc:
            self.truth.defect("billed_despite_timely_cancellation", invoice_number=inv.num,
                              invoice_id=inv.id, line_id=lid, enrolment_id=eid,
                              activity_code=st.activities[st.enrolments[eid].act].code,
                              day=x.isoformat(), reservation_id=flag[1], cancelled_at=flag[2])
        for row in rows:
            self.legacy.insert("LIGNE_FACTURE", row)
        st.invoices[inv.id] = inv
        st.inv_by_num[inv.num] = inv.id
        st.mark("FACTURE", inv.id)
        return inv

    def never_booked_line(self, fam, month, touched: set, inv_id: int):
        """A line for a day the child was neither booked nor present."""
        st = self.st
        rng = self.rng
        y, m = month
        cands = [eid for eid in st.enr_by_fam.get(fam.id, ())
                 if st.enrolments[eid].etat == "V"
                 and st.activities[st.enrolments[eid].act].service in ("RESTO", "PERI", "ALSH")]
        rng.shuffle(cands)
        for eid in cands:
            e = st.enrolments[eid]
            act = st.activities[e.act]
            days = [date(y, m, k) for k in range(1, monthrange(y, m)[1] + 1)]
            rng.shuffle(days)
            for x in days:
                if service_open(act.service, x) and e.active_on(x) and (eid, x) not in touched:
                    pu = unit_price(act.pu, fam.qf)
                    lid = st.next_id("ligne")
                    return (lid, inv_id, eid, ymd(x), f"{act.label_short} {dmy_slash(x)}",
                            1, pu, pu)
        return None

    def ev_reissue(self, ts: datetime, payload) -> None:
        """An invoice cancelled ('A') a few days after emission and issued again."""
        st = self.st
        inv_id, lines = payload
        old = st.invoices[inv_id]
        old.etat = "A"
        old.maj = legacy_ts(ts)
        st.mark("FACTURE", old.id)
        y, m = int(old.periode[:4]), int(old.periode[4:])
        new = self.new_invoice(old.fam, (y, m), ts.date(), ts + timedelta(minutes=3), lines,
                               set(), defects=False)
        new.reissue_of = old.id
        self.plan_payments(new, ts)

    # ------------------------------------------------------------------ recovery
    def hand_over(self, d: date) -> None:
        """Unpaid invoices long past due are handed to the public treasury ('T')."""
        st = self.st
        limit = d - timedelta(days=HANDOVER_AFTER_DUE)
        limit_s = ymd(limit)
        base = datetime(d.year, d.month, d.day, 10, 0)
        i = 0
        for inv in st.invoices.values():
            if inv.etat == "E" and inv.echeance < limit_s and inv.applied < inv.amount:
                inv.etat = "T"
                inv.maj = legacy_ts(base + timedelta(seconds=11 * i))
                st.mark("FACTURE", inv.id)
                i += 1

