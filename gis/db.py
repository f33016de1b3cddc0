"""Connections to PostGIS and the migrations in ``sql/``.

Migrations are the numbered ``sql/NNN_name.sql`` files, applied in order, each once, each in its own
transaction; a file that changed after it was applied is refused rather than silently skipped.
"""
import hashlib
import re
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import psycopg2.pool

from gis.errors import DatabaseUnavailable, GridMapError
from gis.settings import PROJECT_ROOT

SQL_DIR = PROJECT_ROOT / "sql"
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class Database:
    """A small pool of psycopg2 connections to one database.

    Parameters
    ----------
    url : str
        A libpq connection URI, e.g. ``postgresql://user@/gridmap?host=/path/to/socket&port=54329``.
    """

    def __init__(self, url, *, maxconn=8):
        self.url = url
        self._maxconn = maxconn
        self._pool = None

    def _get_pool(self):
        if self._pool is None:
            try:
                self._pool = psycopg2.pool.ThreadedConnectionPool(1, self._maxconn, self.url, connect_timeout=5)
            except psycopg2.OperationalError as exc:
                raise DatabaseUnavailable(f"cannot connect to the database: {str(exc).strip()}") from exc
        return self._pool

    @contextmanager
    def connection(self, *, autocommit=False):
        """A connection inside one transaction: committed on success, rolled back on any error.
        With ``autocommit`` each statement is its own transaction (one round trip less for one call)."""
        pool = self._get_pool()
        try:
            conn = pool.getconn()
        except psycopg2.pool.PoolError as exc:
            raise DatabaseUnavailable("all database connections are busy") from exc
        try:
            if autocommit:
                conn.autocommit = True
                yield conn  # (`with conn` would send a COMMIT of nothing: a round trip)
            else:
                with conn:
                    yield conn
        except psycopg2.OperationalError as exc:
            pool.putconn(conn, close=True)
            conn = None
            raise DatabaseUnavailable(f"lost the database connection: {str(exc).strip()}") from exc
        finally:
            if conn is not None:
                if not conn.closed:
                    conn.autocommit = False
                pool.putconn(conn)

    @contextmanager
    def cursor(self, *, autocommit=False):
        with self.connection(autocommit=autocommit) as conn, \
                conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            yield cur

    def close(self):
        if self._pool is not None:
            self._pool.closeall()
            self._pool = None


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
