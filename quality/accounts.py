"""Steward accounts and sessions of the web page.

- Passwords are hashed with scrypt (stdlib ``hashlib.scrypt``, n=2**14, r=8, p=1,
  a 16-byte random salt) and compared in constant time; a password is never stored,
  logged or echoed. Accounts are created from the command line only.
- Roles: ``steward`` (may decide on flags) and ``lecture`` (read-only).
- Five failed log-ins in a row lock the account for 15 minutes.
- A session is a random token in an HttpOnly cookie; the warehouse keeps only its
  SHA-256, the login, an anti-CSRF token and the expiry. Sessions expire after
  ``GUICHET_STEWARD_IDLE_MINUTES`` (default 30) without a request and after
  ``GUICHET_STEWARD_MAX_HOURS`` (default 10) in any case.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from quality import store
from schemas.tables import table

ROLES = ("steward", "lecture")
ROLE_FR = {"steward": "gestionnaire de données", "lecture": "lecture seule"}
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD = 10
MAX_FAILURES = 5
LOCK_MINUTES = 15
TOUCH_EVERY = dt.timedelta(seconds=30)  # how often a session's idle clock is written
_DUMMY_HASH: str | None = None


class AccountError(ValueError):
    """An account operation refused; the message is French."""


@dataclass(frozen=True)
class Session:
    town: str
    login: str
    name: str | None
    role: str
    csrf_token: str
    expires_at: dt.datetime

    @property
    def can_decide(self) -> bool:
        return self.role == "steward"


# ------------------------------------------------------------- passwords
def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, maxmem=64 * 2**20,
                         **SCRYPT)
    b64 = base64.b64encode
    return (f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}$"
            f"{b64(salt).decode()}${b64(key).decode()}")


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt),
                             n=int(n), r=int(r), p=int(p), dklen=len(expected),
                             maxmem=64 * 2**20)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def check_password_strength(password: str, login: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"Le mot de passe doit compter au moins {MIN_PASSWORD} caractères.")
    if login.lower() in password.lower():
        raise AccountError("Le mot de passe ne doit pas contenir l'identifiant.")


# ------------------------------------------------------------- accounts
def create_user(engine: sa.Engine, town: str, login: str, password: str, *, role: str,
                name: str | None = None, author: str = store.SYSTEM_AUTHOR) -> None:
    login = (login or "").strip().lower()
    if not login or not all(c.isalnum() or c in "._-" for c in login):
        raise AccountError("Identifiant invalide (lettres, chiffres, . _ - uniquement).")
    if role not in ROLES:
        raise AccountError(f"Rôle inconnu : {role} (steward ou lecture).")
    check_password_strength(password, login)
    store.ensure_schema(engine)
    u = table("steward_user")
    with store.town_transaction(engine, town) as conn:
        if conn.execute(sa.select(u.c.login).where(u.c.town == town, u.c.login == login)).first():
            raise AccountError(f"Le compte {login} existe déjà pour la commune {town}.")
        conn.execute(sa.insert(u).values(
            town=town, login=login, name=name, role=role, password_hash=hash_password(password),
            active=True, created_at=store.utcnow(), failed_logins=0))
        store.audit(conn, town, author, "account_created",
                    f"Compte {login} créé ({ROLE_FR[role]}).")


def set_password(engine: sa.Engine, town: str, login: str, password: str, *,
                 author: str = store.SYSTEM_AUTHOR) -> None:
    check_password_strength(password, login)
    _update_user(engine, town, login, author, "password_changed",
                 "Mot de passe changé ; sessions fermées.",
                 password_hash=hash_password(password), failed_logins=0, locked_until=None)


def set_active(engine: sa.Engine, town: str, login: str, active: bool, *,
               author: str = store.SYSTEM_AUTHOR) -> None:
    _update_user(engine, town, login, author, "account_enabled" if active else "account_disabled",
                 "Compte réactivé." if active else "Compte désactivé ; sessions fermées.",
                 active=active)


def _update_user(engine, town, login, author, action, message, **values) -> None:
    u = table("steward_user")
    with store.town_transaction(engine, town) as conn:
        n = conn.execute(sa.update(u).where(u.c.town == town, u.c.login == login)
                         .values(**values)).rowcount
        if not n:
            raise AccountError(f"Compte inconnu : {login} (commune {town}).")
        s = table("steward_session")
        conn.execute(sa.delete(s).where(s.c.town == town, s.c.login == login))
        store.audit(conn, town, author, action, f"{login} : {message}")


def list_users(engine: sa.Engine, town: str | None = None) -> list[dict]:
    store.ensure_schema(engine)
    u = table("steward_user")
    stmt = sa.select(u.c.town, u.c.login, u.c.name, u.c.role, u.c.active, u.c.created_at,
                     u.c.last_login_at).order_by(u.c.town, u.c.login)
    if town:
        stmt = stmt.where(u.c.town == town)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def towns_with_accounts(engine: sa.Engine) -> list[str]:
    u = table("steward_user")
    with engine.connect() as conn:
        return [t for (t,) in conn.execute(sa.select(u.c.town).distinct()
                                           .where(u.c.active.is_(True)).order_by(u.c.town))]


# ------------------------------------------------------------- sessions
def idle_timeout() -> dt.timedelta:
    return dt.timedelta(minutes=float(os.environ.get("GUICHET_STEWARD_IDLE_MINUTES", "30")))


def max_duration() -> dt.timedelta:
    return dt.timedelta(hours=float(os.environ.get("GUICHET_STEWARD_MAX_HOURS", "10")))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def login(engine: sa.Engine, town: str, login_: str, password: str) -> str | None:
    """A new session token when the password is right (None otherwise; audited)."""
    global _DUMMY_HASH
    login_ = (login_ or "").strip().lower()
    u = table("steward_user")
    with engine.connect() as conn:
        user = conn.execute(sa.select(u).where(u.c.town == town, u.c.login == login_)
                            ).mappings().first()
    now = store.utcnow()
    if user is None:
        _DUMMY_HASH = _DUMMY_HASH or hash_password(secrets.token_hex(8))
        verify_password(password, _DUMMY_HASH)  # same cost whether the account exists or not
        return None
    locked = user["locked_until"] is not None and user["locked_until"] > now
    ok = verify_password(password, user["password_hash"]) and user["active"] and not locked
    with store.town_transaction(engine, town) as conn:
        if not ok:
            failures = (user["failed_logins"] or 0) + (0 if locked else 1)
            values = {"failed_logins": failures}
            if failures >= MAX_FAILURES and not locked:
                values["locked_until"] = now + dt.timedelta(minutes=LOCK_MINUTES)
            conn.execute(sa.update(u).where(u.c.town == town, u.c.login == login_)
                         .values(**values))
            store.audit(conn, town, login_, "login_failed",
                        "Connexion refusée" + (" (compte verrouillé)." if locked or
                                               "locked_until" in values else "."))
            return None
        token = secrets.token_urlsafe(32)
        conn.execute(sa.update(u).where(u.c.town == town, u.c.login == login_).values(
            failed_logins=0, locked_until=None, last_login_at=now))
        s = table("steward_session")
        conn.execute(sa.delete(s).where(s.c.expires_at < now))  # tidy expired sessions
        conn.execute(sa.insert(s).values(
            town=town, session_hash=_token_hash(token), login=login_,
            csrf_token=secrets.token_urlsafe(32), created_at=now, last_seen_at=now,
            expires_at=now + max_duration()))
        store.audit(conn, town, login_, "login", "Connexion.")
    return token


def session_for(engine: sa.Engine, token: str | None) -> Session | None:
    """The live session of a cookie token (its idle clock restarted), or None."""
    if not token or len(token) > 200:
        return None
    s, u = table("steward_session"), table("steward_user")
    now = store.utcnow()
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(s, u.c.role, u.c.name, u.c.active)
            .join(u, sa.and_(u.c.town == s.c.town, u.c.login == s.c.login))
            .where(s.c.session_hash == _token_hash(token))).mappings().first()
        if row is None:
            return None
    expired = (not row["active"] or row["expires_at"] <= now
               or row["last_seen_at"] + idle_timeout() <= now)
    if expired or now - row["last_seen_at"] >= TOUCH_EVERY:
        # writes are rare (a page view only reads): on SQLite a write waits for the
        # nightly run's transactions, reads never do
        with engine.begin() as conn:
            where = sa.and_(s.c.town == row["town"], s.c.session_hash == row["session_hash"])
            if expired:
                conn.execute(sa.delete(s).where(where))
                return None
            conn.execute(sa.update(s).where(where).values(last_seen_at=now))
    return Session(row["town"], row["login"], row["name"], row["role"], row["csrf_token"],
                   row["expires_at"])


def logout(engine: sa.Engine, token: str) -> None:
    s = table("steward_session")
    with engine.begin() as conn:
        row = conn.execute(sa.select(s.c.town, s.c.login).where(
            s.c.session_hash == _token_hash(token))).first()
        conn.execute(sa.delete(s).where(s.c.session_hash == _token_hash(token)))
    if row:
        with store.town_transaction(engine, row.town) as conn:
            store.audit(conn, row.town, row.login, "logout", "Déconnexion.")


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf_token, submitted)
