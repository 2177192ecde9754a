"""Payment allocation: which invoice each received payment pays, and how much of it.

Two phases, both in integer cents:

1. *Matching* gives every received payment one target invoice (or none), in passes of
   decreasing trust: provider references (PayFiP, direct debit: always the exact invoice
   number), then payments quoting a reference (exact or mistyped, desk and transfers),
   then payments quoting none. Each pass runs in time order and keeps a provisional
   outstanding balance per invoice, so a remainder finds the balance a partial payment
   left. Candidates are blocked, never crossed with every invoice: the quoted digit
   tokens and their one-edit neighbours (a digit changed, dropped, added or two digits
   swapped, the period forgotten), the family code quoted in a transfer, the invoices of
   the payer's name, and the open invoices of exactly the payment's amount in a date
   window. Candidates are scored on reference, amount, payer name and dates.
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
from rapidfuzz import fuzz

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
    return [w for w in norm(name).split() if w not in TITLES]


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
    """The invoices with the blocking indexes matching needs and a running balance."""

    def __init__(self, td):
        inv = td["invoice"]
        inv = inv[inv["invoice_number"].notna()]
        self.number = list(inv["invoice_number"].astype(str))
        self.household = [None if pd.isna(h) else int(h) for h in inv["household_id"]]
        self.amount = [0 if pd.isna(a) else int(a) for a in inv["amount_cents"]]
        self.issued = [None if pd.isna(d) else d.toordinal()
                       for d in pd.to_datetime(inv["issued_on"])]
        self.state = list(inv["state"].fillna("E"))
        self.by_number = {n: i for i, n in enumerate(self.number)}
        self.by_seq: dict[str, list[int]] = defaultdict(list)
        self.by_household: dict[int, list[int]] = defaultdict(list)
        self.by_amount: dict[int, list[int]] = defaultdict(list)
        for i, n in enumerate(self.number):
            self.by_seq[n[-7:]].append(i)
            if self.household[i] is not None:
                self.by_household[self.household[i]].append(i)
            self.by_amount[self.amount[i]].append(i)
        # what an invoice still owes (a cancelled invoice owes nothing)
        self.owed = [0 if s == "A" else a for s, a in zip(self.state, self.amount)]

    def outstanding_index(self, owed) -> dict[int, list[int]]:
        out: dict[int, list[int]] = defaultdict(list)
        for i, o in enumerate(owed):
            if o > 0:
                out[o].append(i)
        return out


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


class Matcher:
    def __init__(self, td):
        self.inv = Invoices(td)
        self.hh = Households(td)
        self.owed = list(self.inv.owed)  # provisional balances while matching
        self.by_owed = self.inv.outstanding_index(self.owed)
        self.names: dict[tuple, int] = {}

    def name_score(self, hid, payer) -> int:
        if not isinstance(payer, str) or hid is None:
            return 0
        key = (hid, payer)
        if key not in self.names:
            self.names[key] = self.hh.name_score(hid, payer)
        return self.names[key]

    def hints(self, p, i: int) -> int:
        """Words of a transfer's free text: the billed month, a child's first name."""
        words = set(norm(p.invoice_ref).split()) if isinstance(p.invoice_ref, str) else set()
        if not words:
            return 0
        pts = 0
        months = {MONTHS[w] for w in words if w in MONTHS}
        if months:
            pts += 25 if int(self.inv.number[i][4:6]) in months else -5
        if words & self.hh.children.get(self.inv.household[i], set()):
            pts += 3
        return pts

    def take(self, i: int, amount: int) -> None:
        """Provisionally apply ``amount`` to invoice ``i`` (keeps the amount index)."""
        before = self.owed[i]
        after = max(0, before - amount)
        if before == after:
            return
        if before > 0:
            self.by_owed[before].remove(i)
        if after > 0:
            self.by_owed[after].append(i)
        self.owed[i] = after

    def candidates(self, p) -> dict[int, tuple[int, str]]:
        """invoice index -> (reference points, how the invoice was reached)."""
        inv, out = self.inv, {}
        tokens = quoted_tokens(p.invoice_ref)
        for t in tokens:
            if t in inv.by_number:
                out[inv.by_number[t]] = (40, "exact_reference")
        for t in tokens:
            near = {inv.by_number[n] for n in neighbours(t) if n in inv.by_number}
            if len(t) == 7:
                near |= set(inv.by_seq.get(t, ()))
            for i in near:
                out.setdefault(i, (30, "mistyped_reference"))
        codes = _FAMILY.findall((p.invoice_ref or "").upper()) if isinstance(
            p.invoice_ref, str) else []
        for c in codes:
            hid = self.hh.code.get("F" + c)
            for i in inv.by_household.get(hid, ()):
                out.setdefault(i, (15, "family_code_amount"))
        for hid in self.hh.of_payer(p.payer_name):
            for i in inv.by_household.get(hid, ()):
                out.setdefault(i, (0, "payer_open_invoice"))
        amount = int(p.amount_cents)
        for i in self.by_owed.get(amount, ()):
            out.setdefault(i, (0, "amount_payer_window"))
        if not isinstance(p.payer_name, str) and not tokens and amount % 500 == 0:
            # nobody named, a round sum: also the invoices it may have rounded up
            for owed in range(amount - 999, amount):
                for i in self.by_owed.get(owed, ()):
                    out.setdefault(i, (0, "amount_payer_window"))
        return out

    def best(self, p) -> tuple[int | None, str | None, int]:
        cands = self.candidates(p)
        if not cands:
            return None, None, 0
        inv, amount = self.inv, int(p.amount_cents)
        day = None if pd.isna(p.paid_on) else p.paid_on.toordinal()
        scored = []
        for i, (ref, how) in cands.items():
            issued = inv.issued[i]
            if issued is not None and day is not None:
                age = day - issued
                if age < -1:
                    continue  # paid before the invoice existed
                late = age > WINDOW_DAYS
            else:
                age, late = 0, False
            pts = _amount_points(amount, self.owed[i], inv.amount[i])
            if (ref == 0 and (pts == 0 or late)) or (ref == 15 and pts == 0):
                continue  # no reference: the amount must fit
            name = self.name_score(inv.household[i], p.payer_name)
            if ref == 0 and not isinstance(p.payer_name, str):
                # nobody named: only a recent invoice owing exactly the amount
                if pts not in (20, 10) or age > NAMELESS_DAYS:
                    continue
            elif ref == 0 and (name == 0 or (name == 1 and pts < 20)):
                continue  # ... and so must the payer
            score = ref + pts + 5 * name - (10 if late else 0) + self.hints(p, i)
            if ref == 0:  # reached by the payer's name or by the amount: say which fits
                how = "amount_payer_window" if pts == 20 else "payer_open_invoice"
            scored.append((score, -max(age, 0), i, how))  # ties: the latest invoice
        if not scored:
            return None, None, 0
        scored.sort(reverse=True)
        top = scored[0]
        if len(scored) > 1 and scored[1][0] == top[0] and top[0] < 40 and \
                inv.household[scored[1][2]] != inv.household[top[2]]:
            return None, None, 0  # two households fit as well: leave it to the steward
        return top[2], top[3], top[0]


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
