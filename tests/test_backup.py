"""Backups (issue 9): the README's pg_dump/pg_restore of a running instance gives back the same platform —
the same rows in every table and the same routing answers — in a new database."""
import subprocess

import numpy as np
import psycopg2
import pytest

import fixtures
from gis.db import Database, recreate_database, sibling_database_url
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)


def table_counts(url):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select tablename from pg_tables where schemaname = 'public' order by tablename")
        tables = [r[0] for r in cur.fetchall()]
        counts = {}
        for table in tables:
            cur.execute(f'select count(*) from "{table}"')
            counts[table] = cur.fetchone()[0]
    conn.close()
    return counts


def routing_answers(url, points):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        answers = []
        for lon, lat in points:
            cur.execute("select level, cell_id, code, candidates from route_point(%s, %s, null) order by level", (lon, lat))
            answers.append(cur.fetchall())
    conn.close()
    return answers


def dump_and_restore(url, restored_url, tmp_path):
    """The README's commands: a consistent snapshot of the running instance, restored into a new database."""
    dump = tmp_path / "gridmap.dump"
    subprocess.run(["pg_dump", "--format=custom", "--file", str(dump), "--dbname", url], check=True)
    recreate_database(restored_url)
    subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "--dbname", restored_url, str(dump)],
                   check=True)


@pytest.fixture
def restored_url(database_url):
    url = sibling_database_url(database_url, "_restored")
    yield url
    recreate_database(url)  # leave nothing big behind (an empty database)


def test_a_dump_of_the_running_instance_restores_to_the_same_platform(app, client, active, database_url,  # noqa: F811
                                                                       restored_url, tmp_path):
    rng = np.random.default_rng(9)
    points = list(zip(rng.uniform(fixtures.X0 - 0.01, fixtures.X1 + 0.01, 40).tolist(),
                      rng.uniform(fixtures.Y0 - 0.01, fixtures.Y1 + 0.01, 40).tolist()))
    for lon, lat in points[:20]:
        r = client.post("/api/v1/reports", json={"category": "0102", "lon": lon, "lat": lat})
        assert r.status_code in (201, 200), r.json
    case = client.get("/api/v1/reports?limit=1").json["features"][0]["id"]
    assert client.post(f"/api/v1/cases/{case}/actions", json={"action": "void", "version": 0, "reason": "重复",
                                                              "actor": {"unit": "city"}}).status_code in (200, 409)

    dump_and_restore(database_url, restored_url, tmp_path)

    assert table_counts(restored_url) == table_counts(database_url)
    assert routing_answers(restored_url, points) == routing_answers(database_url, points)
    restored = Database(restored_url)
    try:
        with restored.cursor() as cur:
            cur.execute("select public_id, status, holder, case_version from incident order by id")
            after = cur.fetchall()
    finally:
        restored.close()
    with active.cursor() as cur:
        cur.execute("select public_id, status, holder, case_version from incident order by id")
        assert after == cur.fetchall()
