"""API keys for field devices and Open311 clients: created once, shown once, kept only as a hash.

Keys are 32 random bytes, so a plain SHA-256 is enough to keep them (no salt or slow hash is needed
for secrets that cannot be guessed); a revoked key stops working at once.
"""
import hashlib
import re
import secrets

from gis.errors import BadInput, Conflict, NotFound

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _digest(key):
    return hashlib.sha256(key.encode()).hexdigest()


def create(cur, name, *, created_by):
    """Create a key called ``name``; return the key itself, which is not stored anywhere."""
    if not _NAME.fullmatch(name):
        raise BadInput("a key name is 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    cur.execute("select 1 from api_key where name = %s", (name,))
    if cur.fetchone():
        raise Conflict(f"an API key called {name!r} exists already")
    key = "gm_" + secrets.token_urlsafe(32)
    cur.execute("insert into api_key (name, key_sha256, created_by) values (%s, %s, %s)",
                (name, _digest(key), created_by))
    return key


def revoke(cur, name):
    cur.execute("update api_key set revoked_at = now() where name = %s and revoked_at is null returning id", (name,))
    if cur.fetchone() is None:
        raise NotFound(f"no API key {name!r} in use")


def list_keys(cur):
    cur.execute("select name, created_at, created_by, revoked_at from api_key order by name")
    return cur.fetchall()


def holder(cur, key):
    """The name of the key's holder, or None if the key is unknown or revoked."""
    if not key:
        return None
    cur.execute("select name from api_key where key_sha256 = %s and revoked_at is null", (_digest(key),))
    row = cur.fetchone()
    return row["name"] if row else None
