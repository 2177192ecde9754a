"""Payment allocation: which invoice each received payment pays, and how much of it.

Two phases, both in integer cents:

1. *Matching* gives every received payment one target invoice (or none), in passes of
   decreasing trust: provider references (PayFiP, direct debit: always the exact invoice
   number), then payments quoting a reference (exact or mistyped, desk and transfers),
   then payments quoting none. Each pass runs in time order and keeps a provisional
   outstanding balance per invoice, so a remainder finds the balance a partial payment
   left. Candidates are blocked, never crossed with every invoice: the quoted digit
   tokens and their one-edit neighbours (a digit changed, dropped, added or two digits
   swapped, the period forgotten), the family code quoted in a transfer, the open
   invoices (and those of exactly the amount) of the households the payer's name
   reaches, and the open invoices owing exactly the amount, by household. Candidates are
   scored on reference, amount, payer name and dates, generated best possible score
   first so that groups that cannot win are skipped (same result as scoring them all).
2. *Application* walks the payments in time order: each applies
   ``min(amount, outstanding)`` to its invoice; the rest stays unallocated (an
   overpayment's credit, a second payment of a settled invoice, or no invoice found).
   So money is conserved per payment by construction.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict

import pandas as pd
from rapidfuzz import fuzz, process

#: how long after its issue an invoice is still a candidate for a payment without reference
WINDOW_DAYS = 400
#: a payment naming nobody and quoting nothing: only invoices issued this recently
NAMELESS_DAYS = 90
#: payments, by trust of their reference
PROVIDER_SOURCES = ("payfip", "portal", "prlv")
TITLES = {"M", "MME", "MLLE", "MR", "OU", "ET", "MONSIEUR", "MADAME"}
PARTICLES = {"DE", "LA", "LE", "DU", "DES", "D", "L", "VAN", "DA", "DOS", "DI"}

_TOKEN = re.compile(r"\d+")
MONTHS = {m: k for k, m in enumerate(
    ["JANVIER", "FEVRIER", "MARS", "AVRIL", "MAI", "JUIN", "JUILLET", "AOUT", "SEPTEMBRE",
     "OCTOBRE", "NOVEMBRE", "DECEMBRE"], start=1)}
_FAMILY = re.compile(r"\bF(\d{8})\b")


# ------------------------------------------------------------------ received payments

def transfer_id(account, entry_number, operation_id) -> str:
    """A transfer's payment id: the bank's own entry number on the account credited."""
    if isinstance(entry_number, str) and entry_number.strip():
        return f"vir:{account}:{entry_number.strip()}"
    return f"vir:{operation_id}"


def detail(details, qualifier: str) -> str | None:
    """The text of one CFONB 05 / camt detail line ('NPY DUPONT JEAN' -> 'DUPONT JEAN')."""
    if not isinstance(details, str):
        return None
    for line in details.split("\n"):
        if line.startswith(qualifier + " "):
            return line[len(qualifier) + 1:].strip()
    return None


def transfers(td) -> pd.DataFrame:
    """Incoming SEPA transfers of the bank statements, as payments (they have no file of
    their own): id ``vir:<account>:<entry number>``."""
    ops = td["bank_operation"]
    st = td["bank_statement"].set_index("statement_id")["account"]
    t = ops[ops["label"].fillna("").str.startswith("VIR SEPA")
            & (ops["amount_cents"].fillna(0) > 0)].copy()
    account = t["statement_id"].map(st)
    t["payment_id"] = [transfer_id(a, e, o) for a, e, o in
                       zip(account, t["entry_number"], t["operation_id"])]
    payer = [detail(d, "NPY") for d in t["details"]]
    label_payer = t["label"].fillna("").str[len("VIR SEPA "):].str.strip()
    return pd.DataFrame({
        "payment_id": t["payment_id"].values, "source": "bank", "channel": "transfer",
        "status": "paid", "amount_cents": t["amount_cents"].astype("int64").values,
        "paid_on": t["booked_on"].values, "paid_at": pd.NaT,
        "invoice_ref": [detail(d, "LIB") for d in t["details"]],
        "payer_name": [p or lp or None for p, lp in zip(payer, label_payer)],
        "operation_ref": t["operation_id"].values,
    })


def received(td) -> pd.DataFrame:
    """Every payment that brought money in, once: PayFiP paid transactions (a portal
    payment whose PayFiP line is missing stands in for it, same ``idop``), desk receipts,
    accepted direct debits and transfers. Refused/abandoned card attempts and rejected
    direct debits brought nothing."""
    p = td["payment"]
    cols = ["payment_id", "source", "channel", "status", "amount_cents", "paid_on",
            "paid_at", "invoice_ref", "payer_name", "operation_ref"]
    paid = p[(p["status"] == "paid") & p["amount_cents"].notna()][cols]
    payfip_ops = set(p.loc[p["source"] == "payfip", "operation_ref"].dropna())
    portal = paid["source"] == "portal"
    paid = paid[~portal | ~paid["operation_ref"].isin(payfip_ops)]
    out = pd.concat([paid, transfers(td)[cols]], ignore_index=True)
    out["amount_cents"] = out["amount_cents"].astype("int64")
    out["paid_on"] = pd.to_datetime(out["paid_on"])
    out["paid_at"] = pd.to_datetime(out["paid_at"])
    out["at"] = out["paid_at"].fillna(out["paid_on"] + pd.Timedelta(hours=12))
    return out.sort_values(["at", "payment_id"]).reset_index(drop=True)


# ------------------------------------------------------------------ names

def norm(text) -> str:
    """Upper case, no accents, letters only (mojibake 'Ã©' loses its second byte)."""
    if not isinstance(text, str):
        return ""
    t = unicodedata.normalize("NFKD", text)
    t = "".join(c for c in t if not unicodedata.combining(c)).upper()
    return " ".join(re.sub(r"[^A-Z]+", " ", t).split())


@functools.lru_cache(maxsize=65536)
def payer_words(name) -> list[str]:
    """The payer's name without its titles ('M OU MME DUPONT' -> DUPONT); a one-letter
    word after the name is an initial ('DUPONT M': Mathieu), not 'Monsieur'."""
    w = norm(name).split()
    return [x for k, x in enumerate(w) if x not in TITLES
            or (len(x) == 1 and any(y not in TITLES for y in w[:k]))]


class Households:
    """Name index of households: normalised surnames (the household's name, its adults'
    last and birth names) -> household ids, plus their adults' first names."""

    def __init__(self, td):
        self.surnames: dict[int, set[str]] = defaultdict(set)
        self.first: dict[int, set[str]] = defaultdict(set)
        self.children: dict[int, set[str]] = defaultdict(set)
        self.code: dict[str, int] = {}
        h = td["household"]
        for hid, name, code in zip(h["household_id"], h["name"], h["family_code"]):
            if pd.isna(hid):
                continue
            self.surnames[int(hid)].add(norm(name))
            if isinstance(code, str):
                self.code[code] = int(hid)
        m, p = td["membership"], td["person"]
        if len(m) and len(p):
            kids = m[m["role"] == "child"].merge(p, on="person_id")
            for hid, first in zip(kids["household_id"], kids["first_name"]):
                self.children[int(hid)].update(norm(first).split())
            adults = m[m["role"] != "child"].merge(p, on="person_id")
            for hid, last, birth, first in zip(adults["household_id"], adults["last_name"],
                                               adults["birth_name"], adults["first_name"]):
                for s in (last, birth):
                    if norm(s):
                        self.surnames[int(hid)].add(norm(s))
                for f in norm(first).split():
                    self.first[int(hid)].add(f)
        self.index: dict[str, set[int]] = defaultdict(set)
        for hid, names in self.surnames.items():
            for s in names:
                if s:
                    self.index[s].add(hid)
        # first name -> households, initial -> households with a first name so starting
        self.first_index: dict[str, set[int]] = defaultdict(set)
        self.initial: dict[str, set[int]] = defaultdict(set)
        for hid, firsts in self.first.items():
            for f in firsts:
                self.first_index[f].add(hid)
                self.initial[f[0]].add(hid)

    def of_payer(self, name) -> set[int]:
        """Households whose surname appears as a run of words in the payer's name."""
        w = payer_words(name)
        found: set[int] = set()
        for i in range(len(w)):
            for j in range(i + 1, min(len(w), i + 4) + 1):
                if w[i] in PARTICLES and j == i + 1:
                    continue
                found |= self.index.get(" ".join(w[i:j]), set())
        return found

    def name_score(self, hid, name) -> int:
        """0 no match, 1 a surname close to the payer's, 2 surname, 3 surname + first name
        (or initial)."""
        w = payer_words(name)
        if not w or hid is None:
            return 0
        text = " " + " ".join(w) + " "
        best = 0
        for s in self.surnames.get(hid, ()):
            if s and f" {s} " in text:
                best = 2
                rest = text.replace(f" {s} ", " ").split()
                firsts = self.first.get(hid, set())
                if any(r in firsts or (len(r) == 1 and any(f.startswith(r) for f in firsts))
                       for r in rest):
                    return 3
            elif s and best < 1 and max(fuzz.ratio(s, x) for x in w) >= 80:
                best = 1
        return best


