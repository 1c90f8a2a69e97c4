"""Users, password hashes, sessions, CSRF tokens and login rate limiting for the gateway's web layer.

Passwords are hashed with :func:`hashlib.scrypt` (memory-hard, salted per user). Why not bcrypt: scrypt is in
the standard library, so the gateway needs no native extension to build on a Pi or in a slim container, and
it is at least as strong against GPU guessing. The stored form is self-describing, so the cost can be raised
later without breaking old hashes::

    scrypt$16384$8$1$<salt b64>$<hash b64>

>>> h = hash_password("mật khẩu")
>>> check_password("mật khẩu", h), check_password("wrong", h)
(True, False)

Users and sessions live in one SQLite file (:class:`UserStore`). The session cookie carries the session id,
its expiry and an HMAC of both under the app secret (:class:`SessionCodec`); the server-side row is what makes
logout and expiry real. The CSRF token of a session is ``HMAC(secret, "csrf|" + sid)``: nothing to store.

Roles (see :data:`ROLES`): ``province_admin`` sees and changes everything; ``center_manager`` (always bound to
a center) sees and changes only that center; ``technician`` works on devices, alerts and counters, and sees
no satisfaction ratings; ``viewer`` only reads; ``clerk`` (bound to a center and a clerk id) sees only their
own report rows and ratings (docs/reports.md). A technician or viewer may also be bound to one center.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from civiq.clock import Clock, SystemClock
from civiq.errors import GatewayError

ROLES = ("province_admin", "center_manager", "technician", "viewer", "clerk")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
CENTER_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MIN_PASSWORD = 8

# scrypt cost: n=2**14, r=8 needs 16 MiB and ~50 ms on a Pi 4 class core: fine for a login, costly for guessing.
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32


class AuthError(GatewayError, ValueError):
    """A user record that cannot be created or changed; the message says why."""


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A salted scrypt hash in the self-describing ``scrypt$n$r$p$salt$hash`` form."""
    salt = secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=SCRYPT_LEN,
                        maxmem=128 * r * n * 2)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(dk)}"


