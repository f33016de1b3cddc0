"""Users, their sessions and the audit log.

Passwords are kept as Argon2id hashes (argon2-cffi's defaults: RFC 9106's low-memory profile). A session
is a random token in the browser's signed cookie; the database keeps only its SHA-256, when it began and
when it was last seen, so that a session ends at once on logout, when its user is disabled, after
``idle`` without use and after ``lifetime`` in any case.
"""
import datetime as dt
import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg2.extras import Json

from gis.access import Principal, Scope, check_role
from gis.errors import BadInput, Conflict, NotFound

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MIN_PASSWORD = 10
SESSION_LIFETIME = dt.timedelta(hours=12)   # a working day and its overtime
SESSION_IDLE = dt.timedelta(hours=2)
_SEEN_EVERY = dt.timedelta(minutes=1)       # seen_at is written at most this often per session

_hasher = PasswordHasher()
# verified against when the user does not exist, so that a wrong name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def add(cur, name, *, role, scope, password, created_by, display_name=""):
    """Create a user; BadInput for a malformed name, role, scope or short password, Conflict if it exists."""
    if not NAME.fullmatch(name or ""):
        raise BadInput("a user name is 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    check_role(role)
    if (role == "handler") != (scope.department is not None):
        raise BadInput("a handler needs a department (--department CODE), and only handlers have one")
    check_password(password)
    cur.execute("select 1 from app_user where name = %s", (name,))
    if cur.fetchone():
        raise Conflict(f"a user called {name!r} exists already")
    cur.execute("""insert into app_user (name, display_name, role, scope_code, department, password_hash, created_by)
                   values (%s, %s, %s, %s, %s, %s, %s)""",
                (name, display_name, role, scope.code, scope.department, _hasher.hash(password), created_by))


def check_password(password):
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise BadInput(f"a password has at least {MIN_PASSWORD} characters")


def set_password(cur, name, password):
    check_password(password)
    cur.execute("update app_user set password_hash = %s where name = %s returning id", (_hasher.hash(password), name))
    if cur.fetchone() is None:
        raise NotFound(f"no user {name!r}")
    _end_sessions(cur, name)


def disable(cur, name):
    """Disable a user and end its sessions at once."""
    cur.execute("update app_user set disabled_at = now() where name = %s and disabled_at is null returning id", (name,))
    if cur.fetchone() is None:
        raise NotFound(f"no enabled user {name!r}")
    _end_sessions(cur, name)


def _end_sessions(cur, name):
    cur.execute("""update user_session s set ended_at = now() from app_user u
                    where u.id = s.user_id and u.name = %s and s.ended_at is null""", (name,))


def list_users(cur):
    cur.execute("""select name, display_name, role, coalesce(scope_code, 'city') as scope, department,
                          created_at, created_by, disabled_at
                     from app_user order by name""")
    return cur.fetchall()


def any_admin(cur):
    cur.execute("select 1 from app_user where role = 'admin' and disabled_at is null and scope_code is null")
    return cur.fetchone() is not None


def authenticate(cur, name, password):
    """The user's Principal when the name and password are right and the user is enabled; else None."""
    cur.execute("select * from app_user where name = %s and disabled_at is null", (name or "",))
    row = cur.fetchone()
    try:
        _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _hasher.check_needs_rehash(row["password_hash"]):
        cur.execute("update app_user set password_hash = %s where id = %s", (_hasher.hash(password), row["id"]))
    return _principal(row)


def _principal(row):
    return Principal(row["name"], row["role"], Scope(row["scope_code"], row["department"]), "session",
                     row["display_name"])


def start_session(cur, name, address=None):
    """A new session token for an authenticated user (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    cur.execute("""insert into user_session (token_sha256, user_id, address)
                   select %s, id, %s from app_user where name = %s""", (_sha256(token), address, name))
    return token


def session_principal(cur, token, *, lifetime=SESSION_LIFETIME, idle=SESSION_IDLE):
    """The Principal of a live session, or None (ended, expired, unknown, or its user disabled)."""
    if not token:
        return None
    cur.execute("""select u.*, s.seen_at, s.token_sha256, now() as now,
                          s.created_at > now() - %s and s.seen_at > now() - %s as alive
                     from user_session s join app_user u on u.id = s.user_id
                    where s.token_sha256 = %s and s.ended_at is null and u.disabled_at is null""",
                (lifetime, idle, _sha256(token)))
    row = cur.fetchone()
    if row is None or not row["alive"]:
        return None
    if row["now"] - row["seen_at"] > _SEEN_EVERY:
        cur.execute("update user_session set seen_at = now() where token_sha256 = %s", (row["token_sha256"],))
    return _principal(row)


def end_session(cur, token):
    cur.execute("update user_session set ended_at = now() where token_sha256 = %s and ended_at is null",
                (_sha256(token or ""),))


def _sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


# --- the audit log ---------------------------------------------------------------------------------------

def audit(cur, actor, via, action, *, status=None, address=None, **detail):
    """Record one line of the audit log."""
    cur.execute("""insert into audit_log (actor, via, action, status, address, detail)
                   values (%s, %s, %s, %s, %s, %s)""", (actor or "", via, action, status, address, Json(detail)))


def audit_lines(cur, *, actor=None, since=None, limit=100):
    """The newest lines of the audit log, newest first."""
    cur.execute("""select id, at, actor, via, action, status, address, detail from audit_log
                    where (%(actor)s::text is null or actor = %(actor)s)
                      and (%(since)s::timestamptz is null or at >= %(since)s)
                    order by id desc limit %(limit)s""", {"actor": actor, "since": since, "limit": limit})
    return cur.fetchall()