# ------------------------------------------------------------------ references

def neighbours(token: str) -> set[str]:
    """Invoice numbers one typing slip away from a quoted 12-14 digit token."""
    out: set[str] = set()
    n = len(token)
    digits = "0123456789"
    if n == 13:
        for i in range(n):
            for d in digits:
                if d != token[i]:
                    out.add(token[:i] + d + token[i + 1:])
            for j in range(i + 1, n):
                if token[i] != token[j]:
                    s = list(token)
                    s[i], s[j] = s[j], s[i]
                    out.add("".join(s))
    elif n == 12:
        for i in range(n + 1):
            for d in digits:
                out.add(token[:i] + d + token[i:])
    elif n == 14:
        for i in range(n):
            out.add(token[:i] + token[i + 1:])
    return out


def quoted_tokens(text) -> list[str]:
    """Digit tokens of a quoted reference (family codes left out)."""
    if not isinstance(text, str):
        return []
    t = _FAMILY.sub(" ", text.upper())
    return [x for x in _TOKEN.findall(t) if len(x) >= 6]


# ------------------------------------------------------------------ matching

class Invoices:
    """The invoices with their static blocking indexes."""

    def __init__(self, td):
        inv = td["invoice"]
        inv = inv[inv["invoice_number"].notna()]
        self.number = list(inv["invoice_number"].astype(str))
        self.household = [None if pd.isna(h) else int(h) for h in inv["household_id"].tolist()]
        self.amount = [0 if pd.isna(a) else int(a) for a in inv["amount_cents"].tolist()]
        self.issued = [None if pd.isna(d) else d.toordinal()
                       for d in pd.to_datetime(inv["issued_on"]).tolist()]
        self.state = list(inv["state"].fillna("E"))
        self.month = [int(n[4:6]) if n[4:6].isdigit() else None for n in self.number]
        self.by_number = {n: i for i, n in enumerate(self.number)}
        self.by_seq: dict[str, list[int]] = defaultdict(list)
        self.by_household: dict[int, list[int]] = defaultdict(list)
        #: (household, invoice amount) -> invoices: what a double payment pays again
        self.by_full: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, n in enumerate(self.number):
            self.by_seq[n[-7:]].append(i)
            h = self.household[i]
            if h is not None:
                self.by_household[h].append(i)
                self.by_full[(h, self.amount[i])].append(i)
        # what an invoice still owes (a cancelled invoice owes nothing)
        self.owed = [0 if s == "A" else a for s, a in zip(self.state, self.amount)]


