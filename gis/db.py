"""Connections to PostGIS and the migrations in ``sql/``.

Migrations are the numbered ``sql/NNN_name.sql`` files, applied in order, each once, each in its own
transaction; a file that changed after it was applied is refused rather than silently skipped.
"""
import hashlib
import re
import threading
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from gis.errors import DatabaseUnavailable, GridMapError
from gis.settings import PROJECT_ROOT

SQL_DIR = PROJECT_ROOT / "sql"
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class Database:
    """A pool of psycopg2 connections to one database, opened as needed and kept for reuse.

    At most ``maxconn`` are open at once; when all are in use, a caller waits for one up to ``wait_s``
    seconds, then gets DatabaseUnavailable (a 503): a burst queues briefly instead of being refused. (psycopg2's
    own pool keeps only ``minconn`` idle connections and closes the rest when they come back, so that under
    concurrency nearly every request opened a new connection: 70 reports/s through gunicorn's threads,
    against 280 with one connection a process.)

    Parameters
    ----------
    url : str
        A libpq connection URI, e.g. ``postgresql://user@/gridmap?host=/path/to/socket&port=54329``.
    """

    def __init__(self, url, *, maxconn=8, wait_s=5.0):
        self.url = url
        self._wait_s = wait_s
        self._free = threading.BoundedSemaphore(maxconn)  # one permit per connection that may be open
        self._idle = []
        self._idle_lock = threading.Lock()

    @contextmanager
    def connection(self, *, autocommit=False):
        """A connection inside one transaction: committed on success, rolled back on any error.
        With ``autocommit`` each statement is its own transaction (one round trip less for one call)."""
        if not self._free.acquire(timeout=self._wait_s):
            raise DatabaseUnavailable("all database connections are busy")
        try:
            conn = self._take()
            try:
                if autocommit:
                    conn.autocommit = True
                    yield conn  # (`with conn` would send a COMMIT of nothing: a round trip)
                else:
                    with conn:
                        yield conn
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                if conn.closed:  # the server restarted, or the network broke: the idle ones most likely
                    self.close()  # died with it (one 503 a process after a restart, not one a connection)
                    raise DatabaseUnavailable(f"lost the database connection: {str(exc).strip()}") from exc
                # a deadlock, a serialization failure, a cancelled query: the connection is sound
                raise DatabaseUnavailable(f"the database could not finish: {str(exc).strip()}") from exc
            finally:
                self._give_back(conn)
        finally:
            self._free.release()

    def _take(self):
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
        try:
            return psycopg2.connect(self.url, connect_timeout=5)
        except psycopg2.OperationalError as exc:
            raise DatabaseUnavailable(f"cannot connect to the database: {str(exc).strip()}") from exc

    def _give_back(self, conn):
        if conn.closed or conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            conn.close()  # broken, or left inside a transaction: never handed to the next caller
            return
        conn.autocommit = False
        with self._idle_lock:
            self._idle.append(conn)

    @contextmanager
    def cursor(self, *, autocommit=False):
        with self.connection(autocommit=autocommit) as conn, \
                conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            yield cur

    def close(self):
        """Close the idle connections."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def recreate_database(url):
    """Drop and create the database named in ``url`` (for tests and benchmarks, never the live one)."""
    name = psycopg2.extensions.parse_dsn(url)["dbname"]
    admin = psycopg2.connect(psycopg2.extensions.make_dsn(url, dbname="postgres"))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
            cur.execute(f'create database "{name}"')
    finally:
        admin.close()


def sibling_database_url(url, suffix):
    """The URL of a database named ``<name><suffix>`` beside the one in ``url``."""
    name = psycopg2.extensions.parse_dsn(url).get("dbname", "gridmap")
    return psycopg2.extensions.make_dsn(url, dbname=f"{name}{suffix}")


def migration_files(sql_dir=SQL_DIR):
    """The migration files in the order they apply."""
    files = sorted(p for p in Path(sql_dir).glob("*.sql") if _MIGRATION_NAME.match(p.name))
    numbers = [p.name[:3] for p in files]
    if len(set(numbers)) != len(numbers):
        raise GridMapError(f"two migrations share a number in {sql_dir}: {numbers}")
    return files


def migrate(db, sql_dir=SQL_DIR):
    """Apply the migrations not applied yet; return the names of those applied now."""
    applied_now = []
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(
            "create table if not exists schema_migration ("
            " name text primary key, sha256 text not null, applied_at timestamptz not null default now())"
        )
    for path in migration_files(sql_dir):
        text = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(text.encode()).hexdigest()
        with db.connection() as conn, conn.cursor() as cur:
            # One migrator at a time: a second `make run` waits instead of applying the same file twice.
            cur.execute("select pg_advisory_xact_lock(4712)")
            cur.execute("select sha256 from schema_migration where name = %s", (path.name,))
            row = cur.fetchone()
            if row is not None:
                if row[0] != digest:
                    raise GridMapError(
                        f"migration {path.name} changed after it was applied; add a new numbered file instead"
                    )
                continue
            cur.execute(text)
            cur.execute("insert into schema_migration (name, sha256) values (%s, %s)", (path.name, digest))
            applied_now.append(path.name)
    return applied_now
