"""Everything else the town does day by day: online procedures (requests and their state
changes), enrolments, supporting documents (portal uploads, desk copies, renewals, purges),
edits of legacy records (moves, new phone numbers, family quotients), associations
(subsidies, room bookings), daily portal logins, and the malformed legacy rows."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from types import MappingProxyType

from .identifiers import email_for, format_phone, mobile
from .names import (
    EQUIPMENT,
    PROCEDURES,
    ROOMS,
    STREETS,
    SUBSIDY_PURPOSES,
    SURNAMES,
)
from .timeline import (
    ONE_DAY,
    day_kind,
    is_business_day,
    legacy_ts,
    school_year_of,
    ymd,
)
from .world import FAMILY_DOCS, Enrolment, Piece

CITIZEN_PROCS = [(p, v[1]) for p, v in PROCEDURES.items() if v[1] > 0]
DOC_VIA_PORTAL_P = 0.55
REVIEW_REJECT_P = 0.06


class AdminMixin:
    # ------------------------------------------------------------------ requests
    def new_request_record(self, proc: str, sub: datetime, service: str, fields: dict,
                           account_id=None, association_id=None) -> dict:
        st = self.st
        rid = f"dem-{st.next_id('request'):06d}"
        number = f"GNK-{sub.year}-{st.next_id('request_number'):06d}"
        stamp = self.iso(sub)
        return {"id": rid, "updated_at": stamp, "number": number, "procedure": proc,
                "account_id": account_id, "association_id": association_id,
                "state": "en_construction", "submitted_at": stamp,
                "instruction_started_at": None, "decided_at": None, "service": service,
                "fields": fields}

    def request_timeline(self, rec: dict, sub: datetime, outcome: str, sla: int,
                         enrol_payload: dict | None = None) -> None:
        """Push the state changes of a request. ``outcome`` is accepte / refuse / sans_suite."""
        st = self.st
        rng = self.rng
        st.push(sub, "req_new", rec)
        stuck = rng.random() < self.p("request_stuck")
        instr = self.human_between(sub + timedelta(hours=2),
                                   sub + timedelta(days=max(1, min(6, sla // 4))), desk=True)
        if instr is None:
            instr = self.next_desk_time(sub + timedelta(hours=2))
        if stuck and rng.random() < 0.4:
            return  # never even opened
        st.push(instr, "req_state", (rec["id"], "en_instruction", None))
        if stuck:
            return
        latest = sub + timedelta(days=max(2, sla - 3))
        dec = self.human_between(instr + timedelta(hours=4), latest, desk=True)
        if dec is None:
            dec = self.next_desk_time(instr + timedelta(hours=4))
        if enrol_payload is not None and outcome == "accepte" and \
                rng.random() >= self.p("accepted_enrolment_without_inscription"):
            enrol_payload["ref"] = rec["number"]
            st.push(dec - timedelta(minutes=rng.randint(3, 50)), "enr_create", enrol_payload)
        st.push(dec, "req_state", (rec["id"], outcome, None))

    def ev_req_new(self, ts: datetime, rec: dict) -> None:
        self.portal_new("requests", rec)
        self.st.req_submitted[rec["id"]] = ts

    def ev_req_state(self, ts: datetime, payload) -> None:
        rid, state, extra = payload
        st = self.st
        rec = st.portal["requests"][rid]
        changes = {"state": state}
        stamp = self.iso(ts)
        if state == "en_instruction":
            changes["instruction_started_at"] = stamp
        else:
            changes["decided_at"] = stamp
            if rec["procedure"] == "SUBVENTION_ASSOCIATION":
                req = rec["fields"]["amount_requested_cents"]
                granted = 0 if state != "accepte" else \
                    (int(req * self.rng.uniform(0.4, 1.0)) // 1000) * 1000
                fields = dict(rec["fields"], amount_granted_cents=granted)
                changes["fields"] = fields
        if extra:
            changes.update(extra)
        self.portal_touch("requests", rid, ts, **changes)

    def schedule_request(self, proc: str, acc: str, sub: datetime, svc: str,
                         payload: dict) -> None:
        st = self.st
        rng = self.rng
        ind = payload["ind"]
        child = st.persons[ind]
        true_child = child.dup_of or ind
        act = st.activities[payload["act"]]
        pperson = st.pperson_of.get((acc, true_child))
        year = payload["year"]
        fields = {"child_person_id": pperson, "child_first_name": child.first,
                  "child_last_name": child.last, "birth_date": child.birth.isoformat(),
                  "activity_code": act.code, "school_year": f"{year}-{year + 1}"}
        service = "SCOL" if svc == "SCOL" else act.service
        rec = self.new_request_record(proc, sub, service, fields, account_id=acc)
        if payload["etat"] == "R":
            outcome = "refuse"
        else:
            outcome = "accepte" if rng.random() < 0.97 else "sans_suite"
        self.request_timeline(rec, sub, outcome, PROCEDURES[proc][2], payload)

    def ev_plan_year(self, ts: datetime, year: int) -> None:
        self.plan_year(year)
        self.st.push(datetime(year + 1, 3, 15, 7, 30), "plan_year", year + 1)

    # ------------------------------------------------------------------ enrolments
    def ev_enr_create(self, ts: datetime, pl: dict) -> None:
        st = self.st
        rng = self.rng
        act = st.activities[pl["act"]]
        svc = act.service
        fam = st.families[pl["fam"]]
        e = Enrolment()
        e.id = st.next_id("inscription")
        e.fam, e.ind, e.act = fam.id, pl["ind"], act.id
        e.debut, e.fin = pl["debut"], pl["fin"]
        e.etat = pl["etat"]
        ref = pl.get("ref")
        e.ref = ref if ref else ("" if rng.random() < 0.4 else None)
        e.debut_s = ymd(e.debut)
        if svc in ("ALSH", "MULTI") and rng.random() < 0.05:
            e.fin_s = "" if rng.random() < 0.6 else None
            e.fin = None
        else:
            e.fin_s = ymd(e.fin)
        e.maj = legacy_ts(ts)
        e.pub = False
        e.service = svc
        e.year = pl["year"]
        e.parity = pl.get("parity")
        e.hours = None
        e.days = ()
        e.p = 0.0
        e.auto_ts = None
        e.auto_maj = None
        acc = self.usable_account(fam.id) if fam.dup_of is None else None
        true_child = st.persons[e.ind].dup_of or e.ind
        e.pperson = st.pperson_of.get((acc, true_child)) if acc else None
        e.acct = acc if e.pperson else None
        r = rng.random()
        if svc in ("RESTO", "PERI"):
            if r < 0.62 or (not e.acct and r < 0.97):
                e.mode = "AUTO"
                e.days = (0, 1, 3, 4) if rng.random() < 0.7 else \
                    tuple(sorted(rng.sample([0, 1, 3, 4], rng.randint(2, 3))))
            elif r < 0.97:
                e.mode = "PORTAIL"
                e.days = tuple(sorted(rng.sample([0, 1, 3, 4], rng.randint(2, 4))))
                e.p = rng.uniform(0.55, 0.95)
            else:
                e.mode = "GUICHET"
                e.days = (0, 1, 3, 4)
                e.p = rng.uniform(0.3, 0.7)
        elif svc == "ALSH":
            if r < 0.1:
                e.mode = "AUTO"
                e.days = (2,)
            elif r < 0.95 and e.acct:
                e.mode = "PORTAIL"
                e.p = rng.uniform(0.25, 0.8)
            else:
                e.mode = "GUICHET"
                e.p = rng.uniform(0.2, 0.6)
        elif svc == "MULTI":
            e.mode = "AUTO"
            e.days = tuple(sorted(rng.sample(range(5), rng.randint(3, 5))))
            e.hours = rng.randint(6, 10)
        elif svc == "EMM":
            e.mode = "AUTO"
            e.days = (2,) if rng.random() < 0.55 else (rng.choice([0, 1, 3, 4]),)
        else:
            e.mode = None
        st.enrolments[e.id] = e
        st.enr_by_act[act.id].append(e.id)
        st.enr_by_child.setdefault(e.ind, []).append(e.id)
        st.enr_by_fam.setdefault(e.fam, []).append(e.id)
        st.mark("INSCRIPTION", e.id)
        if e.etat != "V" or e.mode is None:
            self.ensure_docs(e, ts)
            return
        self.ensure_docs(e, ts)
        if e.mode == "AUTO":
            if svc == "MULTI":
                rentree = datetime.combine(e.debut - timedelta(days=12), time(8, 0))
            else:
                rentree = datetime(e.year, 8, 25, 8, 0)
            e.auto_ts = max(ts + timedelta(minutes=1), rentree)
            e.auto_maj = legacy_ts(e.auto_ts)
            st.push(e.auto_ts, "enr_start", e.id)
        else:
            st.push(ts + timedelta(minutes=2), "enr_start", e.id)

    # ------------------------------------------------------------------ documents
    def doc_validity(self, typ: str, ind, need_from: date, issue: date, expired: bool):
        """(valid_from, valid_until or None) of a document of this type."""
        st = self.st
        if typ == "ASSURANCE":
            y = school_year_of(need_from) - (1 if expired else 0)
            return date(y, 9, 1), date(y + 1, 8, 31)
        if typ == "VACCINS":
            birth = st.persons[ind].birth
            return birth + timedelta(days=400), None
        if typ == "ATTEST_CAF":
            y = need_from.year - (1 if expired else 0)
            return date(y, 1, 1), date(y, 12, 31)
        start = issue - timedelta(days=400) if expired else issue
        return start, start + timedelta(days=365)

    def ensure_docs(self, e, ts: datetime) -> None:
        st = self.st
        act = st.activities[e.act]
        if e.etat != "V" or not act.pieces:
            return
        # open-ended enrolments keep needing their documents (renewed every year)
        need_until = e.fin or (e.debut + timedelta(days=3 * 365))
        for typ in act.pieces.split(";"):
            if typ in FAMILY_DOCS:
                key, fam, ind = ("F", e.fam), e.fam, None
            else:
                true_child = st.persons[e.ind].dup_of or e.ind
                key, fam, ind = ("C", true_child), e.fam, e.ind
            self.need_doc(key, typ, fam, ind, e.debut, need_until, ts)

    def covering(self, key, typ, day: date):
        """The decided document (or decided absence) covering ``day``: handed in by then and
        valid that day; the one valid the longest. None when nothing covers it."""
        best = None
        for hand_in, vf, vu, skip in self.st.doc_cover.get((key, typ), ()):
            if hand_in <= day and vf <= day <= vu and (best is None or vu > best[2]):
                best = (hand_in, vf, vu, skip)
        return best

    def need_doc(self, key, typ, fam, ind, need_from: date, need_until: date,
                 ts: datetime) -> None:
        """Make sure a document is held from ``need_from`` to ``need_until`` (handed in
        before it is needed, renewed before it expires), or inject its absence."""
        st = self.st
        rng = self.rng
        covers = st.doc_cover.setdefault((key, typ), [])
        cover = self.covering(key, typ, max(need_from, ts.date()))
        if cover is not None:
            if cover[2] < need_until:
                if cover[3]:
                    covers.append((need_from, need_from, need_until, True))
                else:
                    self.schedule_renewal(key, typ, fam, ind, cover[2], need_until)
            return
        if rng.random() < self.p("document_missing_or_expired"):
            if typ != "VACCINS" and rng.random() < 0.5:
                vf, vu = self.doc_validity(typ, ind, need_from, need_from, expired=True)
                if vu is not None and vu < need_from:
                    self.provide(key, typ, fam, ind, ts, vf, vu, allow_portal=False)
            covers.append((need_from, need_from, need_until, True))
            return
        # families hand documents in during the weeks before they are needed
        when = max(ts, datetime.combine(need_from - timedelta(days=rng.randint(14, 40)),
                                        time(rng.randint(8, 20), rng.randint(0, 59))))
        issue = min(when.date(), need_from) - timedelta(days=rng.randint(0, 40))
        vf, vu = self.doc_validity(typ, ind, need_from, issue, expired=False)
        vf = min(vf, need_from)
        covers.append((max(need_from, when.date()), vf, vu or date.max, False))
        self.provide(key, typ, fam, ind, when, vf, vu,
                     allow_portal=(need_from - when.date()).days >= 12)
        if vu is not None and vu < need_until:
            self.schedule_renewal(key, typ, fam, ind, vu, need_until)

    def schedule_renewal(self, key, typ, fam, ind, until: date, need_until: date) -> None:
        st = self.st
        k = (key, typ, until)
        if k in st.renewals:
            return
        st.renewals.add(k)
        when = datetime.combine(until - timedelta(days=self.rng.randint(14, 28)), time(9, 0))
        when = max(when, (self.clock or when) + timedelta(minutes=5))
        st.push(when, "doc_renew", (key, typ, fam, ind, until, need_until))

    def ev_doc_renew(self, ts: datetime, payload) -> None:
        key, typ, fam, ind, until, need_until = payload
        nxt = until + ONE_DAY
        if self.covering(key, typ, nxt) is not None:
            return  # renewed meanwhile
        if self.rng.random() < self.p("document_missing_or_expired"):
            # never renewed: the document expires
            self.st.doc_cover.setdefault((key, typ), []).append((nxt, nxt, need_until, True))
            return
        self.need_doc(key, typ, fam, ind, nxt, need_until, ts)

    def provide(self, key, typ, fam, ind, ts: datetime, vf: date, vu, allow_portal: bool):
        st = self.st
        rng = self.rng
        acc = self.usable_account(fam) if st.families[fam].dup_of is None else None
        pperson = None
        if acc and ind is not None:
            pperson = st.pperson_of.get((acc, st.persons[ind].dup_of or ind))
        if allow_portal and acc and (ind is None or pperson) and rng.random() < DOC_VIA_PORTAL_P:
            t = self.human_between(ts, ts + timedelta(days=3)) or ts
            st.push(t, "doc_upload", (acc, pperson, fam, ind, typ, vf, vu))
        else:
            t = self.human_between(ts, ts + timedelta(days=4), desk=True) or ts
            st.push(t, "piece_new", (fam, ind, typ, vf, vu, None))

    def ev_doc_upload(self, ts: datetime, payload) -> None:
        st = self.st
        acc, pperson, _fam, _ind, typ, vf, vu = payload
        did = f"doc-{st.next_id('document'):06d}"
        stamp = self.iso(ts)
        self.portal_new("documents", {
            "id": did, "updated_at": stamp, "account_id": acc, "person_id": pperson,
            "type": typ, "valid_from": vf.isoformat(),
            "valid_until": vu.isoformat() if vu else None, "uploaded_at": stamp,
            "review": "pending"})
        t = self.human_between(ts + timedelta(hours=3), ts + timedelta(days=4), desk=True) or \
            ts + timedelta(days=1)
        st.push(t, "doc_review", (did, payload))

    def ev_doc_review(self, ts: datetime, payload) -> None:
        st = self.st
        rng = self.rng
        did, up = payload
        acc, pperson, fam, ind, typ, vf, vu = up
        if rng.random() < REVIEW_REJECT_P:
            self.portal_touch("documents", did, ts, review="rejected")
            t = self.human_between(ts + timedelta(hours=5), ts + timedelta(days=3)) or \
                ts + timedelta(days=1)
            st.push(t, "doc_upload", up)
            return
        self.portal_touch("documents", did, ts, review="accepted")
        if rng.random() < self.p("upload_accepted_not_in_piece"):
            # the same document already in the family file (handed in at the desk too)
            # makes the missing PIECE invisible, and harmless: not a defect then
            if not any(st.pieces[i].d_from == vf for i in
                       st.pieces_by_holder.get((fam, ind, typ), []) if i in st.pieces):
                self.truth.defect("upload_accepted_not_in_piece", document_id=did,
                                  account_id=acc, person_id=pperson, family_id=fam,
                                  legacy_person_id=ind, type=typ, valid_from=vf.isoformat(),
                                  valid_until=vu.isoformat() if vu else None)
            return
        self.new_piece(ts + timedelta(minutes=rng.randint(1, 20)), fam, ind, typ, vf, vu, did)

    def ev_piece_new(self, ts: datetime, payload) -> None:
        fam, ind, typ, vf, vu, did = payload
        self.new_piece(ts, fam, ind, typ, vf, vu, did)

    def new_piece(self, ts: datetime, fam, ind, typ, vf: date, vu, portal_doc) -> None:
        st = self.st
        pc = Piece()
        pc.id = st.next_id("piece")
        pc.fam, pc.ind, pc.type = fam, ind, typ
        pc.d_from, pc.d_until = vf, vu
        pc.debut = ymd(vf)
        pc.fin = ymd(vu) if vu else ("" if self.rng.random() < 0.7 else None)
        pc.maj = legacy_ts(min(ts, self.w_end))
        pc.pub = False
        pc.portal_doc = portal_doc
        st.pieces[pc.id] = pc
        st.pieces_by_holder.setdefault((fam, ind, typ), []).append(pc.id)
        st.mark("PIECE", pc.id)

    def purge_pieces(self, d: date) -> None:
        """Monthly purge: superseded documents expired for more than 90 days are deleted
        physically (the only physical deletes of the legacy program)."""
        st = self.st
        limit = d - timedelta(days=90)
        for key, ids in st.pieces_by_holder.items():
            if len(ids) < 2:
                continue
            alive = [st.pieces[i] for i in ids if i in st.pieces]
            newest = max((p.d_until or date.max) for p in alive)
            for p in alive:
                if p.portal_doc is None and p.d_until is not None and p.d_until < limit and \
                        (p.d_until or date.max) < newest:
                    del st.pieces[p.id]
                    st.dirty["PIECE"].pop(p.id, None)
                    if p.pub:
                        st.deleted_pieces.append(p.id)
            st.pieces_by_holder[key] = [i for i in ids if i in st.pieces]

    # ------------------------------------------------------------------ the day
    def daily_admin(self, d: date) -> None:
        st = self.st
        self.logins(d - ONE_DAY)
        self.daily_requests(d)
        self.daily_edits(d)
        if (d.day == 1 or (d.day <= 3 and d.weekday() == 0)) and \
                st.purged_month != (d.year, d.month):
            st.purged_month = (d.year, d.month)
            self.purge_pieces(d)

    def logins(self, day: date) -> None:
        st = self.st
        rng = self.rng
        if day < st.sim_start - ONE_DAY:
            return
        wk = [1.3, 1.0, 1.1, 1.0, 0.9, 0.6, 1.4][day.weekday()]
        kind = day_kind(day)
        season = 0.5 if kind == "summer" else (0.8 if kind == "holiday" else 1.0)
        n = st.households
        stamp_ts = datetime.combine(day + ONE_DAY, time(0, 10)) + \
            timedelta(seconds=rng.randint(0, 600))
        for space, base in (("citoyens", n * 0.05), ("famille", n * 0.155),
                            ("associations", len(st.assoc_ids) * 0.15)):
            f = wk * (season if space == "famille" else 1.0) * rng.uniform(0.85, 1.15)
            if space != "famille" and day.weekday() >= 5:
                f *= 0.5
            self.portal_append("logins", {"updated_at": self.iso(stamp_ts),
                                          "day": day.isoformat(), "space": space,
                                          "count": round(base * f)})

    def daily_requests(self, d: date) -> None:
        """Citizen procedures, associations' subsidies and room bookings, and mid-year
        leisure-centre enrolments submitted on day d."""
        st = self.st
        rng = self.rng
        n_hh = st.households
        wk = 0.45 if d.weekday() >= 5 else 1.0
        lo = datetime.combine(d, time(0, 0))
        hi = datetime.combine(d, time(23, 59))
        fam_accounts = st.family_accounts
        if fam_accounts is None:
            fam_accounts = st.family_accounts = [
                a for a, t in st.account_truth.items() if t["family_id"] is not None]
        # citizen procedures
        mean = n_hh * 0.75 / 365 * wk
        for _ in range(_poisson(rng, mean)):
            proc = rng.choices([p for p, _ in CITIZEN_PROCS], [w for _, w in CITIZEN_PROCS])[0]
            pool = st.citizen_accounts if (st.citizen_accounts and rng.random() < 0.55) \
                else fam_accounts
            if not pool:
                continue
            acc = rng.choice(pool)
            if st.portal["accounts"].get(acc, {}).get("status") != "active":
                continue
            sub = self.human_between(lo, hi)
            if sub is None:
                continue
            rec = self.new_request_record(proc, sub, PROCEDURES[proc][0],
                                          self.citizen_fields(proc, acc, sub), account_id=acc)
            outcome = rng.choices(["accepte", "refuse", "sans_suite"], [90, 5, 5])[0]
            self.request_timeline(rec, sub, outcome, PROCEDURES[proc][2])
        # associations: subsidy campaign, room bookings
        if st.assoc_ids:
            if (d.month == 1 and d.day >= 5) or d.month == 2 or (d.month == 3 and d.day <= 20):
                for aid in st.assoc_ids:
                    if rng.random() < 0.6 / 75:
                        sub = self.human_between(lo, hi)
                        if sub is None:
                            continue
                        req = rng.randint(3, 150) * 10000
                        rec = self.new_request_record(
                            "SUBVENTION_ASSOCIATION", sub, "VIE_ASSOCIATIVE",
                            {"amount_requested_cents": req, "amount_granted_cents": None,
                             "purpose": rng.choice(SUBSIDY_PURPOSES)}, association_id=aid)
                        outcome = rng.choices(["accepte", "refuse", "sans_suite"], [80, 15, 5])[0]
                        self.request_timeline(rec, sub, outcome, PROCEDURES[rec["procedure"]][2])
            for _ in range(_poisson(rng, len(st.assoc_ids) * 10 / 365 * wk)):
                self.room_booking(rng.choice(st.assoc_ids), d)
        # leisure centre enrolments during the year (holidays ahead)
        if d >= st.sim_start:
            for _ in range(_poisson(rng, n_hh * 0.1 / 365)):
                self.midyear_alsh(d)

    def citizen_fields(self, proc: str, acc: str, sub: datetime) -> dict:
        rng = self.rng
        rec = self.st.portal["accounts"][acc]
        if proc.startswith("ACTE_"):
            return {"nom": rec["last_name"], "prenom": rec["first_name"],
                    "date_acte": (sub.date() - timedelta(days=rng.randint(300, 20000))).isoformat(),
                    "type_copie": rng.choice(["copie intégrale", "extrait avec filiation",
                                              "extrait sans filiation"]),
                    "nombre_exemplaires": rng.randint(1, 3)}
        if proc == "SIGNALEMENT_VOIRIE":
            street, _ = rng.choice(STREETS)
            return {"adresse": f"{rng.randint(1, 150)} {street}",
                    "categorie": rng.choice(["nid de poule", "éclairage", "dépôt sauvage",
                                             "signalisation", "végétation"])}
        return {"motif": rng.choice(["première inscription", "changement d'adresse",
                                     "jeune de 16 ans"])}

    def room_booking(self, aid: str, d: date) -> None:
        st = self.st
        rng = self.rng
        sub = self.human_between(datetime.combine(d, time(0, 0)), datetime.combine(d, time(23, 59)))
        if sub is None:
            return
        day = d + timedelta(days=rng.randint(7, 75))
        start = datetime.combine(day, time(rng.choice([9, 10, 14, 18, 19, 20]), 0))
        end = start + timedelta(hours=rng.choice([2, 3, 4, 6]))
        rbid = f"rb-{st.next_id('room_booking'):06d}"
        room = rng.choice(ROOMS)
        st.push(sub, "room_new", {
            "id": rbid, "updated_at": None, "association_id": aid, "room_code": room,
            "starts_at": None, "ends_at": None, "status": "requested",
            "equipment": sorted(rng.sample(EQUIPMENT, rng.randint(0, 3))),
            "_start": start, "_end": end})
        rec = self.new_request_record("RESERVATION_SALLE", sub, "VIE_ASSOCIATIVE",
                                      {"room_code": room, "starts_at": None, "ends_at": None,
                                       "room_booking_id": rbid}, association_id=aid)
        rec["fields"]["starts_at"] = self.iso(start)
        rec["fields"]["ends_at"] = self.iso(end)
        outcome = "accepte" if rng.random() < 0.9 else "refuse"
        self.request_timeline(rec, sub, outcome, PROCEDURES["RESERVATION_SALLE"][2])
        dec = self.human_between(sub + timedelta(days=2), sub + timedelta(days=10), desk=True)
        if dec is not None:
            st.push(dec, "room_state", (rbid, "confirmed" if outcome == "accepte" else "cancelled"))

    def ev_room_new(self, ts: datetime, rec: dict) -> None:
        rec = dict(rec)
        start, end = rec.pop("_start"), rec.pop("_end")
        rec["updated_at"] = self.iso(ts)
        rec["starts_at"] = self.iso(start)
        rec["ends_at"] = self.iso(end)
        self.portal_new("room_bookings", rec)

    def ev_room_state(self, ts: datetime, payload) -> None:
        rbid, status = payload
        if rbid in self.st.portal["room_bookings"]:
            self.portal_touch("room_bookings", rbid, ts, status=status)

    def midyear_alsh(self, d: date) -> None:
        """A family enrols a child in the leisure centre during the year."""
        st = self.st
        rng = self.rng
        hh = st.hh[rng.randint(1, len(st.hh))]
        kids = [st.persons[c] for c in hh["children"]]
        start = d + timedelta(days=rng.randint(10, 25))
        year = school_year_of(start)
        if date(year + 1, 8, 31) - start < timedelta(days=21):
            return
        fams = [f for f in hh["fams"] if st.families[f].dup_of is None]
        for k in kids:
            age = year - k.birth.year
            if not 3 <= age <= 11:
                continue
            code = "ALSH-MATERNEL" if age <= 5 else "ALSH-ELEMENTAIRE"
            act_id = st.act_by_code[code]
            # one leisure-centre enrolment per child and school year (either age group)
            if any(st.activities[st.enrolments[e].act].service == "ALSH" and
                   st.enrolments[e].year == year for e in st.enr_by_child.get(k.id, ())):
                continue
            fam_id = rng.choice(fams)
            acc = self.any_account(fam_id)
            payload = {"year": year, "fam": fam_id, "ind": k.id, "act": act_id, "debut": start,
                       "fin": date(year + 1, 8, 31), "etat": "V", "parity": None}
            sub = self.human_between(datetime.combine(d, time(7, 0)),
                                     datetime.combine(d, time(23, 0)))
            if acc and sub and rng.random() < 0.8:
                self.schedule_request("INSCRIPTION_ALSH", acc, sub, "ALSH", payload)
            else:
                t = self.human_between(datetime.combine(d, time(0, 0)), datetime.combine(
                    d + timedelta(days=3), time(18, 0)), desk=True)
                if t:
                    payload["ref"] = None
                    st.push(t, "enr_create", payload)
            return

    # ------------------------------------------------------------------ edits
    def daily_edits(self, d: date) -> None:
        st = self.st
        rng = self.rng
        if not is_business_day(d) or d < st.sim_start:
            return
        fams = st.fam_ids
        n = len(fams)
        lo = datetime.combine(d, time(8, 30))
        hi = datetime.combine(d, time(17, 30))
        for _ in range(_poisson(rng, n * 0.08 / 250)):
            self.move_family(st.families[rng.choice(fams)], self.between(lo, hi))
        for _ in range(_poisson(rng, n * 0.12 / 250)):
            self.new_phone(st.families[rng.choice(fams)], self.between(lo, hi))
        for _ in range(_poisson(rng, n * 0.02 / 250)):
            self.new_titular(st.families[rng.choice(fams)], self.between(lo, hi))
        if d.month == 1 and d.day <= 28:
            for _ in range(_poisson(rng, n * 0.35 / 19)):
                fam = st.families[rng.choice(fams)]
                if fam.num_alloc:
                    base = fam.qf or 900
                    fam.qf = max(150, int(base * rng.uniform(0.8, 1.2)))
                    fam.maj = legacy_ts(self.between(lo, hi))
                    st.mark("FAMILLE", fam.id)

    def move_family(self, fam, ts: datetime) -> None:
        st = self.st
        rng = self.rng
        if fam.outside:
            return
        street, sector = rng.choice(STREETS)
        line = f"{rng.randint(1, 180)} {street}"
        fam.moved_from = dict(fam.true_addr)
        fam.true_addr = {"line": line, "postcode": fam.true_addr["postcode"],
                         "city": fam.true_addr["city"]}
        fam.sector = sector
        if rng.random() < 0.85:
            fam.adresse = self.r_address(line)
            fam.maj = legacy_ts(ts)
            st.mark("FAMILLE", fam.id)
        if rng.random() < 0.7:
            self.edit_linked_accounts(fam, ts, 20, lambda: {"address": dict(fam.true_addr)})

    def new_phone(self, fam, ts: datetime) -> None:
        st = self.st
        rng = self.rng
        p = st.persons[fam.titulaire]
        p.phone_digits = mobile(rng)
        if rng.random() < 0.8:
            p.tel = self.r_phone(p.phone_digits)
            p.maj = legacy_ts(ts)
            st.mark("INDIVIDU", p.id)
        if rng.random() < 0.6:
            fam.tel = self.r_phone(p.phone_digits)
            fam.maj = legacy_ts(ts)
            st.mark("FAMILLE", fam.id)
        if rng.random() < 0.3:
            p.email_true = email_for(rng, p.first, p.last, p.birth.year)
            fam.email = self.r_email(p.email_true)
            fam.maj = legacy_ts(ts)
            st.mark("FAMILLE", fam.id)
        if rng.random() < 0.7:
            self.edit_linked_accounts(fam, ts, 10, lambda: {"phone": format_phone(
                p.phone_digits, rng.choice([0, 1, 4]))})

    def edit_linked_accounts(self, fam, ts: datetime, within_days: int, change) -> None:
        """The family also updates its active linked portal accounts, within some days;
        ``change()`` gives each account's new values."""
        st, rng = self.st, self.rng
        for acc in fam.accounts:
            rec = st.portal["accounts"][acc]
            if rec["status"] == "active" and rec["legacy_family_code"] is not None:
                t = ts + timedelta(days=rng.randint(0, within_days), hours=rng.randint(0, 5))
                st.push(t, "account_edit", (acc, change()))

    def new_titular(self, fam, ts: datetime) -> None:
        """The other responsible adult becomes the payer (RATTACHEMENT.TITULAIRE)."""
        st = self.st
        adults = [i for i in fam.members if st.ratt[(fam.id, i)].cat == "R" and i != fam.titulaire]
        if not adults:
            return
        new = adults[0]
        old = st.ratt[(fam.id, fam.titulaire)]
        old.tit = "N"
        old.maj = legacy_ts(ts)
        st.mark("RATTACHEMENT", (fam.id, fam.titulaire))
        r = st.ratt[(fam.id, new)]
        r.tit = "O"
        r.maj = legacy_ts(ts)
        st.mark("RATTACHEMENT", (fam.id, new))
        fam.titulaire = new

    def ev_account_edit(self, ts: datetime, payload) -> None:
        acc, changes = payload
        self.portal_touch("accounts", acc, ts, **changes)

    # ------------------------------------------------------------------ source defects
    MALFORMED_TABLES = MappingProxyType({
        "FAMILLE": "famille", "INDIVIDU": "individu", "INSCRIPTION": "inscription",
        "RESERVATION": "reservation", "POINTAGE": "pointage", "FACTURE": "facture",
        "PIECE": "piece"})

    def malformed_legacy_rows(self, new_rows: dict, t_lo: datetime, t_hi: datetime) -> None:
        """Extra legacy rows with an impossible date or an unknown code (for the
        quarantine), in proportion to the rows created (``new_rows``: table -> count)."""
        st = self.st
        rng = self.rng
        lg = self.legacy
        p = self.p("legacy_malformed_row")
        if p <= 0 or not st.enrolments:
            return
        enr_ids = list(st.enrolments)
        fam_ids = st.fam_ids or list(st.families)
        bad_dates = ["20251345", "20260231", "2O250912", "20251300", "20250931", "99999999"]
        for table in self.MALFORMED_TABLES:
            k = _binomial(rng, new_rows.get(table, 0), p)
            for _ in range(k):
                maj = legacy_ts(self.between(t_lo, t_hi))
                bad = rng.choice(bad_dates)
                if table == "FAMILLE":
                    fid = st.next_id("famille")
                    last = rng.choice(SURNAMES).upper()
                    row = (fid, f"F{fid:08d}", last, "", "44230", "SAINT-SEBASTIEN-SUR-LOIRE",
                           None, None, None, None, "N", None, None, bad, maj)
                    key, col, val = fid, "DATE_CREATION", bad
                elif table == "INDIVIDU":
                    iid = st.next_id("individu")
                    row = (iid, rng.choice(SURNAMES).upper(), None, "Test", bad, "", None, None,
                           maj)
                    key, col, val = iid, "DATE_NAISS", bad
                elif table == "INSCRIPTION":
                    e = st.enrolments[rng.choice(enr_ids)]
                    eid = st.next_id("inscription")
                    val = rng.choice(["X", "Z", "?", "E"])
                    row = (eid, e.fam, e.ind, e.act, e.debut_s, e.fin_s, val, None, maj)
                    key, col = eid, "ETAT"
                elif table == "RESERVATION":
                    e = st.enrolments[rng.choice(enr_ids)]
                    rid = st.next_id("reservation")
                    if rng.random() < 0.5:
                        row = (rid, e.id, bad, "RESA", "GUICHET", None, None, maj)
                        key, col, val = rid, "DATE_JOUR", bad
                    else:
                        val = rng.choice(["RESV", "ANUL", "X"])
                        row = (rid, e.id, "20250230", val, "GUICHET", None, None, maj)
                        key, col = rid, "ETAT"
                elif table == "POINTAGE":
                    e = st.enrolments[rng.choice(enr_ids)]
                    pid = st.next_id("pointage")
                    val = rng.choice(["PR", "ABS", "X", "A"])
                    row = (pid, e.id, bad, val, maj)
                    key, col = pid, "STATUT"
                elif table == "FACTURE":
                    fid = rng.choice(fam_ids)
                    inv_id = st.next_id("facture")
                    num = f"202513{st.next_id('num_facture'):07d}"
                    row = (inv_id, num, fid, "202513", bad, bad, rng.randint(100, 9000), "X", maj)
                    key, col, val = inv_id, "PERIODE", "202513"
                else:
                    fid = rng.choice(fam_ids)
                    pid = st.next_id("piece")
                    row = (pid, fid, None, "JUSTIF_DOMICILE", "20250901", "20261399", maj)
                    key, col, val = pid, "DATE_FIN", "20261399"
                lg.insert(table, row)
                self.truth.defect("legacy_malformed_row", table=table, key=key, column=col,
                                  value=val, date_maj=maj)


def _poisson(rng, mean: float) -> int:
    if mean <= 0:
        return 0
    import math

    if mean > 40:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    k = 0
    p = rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _binomial(rng, n: int, p: float) -> int:
    if n <= 0 or p <= 0:
        return 0
    mean = n * p
    if mean > 30:
        import math

        return max(0, round(rng.gauss(mean, math.sqrt(mean * (1 - p)))))
    return _poisson(rng, mean)