def _amount_points(amount: int, owed: int, full: int) -> int:
    if owed > 0 and amount == owed:
        return 20
    if owed > 0 and amount > owed and amount - owed < 1000 and amount % 500 == 0:
        return 10  # rounded up to the next 5 or 10 euros
    if amount == full:
        return 8  # the invoice's amount, already (partly) paid: a double payment?
    if 0 < amount < owed:
        return 6  # part of what is owed
    return 0


class Payer:
    """What a payer's name says about the households, computed once per name.

    ``open_sets``: the households of a surname written in the name (their open invoices
    are candidates); ``exact_sets``: every household whose surname appears in it (name
    score >= 2); ``third``: those that also match a first name or initial (score 3);
    ``fuzzy_sets``: households with a surname close to a word of the name (score 1).
    The sets are the shared index sets, never copied."""

    __slots__ = ("_score", "best", "exact", "exact_sets", "fuzzy_sets", "open_sets", "third")

    def __init__(self, hh: Households, name: str, fuzzy):
        w = payer_words(name)
        self.open_sets, self.exact_sets, self.fuzzy_sets = [], [], []
        self.third: set[int] = set()
        self._score: dict[int, int] = {}
        for i in range(len(w)):
            for j in range(i + 1, len(w) + 1):
                s = hh.index.get(" ".join(w[i:j]))
                if s:
                    self.exact_sets.append(s)
                    if j <= i + 4 and not (w[i] in PARTICLES and j == i + 1):
                        self.open_sets.append(s)
        self.exact: set[int] = set().union(*self.exact_sets) if len(self.exact_sets) > 1 \
            else (self.exact_sets[0] if self.exact_sets else set())
        if self.exact:
            maybe: set[int] = set()
            for r in set(w):
                src = hh.initial.get(r, ()) if len(r) == 1 else hh.first_index.get(r, ())
                maybe |= self.exact & src if len(src) > len(self.exact) else {
                    h for h in src if h in self.exact}
            self.third = {h for h in maybe if hh.name_score(h, name) == 3}
        self.fuzzy_sets = [s for x in set(w) for s in fuzzy(x)]
        #: the best name score any household can have
        self.best = 3 if self.third else 2 if self.exact else 1 if any(self.fuzzy_sets) else 0

    def score(self, hid) -> int:
        """``Households.name_score(hid, name)``, by set lookups."""
        if hid is None:
            return 0
        if hid in self.third:
            return 3
        if hid in self.exact:
            return 2
        got = self._score.get(hid)
        if got is None:
            got = 1 if any(hid in s for s in self.fuzzy_sets) else 0
            self._score[hid] = got
        return got

    def open_households(self):
        """Households reached by a written surname, best name score first."""
        if self.third:
            for h in self.third:
                if any(h in s for s in self.open_sets):
                    yield 3, h
        seen = set()
        for s in self.open_sets:
            for h in s:
                if h not in self.third and h not in seen:
                    seen.add(h)
                    yield 2, h


