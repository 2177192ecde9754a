"""Creating the town: activities, households (families, persons, attachments), portal
accounts and persons, associations, legacy duplicate families, and each school year's plan
of enrolments (online requests or front-desk entries)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from .identifiers import email_for, format_phone, mobile, random_iban, rna, siret
from .names import (
    ASSOCIATION_PATTERNS,
    ASSOCIATION_PLACES,
    ASSOCIATION_SONGS,
    ENROLMENT_PROCEDURES,
    FEMALE_ADULT,
    FEMALE_CHILD,
    FEMALE_CHILD_COMPOUND,
    FEMALE_COMPOUND,
    FEMALE_SENIOR,
    MALE_ADULT,
    MALE_CHILD,
    MALE_CHILD_COMPOUND,
    MALE_COMPOUND,
    MALE_SENIOR,
    NEARBY_TOWNS,
    SCHOOLS,
    STREETS,
    STREETS_ELSEWHERE,
    mojibake,
    strip_accents,
    surname,
)
from .timeline import ONE_DAY, legacy_ts, ymd
from .world import (
    INITIAL_COUNTERS,
    Activity,
    Family,
    Person,
    Ratt,
)

TOWN_CITY = "Saint-Sébastien-sur-Loire"
TOWN_CP = "44230"
CITY_VARIANTS = [("SAINT-SEBASTIEN-SUR-LOIRE", 45), ("Saint-Sébastien-sur-Loire", 30),
                 ("ST SEBASTIEN SUR LOIRE", 15), ("St-Sébastien-sur-Loire", 6),
                 ("SAINT SEBASTIEN/LOIRE", 4)]
DESK_MODES = (["CHEQUE", "ESPECES", "CB", "CESU"], [45, 25, 22, 8])


def _has_accent(s: str) -> bool:
    return strip_accents(s) != s


class PopulateMixin:
    # ------------------------------------------------------------------ rendering quirks
    def r_nom(self, s: str) -> str:
        rng = self.rng
        base = s.upper() if rng.random() < 0.85 else s
        a = rng.random()
        if a < 0.10:
            base = strip_accents(base)
        elif a < 0.125 and _has_accent(base):
            base = mojibake(base)
        if rng.random() < 0.15:
            base += " " * rng.randint(1, 4)
        return base

    def r_prenom(self, s: str) -> str:
        rng = self.rng
        r = rng.random()
        base = s if r < 0.8 else (s.upper() if r < 0.94 else s.lower())
        a = rng.random()
        if a < 0.10:
            base = strip_accents(base)
        elif a < 0.125 and _has_accent(base):
            base = mojibake(base)
        if rng.random() < 0.10:
            base += " " * rng.randint(1, 3)
        return base

    def r_empty(self):
        return "" if self.rng.random() < 0.55 else None

    def r_phone(self, digits: str | None):
        if not digits:
            return self.r_empty()
        s = format_phone(digits, self.rng.choices(range(5), [30, 40, 12, 10, 8])[0])
        if self.rng.random() < 0.05:
            s += " "
        return s

    def r_email(self, email: str | None):
        if not email:
            return self.r_empty()
        r = self.rng.random()
        if r < 0.06:
            return email.upper()
        if r < 0.10:
            return email + " "
        return email

    def r_address(self, line: str) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.4:
            s = line.upper()
            if rng.random() < 0.5:
                s = strip_accents(s)
        elif r < 0.85:
            s = line
        else:
            num, _, rest = line.partition(" ")
            s = f"{num}, {rest}"
        if rng.random() < 0.1:
            s += "  "
        return s

    def r_city(self, city: str, cp: str) -> str:
        if cp == TOWN_CP:
            names = [c for c, _ in CITY_VARIANTS]
            return self.rng.choices(names, [w for _, w in CITY_VARIANTS])[0]
        return city.upper() if self.rng.random() < 0.6 else city

    # ------------------------------------------------------------------ names
    def first_name(self, sex: str, generation: str) -> str:
        rng = self.rng
        if generation == "child":
            if rng.random() < 0.05:
                return rng.choice(FEMALE_CHILD_COMPOUND if sex == "F" else MALE_CHILD_COMPOUND)
            return rng.choice(FEMALE_CHILD if sex == "F" else MALE_CHILD)
        if generation == "senior":
            return rng.choice(FEMALE_SENIOR if sex == "F" else MALE_SENIOR)
        if rng.random() < 0.09:
            return rng.choice(FEMALE_COMPOUND if sex == "F" else MALE_COMPOUND)
        return rng.choice(FEMALE_ADULT if sex == "F" else MALE_ADULT)

    # ------------------------------------------------------------------ setup
    def init_state(self) -> None:
        st = self.st
        st.counters = dict(INITIAL_COUNTERS)
        for coll in ("accounts", "persons", "requests", "documents", "associations",
                     "room_bookings"):
            st.portal[coll] = {}
            st.portal_slots[coll] = []
            st.portal_dirty[coll] = {}
        for coll in ("bookings", "online_payments", "logins"):
            st.portal_lines[coll] = 0

    def make_activities(self) -> None:
        st = self.st
        maj_base = datetime(2025, 6, 16, 9, 0)

        def add(code, libelle, service, site, pu, delai, pieces, horizon, school=None,
                short=""):
            a = Activity()
            a.id = st.next_id("activite")
            a.code = code
            a.libelle = self.r_prenom(libelle) if self.rng.random() < 0.2 else libelle
            a.service = service
            a.site = site
            a.capacity = None
            a.pu = pu
            a.delai = delai
            a.pieces = pieces
            a.maj = legacy_ts(maj_base + timedelta(minutes=self.rng.randint(0, 60 * 24 * 40)))
            a.pub = False
            a.school = school
            a.label_short = short or libelle
            a.horizon = horizon
            st.activities[a.id] = a
            st.act_by_code[code] = a.id
            st.enr_by_act[a.id] = []
            st.mark("ACTIVITE", a.id)
            return a

        for code, name in SCHOOLS:
            add(f"SCOL-{code}", f"Scolarité école {name}", "SCOL", f"Groupe scolaire {name}",
                0, 0, "JUSTIF_DOMICILE", 0, code)
            add(f"RESTO-{code}", f"Restauration scolaire {name}", "RESTO",
                f"Restaurant scolaire {name}", 430, 48, "ASSURANCE", 14, code,
                f"RESTAURATION {strip_accents(name).upper()}")
            add(f"PERI-MATIN-{code}", f"Accueil périscolaire matin {name}", "PERI",
                f"École {name}", 190, 48, "ASSURANCE;VACCINS", 14, code,
                f"PERISCOLAIRE MATIN {strip_accents(name).upper()}")
            add(f"PERI-SOIR-{code}", f"Accueil périscolaire soir {name}", "PERI",
                f"École {name}", 290, 48, "ASSURANCE;VACCINS", 14, code,
                f"PERISCOLAIRE SOIR {strip_accents(name).upper()}")
        add("ALSH-MATERNEL", "Accueil de loisirs maternel (3-5 ans)", "ALSH",
            "Centre de loisirs de la Profondine", 1900, 72, "ASSURANCE;VACCINS", 35,
            short="ACCUEIL DE LOISIRS MATERNEL")
        add("ALSH-ELEMENTAIRE", "Accueil de loisirs élémentaire (6-11 ans)", "ALSH",
            "Centre de loisirs du Douet", 1900, 72, "ASSURANCE;VACCINS", 35,
            short="ACCUEIL DE LOISIRS ELEMENTAIRE")
        docs_multi = "VACCINS;CERTIF_MEDICAL;JUSTIF_DOMICILE;ATTEST_CAF"
        add("MULTI-LUTINS", "Multi-accueil Les Lutins", "MULTI", "Multi-accueil Les Lutins",
            320, 168, docs_multi, 21, short="MULTI-ACCUEIL LES LUTINS")
        add("MULTI-CAPUCINES", "Multi-accueil Les Capucines", "MULTI",
            "Multi-accueil Les Capucines", 320, 168, docs_multi, 21,
            short="MULTI-ACCUEIL LES CAPUCINES")
        for instr, lib in (("EVEIL", "Éveil musical"), ("PIANO", "Piano"),
                           ("GUITARE", "Guitare"), ("VIOLON", "Violon"),
                           ("BATTERIE", "Batterie")):
            add(f"EMM-{instr}", f"École de musique - {lib}", "EMM",
                "École municipale de musique", 5200, 0, "ASSURANCE", 7,
                short=f"ECOLE DE MUSIQUE {strip_accents(lib).upper()}")

    # ------------------------------------------------------------------ households
    def household_kind(self) -> str:
        return self.rng.choices(
            ["married", "couple", "single_mother", "single_father", "separated"],
            [36, 26, 17, 3, 18])[0]

    def new_household(self, kind: str, when: datetime, newcomer: bool = False) -> list[int]:
        """Create one household (two legacy families for separated parents). Returns the
        family ids. ``when`` is the moment the family became known to the town."""
        st = self.st
        rng = self.rng
        hh_id = len(st.hh) + 1
        sf = surname(rng)
        sm = surname(rng)
        while sm == sf:
            sm = surname(rng)
        # children (youngest first), born 2008 to a few months before ``when``
        k = rng.choices([1, 2, 3, 4, 5], [36, 40, 17, 6, 1])[0]
        lo = date(when.year - 15, 1, 1)
        hi = when.date() - timedelta(days=75)
        youngest = lo + timedelta(days=int((hi - lo).days * (rng.random() ** 0.75)))
        births = [youngest]
        for _ in range(k - 1):
            b = births[-1] - timedelta(days=rng.randint(500, 1800))
            if b.year < when.year - 17:
                break
            births.append(b)
        oldest = births[-1]
        if not newcomer:
            # the family became known to the town between the first child's 2nd birthday
            # and ``when``
            first = datetime.combine(oldest + timedelta(days=700), datetime.min.time())
            first = max(first, datetime(2008, 9, 1, 9, 0))
            if first < when:
                when = self.between(first, when)
        mother_birth = oldest - timedelta(days=rng.randint(23 * 365, 38 * 365))
        father_birth = mother_birth - timedelta(days=rng.randint(-2 * 365, 6 * 365))
        mfirst = self.first_name("F", "adult")
        ffirst = self.first_name("M", "adult")
        mdigits, fdigits = mobile(rng), mobile(rng)
        memail = email_for(rng, mfirst, sm, mother_birth.year) if rng.random() < 0.9 else None
        femail = email_for(rng, ffirst, sf, father_birth.year) if rng.random() < 0.8 else None

        def child_surname():
            r = rng.random()
            if kind == "single_mother":
                return sm if r < 0.6 else sf
            if r < 0.85:
                return sf
            if r < 0.92:
                return f"{sf}-{sm}"
            if r < 0.95:
                return f"{sf} {sm}"
            return sm

        created = when
        # family-level attributes
        outside = (not newcomer) and rng.random() < 0.04
        if outside:
            cp, city = rng.choice(NEARBY_TOWNS)
            line = f"{rng.randint(1, 120)} {rng.choice(STREETS_ELSEWHERE)}"
            sector = None
        else:
            street, sector = rng.choice(STREETS)
            num = rng.randint(1, 180)
            bis = " bis" if rng.random() < 0.04 else ""
            line = f"{num}{bis} {street}"
            cp, city = TOWN_CP, TOWN_CITY

        hh = {"fams": [], "parents": [], "children": [], "kind": kind}
        st.hh[hh_id] = hh
        mother_nom = sf if kind == "married" else sm
        mother = self.new_person(mfirst, mother_nom, sm, mother_birth, "F", False, mdigits,
                                 memail, created)
        father = self.new_person(ffirst, sf, sf, father_birth, "M", False, fdigits, femail,
                                 created)
        children = []
        for b in sorted(births):
            sex = rng.choice("MF")
            c = self.new_person(self.first_name(sex, "child"), child_surname(), None, b, sex,
                                True, None, None, created)
            children.append(c)
        hh["children"] = [c.id for c in children]

        if kind in ("married", "couple"):
            tit = mother if rng.random() < 0.65 else father
            fam = self.new_family(hh_id, tit, [mother, father], children, line, cp, city,
                                  sector, created, outside)
            hh["parents"] = [mother.id, father.id]
        elif kind == "single_mother":
            fam = self.new_family(hh_id, mother, [mother], children, line, cp, city, sector,
                                  created, outside)
            hh["parents"] = [mother.id]
            st.persons.pop(father.id)
            st.dirty["INDIVIDU"].pop(father.id, None)
        elif kind == "single_father":
            fam = self.new_family(hh_id, father, [father], children, line, cp, city, sector,
                                  created, outside)
            hh["parents"] = [father.id]
            st.persons.pop(mother.id)
            st.dirty["INDIVIDU"].pop(mother.id, None)
        else:  # separated: two families share the children
            if rng.random() < 0.3:
                mother.nom = self.r_nom(sf)
                mother.last = sf
            fam = self.new_family(hh_id, mother, [mother], children, line, cp, city, sector,
                                  created, outside)
            if outside:
                cp2, city2 = rng.choice(NEARBY_TOWNS)
                line2 = f"{rng.randint(1, 120)} {rng.choice(STREETS_ELSEWHERE)}"
                sector2 = None
            elif rng.random() < 0.7:
                street2, sector2 = rng.choice(STREETS)
                line2 = f"{rng.randint(1, 180)} {street2}"
                cp2, city2 = TOWN_CP, TOWN_CITY
            else:
                cp2, city2 = rng.choice(NEARBY_TOWNS)
                line2 = f"{rng.randint(1, 120)} {rng.choice(STREETS_ELSEWHERE)}"
                sector2 = None
            others = [father]
            if rng.random() < 0.2:
                pdate = father_birth + timedelta(days=rng.randint(-1500, 2500))
                pfirst = self.first_name("F", "adult")
                plast = surname(rng)
                partner = self.new_person(pfirst, plast, plast, pdate, "F", False, mobile(rng),
                                          email_for(rng, pfirst, plast, pdate.year), created)
                others.append(partner)
            fam2 = self.new_family(hh_id, father, others, children, line2, cp2, city2, sector2,
                                   created, outside)
            hh["parents"] = [mother.id, father.id]
            hh["fams"].append(fam2.id)
        hh["fams"].insert(0, fam.id)
        # grandparent contact
        if rng.random() < 0.12:
            sex = rng.choice("MF")
            gp_last = rng.choice([sf, sm])
            gp = self.new_person(self.first_name(sex, "senior"), gp_last, gp_last,
                                 mother_birth - timedelta(days=rng.randint(22 * 365, 35 * 365)),
                                 sex, False, mobile(rng), None, created)
            self.attach(fam.id, gp.id, "C", None, created)
        # portal accounts
        for fid in hh["fams"]:
            self.maybe_accounts(st.families[fid], when)
        return hh["fams"]

    def new_person(self, first, last, birth_last, birth: date, sex, is_child, phone_digits,
                   email, when: datetime) -> Person:
        st = self.st
        rng = self.rng
        p = Person()
        p.id = st.next_id("individu")
        p.first, p.last, p.birth_last = first, last, birth_last
        p.birth, p.sex, p.is_child = birth, sex, is_child
        p.phone_digits, p.email_true = phone_digits, email
        p.dup_of = None
        p.families = []
        p.nom = self.r_nom(last)
        if not is_child and sex == "F" and birth_last and birth_last != last:
            p.nom_naiss = self.r_nom(birth_last)
        else:
            r = rng.random()
            p.nom_naiss = None if r < 0.5 else ("" if r < 0.8 else self.r_nom(last))
        p.prenom = self.r_prenom(first)
        if not is_child and rng.random() < 0.04:
            p.date_naiss = rng.choice(["", "00000000"])
        else:
            p.date_naiss = ymd(birth)
        p.sexe = "" if rng.random() < 0.04 else sex
        p.tel = self.r_phone(phone_digits) if not is_child else self.r_empty()
        p.email = self.r_email(email) if not is_child else self.r_empty()
        p.maj = legacy_ts(self.past_ts(when))
        p.pub = False
        st.persons[p.id] = p
        st.mark("INDIVIDU", p.id)
        return p

    def past_ts(self, when: datetime) -> datetime:
        """A plausible last-modification instant at or shortly before ``when`` (desk hours)."""
        t = when - timedelta(days=self.rng.randint(0, 20), hours=self.rng.randint(0, 6))
        t = t.replace(hour=self.rng.randint(8, 17), minute=self.rng.randint(0, 59),
                      second=self.rng.randint(0, 59))
        return min(t, when)

    def new_family(self, hh_id, tit: Person, adults: list[Person], children: list[Person],
                   line, cp, city, sector, when: datetime, outside: bool) -> Family:
        st = self.st
        rng = self.rng
        f = Family()
        f.id = st.next_id("famille")
        f.code = f"F{f.id:08d}"
        st.fam_by_code[f.code] = f.id
        f.hh = hh_id
        f.titulaire = tit.id
        f.members = []
        f.sector = sector
        f.outside = outside
        f.true_addr = {"line": line, "postcode": cp, "city": city}
        f.moved_from = None
        f.nom = self.r_nom(tit.last)
        f.adresse = self.r_address(line)
        f.cp = cp
        f.ville = self.r_city(city, cp)
        f.tel = self.r_phone(tit.phone_digits)
        f.email = self.r_email(tit.email_true)
        if rng.random() < 0.8:
            f.num_alloc = f"{rng.randint(1_000_000, 9_999_999)}"
            qf = int(950 * (2.718 ** rng.gauss(0, 0.5)))
            f.qf = max(150, min(3500, qf)) if rng.random() < 0.93 else None
        else:
            f.num_alloc = self.r_empty()
            f.qf = None
        r = rng.random()
        if r < 0.26:
            f.prelev = "O"
            f.rum = f"RUM{f.code}01"
            f.iban = random_iban(rng)
            f.pay = "DD"
        else:
            f.prelev = "N" if r < 0.86 else None
            f.rum = self.r_empty()
            f.iban = self.r_empty()
            f.pay = rng.choices(["ONLINE", "DESK", "TRANSFER"], [48, 32, 20])[0]
        f.desk_mode = rng.choices(*DESK_MODES)[0]
        oldest = min((c.birth for c in children), default=when.date())
        first_known = max(date(2008, 9, 1), oldest + timedelta(days=rng.randint(300, 1500)))
        first_known = min(first_known, when.date())
        r = rng.random()
        f.date_creation = ymd(first_known) if r > 0.03 else ("" if r < 0.015 else "00000000")
        f.maj = legacy_ts(self.past_ts(when))
        f.pub = False
        f.accounts = []
        f.dup_of = None
        st.families[f.id] = f
        st.mark("FAMILLE", f.id)
        st.enr_by_fam[f.id] = []
        for a in adults:
            self.attach(f.id, a.id, "R", "O" if a is tit else ("N" if rng.random() < 0.6 else None),
                        when)
        for c in children:
            self.attach(f.id, c.id, "E", None if rng.random() < 0.6 else "N", when)
        return f

    def attach(self, fam_id: int, ind_id: int, cat: str, tit, when: datetime) -> None:
        st = self.st
        r = Ratt()
        r.fam, r.ind, r.cat, r.tit = fam_id, ind_id, cat, tit
        r.maj = legacy_ts(self.past_ts(when))
        r.pub = False
        st.ratt[(fam_id, ind_id)] = r
        st.mark("RATTACHEMENT", (fam_id, ind_id))
        st.families[fam_id].members.append(ind_id)
        st.persons[ind_id].families.append(fam_id)

    # ------------------------------------------------------------------ portal accounts
    def maybe_accounts(self, fam: Family, when: datetime) -> None:
        st = self.st
        rng = self.rng
        kids = [st.persons[i] for i in fam.members if st.persons[i].is_child]
        young = any(when.date().year - k.birth.year <= 11 for k in kids)
        if rng.random() >= (0.88 if young else 0.6):
            return
        holder = st.persons[fam.titulaire]
        launch = datetime(2017, 7, 12, 9, 0)  # the family space opened
        lo = max(launch, when, datetime.combine(holder.birth, datetime.min.time())
                 + timedelta(days=18 * 365))
        hi = max(lo, datetime(2025, 8, 14, 22, 0))
        created = self.between(lo, hi)
        # an old account, closed since (forgotten password, new e-mail...)
        if rng.random() < 0.03 and created - lo > timedelta(days=400):
            old_created = self.between(lo, created - timedelta(days=200))
            closed_at = self.between(old_created + timedelta(days=30), created)
            acc = self.new_account(fam, holder, old_created, "linked", [])
            self.portal_touch("accounts", acc, closed_at, status="closed")
        r = rng.random()
        p_unl = self.p("account_unlinked")
        p_wrong = self.p("account_wrong_family")
        if r < p_unl:
            state = "unlinked"
        elif r < p_unl + p_wrong:
            state = "wrong"
        else:
            state = "linked"
        variants = self.pick_variants(fam, holder) if state == "unlinked" else []
        self.new_account(fam, holder, created, state, variants)

    def pick_variants(self, fam: Family, holder: Person) -> list[str]:
        st = self.st
        rng = self.rng
        kids = [st.persons[i] for i in fam.members if st.persons[i].is_child]
        names = [holder.first, holder.last] + [n for k in kids for n in (k.first, k.last)]
        ok = ["swapped_first_last", "email_differs", "phone_differs", "moved_address"]
        if any(_has_accent(n) for n in names):
            ok.append("accents_dropped")
        if any(("-" in n or " " in n) for n in names):
            ok.append("compound_hyphen_space")
        if holder.sex == "F" and holder.birth_last and holder.birth_last != holder.last:
            ok.append("birth_vs_married_name")
        if kids:
            ok.append("birth_date_typo")
        # name variants are what makes matching hard: favour them (the rarer, the more)
        weights = [{"birth_vs_married_name": 4, "compound_hyphen_space": 3,
                    "accents_dropped": 2, "birth_date_typo": 2}.get(v, 1) for v in ok]
        k = 1 + (rng.random() < 0.55) + (rng.random() < 0.2)
        chosen: list[str] = []
        while len(chosen) < min(k, len(ok)):
            v = rng.choices(ok, weights)[0]
            if v not in chosen:
                chosen.append(v)
        return sorted(chosen, key=ok.index)

    def new_account(self, fam: Family, holder: Person, created: datetime, state: str,
                    variants: list[str]) -> str:
        st = self.st
        rng = self.rng
        acc_id = f"acc-{st.next_id('account'):06d}"
        v = set(variants)
        first, last = holder.first, holder.last
        if "birth_vs_married_name" in v:
            last = holder.birth_last
        if "accents_dropped" in v:
            first, last = strip_accents(first), strip_accents(last)
        if "compound_hyphen_space" in v:
            first, last = _flip_compound(first), _flip_compound(last)
        if "swapped_first_last" in v:
            first, last = last, first
        if rng.random() < 0.1 and not v:
            last = last.upper()
        email = holder.email_true
        if "email_differs" in v or not email:
            alt = email_for(rng, holder.first, holder.last, holder.birth.year)
            email = alt if alt != email else "x" + alt
        phone_digits = holder.phone_digits
        if "phone_differs" in v:
            phone_digits = mobile(rng)
        addr = dict(fam.true_addr)
        if "moved_address" in v:
            street, _sector = rng.choice(STREETS)
            addr = {"line": f"{rng.randint(1, 180)} {street}", "postcode": TOWN_CP,
                    "city": TOWN_CITY}
        if state == "wrong":
            code = self.wrong_code(fam)
        elif state == "linked":
            code = fam.code
        else:
            code = None
        phone = format_phone(phone_digits, rng.choice([0, 1, 4])) if phone_digits else None
        ts = self.iso(created)
        rec = {"id": acc_id, "updated_at": ts, "email": email, "phone": phone,
               "first_name": first, "last_name": last, "address": addr,
               "legacy_family_code": code, "status": "active", "created_at": ts}
        self.portal_new("accounts", rec)
        st.account_truth[acc_id] = {"family_id": fam.id, "variants": variants, "persons": []}
        fam.accounts.append(acc_id)
        # persons of the account: holder, other adult (sometimes), children
        adults = [st.persons[i] for i in fam.members
                  if not st.persons[i].is_child and st.ratt[(fam.id, i)].cat == "R"]
        people = [holder] + [a for a in adults if a is not holder and rng.random() < 0.5]
        people += [st.persons[i] for i in fam.members if st.persons[i].is_child]
        for p in people:
            self.new_pperson(acc_id, p, created, linked=(state != "unlinked"),
                             variants=v if p is holder or p.is_child else set())
        return acc_id

    def wrong_code(self, fam: Family) -> str:
        st = self.st
        digits = fam.code[1:]
        cand = f"F{digits[:-2]}{digits[-1]}{digits[-2]}"
        if cand != fam.code and cand in st.fam_by_code:
            return cand
        ids = list(st.families)
        for _ in range(20):
            other = st.families[self.rng.choice(ids)]
            if other.id != fam.id and other.hh != fam.hh:
                return other.code
        return f"F{int(digits) + 7:08d}"

    def new_pperson(self, acc_id: str, p: Person, created: datetime, linked: bool,
                    variants: set) -> str:
        st = self.st
        rng = self.rng
        pid = f"per-{st.next_id('pperson'):06d}"
        first, last = p.first, p.last
        birth = p.birth
        if "accents_dropped" in variants:
            first, last = strip_accents(first), strip_accents(last)
        if "compound_hyphen_space" in variants:
            first, last = _flip_compound(first), _flip_compound(last)
        if p.is_child and "birth_date_typo" in variants and rng.random() < 0.7:
            birth = _typo_date(rng, birth)
        if not p.is_child:
            if "birth_vs_married_name" in variants:
                last = p.birth_last
            if "swapped_first_last" in variants:
                first, last = last, first
        rec = {"id": pid, "updated_at": self.iso(created), "account_id": acc_id,
               "role": "child" if p.is_child else "parent", "first_name": first,
               "last_name": last, "birth_date": birth.isoformat(),
               "legacy_person_id": p.id if linked else None}
        self.portal_new("persons", rec)
        st.pperson_truth[pid] = p.id
        st.pperson_of[(acc_id, p.id)] = pid
        st.account_truth[acc_id]["persons"].append(pid)
        return pid

    def usable_account(self, fam_id: int) -> str | None:
        """An active account correctly linked to the family (the family space works)."""
        st = self.st
        fam = st.families[fam_id]
        for acc in fam.accounts:
            rec = st.portal["accounts"][acc]
            if rec["status"] == "active" and rec["legacy_family_code"] == fam.code:
                return acc
        return None

    def any_account(self, fam_id: int) -> str | None:
        st = self.st
        for acc in st.families[fam_id].accounts:
            if st.portal["accounts"][acc]["status"] == "active":
                return acc
        return None

    def citizen_accounts(self, n: int, lo: datetime, hi: datetime) -> None:
        """Accounts of residents who only use the citizen space (no legacy family)."""
        st = self.st
        rng = self.rng
        for _ in range(n):
            sex = rng.choice("MF")
            first = self.first_name(sex, "adult" if rng.random() < 0.7 else "senior")
            last = surname(rng)
            created = self.between(lo, hi)
            acc_id = f"acc-{st.next_id('account'):06d}"
            street, _ = rng.choice(STREETS)
            ts = self.iso(created)
            rec = {"id": acc_id, "updated_at": ts,
                   "email": email_for(rng, first, last, rng.randint(1950, 2000)),
                   "phone": format_phone(mobile(rng), rng.choice([0, 1, 4]))
                   if rng.random() < 0.8 else None,
                   "first_name": first, "last_name": last,
                   "address": {"line": f"{rng.randint(1, 180)} {street}", "postcode": TOWN_CP,
                               "city": TOWN_CITY},
                   "legacy_family_code": None, "status": "active", "created_at": ts}
            self.portal_new("accounts", rec)
            st.account_truth[acc_id] = {"family_id": None, "variants": [], "persons": []}
            st.citizen_accounts.append(acc_id)

    # ------------------------------------------------------------------ associations
    def make_associations(self, n: int) -> None:
        st = self.st
        rng = self.rng
        seen = set()
        for i in range(n):
            for _ in range(10):
                name = rng.choice(ASSOCIATION_PATTERNS).format(
                    place=rng.choice(ASSOCIATION_PLACES), song=rng.choice(ASSOCIATION_SONGS),
                    school=rng.choice(SCHOOLS)[1])
                if name not in seen:
                    break
            else:
                name = f"{name} {i}"
            seen.add(name)
            aid = f"asso-{st.next_id('association'):04d}"
            slug = strip_accents(name).lower().replace("'", "").split()
            email = f"contact.{''.join(w[:4] for w in slug[:3])}@{rng.choice(['gmail.com', 'orange.fr', 'free.fr', 'laposte.net'])}"
            created = self.between(datetime(2019, 3, 1), datetime(2025, 8, 1))
            rec = {"id": aid, "updated_at": self.iso(created), "name": name, "rna": rna(rng),
                   "siret": siret(rng) if rng.random() < 0.7 else None,
                   "contact_email": email}
            self.portal_new("associations", rec)
            st.assoc_ids.append(aid)

    # ------------------------------------------------------------------ legacy duplicates
    def make_duplicates(self, when_lo: datetime, when_hi: datetime) -> None:
        """Some households entered a second time in the legacy program."""
        st = self.st
        rng = self.rng
        fams = [f for f in list(st.families.values()) if f.dup_of is None]
        for fam in fams:
            if rng.random() >= self.p("legacy_duplicate_family"):
                continue
            self.duplicate_family(fam, self.between(when_lo, when_hi))

    def duplicate_family(self, fam: Family, when: datetime) -> Family:
        st = self.st
        rng = self.rng
        tit = st.persons[fam.titulaire]
        kids = [st.persons[i] for i in fam.members if st.persons[i].is_child]
        pairs = []

        def dup_person(p: Person) -> Person:
            first = p.first
            r = rng.random()
            if r < 0.35:
                first = strip_accents(first)
            elif r < 0.55 and "-" in first:
                first = first.replace("-", " ")
            elif r < 0.65:
                first = first.upper()
            last = p.last
            r = rng.random()
            if r < 0.3:
                last = strip_accents(last)
            elif r < 0.45 and " " in last:
                last = last.replace(" ", "")
            elif r < 0.55 and p.birth_last and p.birth_last != p.last:
                last = p.birth_last
            digits = p.phone_digits if rng.random() < 0.7 else (mobile(rng) if p.phone_digits else None)
            q = self.new_person(first, last, p.birth_last, p.birth, p.sex, p.is_child, digits,
                                p.email_true if rng.random() < 0.6 else None, when)
            q.first, q.last = p.first, p.last  # truth keeps the real names
            if not p.is_child and rng.random() < 0.3:
                q.date_naiss = ""
            q.dup_of = p.id
            st.dups_of_person.setdefault(p.id, []).append(q)
            pairs.append([p.id, q.id])
            return q

        d_tit = dup_person(tit)
        d_kids = [dup_person(k) for k in kids if rng.random() < 0.8] or \
            ([dup_person(kids[0])] if kids else [])
        line = fam.true_addr["line"]
        dfam = self.new_family(fam.hh, d_tit, [d_tit], d_kids, line, fam.true_addr["postcode"],
                               fam.true_addr["city"], fam.sector, when, fam.outside)
        dfam.dup_of = fam.id
        dfam.pay = fam.pay if fam.pay != "DD" else "DESK"
        if dfam.prelev == "O":
            dfam.prelev, dfam.rum, dfam.iban = "N", None, None
            dfam.pay = "DESK"
        st.hh[fam.hh]["fams"].append(dfam.id)
        st.dup_families.append({"family_id": dfam.id, "family_code": dfam.code,
                                "original_family_id": fam.id, "original_family_code": fam.code,
                                "person_pairs": pairs})
        return dfam

    # ------------------------------------------------------------------ school-year plan
    def plan_year(self, year: int) -> None:
        """Schedule every household's enrolments for school year ``year`` (online requests
        or front-desk entries) and the standing bookings' creation ("rentrée" batch)."""
        st = self.st
        rng = self.rng
        start = date(year, 9, 1)
        for hh_id, hh in list(st.hh.items()):
            fams = [f for f in hh["fams"] if st.families[f].dup_of is None]
            if not fams:
                continue
            dups = [f for f in hh["fams"] if st.families[f].dup_of is not None]
            for cid in hh["children"]:
                child = st.persons[cid]
                age = year - child.birth.year
                plans = self.services_for(child, age, year, fams)
                for act_code, fam_id, parity in plans:
                    # a duplicate legacy family sometimes holds the enrolment (front desk
                    # did not find the existing file)
                    ind = cid
                    if dups and act_code.startswith(("EMM", "ALSH")) and rng.random() < 0.7:
                        dfam = st.families[dups[0]]
                        dkid = next((st.persons[i] for i in dfam.members
                                     if st.persons[i].dup_of == cid), None)
                        if dkid is not None:
                            fam_id, ind = dfam.id, dkid.id
                    self.schedule_enrolment(year, fam_id, ind, act_code, parity, start)

    def services_for(self, child: Person, age: int, year: int, fams: list[int]):
        """[(activity code, family id, week parity or None)] for one child and year."""
        st = self.st
        rng = self.rng
        out = []
        home = st.families[fams[0]]
        in_town = [f for f in fams if not st.families[f].outside]

        def fam_pick():
            return rng.choice(fams)

        if 3 <= age <= 10 and in_town:
            sch_fam = st.families[in_town[0]]
            school = sch_fam.sector or rng.choice(SCHOOLS)[0]
            if rng.random() < 0.12:
                school = rng.choice(SCHOOLS)[0]
            out.append((f"SCOL-{school}", sch_fam.id, None))
            if rng.random() < 0.78:
                if len(fams) == 2 and rng.random() < 0.3:
                    out.append((f"RESTO-{school}", fams[0], 0))
                    out.append((f"RESTO-{school}", fams[1], 1))
                else:
                    out.append((f"RESTO-{school}", fam_pick(), None))
            if rng.random() < 0.22:
                out.append((f"PERI-MATIN-{school}", fam_pick(), None))
            if rng.random() < 0.38:
                out.append((f"PERI-SOIR-{school}", fam_pick(), None))
        if 3 <= age <= 11 and rng.random() < 0.28:
            out.append(("ALSH-MATERNEL" if age <= 5 else "ALSH-ELEMENTAIRE", fam_pick(), None))
        if age <= 2 and child.birth <= date(year + 1, 3, 31) and rng.random() < 0.4 and \
                not home.outside:
            out.append((rng.choice(["MULTI-LUTINS", "MULTI-CAPUCINES"]), fams[0], None))
        if 5 <= age <= 6 and rng.random() < 0.05:
            out.append(("EMM-EVEIL", fam_pick(), None))
        elif 7 <= age <= 17 and rng.random() < 0.12:
            out.append((rng.choice(["EMM-PIANO", "EMM-GUITARE", "EMM-VIOLON", "EMM-BATTERIE",
                                    "EMM-PIANO", "EMM-GUITARE"]), fam_pick(), None))
        return out

    def schedule_enrolment(self, year: int, fam_id: int, ind: int, act_code: str, parity,
                           start: date) -> None:
        st = self.st
        rng = self.rng
        act = st.activities[st.act_by_code[act_code]]
        child = st.persons[ind]
        svc = act.service
        # period
        if svc in ("SCOL", "RESTO", "PERI"):
            from .timeline import _year_info

            info = _year_info(year)
            debut, fin = info["start"], info["end"]
        elif svc == "ALSH":
            debut, fin = start, date(year + 1, 8, 31)
        elif svc == "MULTI":
            debut = max(start, child.birth + timedelta(days=90))
            fin = date(year + 1, 7, 31)
        else:
            debut, fin = date(year, 9, 15), date(year + 1, 6, 30)
        # state
        r = rng.random()
        if svc == "MULTI":
            etat = "V" if r < 0.8 else ("A" if r < 0.95 else "R")
        elif svc == "EMM":
            etat = "V" if r < 0.94 else ("A" if r < 0.98 else "R")
        else:
            etat = "V" if r < 0.99 else "R"
        age = year - child.birth.year
        first_time = (svc == "SCOL" and age == 3) or svc == "MULTI" or rng.random() < 0.25
        fam = st.families[fam_id]
        acc = self.any_account(fam_id) if fam.dup_of is None else None
        share = 0.75 if first_time else 0.5
        if svc == "SCOL" and not first_time:
            share = 0.0  # re-enrolment in the next class is a desk batch
        payload = {"year": year, "fam": fam_id, "ind": ind, "act": act.id, "debut": debut,
                   "fin": fin, "etat": etat, "parity": parity}
        t_req_lo = datetime(year, 3, 20, 8, 0) if svc in ("SCOL", "MULTI") else \
            datetime(year, 5, 2, 8, 0)
        t_req_hi = datetime(year, 7, 10, 22, 0)
        if acc and rng.random() < share:
            sub = self.human_between(t_req_lo, t_req_hi)
            self.schedule_request(ENROLMENT_PROCEDURES[svc], acc, sub, svc, payload)
        else:
            if svc == "SCOL" and not first_time:
                ts = datetime(year, 7, 7, 6, 0) + timedelta(seconds=rng.randint(0, 3000))
            else:
                ts = self.human_between(datetime(year, 5, 15, 8, 0),
                                        datetime(year, 8, 29, 17, 0), desk=True)
            payload["ref"] = None
            st.push(ts, "enr_create", payload)

    # ------------------------------------------------------------------ the whole town
    def populate(self, households: int) -> None:
        st = self.st
        rng = self.rng
        self.init_state()
        self.make_activities()
        hi = datetime(2025, 8, 14, 17, 0)
        made = 0
        i = 0
        while made < households:
            kind = self.household_kind()
            if kind == "separated" and households - made < 2:
                kind = "married"
            fams = self.new_household(kind, hi)
            made += len(fams)
            i += 1
            if i % 200 == 0:
                self.progress_step("creating households", made, households)
        self.progress_step("creating households", households, households)
        self.citizen_accounts(int(households * 0.3), datetime(2016, 10, 14, 9, 0), hi)
        self.make_associations(max(4, households // 25))
        self.make_duplicates(datetime(2015, 1, 1), hi)
        self.plan_year(2025)
        # yearly plan for the next school year: prepared in March
        st.push(datetime(2026, 3, 16, 7, 30), "plan_year", 2026)
        # back history of the citizen procedures and associations
        d = date(2025, 3, 1)
        while d < st.sim_start:
            self.daily_requests(d)
            d += ONE_DAY
        del rng


def _flip_compound(s: str) -> str:
    if "-" in s:
        return s.replace("-", " ")
    if " " in s:
        return s.replace(" ", "-")
    return s


def _typo_date(rng, d: date) -> date:
    r = rng.random()
    try:
        if r < 0.35 and d.day <= 12 and d.day != d.month:
            return d.replace(month=d.day, day=d.month)
        if r < 0.7:
            return d + timedelta(days=rng.choice([-2, -1, 1, 2, 10]))
        return d.replace(year=d.year + rng.choice([-1, 1]))
    except ValueError:
        return d + timedelta(days=1)

