"""Fixtures: a fresh PostGIS database for the session, the app, its client, a CLI runner, a live server.

The tests use a database of their own (``<name>_test`` beside the configured one, or
``GRIDMAP_TEST_DATABASE_URL``), created anew for each session, so the demo database is never touched.
"""
import os
import threading

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from gis import api_keys, cases, event_classes
from gis.db import Database, migrate, recreate_database, sibling_database_url
from gis.settings import Settings

GRID_TABLES = ("audit_log, user_session, app_user, live_event, case_event, incident_routing, incident, api_key, "
               "cell_staff, staff, grid_cell, grid_version")
ADMIN_KEY_NAME = "test-admin"


def _test_database_url():
    if os.environ.get("GRIDMAP_TEST_DATABASE_URL"):
        return os.environ["GRIDMAP_TEST_DATABASE_URL"]
    return sibling_database_url(Settings.from_env().database_url, "_test")


@pytest.fixture(scope="session")
def database_url():
    url = _test_database_url()
    recreate_database(url)
    database = Database(url)
    migrate(database)
    event_classes.sync(database)
    cases.sync_calendar(database)
    database.close()
    return url


@pytest.fixture(scope="session")
def session_db(database_url):
    database = Database(database_url)
    yield database
    database.close()


@pytest.fixture
def db(session_db):
    """The test database, emptied of grids before each test."""
    with session_db.cursor() as cur:
        cur.execute(f"truncate {GRID_TABLES} restart identity cascade")
    return session_db


@pytest.fixture
def app(db, database_url):
    from webmap import create_app

    # routed in SQL: the tests that want the web worker's own router ask for it (test_reports.py)
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "ROUTE_IN_WORKER": False,
                      "SECRET_KEY": "tests-only"})
    # the tests act as a city-wide admin with an API key, but for those about who may do what
    # (test_access.py) and the browser's, which sign in through the login page
    with app.extensions["gridmap_db"].cursor() as cur:
        app.config["TEST_ADMIN_KEY"] = api_keys.create(cur, ADMIN_KEY_NAME, created_by="tests", role="admin",
                                                       per_minute=None)
    yield app
    app.extensions["gridmap_db"].close()


@pytest.fixture
def client(app):
    """A test client that sends the city-wide admin's API key."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {app.config['TEST_ADMIN_KEY']}"
    return client


@pytest.fixture
def anonymous(app):
    """A test client without a key or a session."""
    return app.test_client()


@pytest.fixture
def admin_headers(app):
    """Headers for requests over HTTP (live_server) as the city-wide admin."""
    return {"Authorization": f"Bearer {app.config['TEST_ADMIN_KEY']}"}


@pytest.fixture
def runner(database_url, monkeypatch):
    """Runs ``gridmap`` commands against the test database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GRIDMAP_USER", "tester")
    return CliRunner()


@pytest.fixture
def live_server(app):
    """The app on a real socket on loopback; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