class Matcher:
    """Finds each payment's invoice through indexes that stay small as the town grows:
    reference tokens, family code, the open invoices (and the invoices of exactly the
    amount) of the households the payer's name reaches, and open invoices by balance
    then household. Candidates are generated best possible score first; a group whose
    best possible score is below the best found is skipped, so the result is that of
    scoring every candidate."""

    PAYERS_CACHED = 100000

    def __init__(self, td):
        self.inv = Invoices(td)
        self.hh = Households(td)
        self.reset()
        self.surnames = list(self.hh.index)
        self._fuzzy: dict[str, list[set[int]]] = {}
        self._payers: dict[str, Payer] = {}
        self.child_words: set[str] = set().union(*self.hh.children.values()) \
            if self.hh.children else set()

    # -- indexes
    def reset(self) -> None:
        """Provisional balances back to what the invoices owe before any payment."""
        self.owed = list(self.inv.owed)
        #: balance -> household (None: no household) -> open invoices owing exactly it
        self.by_owed: dict[int, dict[int | None, set[int]]] = defaultdict(dict)
        #: household -> its open invoices
        self.open: dict[int, set[int]] = defaultdict(set)
        for i, o in enumerate(self.owed):
            if o > 0:
                self._add(i, o)

    def _add(self, i: int, owed: int) -> None:
        h = self.inv.household[i]
        self.by_owed[owed].setdefault(h, set()).add(i)
        if h is not None:
            self.open[h].add(i)

    def _remove(self, i: int, owed: int) -> None:
        h = self.inv.household[i]
        d = self.by_owed[owed]
        d[h].discard(i)
        if not d[h]:
            del d[h]
        if not d:
            del self.by_owed[owed]
        if h is not None:
            self.open[h].discard(i)

    def take(self, i: int, amount: int) -> None:
        """Provisionally apply ``amount`` to invoice ``i`` (keeps the indexes)."""
        before = self.owed[i]
        after = max(0, before - amount)
        if before == after:
            return
        if before > 0:
            self._remove(i, before)
        if after > 0:
            self._add(i, after)
        self.owed[i] = after

    # -- names
    def fuzzy(self, word: str) -> list[set[int]]:
        """Household sets of the surnames close to ``word`` (rapidfuzz ratio >= 80)."""
        got = self._fuzzy.get(word)
        if got is None:
            hits = process.extract(word, self.surnames, scorer=fuzz.ratio, score_cutoff=80,
                                   limit=None)
            got = [self.hh.index[s] for s, _, _ in hits]
            self._fuzzy[word] = got
        return got

    def payer(self, name) -> Payer | None:
        if not isinstance(name, str):
            return None
        got = self._payers.get(name)
        if got is None:
            if len(self._payers) >= self.PAYERS_CACHED:
                self._payers.clear()
            got = self._payers[name] = Payer(self.hh, name, self.fuzzy)
        return got

    def name_score(self, hid, payer) -> int:
        who = self.payer(payer)
        return 0 if who is None else who.score(hid)

    def quoted(self, tokens: list[str]):
        """Invoices one typing slip away from the quoted tokens."""
        inv = self.inv
        for t in tokens:
            near = {inv.by_number[n] for n in neighbours(t) if n in inv.by_number}
            if len(t) == 7:
                near |= set(inv.by_seq.get(t, ()))
            yield from near

    def best(self, p) -> tuple[int | None, str | None, int]:
        inv, owed_now, amount = self.inv, self.owed, int(p.amount_cents)
        day = None if pd.isna(p.paid_on) else p.paid_on.toordinal()
        who = self.payer(p.payer_name)
        named = who is not None
        words = set(norm(p.invoice_ref).split()) if isinstance(p.invoice_ref, str) else set()
        months = {MONTHS[w] for w in words if w in MONTHS}
        kids = words & self.child_words
        hint_max = (25 if months else 0) + (3 if kids else 0)
        children = self.hh.children
        scored: list[tuple] = []
        seen: set[int] = set()
        top = [-10 ** 9]

        def consider(i: int, ref: int, how: str) -> None:
            if i in seen:
                return
            seen.add(i)
            issued = inv.issued[i]
            if issued is not None and day is not None:
                age = day - issued
                if age < -1:
                    return  # paid before the invoice existed
                late = age > WINDOW_DAYS
            else:
                age, late = 0, False
            pts = _amount_points(amount, owed_now[i], inv.amount[i])
            if (ref == 0 and (pts == 0 or late)) or (ref == 15 and pts == 0):
                return  # no reference: the amount must fit
            h = inv.household[i]
            name = who.score(h) if named else 0
            if ref == 0 and not named:
                # nobody named: only a recent invoice owing exactly the amount
                if pts not in (20, 10) or age > NAMELESS_DAYS:
                    return
            elif ref == 0 and (name == 0 or (name == 1 and pts < 20)):
                return  # ... and so must the payer
            score = ref + pts + 5 * name - (10 if late else 0)
            if words:  # a transfer's free text: the billed month, a child's first name
                if months:
                    score += 25 if inv.month[i] in months else -5
                if kids and h in children and kids & children[h]:
                    score += 3
            if ref == 0:  # reached by the payer's name or by the amount: say which fits
                how = "amount_payer_window" if pts == 20 else "payer_open_invoice"
            scored.append((score, -max(age, 0), i, how))  # ties: the latest invoice
            top[0] = max(top[0], score)

        # what the payment quotes: the exact number, one typing slip away (when such a
        # candidate could still win), the family code
        tokens = quoted_tokens(p.invoice_ref)
        for t in tokens:
            if t in inv.by_number:
                consider(inv.by_number[t], 40, "exact_reference")
        if tokens and 30 + 20 + 5 * (who.best if named else 0) + hint_max >= top[0]:
            for i in self.quoted(tokens):
                consider(i, 30, "mistyped_reference")
        if isinstance(p.invoice_ref, str):
            for c in _FAMILY.findall(p.invoice_ref.upper()):
                for i in inv.by_household.get(self.hh.code.get("F" + c), ()):
                    consider(i, 15, "family_code_amount")
        # open invoices owing exactly the amount (20 points), best name first
        owing = self.by_owed.get(amount, {})
        if owing and not named:
            if 20 + hint_max >= top[0]:
                for hs in owing.values():
                    for i in hs:
                        consider(i, 0, "amount_payer_window")
        elif owing:
            groups = ((3, [who.third]), (2, who.exact_sets), (1, who.fuzzy_sets))
            for n, sets in groups:
                if 20 + 5 * n + hint_max < top[0]:
                    break  # no household of this name score or below can win
                for s in sets:  # walk the smaller side: the name's households or the amount's
                    hs = s if len(s) <= len(owing) else owing.keys()
                    other = owing if hs is s else s
                    for h in hs:
                        if h in other:
                            for i in owing[h]:
                                consider(i, 0, "amount_payer_window")
        if named:
            # the payer's households: open invoices, and the invoices of exactly the amount
            # (paid again); their best possible score is bounded by the name score
            bound = 10 if amount % 500 == 0 else 8
            for n, h in who.open_households():
                if bound + 5 * n + hint_max < top[0]:
                    break
                for i in self.open.get(h, ()):
                    consider(i, 0, "payer_open_invoice")
                for i in inv.by_full.get((h, amount), ()):
                    consider(i, 0, "payer_open_invoice")
        elif not tokens and amount % 500 == 0 and 10 + hint_max >= top[0]:
            # nobody named, a round sum: also the invoices it may have rounded up
            for owed in range(amount - 999, amount):
                for hs in self.by_owed.get(owed, {}).values():
                    for i in hs:
                        consider(i, 0, "amount_payer_window")
        if not scored:
            return None, None, 0
        scored.sort(reverse=True)
        top_ = scored[0]
        if len(scored) > 1 and scored[1][0] == top_[0] and top_[0] < 40 and \
                inv.household[scored[1][2]] != inv.household[top_[2]]:
            return None, None, 0  # two households fit as well: leave it to the steward
        return top_[2], top_[3], top_[0]


