"""The simulated town's state: legacy entities, portal records, treasury books, pending
events, counters. Everything the day-by-day engine (``demo.sim``) needs to continue the
simulation is in ``State``; it is pickled into ``<town>/.sim/state.pickle`` between runs.

Legacy rows are kept as small objects whose ``row()`` gives the tuple written to the
legacy table; their text fields already carry the legacy quirks (trailing blanks, case,
mojibake), decided once when the object was created.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

from .timeline import window_of

# ---------------------------------------------------------------------------
# table layouts (column order of demo/legacy_schema.sql)

COLUMNS = {
    "FAMILLE": ("ID_FAMILLE", "CODE_FAMILLE", "NOM_FAMILLE", "ADRESSE", "CP", "VILLE", "TEL",
                "EMAIL", "NUM_ALLOCATAIRE", "QF", "PRELEVEMENT", "RUM", "IBAN",
                "DATE_CREATION", "DATE_MAJ"),
    "INDIVIDU": ("ID_INDIVIDU", "NOM", "NOM_NAISSANCE", "PRENOM", "DATE_NAISS", "SEXE",
                 "TEL_PORTABLE", "EMAIL", "DATE_MAJ"),
    "RATTACHEMENT": ("ID_FAMILLE", "ID_INDIVIDU", "CATEGORIE", "TITULAIRE", "DATE_MAJ"),
    "ACTIVITE": ("ID_ACTIVITE", "CODE_ACTIVITE", "LIBELLE", "SERVICE", "SITE", "CAPACITE",
                 "PU_CENTIMES", "DELAI_ANNUL_H", "PIECES_REQUISES", "DATE_MAJ"),
    "INSCRIPTION": ("ID_INSCRIPTION", "ID_FAMILLE", "ID_INDIVIDU", "ID_ACTIVITE", "DATE_DEBUT",
                    "DATE_FIN", "ETAT", "REF_DEMANDE", "DATE_MAJ"),
    "RESERVATION": ("ID_RESERVATION", "ID_INSCRIPTION", "DATE_JOUR", "ETAT", "ORIGINE",
                    "REF_PORTAIL", "DATE_ANNUL", "DATE_MAJ"),
    "POINTAGE": ("ID_POINTAGE", "ID_INSCRIPTION", "DATE_JOUR", "STATUT", "DATE_MAJ"),
    "FACTURE": ("ID_FACTURE", "NUM_FACTURE", "ID_FAMILLE", "PERIODE", "DATE_EMISSION",
                "DATE_ECHEANCE", "MONTANT_CENTIMES", "ETAT", "DATE_MAJ"),
    "LIGNE_FACTURE": ("ID_LIGNE", "ID_FACTURE", "ID_INSCRIPTION", "DATE_JOUR", "LIBELLE",
                      "QUANTITE", "PU_CENTIMES", "MONTANT_CENTIMES"),
    "PIECE": ("ID_PIECE", "ID_FAMILLE", "ID_INDIVIDU", "TYPE_PIECE", "DATE_DEBUT", "DATE_FIN",
              "DATE_MAJ"),
}
PRIMARY_KEYS = {
    "FAMILLE": ("ID_FAMILLE",),
    "INDIVIDU": ("ID_INDIVIDU",),
    "RATTACHEMENT": ("ID_FAMILLE", "ID_INDIVIDU"),
    "ACTIVITE": ("ID_ACTIVITE",),
    "INSCRIPTION": ("ID_INSCRIPTION",),
    "RESERVATION": ("ID_RESERVATION",),
    "POINTAGE": ("ID_POINTAGE",),
    "FACTURE": ("ID_FACTURE",),
    "LIGNE_FACTURE": ("ID_LIGNE",),
    "PIECE": ("ID_PIECE",),
}
TABLE_ORDER = list(COLUMNS)

CHILD_DOCS = ("ASSURANCE", "VACCINS", "CERTIF_MEDICAL")
FAMILY_DOCS = ("JUSTIF_DOMICILE", "ATTEST_CAF")

# QF grid: (upper bound inclusive, percent of the activity's base price). QF NULL = 100 %.
QF_GRID = [(400, 30), (650, 45), (900, 60), (1200, 75), (1600, 90), (10**9, 100)]


def qf_percent(qf: int | None) -> int:
    if qf is None:
        return 100
    for bound, pct in QF_GRID:
        if qf <= bound:
            return pct
    return 100  # pragma: no cover


@lru_cache(maxsize=65536)
def unit_price(base_cents: int, qf: int | None) -> int:
    """Family-quotient pricing: base × percent, rounded half up to the cent."""
    return (base_cents * qf_percent(qf) + 50) // 100


# ---------------------------------------------------------------------------
# legacy entities


class Family:
    __slots__ = (
        "accounts",
        "adresse",
        "code",
        "cp",
        "date_creation",
        "desk_mode",
        "dup_of",
        "email",
        # simulation attributes
        "hh",
        "iban",
        "id",
        "maj",
        "members",
        "moved_from",
        "nom",
        "num_alloc",
        "outside",
        "pay",
        "prelev",
        "pub",
        "qf",
        "rum",
        "sector",
        "tel",
        "titulaire",
        "true_addr",
        "ville",
    )

    def row(self):
        return (self.id, self.code, self.nom, self.adresse, self.cp, self.ville, self.tel,
                self.email, self.num_alloc, self.qf, self.prelev, self.rum, self.iban,
                self.date_creation, self.maj)


class Person:
    __slots__ = (
        "birth",
        "birth_last",
        "date_naiss",
        "dup_of",
        "email",
        "email_true",
        "families",
        # truth
        "first",
        "id",
        "is_child",
        "last",
        "maj",
        "nom",
        "nom_naiss",
        "phone_digits",
        "prenom",
        "pub",
        "sex",
        "sexe",
        "tel",
    )

    def row(self):
        return (self.id, self.nom, self.nom_naiss, self.prenom, self.date_naiss, self.sexe,
                self.tel, self.email, self.maj)


class Ratt:
    __slots__ = ("cat", "fam", "ind", "maj", "pub", "tit")

    def row(self):
        return (self.fam, self.ind, self.cat, self.tit, self.maj)


class Activity:
    __slots__ = (
        "capacity",
        "code",
        "delai",
        "horizon",
        "id",
        "label_short",
        "libelle",
        "maj",
        "pieces",
        "pu",
        "pub",
        "school",
        "service",
        "site",
    )

    def row(self):
        return (self.id, self.code, self.libelle, self.service, self.site, self.capacity,
                self.pu, self.delai, self.pieces, self.maj)


class Enrolment:
    __slots__ = (
        "acct",
        "act",
        "auto_maj",
        "auto_ts",
        "days",
        "debut",
        "debut_s",
        "etat",
        "fam",
        "fin",
        "fin_s",
        "hours",
        "id",
        "ind",
        "maj",
        # simulation
        "mode",
        "p",
        "parity",
        "pperson",
        "pub",
        "ref",
        "service",
        "year",
    )

    def row(self):
        return (self.id, self.fam, self.ind, self.act, self.debut_s, self.fin_s, self.etat,
                self.ref, self.maj)

    def active_on(self, d: date) -> bool:
        return self.debut <= d and (self.fin is None or d <= self.fin)


class Invoice:
    __slots__ = (
        "amount",
        "applied",
        "echeance",
        "emission",
        "etat",
        "fam",
        "id",
        "lines_sum",
        "maj",
        "num",
        "payments",
        "periode",
        "pub",
        "reissue_of",
        "year",
    )

    def row(self):
        return (self.id, self.num, self.fam, self.periode, self.emission, self.echeance,
                self.amount, self.etat, self.maj)


class Piece:
    __slots__ = (
        "d_from",
        "d_until",
        "debut",
        "fam",
        "fin",
        "id",
        "ind",
        "maj",
        "portal_doc",
        "pub",
        "type",
    )

    def row(self):
        return (self.id, self.fam, self.ind, self.type, self.debut, self.fin, self.maj)


class Resv:
    """One (enrolment, day): the true booking state and the legacy RESERVATION row."""

    __slots__ = (
        "booked",
        "chg",
        "day",
        "enr",
        "frozen",
        "ghost",
        "l_annul",
        "l_etat",
        "l_maj",
        "l_orig",
        "l_ref",
        "planned",
        "pub",
        "rid",
    )

    def __init__(self, enr: int, day: date):
        self.enr = enr
        self.day = day
        self.rid = None
        self.l_etat = None
        self.l_orig = None
        self.l_ref = None
        self.l_annul = None
        self.l_maj = None
        self.booked = False
        self.pub = False
        self.chg = False
        self.frozen = False
        self.planned = False
        self.ghost = False


# ---------------------------------------------------------------------------
# the whole state


class State:
    """Everything the simulation needs to continue. Plain data (picklable)."""

    def __init__(self):
        self.seed = 0
        self.town = ""
        self.name = ""
        self.households = 0
        self.legacy_url = ""
        self.legacy_default = True
        self.defect_rate = 1.0
        self.now: datetime | None = None
        self.sim_start: date | None = None
        self.counters: dict[str, int] = {}
        self.evt_seq = 0
        self.late_events = 0

        # legacy
        self.families: dict[int, Family] = {}
        self.persons: dict[int, Person] = {}
        self.ratt: dict[tuple[int, int], Ratt] = {}
        self.activities: dict[int, Activity] = {}
        self.act_by_code: dict[str, int] = {}
        self.enrolments: dict[int, Enrolment] = {}
        self.enr_by_act: dict[int, list[int]] = {}
        self.enr_by_child: dict[int, list[int]] = {}
        self.invoices: dict[int, Invoice] = {}
        self.inv_by_num: dict[str, int] = {}
        self.pieces: dict[int, Piece] = {}
        self.pieces_by_holder: dict[tuple, list[int]] = {}
        self.dirty: dict[str, dict] = {t: {} for t in ("FAMILLE", "INDIVIDU", "RATTACHEMENT",
                                                       "ACTIVITE", "INSCRIPTION", "FACTURE",
                                                       "PIECE")}
        self.deleted_pieces: list[int] = []
        self.capacity_fixed = False
        self.resa_count: dict[tuple[int, date], int] = {}

        # reservations still open (day not yet closed), by day then enrolment
        self.live: dict[date, dict[int, Resv]] = {}
        self.horizon_done: dict[int, date] = {}
        self.last_closed_day: date | None = None
        # billing ledger of open months: (year, month) -> family -> [(enr, day, qty)]
        self.ledger: dict[tuple[int, int], dict[int, list]] = {}
        self.ledger_touched: dict[tuple[int, int], set] = {}

        # portal: mutable collections (id -> record) and their line slots
        self.portal: dict[str, dict[str, dict]] = {}
        self.portal_slots: dict[str, list] = {}
        self.portal_dirty: dict[str, dict] = {}
        self.portal_lines: dict[str, int] = {}  # line counts of append-only collections
        self.account_of_family: dict[int, str] = {}
        self.account_truth: dict[str, dict] = {}
        self.pperson_truth: dict[str, int | None] = {}
        self.pperson_of: dict[tuple[str, int], str] = {}  # (account, legacy person) -> id

        # treasury
        self.banks: dict[str, dict] = {}
        self.payfip_day: dict[date, list] = {}
        self.caisse_day: dict[date, list] = {}
        self.pools: dict[str, list] = {"ESPECES": [], "CHEQUE": [], "CESU": []}
        self.cb_day: dict[date, list] = {}
        self.dd_pending: dict[date, list] = {}
        self.pending_truth: dict[str, dict] = {}
        self.treasury_written: list[tuple[date, str]] = []
        self.redeliveries: dict[date, list] = {}

        # events: window date -> [(ts, seq, kind, payload)]
        self.events: dict[date, list] = {}

        # ground truth
        self.dup_families: list[dict] = []
        self.dups_of_person: dict[int, list] = {}
        self.truth_counts: dict[str, int] = {}
        self.fam_by_code: dict[str, int] = {}
        self.req_submitted: dict[str, datetime] = {}
        self.windows = 0

        # households: id -> {"fams": [...], "parents": [...], "children": [...]}
        self.hh: dict[int, dict] = {}
        self.enr_by_fam: dict[int, list[int]] = {}
        self.renewals: set = set()
        self.doc_cover: dict = {}
        self.fam_ids: list[int] = []
        self.run_started_at: datetime | None = None
        self.purged_month = None
        self.citizen_accounts: list[str] = []
        self.family_accounts: list[str] | None = None
        self.assoc_ids: list[str] = []

    # ids ---------------------------------------------------------------
    def next_id(self, name: str) -> int:
        v = self.counters[name]
        self.counters[name] = v + 1
        return v

    def mark(self, table: str, key) -> None:
        self.dirty[table][key] = None

    def push(self, ts: datetime, kind: str, payload) -> None:
        self.evt_seq += 1
        self.events.setdefault(window_of(ts), []).append((ts, self.evt_seq, kind, payload))


INITIAL_COUNTERS = {
    "famille": 1001,
    "individu": 10001,
    "activite": 1,
    "inscription": 50001,
    "reservation": 1000001,
    "pointage": 3000001,
    "facture": 70001,
    "num_facture": 41201,
    "ligne": 1,
    "piece": 200001,
    "account": 3001,
    "pperson": 12001,
    "request": 80001,
    "request_number": 14501,
    "document": 5001,
    "online_payment": 1,
    "association": 101,
    "room_booking": 1,
    "recu": 1,
    "entry": 1,
    "dd_batch": 1,
    "cesu_batch": 1,
}