def check_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (constant-time compare); False on any malformed hash."""
    try:
        scheme, n_s, r_s, p_s, salt_s, dk_s = stored.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        if scheme != "scrypt" or n > 2**20 or r > 32 or p > 16:
            return False
        want = _unb64(dk_s)
        got = hashlib.scrypt(password.encode("utf-8"), salt=_unb64(salt_s), n=n, r=r, p=p, dklen=len(want),
                             maxmem=128 * r * n * 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# A hash to spend the same time on when the user does not exist (no user-enumeration by timing).
_DUMMY_HASH = hash_password("not a real password, only for timing")


@dataclass(frozen=True)
class User:
    name: str
    role: str
    center: str | None = None
    clerk: str | None = None  # role ``clerk``: the clerk id the edge's events carry (``clerk`` key)

    def sees(self, center: str) -> bool:
        """May this user read ``center``?"""
        return self.center is None or self.center == center

    @property
    def can_command(self) -> bool:
        """Counter commands (call next, recall...)."""
        return self.role in ("province_admin", "center_manager", "technician")

    @property
    def can_maintain(self) -> bool:
        """Acknowledge alerts, set maintenance silences."""
        return self.role in ("province_admin", "center_manager", "technician")

    @property
    def can_apply_advice(self) -> bool:
        return self.role in ("province_admin", "center_manager")

    @property
    def sees_satisfaction(self) -> bool:
        """Rating numbers in reports (share satisfied, mean score, reasons): not for technicians."""
        return self.role != "technician"

    @property
    def sees_clerks(self) -> bool:
        """Per-clerk rows and every rating row (which name the clerk): managers; a clerk only their own."""
        return self.role in ("province_admin", "center_manager", "clerk")

    @property
    def live(self) -> bool:
        """The live pages (overview, center, devices) and their API: everyone but a clerk, who sees only
        their own report."""
        return self.role != "clerk"

    def public(self) -> dict[str, object]:
        return {"name": self.name, "role": self.role, "center": self.center, "clerk": self.clerk,
                "can": {"command": self.can_command, "maintain": self.can_maintain,
                        "apply_advice": self.can_apply_advice, "satisfaction": self.sees_satisfaction,
                        "clerks": self.sees_clerks, "live": self.live}}


class UserStore:
    """Users and sessions in one SQLite file. Thread-safe.

    >>> import tempfile, os
    >>> tmp = tempfile.TemporaryDirectory()
    >>> s = UserStore(os.path.join(tmp.name, "users.db"))
    >>> s.add_user("lan", "correct horse", "center_manager", center="hcm-q1")
    User(name='lan', role='center_manager', center='hcm-q1', clerk=None)
    >>> s.verify("lan", "correct horse").center, s.verify("lan", "nope")
    ('hcm-q1', None)
    >>> s.close(); tmp.cleanup()
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS users (
                name TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, center TEXT);
            CREATE TABLE IF NOT EXISTS sessions (
                sid TEXT PRIMARY KEY, name TEXT NOT NULL, expires REAL NOT NULL);
            CREATE INDEX IF NOT EXISTS sessions_by_name ON sessions(name);
            """
        )
        # added with the clerk role: older files get the column (additive, every existing user keeps NULL)
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(users)")}
        if "clerk" not in cols:
            self._db.execute("ALTER TABLE users ADD COLUMN clerk TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------------------------------ users
    def add_user(self, name: str, password: str, role: str, center: str | None = None,
                 clerk: str | None = None) -> User:
        """Create a user (or raise :class:`AuthError` saying what is wrong). A ``clerk`` user needs a
        ``center`` and the ``clerk`` id the center's edge uses for them."""
        if not NAME_RE.match(name):
            raise AuthError(f"user name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
        if role not in ROLES:
            raise AuthError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if role in ("center_manager", "clerk") and not center:
            raise AuthError(f"a {role} needs a center id (--center)")
        if role == "clerk" and not clerk:
            raise AuthError("a clerk user needs the clerk id the center's edge uses for them (--clerk)")
        if clerk is not None and role != "clerk":
            raise AuthError("only a user with role clerk has a clerk id")
        if clerk is not None and not CENTER_RE.match(clerk):
            raise AuthError(f"clerk id {clerk!r} must be lower-case letters, digits, '-' or '_'")
        if center is not None and not CENTER_RE.match(center):
            raise AuthError(f"center id {center!r} must be lower-case letters, digits, '-' or '_'")
        if role == "province_admin" and center is not None:
            raise AuthError("a province_admin is not bound to a center")
        if len(password) < MIN_PASSWORD:
            raise AuthError(f"password must have at least {MIN_PASSWORD} characters")
        stored = hash_password(password)
        with self._lock:
            try:
                self._db.execute("INSERT INTO users(name, hash, role, center, clerk) VALUES (?,?,?,?,?)",
                                 (name, stored, role, center, clerk))
            except sqlite3.IntegrityError:
                raise AuthError(f"user {name!r} already exists") from None
        return User(name, role, center, clerk)

    def set_password(self, name: str, password: str) -> None:
        """Change a password; every session of the user ends."""
        if len(password) < MIN_PASSWORD:
            raise AuthError(f"password must have at least {MIN_PASSWORD} characters")
        stored = hash_password(password)
        with self._lock:
            cur = self._db.execute("UPDATE users SET hash=? WHERE name=?", (stored, name))
            if cur.rowcount == 0:
                raise AuthError(f"no user {name!r}")
            self._db.execute("DELETE FROM sessions WHERE name=?", (name,))

    def remove_user(self, name: str) -> bool:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE name=?", (name,))
            return self._db.execute("DELETE FROM users WHERE name=?", (name,)).rowcount > 0

    def get(self, name: str) -> User | None:
        with self._lock:
            row = self._db.execute("SELECT name, role, center, clerk FROM users WHERE name=?", (name,)).fetchone()
        return User(*row) if row else None

    def users(self) -> list[User]:
        with self._lock:
            rows = self._db.execute("SELECT name, role, center, clerk FROM users ORDER BY name").fetchall()
        return [User(*r) for r in rows]

    def verify(self, name: str, password: str) -> User | None:
        """The user when the password is right, else None. Takes the same time for unknown users."""
        with self._lock:
            row = self._db.execute("SELECT name, hash, role, center, clerk FROM users WHERE name=?",
                                   (name,)).fetchone()
        if row is None:
            check_password(password, _DUMMY_HASH)
            return None
        return User(row[0], row[2], row[3], row[4]) if check_password(password, row[1]) else None

    # ------------------------------------------------------------------------------------------ sessions
    def create_session(self, name: str, expires: float) -> str:
        """A new random session id for ``name`` valid until ``expires`` (epoch seconds)."""
        sid = secrets.token_urlsafe(24)
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE expires < ?", (expires - 366 * 86400,))
            self._db.execute("INSERT INTO sessions(sid, name, expires) VALUES (?,?,?)", (sid, name, expires))
        return sid

    def session(self, sid: str, now: float) -> tuple[User, float] | None:
        """``(user, expires)`` of a live session, or None (unknown, expired or user removed)."""
        with self._lock:
            row = self._db.execute(
                "SELECT u.name, u.role, u.center, u.clerk, s.expires FROM sessions s JOIN users u ON u.name = s.name "
                "WHERE s.sid=?", (sid,)).fetchone()
            if row is None:
                return None
            if row[4] <= now:
                self._db.execute("DELETE FROM sessions WHERE sid=?", (sid,))
                return None
        return User(row[0], row[1], row[2], row[3]), row[4]

    def extend_session(self, sid: str, expires: float) -> None:
        with self._lock:
            self._db.execute("UPDATE sessions SET expires=? WHERE sid=?", (expires, sid))

    def delete_session(self, sid: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE sid=?", (sid,))


class SessionCodec:
    """Signs and checks the session cookie ``<sid>.<expires>.<mac>`` and derives CSRF tokens.

    >>> c = SessionCodec(b"k" * 32)
    >>> v = c.encode("abc", 2000000000)
    >>> c.decode(v, now=1.0)
    ('abc', 2000000000)
    >>> c.decode(v.replace("abc", "abd"), now=1.0) is None
    True
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the web secret must have at least 16 bytes")
        self._key = hashlib.sha256(b"civiq-session|" + secret).digest()
        self._csrf_key = hashlib.sha256(b"civiq-csrf|" + secret).digest()

    def _mac(self, sid: str, expires: int) -> str:
        return _b64(hmac.new(self._key, f"{sid}.{expires}".encode(), hashlib.sha256).digest())

    def encode(self, sid: str, expires: int) -> str:
        return f"{sid}.{expires}.{self._mac(sid, expires)}"

    def decode(self, value: str, now: float) -> tuple[str, int] | None:
        """``(sid, expires)`` when the signature is good and not expired, else None."""
        parts = value.split(".")
        if len(parts) != 3 or len(value) > 200:
            return None
        sid, exp_s, mac = parts
        try:
            expires = int(exp_s)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac(sid, expires)) or expires <= now:
            return None
        return sid, expires

    def csrf(self, sid: str) -> str:
        return _b64(hmac.new(self._csrf_key, f"csrf|{sid}".encode(), hashlib.sha256).digest())

    def check_csrf(self, sid: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(sid))


class LoginLimiter:
    """Failed logins per user name and per client address in a sliding window.

    After ``per_user`` failures for one name (or ``per_ip`` from one address) within ``window_s`` seconds,
    further attempts are refused (HTTP 429) until the oldest failure leaves the window. A success clears the
    name's failures.

    >>> from civiq.clock import FakeClock
    >>> lim = LoginLimiter(FakeClock(), per_user=2)
    >>> lim.fail("lan", "10.0.0.1"); lim.fail("lan", "10.0.0.1")
    >>> lim.retry_after("lan", "10.0.0.2") > 0
    True
    """

    MAX_KEYS = 10_000

    def __init__(self, clock: Clock | None = None, *, per_user: int = 5, per_ip: int = 20,
                 window_s: float = 300.0) -> None:
        self.clock = clock or SystemClock()
        self.per_user, self.per_ip, self.window_s = per_user, per_ip, window_s
        self._fails: dict[str, deque[float]] = {}

    def _prune(self, key: str, now: float) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._fails[key]
        return q

    def retry_after(self, user: str, ip: str) -> float:
        """Seconds until an attempt is allowed again; 0 when allowed now."""
        now = self.clock.monotonic()
        wait = 0.0
        for key, limit in ((f"u:{user.lower()}", self.per_user), (f"i:{ip}", self.per_ip)):
            q = self._prune(key, now)
            if len(q) >= limit:
                wait = max(wait, q[-limit] + self.window_s - now)
        return wait

    def fail(self, user: str, ip: str) -> None:
        now = self.clock.monotonic()
        if len(self._fails) >= self.MAX_KEYS:  # bounded memory under a spray of names
            for key in list(self._fails)[: self.MAX_KEYS // 10]:
                del self._fails[key]
        for key in (f"u:{user.lower()}", f"i:{ip}"):
            self._fails.setdefault(key, deque(maxlen=max(self.per_user, self.per_ip))).append(now)

    def success(self, user: str) -> None:
        self._fails.pop(f"u:{user.lower()}", None)
