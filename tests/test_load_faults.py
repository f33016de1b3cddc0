"""A report acknowledged is a report kept (issue 9), at a small scale: reports through gunicorn, as
``make run`` serves the demo, from field devices that retry with the same client_request_id, while the
database restarts or a worker is killed; a live-map client follows the feed throughout.
``make bench`` runs the same scenarios at 1,000 reports/s (bench/bench_load.py)."""
import asyncio
import time

import pytest
import requests

from bench import bench_load, loadgen
from gis import users
from gis.access import CITY_SCOPE
from gis.db import Database
from test_browser import BROWSER_PASSWORD, browser, new_page, sign_in  # noqa: F401 (a fixture)

RATE = 50  # reports/s: well within what this machine serves, so that the faults are all that is tested
ALL_WELL = {"acknowledged but not stored": 0, "stored more than once": 0, "stored but never acknowledged": 0,
            "acknowledged as another incident": 0, "report events not logged once": 0,
            "report events the live client missed": 0, "report events the live client got twice": 0}


@pytest.fixture(scope="module")
def platform():
    with bench_load.platform(echo=lambda line: None) as parts:
        yield parts


def load(platform, seconds, **faults):
    server, cluster, keys, points = platform
    tag, result, follower, caught_up = asyncio.run(
        bench_load.scenario(server, cluster, keys, points, rate=RATE, seconds=seconds, **faults))
    print(result.summary(), result.faults)
    assert not result.rejected and not result.gave_up, (result.rejected, result.gave_up)
    assert len(result.acknowledged) == result.due
    assert loadgen.verify(cluster.url, tag, result, follower) == ALL_WELL
    assert caught_up
    return result, follower


def test_every_acknowledged_report_is_stored_once_and_shown_live_once(platform):
    result, follower = load(platform, 6)
    assert result.attempts == result.due  # nothing had to be sent twice
    assert follower.connections == 1


def test_a_database_restart_answers_503_and_loses_nothing(platform):
    result, follower = load(platform, 10, restart_at=2)
    # while it was down the API said so at once — it did not hang until the client gave up
    assert result.unavailable, "no 503 while the database restarted"
    assert result.failures["timeout"] == 0
    assert all(why.startswith(("cannot connect to the database", "lost the database connection"))
               for why in result.unavailable_why), result.unavailable_why


def test_a_killed_worker_loses_nothing_and_the_live_client_resumes(platform):
    server = platform[0]
    result, follower = load(platform, 8, kill_at=3)
    assert follower.connections >= 2  # its stream was cut with the worker, and it came back
    assert len(server.workers()) == 2  # gunicorn started another


def test_a_database_that_is_down_is_a_503_with_retry_after(platform):
    server, cluster, keys, points = platform
    cluster.stop()
    try:
        r = requests.post(f"{server.base}/api/v1/reports", headers={"Authorization": f"Bearer {keys['device']}"},
                          json={"lon": points[0][0], "lat": points[0][1], "category": "0102"}, timeout=10)
    finally:
        cluster.start()
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    # (a pooled connection finds the server gone; a new one cannot reach it)
    assert r.json()["message"].startswith(("lost the database connection", "cannot connect to the database"))


@pytest.mark.browser
def test_the_live_map_gets_what_it_missed_while_its_workers_were_down(platform, browser):  # noqa: F811
    """The wall screen in Chromium: every worker killed, reports sent meanwhile; the page's EventSource
    reconnects by itself and its feed panel lists each of them. (Last in this module: Playwright's own event
    loop must not meet asyncio.run.)"""
    server, cluster, keys, points = platform
    db = Database(cluster.url)  # a pool of its own: the fixture's connections died with the restarts above
    try:
        with db.cursor() as cur:
            users.add(cur, "wall-screen", role="viewer", scope=CITY_SCOPE, password=BROWSER_PASSWORD,
                      created_by="tests")
    finally:
        db.close()
    # each worker's first request since the restarts above finds its idle connections dead (a 503)
    answers = [requests.get(f"{server.base}/api/v1/me", headers={"Authorization": f"Bearer {keys['device']}"},
                            timeout=10).status_code for _ in range(20)]
    assert set(answers[-10:]) == {200}, answers
    page = new_page(browser)
    sign_in(page, server.base, "wall-screen")
    page.goto(f"{server.base}/map")
    page.wait_for_selector("#live-state.on")
    for worker in server.workers():
        worker.kill()
    reported = []
    for i in range(10):  # as a device does: the same report again until it is acknowledged
        body = {"lon": points[i][0], "lat": points[i][1], "category": "0102", "client_request_id": f"wall-{i}"}
        for _ in range(100):
            try:
                r = requests.post(f"{server.base}/api/v1/reports", json=body, timeout=10,
                                  headers={"Authorization": f"Bearer {keys['device']}"})
                if r.status_code in (200, 201):
                    reported.append(r.json()["id"])
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
    assert len(reported) == 10
    for public_id in reported:
        page.wait_for_selector(f"#feed li.report[data-id='{public_id}']", state="attached", timeout=60_000)
    assert page.locator("#live-state.on").count() == 1
