"""Payments and the payment office ("régie unique").

Each issued invoice gets a payment plan (channel, date, amount, case) when it is issued;
the payments happen as timed events. What they leave behind:

* online card payments: portal ``online_payments`` attempts + ``PAYFIP_YYYYMMDD.csv`` rows,
  and one card-settlement credit per day on the régie's main account (CFONB 120);
* desk receipts: ``CAISSE_YYYYMMDD.csv`` rows; cash remitted weekly, cheques twice a week
  (main account), desk card payments settled daily and CESU titles reimbursed by the
  CRCESU (second account, camt.053);
* transfers: one credit each with the payer's free label (main account);
* direct debits: one credit per collection, ``PRLV_YYYYMMDD.xml`` (pain.002) a few business
  days later, each reject debited ("IMPAYE PRLV SEPA");
* bank fees and the sweep to the public accountant.

The ground truth gets a ``payment`` record per payment (with its source file and line and the
cents applied to its invoice) and a ``bank_operation`` record per statement operation.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta

from .identifiers import hex_id
from .names import MONTHS_FR, strip_accents
from .timeline import (
    PARIS,
    business_day_on_or_after,
    is_business_day,
    iso_local,
    next_business_day,
    nth_business_day_of_month,
    parse_ymd,
)
from .treasury_writer import day_folder

TREASURY_START = date(2025, 9, 1)
NEVER_PAID_P = 0.03
DD_REASONS = (["AC01", "AC04", "AM04", "MD06", "MS02"], [10, 15, 50, 10, 15])
MAIN = "MAIN"
SECOND = "TPE"
BANKS = {
    MAIN: {"bank": "10071", "branch": "44000", "account": "00001234567", "format": "cfonb",
           "balance": 2_145_630},
    SECOND: {"bank": "14445", "branch": "20200", "account": "08004417823", "format": "camt",
             "balance": 312_045},
}
SWEEP_FLOAT = 150_000


def _mistype(rng, num: str) -> str:
    for _ in range(10):
        s = list(num)
        r = rng.random()
        if r < 0.4:
            i = rng.randrange(6, len(s) - 1)
            s[i], s[i + 1] = s[i + 1], s[i]
        elif r < 0.7:
            i = rng.randrange(0, len(s))
            s[i] = str((int(s[i]) + rng.randint(1, 9)) % 10)
        elif r < 0.9:
            del s[rng.randrange(6, len(s))]
        else:
            s = list(num[6:])  # the period forgotten: 7-digit sequence only
        out = "".join(s)
        if out != num:
            return out
    return num[:-1]


class MoneyMixin:
    # ------------------------------------------------------------------ setup
    def init_banks(self) -> None:
        st = self.st
        for key, spec in BANKS.items():
            st.banks[key] = {**spec, "last": date(2025, 8, 29), "entry": 1, "ops": {},
                             "held": [], "seq": 0}
        st.payfip_paid = {}
        st.dd_reports = {}
        st.fees = {"payfip": 0, "tpe": 0}
        st.cesu_batches = {}

    def add_op(self, key: str, day: date, amount: int, label: str, kind: str,
               payments: list, details=(), interbank: str = "05", reference: str = "",
               reject_code: str = "", value: date | None = None) -> str:
        st = self.st
        bank = st.banks[key]
        day = business_day_on_or_after(day)
        if day <= bank["last"]:
            day = next_business_day(bank["last"])
        entry = f"{bank['entry']:07d}"
        bank["entry"] += 1
        op = {"booked": day, "value": value or day, "amount": amount, "label": label,
              "kind": kind, "payments": list(payments), "details": list(details),
              "interbank": interbank, "reference": reference, "entry": entry,
              "reject_code": reject_code}
        bank["ops"].setdefault(day, []).append(op)
        self._last_op = op
        return entry

    # ------------------------------------------------------------------ planning
    def payer_name(self, fam_id: int) -> str:
        st = self.st
        fam = st.families[fam_id]
        p = st.persons[fam.titulaire]
        last = strip_accents(p.last).upper()
        first = strip_accents(p.first).upper()
        r = self.rng.random()
        if r < 0.5:
            return f"{last} {first}"
        if r < 0.7:
            return f"{'MME' if p.sex == 'F' else 'M'} {last} {first}"
        if r < 0.85:
            return f"M OU MME {last}"
        return f"{last} {first[0]}"

    def pick_channel(self, fam) -> str:
        rng = self.rng
        ch = fam.pay if fam.pay != "DD" else "DESK"
        if rng.random() < 0.1:
            ch = rng.choice(["ONLINE", "DESK", "TRANSFER"])
        if ch == "ONLINE" and self.usable_account(fam.id) is None:
            ch = "DESK" if rng.random() < 0.7 else "TRANSFER"
        return ch

    def pay_time(self, channel: str, after: datetime, days: float) -> datetime:
        """When a payment planned ``days`` after ``after`` happens: desk opening hours,
        bank business days (transfers), any plausible hour online. Never before
        ``after + days``."""
        t = after + timedelta(days=days)
        rng = self.rng
        if channel == "DESK":
            return self.next_desk_time(t + timedelta(hours=rng.uniform(0, 6)))
        if channel == "TRANSFER":
            d = business_day_on_or_after(t.date())
            cand = datetime.combine(d, time(6, 0)) + timedelta(minutes=rng.randint(0, 660))
            if cand < t:
                d = next_business_day(d)
                cand = datetime.combine(d, time(6, 0)) + timedelta(minutes=rng.randint(0, 660))
            return cand
        h = rng.choices(range(24), [1, 0, 0, 0, 0, 1, 2, 4, 6, 7, 7, 7, 8, 9, 8, 7, 7, 7, 8,
                                    10, 12, 12, 9, 4])[0]
        cand = datetime.combine(t.date(), time(h, rng.randint(0, 59), rng.randint(0, 59)))
        return cand if cand >= t else cand + timedelta(days=1)

    def plan_payments(self, inv, ts: datetime) -> None:
        st = self.st
        rng = self.rng
        fam = st.families[inv.fam]
        amount = inv.amount
        if amount <= 0:
            return
        if fam.prelev == "O" and fam.pay == "DD":
            c = business_day_on_or_after(parse_ymd(inv.echeance))
            st.dd_pending.setdefault(c, []).append(inv.id)
            return
        if rng.random() < NEVER_PAID_P:
            return
        channel = self.pick_channel(fam)
        delay = max(0.3, math.exp(rng.gauss(math.log(9), 0.75)))
        t = self.pay_time(channel, ts, delay)
        u = rng.random()
        p_part = self.p("payment_partial")
        p_over = self.p("payment_overpayment")
        p_dbl = self.p("payment_double")
        if u < p_part and amount >= 300:
            part = max(100, (int(amount * rng.uniform(0.3, 0.8)) // 100) * 100)
            if part >= amount:
                part = amount // 2
            st.push(t, "pay", (inv.id, channel, part, "partial"))
            if rng.random() < 0.6:
                t2 = self.pay_time(channel, t, rng.uniform(5, 40))
                st.push(t2, "pay", (inv.id, channel, amount - part, "remainder"))
        elif u < p_part + p_over:
            if channel == "ONLINE":
                channel = "DESK"
                t = self.pay_time(channel, ts, delay)
            step = 1000 if amount > 2000 else 500
            over = ((amount + step - 1) // step) * step
            if over == amount:
                over += step
            st.push(t, "pay", (inv.id, channel, over, "overpayment"))
        elif u < p_part + p_over + p_dbl:
            st.push(t, "pay", (inv.id, channel, amount, "normal"))
            other = rng.choice([c for c in ("DESK", "TRANSFER", "ONLINE", channel)])
            if other == "ONLINE" and self.usable_account(fam.id) is None:
                other = "DESK"
            t2 = self.pay_time(other, t, rng.uniform(1, 20))
            st.push(t2, "pay", (inv.id, other, amount, "double"))
        else:
            st.push(t, "pay", (inv.id, channel, amount, "normal"))

    # ------------------------------------------------------------------ payment events
    def apply(self, inv, amount: int) -> tuple[int, int]:
        remaining = 0 if inv.etat == "A" else max(0, inv.amount - inv.applied)
        applied = min(amount, remaining)
        inv.applied += applied
        inv.payments += 1
        return applied, amount - applied

    def ref_case(self) -> str:
        u = self.rng.random()
        pm = self.p("payment_mistyped_reference")
        if u < pm:
            return "mistyped"
        if u < pm + self.p("payment_no_reference"):
            return "none"
        return "exact"

    def payment_record(self, pid: str, channel: str, inv, amount: int, applied: int,
                       case: str, ref_case: str, quoted: str, ts: datetime, **extra) -> dict:
        # money actually kept by the payment office: nothing for a failed card attempt or
        # a rejected direct debit (credited with its collection, then debited back)
        received = 0 if case in ("attempt", "rejected") else amount
        if case in ("normal", "double") and channel != "direct_debit":
            # of two full payments of one invoice, the double is the one that found it
            # already paid, whichever was planned second (a card payment given up is paid
            # at the desk days later, maybe after the second payment)
            case = "double" if applied == 0 and inv.etat != "A" and inv.applied > 0 \
                else "normal"
        rec = {"kind": "payment", "payment_id": pid, "channel": channel,
               "at": iso_local(ts), "amount_cents": amount, "received_cents": received,
               "invoice_number": inv.num, "family_id": inv.fam, "applied_cents": applied,
               "unallocated_cents": received - applied, "case": case,
               "reference_case": ref_case, "reference_quoted": quoted}
        rec.update(extra)
        return rec

    def payment_defects(self, rec: dict, source: dict) -> None:
        """Defect records for a payment whose source location is now known."""
        case = rec["case"]
        base = {"payment_id": rec["payment_id"], "invoice_number": rec["invoice_number"],
                "amount_cents": rec["amount_cents"], "channel": rec["channel"], **source}
        if rec["reference_case"] == "mistyped":
            self.truth.defect("payment_mistyped_reference", quoted=rec["reference_quoted"], **base)
        elif rec["reference_case"] == "none":
            self.truth.defect("payment_no_reference", quoted=rec["reference_quoted"], **base)
        if case == "partial":
            self.truth.defect("payment_partial", applied_cents=rec["applied_cents"], **base)
        elif case == "overpayment":
            self.truth.defect("payment_overpayment", applied_cents=rec["applied_cents"],
                              unallocated_cents=rec["unallocated_cents"], **base)
        elif case == "double":
            self.truth.defect("payment_double", applied_cents=rec["applied_cents"],
                              unallocated_cents=rec["unallocated_cents"], **base)

    def ev_pay(self, ts: datetime, payload) -> None:
        st = self.st
        inv_id, channel, amount, case = payload
        inv = st.invoices[inv_id]
        if inv.etat == "A":
            return
        if channel == "ONLINE":
            acc = self.usable_account(inv.fam)
            if acc is None:
                st.push(self.pay_time("DESK", ts, 1), "pay", (inv_id, "DESK", amount, case))
                return
            self.online_payment(ts, inv, acc, amount, case)
        elif channel == "DESK":
            self.desk_payment(ts, inv, amount, case)
        else:
            self.transfer_payment(ts, inv, amount, case)

    def online_payment(self, ts: datetime, inv, acc: str, amount: int, case: str) -> None:
        st = self.st
        rng = self.rng
        email = st.portal["accounts"][acc]["email"] or ""
        fails = 0
        if rng.random() < self.p("payfip_refused_or_abandoned"):
            fails = 1 + (rng.random() < 0.3)
        give_up = fails and rng.random() < 0.15
        t = ts
        attempts = []
        for _ in range(fails):
            attempts.append((t, rng.choice(["refused", "abandoned", "abandoned"])))
            t = t + timedelta(minutes=rng.randint(1, 25))
        if not give_up:
            attempts.append((t, "paid"))
        for t_a, status in attempts:
            t_a = min(t_a, self.w_end)
            op_id = f"opay-{st.next_id('online_payment'):07d}"
            idop = hex_id(rng, 32)
            paid = status == "paid"
            stamp = self.iso(t_a)
            self.portal_append("online_payments", {
                "id": op_id, "updated_at": stamp, "account_id": acc, "invoice_number": inv.num,
                "amount_cents": amount, "idop": idop, "status": status,
                "paid_at": stamp if paid else None})
            applied = 0
            if paid:
                applied, _ = self.apply(inv, amount)
            pid = f"PAYFIP-{idop}"
            rec = self.payment_record(pid, "payfip", inv, amount, applied,
                                      case if paid else "attempt", "exact", inv.num, t_a,
                                      status=status, portal_id=op_id, idop=idop)
            row = {"refdet": inv.num, "idop": idop,
                   "numauto": f"{rng.randint(0, 999999):06d}" if paid else "",
                   "montant": amount, "dattrans": t_a.date(),
                   "heurtrans": t_a.time().replace(second=0, microsecond=0),
                   "resultrans": {"paid": "P", "refused": "R", "abandoned": "A"}[status],
                   "mel": email if (paid or rng.random() < 0.5) else "",
                   "exer": int(inv.num[:4])}
            st.payfip_day.setdefault(t_a.date(), []).append((t_a, row, rec))
            if paid:
                st.payfip_paid.setdefault(t_a.date(), []).append((pid, amount))
        if give_up:
            st.push(self.pay_time("DESK", t, rng.uniform(2, 12)), "pay",
                    (inv.id, "DESK", amount, case))

    def desk_payment(self, ts: datetime, inv, amount: int, case: str) -> None:
        st = self.st
        rng = self.rng
        fam = st.families[inv.fam]
        mode = fam.desk_mode
        if mode == "CESU" and not any(
                st.activities[st.enrolments[e].act].service in ("MULTI", "PERI", "ALSH")
                for e in st.enr_by_fam.get(fam.id, ())):
            mode = "CHEQUE"
        if mode == "ESPECES" and amount > 30000:
            mode = "CHEQUE"
        recu = f"{ts.year}-{st.next_id('recu'):06d}"
        rc = self.ref_case()
        quoted = inv.num if rc == "exact" else ("" if rc == "none" else _mistype(rng, inv.num))
        num_cheque = ""
        if mode == "CHEQUE":
            num_cheque = f"{rng.randint(0, 9_999_999):07d}"
        elif mode == "CESU":
            num_cheque = f"{rng.randint(10**9, 10**10 - 1)}"
        payer = self.payer_name(inv.fam) if rng.random() < 0.95 else ""
        applied, _ = self.apply(inv, amount)
        pid = f"CAISSE-{recu}"
        rec = self.payment_record(pid, "caisse", inv, amount, applied, case, rc, quoted, ts,
                                  mode=mode, receipt=recu, payer_named=bool(payer))
        row = {"recu": recu, "date": ts.date(), "mode": mode, "montant_centimes": amount,
               "num_facture": quoted, "payeur": payer, "num_cheque": num_cheque}
        st.caisse_day.setdefault(ts.date(), []).append((ts, row, rec))
        if mode == "CB":
            st.cb_day.setdefault(ts.date(), []).append((pid, amount))
        else:
            st.pools[mode].append((ts.date(), pid, amount))

    def transfer_payment(self, ts: datetime, inv, amount: int, case: str) -> None:
        st = self.st
        rng = self.rng
        fam = st.families[inv.fam]
        payer = self.payer_name(inv.fam)
        rc = self.ref_case()
        kids = [st.persons[i] for i in fam.members if st.persons[i].is_child]
        child = strip_accents(rng.choice(kids).first).upper() if kids else ""
        month = MONTHS_FR[int(inv.periode[4:]) - 1]
        if rc == "exact":
            lib = rng.choice([f"FACTURE {inv.num}", f"FACT {inv.num}", inv.num,
                              f"REGLEMENT FACTURE {inv.num} {child}", f"{fam.code} FACT {inv.num}"])
        elif rc == "mistyped":
            lib = rng.choice([f"FACTURE {_mistype(rng, inv.num)}",
                              f"FACT {_mistype(rng, inv.num)} {child}"])
        else:
            lib = rng.choice([f"CANTINE {child}", fam.code, f"PERISCOLAIRE {month}",
                              payer, "REGLEMENT MAIRIE", f"FACTURE {month} {child}",
                              f"{fam.code} {child}"])
        lib = lib.strip() or payer
        label = f"VIR SEPA {payer}"[:31]
        applied, _ = self.apply(inv, amount)
        day = business_day_on_or_after(ts.date())
        entry = self.add_op(MAIN, day, amount, label, "transfer", [], details=[
            ("NPY", payer), ("LIB", lib)], interbank="05")
        pid = f"VIR-{BANKS[MAIN]['account']}-{entry}"
        rec = self.payment_record(pid, "transfer", inv, amount, applied, case, rc, lib, ts,
                                  entry_number=entry)
        op = self._last_op
        op["payments"] = [pid]
        op["record"] = rec

    # ------------------------------------------------------------------ the day's office work
    def treasury_day(self, d: date) -> None:
        st = self.st
        y = d - timedelta(days=1)
        if y >= TREASURY_START:
            self.write_payfip(y)
            self.settle_cards(y)
        if d >= TREASURY_START and is_business_day(d):
            self.dd_collect(d)
            self.dd_report(d)
            prev = d - timedelta(days=1)
            while not is_business_day(prev):
                prev -= timedelta(days=1)
            if prev.isocalendar()[1] != d.isocalendar()[1]:
                self.remit("ESPECES", d, "VERSEMENT ESPECES", "cash_remittance")
            if d.weekday() in (1, 4):
                self.remit("CHEQUE", d, "REMISE CHEQUES", "cheque_remittance")
            if d == nth_business_day_of_month(d.year, d.month, 4):
                self.send_cesu(d)
            if d == nth_business_day_of_month(d.year, d.month, 3):
                self.monthly_fees(d)
        if d >= TREASURY_START:
            self.write_caisse(d)
            self.write_statements(d)
        self.process_redeliveries(d)
        del st

    def write_payfip(self, y: date) -> None:
        st = self.st
        items = st.payfip_day.pop(y, [])
        paid = st.payfip_paid.pop(y, [])
        if items:
            items.sort(key=lambda t: t[0])
            rows = [it[1] for it in items]
            self.deliver_csv(y, f"PAYFIP_{y:%Y%m%d}.csv", "payfip", rows, [it[2] for it in items])
        if paid:
            total = sum(a for _, a in paid)
            st.fees["payfip"] += sum(a * 25 // 10000 + 5 for _, a in paid)
            self.add_op(MAIN, next_business_day(y), total, f"PAYFIP CB {y:%d/%m/%y}",
                        "card_settlement", [p for p, _ in paid],
                        details=[("LIB", f"REGLEMENTS PAYFIP DU {y:%d/%m/%Y} NB {len(paid)}")],
                        interbank="A1")

    def settle_cards(self, y: date) -> None:
        st = self.st
        items = st.cb_day.pop(y, [])
        if not items:
            return
        total = sum(a for _, a in items)
        st.fees["tpe"] += sum(a * 45 // 10000 + 3 for _, a in items)
        self.add_op(SECOND, next_business_day(y), total, f"REMISE CB TPE {y:%d%m%y}",
                    "desk_card_settlement", [p for p, _ in items],
                    details=[("LIB", f"TELECOLLECTE {y:%d/%m/%Y} {len(items)} FACTURETTES")],
                    interbank="A1")

    def remit(self, mode: str, d: date, label: str, kind: str) -> None:
        st = self.st
        pool = st.pools[mode]
        take = [it for it in pool if it[0] < d]
        if not take:
            return
        st.pools[mode] = [it for it in pool if it[0] >= d]
        total = sum(a for _, _, a in take)
        self.add_op(MAIN, d, total, label, kind, [p for _, p, _ in take], interbank="15"
                    if mode == "CHEQUE" else "01")

    def send_cesu(self, d: date) -> None:
        st = self.st
        rng = self.rng
        pool = st.pools["CESU"]
        take = [it for it in pool if it[0] < d]
        if not take:
            return
        st.pools["CESU"] = [it for it in pool if it[0] >= d]
        batch = f"{st.next_id('cesu_batch'):05d}"
        pay_day = next_business_day(d, rng.randint(8, 16))
        total = sum(a for _, _, a in take)
        self.add_op(SECOND, pay_day, total, "VIR CRCESU REMBOURSEMENT", "cesu_reimbursement",
                    [p for _, p, _ in take],
                    details=[("NPY", "CRCESU"), ("LIB", f"REMB TITRES CESU LOT {batch}")])

    def monthly_fees(self, d: date) -> None:
        st = self.st
        if st.fees["payfip"]:
            self.add_op(MAIN, d, -st.fees["payfip"], "COMMISSIONS PAYFIP", "bank_fee", [],
                        interbank="62")
            st.fees["payfip"] = 0
        self.add_op(SECOND, d, -1200, "FRAIS TENUE DE COMPTE", "bank_fee", [], interbank="62")
        if st.fees["tpe"]:
            self.add_op(SECOND, d, -st.fees["tpe"], "COMMISSIONS TPE", "bank_fee", [],
                        interbank="62")
            st.fees["tpe"] = 0

    # ------------------------------------------------------------------ direct debits
    def dd_collect(self, d: date) -> None:
        st = self.st
        rng = self.rng
        ids = []
        for k in sorted(k for k in st.dd_pending if k <= d):
            ids.extend(st.dd_pending.pop(k))
        txs = []
        for inv_id in ids:
            inv = st.invoices[inv_id]
            due = inv.amount - inv.applied
            if inv.etat != "E" or due <= 0:
                continue
            if rng.random() < self.p("direct_debit_reject"):
                reason = rng.choices(*DD_REASONS)[0]
                status = "RJCT"
            else:
                reason, status = None, "ACSC"
            txs.append([inv, due, status, reason, f"PRLV-{d:%Y%m%d}-{inv.num}"])
        if not txs:
            return
        total = sum(t[1] for t in txs)
        for t in txs:
            if t[2] == "ACSC":
                self.apply(t[0], t[1])
        self.add_op(MAIN, d, total, f"REMISE PRLV SEPA {d:%d%m%y}", "direct_debit_collection",
                    [t[4] for t in txs],
                    details=[("LIB", f"PRLV SEPA ECHEANCE {d:%d/%m/%Y} NB {len(txs)}")],
                    interbank="B1")
        r = next_business_day(d, 2)
        st.dd_reports.setdefault(r, []).append((d, txs))

    def dd_report(self, d: date) -> None:
        st = self.st
        rng = self.rng
        reports = st.dd_reports.pop(d, [])
        if not reports:
            return
        from schemas.treasury.pain002 import write_pain002

        transactions = []
        recs = []
        for c, txs in reports:
            for inv, amount, status, reason, pid in txs:
                transactions.append({"end_to_end_id": inv.num, "amount_cents": amount,
                                     "status": status, "reason": reason,
                                     "collection_date": c})
                applied = amount if status == "ACSC" else 0
                rec = self.payment_record(pid, "direct_debit", inv, amount, applied,
                                          "normal" if status == "ACSC" else "rejected", "exact",
                                          inv.num, datetime.combine(c, time(6, 0)),
                                          status="accepted" if status == "ACSC" else "rejected",
                                          reason=reason, collection_date=c.isoformat())
                recs.append(rec)
                if status == "RJCT":
                    entry = self.add_op(MAIN, d, -amount, "IMPAYE PRLV SEPA",
                                        "direct_debit_reject", [pid],
                                        details=[("LIB", f"{inv.num} {reason}")],
                                        interbank="B2")
                    rec["reject_entry_number"] = entry
                    if rng.random() < 0.6:
                        ch = self.pick_channel(st.families[inv.fam])
                        st.push(self.pay_time(ch, datetime.combine(d, time(12, 0)),
                                              rng.uniform(4, 25)),
                                "pay", (inv.id, ch, amount, "normal"))
        created = datetime.combine(d, time(7, 15)).replace(tzinfo=PARIS)
        data = write_pain002(f"PAIN002-{d:%Y%m%d}", created, f"PAIN008-{reports[0][0]:%Y%m%d}",
                             transactions)
        rel = self.deliver(d, f"PRLV_{d:%Y%m%d}.xml", "pain002", data, bank_file=True)
        text = data.decode("utf-8")
        for rec in recs:
            e2e = rec["invoice_number"]
            pos = text.find(f"<OrgnlEndToEndId>{e2e}</OrgnlEndToEndId>")
            line = text.count("\n", 0, pos) + 1
            src = {"file": rel, "line": line}
            rec["source"] = src
            self.truth.event(rec)
            if rec["status"] == "rejected":
                self.truth.defect("direct_debit_reject", payment_id=rec["payment_id"],
                                  invoice_number=e2e, amount_cents=rec["amount_cents"],
                                  reason=rec["reason"], collection_date=rec["collection_date"],
                                  reject_entry_number=rec["reject_entry_number"], **src)

    # ------------------------------------------------------------------ files
    def deliver(self, d: date, name: str, kind: str, data: bytes, bank_file: bool) -> str:
        st = self.st
        rng = self.rng
        rel = f"{day_folder(d)}/{name}"
        self.treasury.write(rel, data, kind)
        if bank_file:
            if rng.random() < self.p("treasury_sha256_mismatch"):
                side = self.treasury.write_sidecar(rel, data, correct=False)
                self.truth.defect("treasury_sha256_mismatch", file=rel, sidecar=side,
                                  note="re-delivered the next day with a correct sidecar")
                nd = d + timedelta(days=1)
                st.redeliveries.setdefault(max(nd, self.w_day + timedelta(days=1)), []).append(
                    (rel, f"{day_folder(nd)}/{name}", True))
            else:
                self.treasury.write_sidecar(rel, data)
        if rng.random() < self.p("treasury_redelivered"):
            if rng.random() < 0.5:
                k = rng.randint(1, 3)
                nd = d + timedelta(days=k)
                dst = f"{day_folder(nd)}/{name}"
            else:
                nd = d + timedelta(days=1)
                stem, ext = name.rsplit(".", 1)
                dst = f"{day_folder(d)}/{stem}_2.{ext}"
            st.redeliveries.setdefault(max(nd, self.w_day + timedelta(days=1)), []).append(
                (rel, dst, bank_file))
        if rng.random() < self.p("treasury_stale_part"):
            part = self.treasury.write_stale_part(rel, data)
            self.truth.defect("treasury_stale_part", file=part, complete_file=rel)
        return rel

    def process_redeliveries(self, d: date) -> None:
        st = self.st
        for key in sorted(k for k in st.redeliveries if k <= d):
            for src, dst, sidecar in st.redeliveries.pop(key):
                data = self.treasury.read(src)
                kind = "redelivered"
                self.treasury.write(dst, data, kind)
                if sidecar:
                    self.treasury.write_sidecar(dst, data)
                self.truth.defect("treasury_redelivered", file=dst, original_file=src,
                                  same_name=dst.rsplit("/", 1)[-1] == src.rsplit("/", 1)[-1])

    def corrupt_csv_line(self, line: str, kind: str) -> tuple[str, str]:
        rng = self.rng
        cells = line.split(";")
        r = rng.random()
        if r < 0.35:
            return ";".join(cells[:-1]), "field_count"
        if kind == "payfip":
            if r < 0.7:
                cells[3] = f"{int(cells[3]) / 100:.2f}".replace(".", ",")
                return ";".join(cells), "bad_amount"
            cells[4] = "31" + "02" + cells[4][4:]
            return ";".join(cells), "bad_date"
        if r < 0.7:
            cells[3] = f"{int(cells[3]) / 100:.2f}".replace(".", ",")
            return ";".join(cells), "bad_amount"
        cells[1] = "31/02/" + cells[1][6:]
        return ";".join(cells), "bad_date"

    def deliver_csv(self, d: date, name: str, kind: str, rows: list, recs: list) -> None:
        from schemas.treasury.csv_files import write_caisse_csv, write_payfip_csv

        data = (write_payfip_csv if kind == "payfip" else write_caisse_csv)(rows)
        lines = data.decode("utf-8").split("\n")
        bad = {}
        p = self.p("treasury_malformed_line")
        for i in range(1, len(lines) - 1):
            if self.rng.random() < p:
                lines[i], problem = self.corrupt_csv_line(lines[i], kind)
                bad[i] = problem
        if bad:
            data = "\n".join(lines).encode("utf-8")
        rel = self.deliver(d, name, kind, data, bank_file=False)
        for i, rec in enumerate(recs):
            line = i + 2
            src = {"file": rel, "line": line}
            rec["source"] = src
            if (i + 1) in bad:
                rec["source_malformed"] = True
                self.truth.defect("treasury_malformed_line", file=rel, line=line,
                                  problem=bad[i + 1], payment_id=rec["payment_id"])
            self.truth.event(rec)
            if rec.get("status") in ("refused", "abandoned"):
                self.truth.defect("payfip_refused_or_abandoned", payment_id=rec["payment_id"],
                                  status=rec["status"], portal_id=rec.get("portal_id"),
                                  idop=rec.get("idop"), invoice_number=rec["invoice_number"],
                                  amount_cents=rec["amount_cents"], **src)
            else:
                self.payment_defects(rec, src)

    def write_caisse(self, d: date) -> None:
        items = self.st.caisse_day.pop(d, [])
        if not items:
            return
        items.sort(key=lambda t: t[0])
        self.deliver_csv(d, f"CAISSE_{d:%Y%m%d}.csv", "caisse", [it[1] for it in items],
                         [it[2] for it in items])

    # ------------------------------------------------------------------ statements
    def write_statements(self, d: date) -> None:
        from schemas.treasury.model import BankOperation, Statement

        st = self.st
        rng = self.rng
        for key, bank in st.banks.items():
            x = next_business_day(bank["last"])
            while x < d:
                ops = bank["ops"].pop(x, [])
                if key == MAIN and x.weekday() == 4 or key == SECOND and \
                        next_business_day(x).month != x.month:
                    bal = bank["balance"] + sum(o["amount"] for o in ops)
                    if bal > SWEEP_FLOAT:
                        entry = f"{bank['entry']:07d}"
                        bank["entry"] += 1
                        ops.append({"booked": x, "value": x, "amount": -(bal - SWEEP_FLOAT),
                                    "label": "VIR AU COMPTABLE PUBLIC", "kind": "sweep",
                                    "payments": [], "details": [("LIB", "DGFIP SGC NANTES")],
                                    "interbank": "06", "reference": "", "entry": entry,
                                    "reject_code": ""})
                opening = bank["balance"]
                total = sum(o["amount"] for o in ops)
                closing = opening + total
                declared = None
                if rng.random() < self.p("statement_unbalanced"):
                    declared = closing + rng.choice([-1, 1]) * rng.choice(
                        [rng.randint(1, 99), rng.randint(100, 50000), ops[0]["amount"]
                         if ops else 1234])
                    if declared == closing:
                        declared += 100
                stmt = Statement(
                    account=bank["account"], bank_code=bank["bank"], branch_code=bank["branch"],
                    opening_on=bank["last"], opening_balance_cents=opening, closing_on=x,
                    operations=[BankOperation(
                        booked_on=o["booked"], value_on=o["value"], amount_cents=o["amount"],
                        label=o["label"], interbank_code=o["interbank"], reference=o["reference"],
                        entry_number=o["entry"], reject_code=o["reject_code"],
                        details=o["details"]) for o in ops],
                    closing_balance_cents=declared)
                bank["held"].append((stmt, ops, closing, declared))
                bank["balance"] = closing
                bank["last"] = x
                if not (rng.random() < 0.03 and len(bank["held"]) == 1):
                    self.flush_statements(key, x)
                x = next_business_day(x)

    def flush_statements(self, key: str, x: date) -> None:
        from schemas.treasury.camt053 import write_camt053
        from schemas.treasury.cfonb import write_cfonb

        st = self.st
        rng = self.rng
        bank = st.banks[key]
        held = bank["held"]
        bank["held"] = []
        stmts = [h[0] for h in held]
        if bank["format"] == "cfonb":
            ending = rng.choices(["\r\n", "\n", ""], [85, 12, 3])[0]
            data = write_cfonb(stmts, line_ending=ending)
            name = f"RELEVE_{bank['account']}_{x:%Y%m%d}.cfonb"
        else:
            created = datetime.combine(x + timedelta(days=1), time(5, 40)).replace(tzinfo=PARIS)
            data = write_camt053(stmts, f"CAMT053-{bank['account']}-{x:%Y%m%d}", created)
            name = f"RELEVE_{bank['account']}_{x:%Y%m%d}.xml"
        bad = {}
        if bank["format"] == "cfonb" and all(h[3] is None for h in held):
            # (an unbalanced statement keeps all its lines readable: classes stay separable)
            data, bad = self.corrupt_cfonb(data, ending)
        rel = self.deliver(x, name, bank["format"], data, bank_file=True)
        text = data.decode("latin-1") if bank["format"] == "cfonb" else data.decode("utf-8")
        line = 0
        for stmt, ops, closing, declared in held:
            line += 1
            st_line = line
            oprecs = []
            for i, o in enumerate(ops):
                line += 1
                if bank["format"] == "cfonb":
                    loc = {"line": line}
                else:
                    pos = text.find(f"<AcctSvcrRef>{o['entry']}</AcctSvcrRef>")
                    loc = {"line": text.count("\n", 0, pos) + 1, "entry_index": i + 1}
                line += len(o["details"])
                src = {"file": rel, **loc}
                rec = {"kind": "bank_operation", "account": bank["account"],
                       "format": bank["format"], "booked_on": o["booked"].isoformat(),
                       "entry_number": o["entry"], "amount_cents": o["amount"],
                       "label": o["label"], "op_kind": o["kind"], "settles": o["payments"],
                       "statement_date": stmt.closing_on.isoformat(), **src}
                if loc["line"] in bad:
                    rec["source_malformed"] = True
                    self.truth.defect("treasury_malformed_line", file=rel, line=loc["line"],
                                      problem=bad[loc["line"]], entry_number=o["entry"],
                                      payment_id=(o["payments"] or [None])[0])
                oprecs.append(rec)
                if "record" in o:
                    prec = o["record"]
                    prec["source"] = src
                    self.truth.event(prec)
                    self.payment_defects(prec, src)
            line += 1
            srec = {"kind": "statement", "file": rel, "line": st_line, "account": bank["account"],
                    "format": bank["format"], "opening_on": stmt.opening_on.isoformat(),
                    "closing_on": stmt.closing_on.isoformat(),
                    "opening_balance_cents": stmt.opening_balance_cents,
                    "closing_balance_cents": declared if declared is not None else closing,
                    "expected_closing_cents": closing, "operations": len(ops),
                    "balanced": declared is None}
            self.truth.event(srec)
            for rec in oprecs:
                self.truth.event(rec)
            if declared is not None:
                self.truth.defect("statement_unbalanced", file=rel, line=st_line,
                                  account=bank["account"], closing_on=stmt.closing_on.isoformat(),
                                  declared_closing_cents=declared, expected_closing_cents=closing)

    def corrupt_cfonb(self, data: bytes, ending: str) -> tuple[bytes, dict]:
        rng = self.rng
        p = self.p("treasury_malformed_line")
        if p <= 0:
            return data, {}
        text = data.decode("latin-1")
        if ending:
            recs = text.split(ending)[:-1]
        else:
            recs = [text[i:i + 120] for i in range(0, len(text), 120)]
        bad = {}
        for i, rec in enumerate(recs):
            if rec.startswith("04") and rng.random() < p:
                if rng.random() < 0.5:
                    recs[i] = rec[:103] + "X" + rec[104:]
                    bad[i + 1] = "bad_amount"
                else:
                    recs[i] = rec[:34] + "320199" + rec[40:]
                    bad[i + 1] = "bad_date"
        if not bad:
            return data, {}
        out = "".join(r + ending for r in recs)
        return out.encode("latin-1"), bad