def match(td, pay: pd.DataFrame) -> tuple[pd.DataFrame, Invoices]:
    """Target invoice of each received payment (columns invoice_index, method, score) and
    the invoices they index."""
    m = Matcher(td)
    target = [None] * len(pay)
    method = [None] * len(pay)
    score = [0] * len(pay)
    provider = pay["source"].isin(PROVIDER_SOURCES).values
    quoted = pay["invoice_ref"].map(lambda t: bool(quoted_tokens(t))).values
    named = pay["payer_name"].notna().values
    passes = [provider, ~provider & quoted, ~provider & ~quoted & named,
              ~provider & ~quoted & ~named]
    rows = list(pay.itertuples())
    for k, mask in enumerate(passes):
        for pos in pay.index[mask]:
            p = rows[pos]
            if k == 0:
                i = m.inv.by_number.get(str(p.invoice_ref))
                if i is not None:
                    target[pos], method[pos], score[pos] = i, "exact_reference", 100
                    m.take(i, int(p.amount_cents))
                    continue
            i, how, s = m.best(p)
            if i is not None:
                target[pos], method[pos], score[pos] = i, how, s
                m.take(i, int(p.amount_cents))
    out = pay.copy()
    out["invoice_index"] = target
    out["method"] = method
    out["score"] = score
    return out, m.inv


