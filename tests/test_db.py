"""The schema: migrations apply once, and constraints make impossible states unrepresentable."""
import shutil

import psycopg2
import pytest

import shapely

import fixtures
from gis.db import SQL_DIR, Database, migrate
from gis.errors import DatabaseUnavailable, GridMapError
from test_grid_import import import_all, run

SQUARE = "ST_Multi(ST_MakeEnvelope(113.6, 34.7, 113.61, 34.71, 4326))"


def test_migrations_apply_once(session_db):
    assert migrate(session_db) == []  # the session fixture applied them all already


def test_a_changed_migration_is_refused(session_db, tmp_path):
    sql = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql)
    with open(sql / "001_postgis.sql", "a") as f:
        f.write("\n-- edited\n")
    with pytest.raises(GridMapError, match="changed after it was applied"):
        migrate(session_db, sql)


def execute(db, sql, params=()):
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


@pytest.fixture
def version(db):
    return execute(db, "insert into grid_version (created_by) values ('t') returning id")[0][0]


def add_cell(db, version, level, code, parent=None):
    return execute(db, f"insert into grid_cell (version_id, level, code, name, parent_id, geom) "
                       f"values (%s, %s, %s, 'x', %s, {SQUARE}) returning id", (version, level, code, parent))[0][0]


def test_a_cell_needs_a_parent_exactly_one_level_up(db, version):
    district = add_cell(db, version, 0, "410105")
    street = add_cell(db, version, 1, "410105001", district)
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        add_cell(db, version, 2, "410105001001", district)  # a community under a district
    with pytest.raises(psycopg2.errors.CheckViolation):
        add_cell(db, version, 0, "410106", street)  # a district with a parent
    assert add_cell(db, version, 2, "410105001001", street)
    # given none, a cell gets the one a level up that holds most of it (sql/011_planner.sql)
    derived = add_cell(db, version, 2, "410105001002")
    assert execute(db, "select parent_id from grid_cell where id = %s", (derived,))[0][0] == street


def test_codes_are_unique_in_a_version_and_have_the_level_length(db, version):
    add_cell(db, version, 0, "410105")
    with pytest.raises(psycopg2.errors.UniqueViolation):
        add_cell(db, version, 0, "410105")
    with pytest.raises(psycopg2.errors.CheckViolation, match="has 9 digits; level 0 codes have 6"):
        add_cell(db, version, 0, "410105001")
    with pytest.raises(psycopg2.errors.CheckViolation):
        add_cell(db, version, 0, "41010A")


def test_invalid_or_empty_geometry_is_refused(db, version):
    with pytest.raises(psycopg2.errors.CheckViolation):
        execute(db, "insert into grid_cell (version_id, level, code, name, geom) values "
                    "(%s, 0, '410105', 'x', ST_Multi(ST_GeomFromText("
                    "'POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))', 4326)))", (version,))


def test_one_active_version_and_history_is_read_only(db, runner, tmp_path):
    import_all(runner, tmp_path)
    assert run(runner, "grid", "activate", 1, "--commit").exit_code == 0
    with pytest.raises(psycopg2.errors.UniqueViolation):
        execute(db, "insert into grid_version (created_by, status, activated_at, activated_by) "
                    "values ('t', 'active', now(), 't')")
    with pytest.raises(psycopg2.errors.CheckViolation, match="only drafts can be edited"):
        execute(db, "update grid_cell set name = 'changed' where code = '410105'")
    with pytest.raises(psycopg2.errors.CheckViolation, match="only drafts"):
        execute(db, "delete from grid_cell where level = 3")


def test_area_is_derived_in_square_metres(db, version):
    add_cell(db, version, 0, "410105")
    area = execute(db, "select area_m2 from grid_cell")[0][0]
    expected = fixtures.geometry_area_m2(shapely.geometry.box(113.6, 34.7, 113.61, 34.71))
    assert area == pytest.approx(expected, rel=1e-3)  # ≈ 1.01 km², never square degrees
    with pytest.raises(psycopg2.errors.GeneratedAlways):
        execute(db, "update grid_cell set area_m2 = 1")


def test_activation_retires_the_previous_version(db, runner, tmp_path):
    (tmp_path / "a").mkdir()
    import_all(runner, tmp_path / "a")
    path = fixtures.write(tmp_path / "again.geojson", 0)
    assert run(runner, "grid", "import", path, "--level", 0, "--commit").exit_code == 0
    dry = run(runner, "grid", "activate", 1)
    assert dry.exit_code == 0 and "would activate" in dry.output
    assert execute(db, "select count(*) from grid_version where status = 'active'")[0][0] == 0
    assert run(runner, "grid", "activate", 1, "--commit").exit_code == 0
    result = run(runner, "grid", "activate", 2, "--commit")
    assert result.exit_code == 0 and "version 1 retired" in result.output
    assert execute(db, "select id, status from grid_version order by id") == [(1, "retired"), (2, "active")]
    again = run(runner, "grid", "activate", 1, "--commit")
    assert again.exit_code == 2 and "only a draft can be activated" in again.output
    versions = run(runner, "grid", "versions")
    assert "retired" in versions.output and "L3=8" in versions.output


def test_unreachable_database_is_a_clear_error(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody@/nodb?host={tmp_path}&port=1")
    result = run(runner, "grid", "versions")
    assert result.exit_code == 2
    assert "cannot connect to the database" in result.output
    Database(f"postgresql://nobody@/nodb?host={tmp_path}&port=1").close()


def test_the_pool_keeps_its_connections_and_waits_for_one_when_all_are_out(database_url):
    db = Database(database_url, maxconn=3, wait_s=0.3)
    try:
        def backend(conn):
            with conn.cursor() as cur:
                cur.execute("select pg_backend_pid()")
                return cur.fetchone()[0]

        with db.connection() as a, db.connection() as b, db.connection() as c:  # three at once
            first = {backend(a), backend(b), backend(c)}
            with pytest.raises(DatabaseUnavailable, match="all database connections are busy"):
                with db.connection():
                    pass
        with db.connection() as a, db.connection() as b, db.connection() as c:  # the same three again
            assert {backend(a), backend(b), backend(c)} == first
    finally:
        db.close()


def test_a_broken_connection_is_a_503_and_is_not_reused(database_url, session_db):
    db = Database(database_url, maxconn=2)
    try:
        with db.connection() as conn:
            with conn.cursor() as cur:
                cur.execute("select pg_backend_pid()")
                pid = cur.fetchone()[0]
        with session_db.cursor() as cur:
            cur.execute("select pg_terminate_backend(%s)", (pid,))
        with pytest.raises(DatabaseUnavailable, match="lost the database connection"):
            with db.cursor() as cur:
                cur.execute("select 1")
        with db.cursor() as cur:
            cur.execute("select pg_backend_pid() as pid")
            assert cur.fetchone()["pid"] != pid
    finally:
        db.close()