# ------------------------------------------------------------------ application

def apply(matched: pd.DataFrame, inv: Invoices) -> pd.DataFrame:
    """Apply the payments to their invoices in time order.

    Adds ``invoice_number``, ``household_id``, ``invoice_amount_cents``, ``owed_before``,
    ``applied_cents``, ``unallocated_cents``, ``case`` (normal, partial, remainder,
    overpayment, double, cancelled_invoice, unmatched) and ``reference_case`` (exact,
    mistyped, none, as the payer quoted it)."""
    owed = list(inv.owed)
    paid_before: dict[int, int] = defaultdict(int)
    rows = []
    for p in matched.itertuples():
        amount, i = int(p.amount_cents), p.invoice_index
        tokens = quoted_tokens(p.invoice_ref)
        if i is None or pd.isna(i):
            ref_case = "none" if not tokens else (
                "exact" if any(t in inv.by_number for t in tokens) else "mistyped")
            rows.append((None, None, None, None, 0, amount, "unmatched", ref_case))
            continue
        i = int(i)
        number = inv.number[i]
        ref_case = "exact" if number in tokens else ("mistyped" if tokens else "none")
        before = owed[i]
        applied = min(amount, before)
        owed[i] = before - applied
        if before == 0:
            case = "double" if paid_before[i] else "cancelled_invoice"
        elif amount < before:
            case = "partial"
        elif amount > before:
            case = "overpayment"
        else:
            case = "remainder" if paid_before[i] else "normal"
        paid_before[i] += applied
        rows.append((number, inv.household[i], inv.amount[i], before, applied,
                     amount - applied, case, ref_case))
    cols = ["invoice_number", "household_id", "invoice_amount_cents", "owed_before",
            "applied_cents", "unallocated_cents", "case", "reference_case"]
    out = matched.drop(columns=["invoice_index"]).copy()
    extra = pd.DataFrame(rows, columns=cols, index=matched.index)
    for c in cols:
        out[c] = extra[c]
    left = {inv.number[k]: v for k, v in enumerate(owed)}
    out["owed_now"] = out["invoice_number"].map(left)
    return out


def ledger(td) -> pd.DataFrame:
    """Every received payment with its invoice, applied and unallocated cents."""
    pay = received(td)
    return apply(*match(td, pay))
