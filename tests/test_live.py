"""The live feed: ``gis.live`` against two real transactions, and ``/api/v1/live`` over a real socket, fed by
reports and case actions made through the API over the fixture partition (active)."""
import json
import time

import psycopg2
import pytest
import requests

import fixtures
from gis import demo_history, live
from gis.errors import BadInput
from gis.settings import Settings
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)

SW = (fixtures.X0 + 0.01, fixtures.Y0 + 0.01)
SW_GRID = "410105001001001"
# How long a test waits for news. Generous: any writing transaction open anywhere in the cluster (other
# test sessions share it) holds the feed back while it lasts.
WAIT_S = 30
# the city-wide admin's Authorization header for requests to the live server (filled by the `feed` fixture)
AUTH = {}


class Stream:
    """An open ``/api/v1/live``, read event by event with a small parser of server-sent events."""

    def __init__(self, base, last_event_id=None, **params):
        headers = {**AUTH, "Last-Event-ID": last_event_id} if last_event_id else dict(AUTH)
        self.response = requests.get(f"{base}/api/v1/live", params=params, headers=headers, stream=True,
                                     timeout=WAIT_S)
        assert self.response.status_code == 200, self.response.text
        self._chunks = self.response.iter_content(chunk_size=None)  # each chunk as it arrives
        self._buffer = b""
        self.retry = None
        self.ended = False

    def next(self, timeout=WAIT_S):
        """The next event, ``{"id", "event", "data"}``; None when the stream ends or ``timeout`` seconds pass
        first (looked at whenever a heartbeat comes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\n\n" not in self._buffer:
                chunk = next(self._chunks, None)
                if chunk is None:
                    self.ended = True
                    return None
                self._buffer += chunk
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            fields = {}
            for line in block.decode().split("\n"):
                if not line.startswith(":"):  # a comment: the heartbeat
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
            if "retry" in fields:
                self.retry = int(fields["retry"])
            if "data" in fields:
                return {"id": fields["id"], "event": fields["event"], "data": json.loads(fields["data"])}
        return None

    def until(self, predicate, timeout=WAIT_S):
        """The events up to and including the first that ``predicate`` holds for."""
        seen, deadline = [], time.monotonic() + timeout
        while not seen or not predicate(seen[-1]):
            event = self.next(deadline - time.monotonic())
            assert event is not None, f"the stream ended or went quiet after {seen}"
            seen.append(event)
        return seen

    def close(self):
        self.response.close()


@pytest.fixture
def feed(app, live_server, active, admin_headers):  # noqa: F811
    """The server's base URL, with an empty feed and a heartbeat far longer than a test waits: an event that
    arrives came because the listener woke its stream. Requests send the admin's key (:data:`AUTH`)."""
    AUTH.clear()
    AUTH.update(admin_headers)
    with active.cursor() as cur:
        cur.execute("truncate live_event")
    app.config.update(LIVE_HEARTBEAT_S=60.0, LIVE_LIFETIME_S=60.0)
    yield live_server
    listener = app.extensions.get("gridmap_live")
    if listener is not None:
        listener.stop()
    AUTH.clear()


def post_report(base, lon=SW[0], lat=SW[1], category="0102"):
    r = requests.post(f"{base}/api/v1/reports", json={"category": category, "lon": lon, "lat": lat}, headers=AUTH,
                      timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def is_report(public_id):
    return lambda event: event["event"] == "report" and event["data"]["id"] == public_id


def cell_id(db, code):
    with db.cursor() as cur:
        cur.execute("select id from grid_cell where code = %s and version_id = 1", (code,))
        return cur.fetchone()["id"]


def insert_incident(conn):
    """A report stored straight into incident, in ``conn``'s open transaction; its public id."""
    with conn.cursor() as cur:
        cur.execute("""insert into incident (category, given_x, given_y, given_crs, geom, source, reported_at)
                       values ('0101', %s, %s, 'EPSG:4326', ST_SetSRID(ST_MakePoint(%s, %s), 4326), 'field_app',
                               now())
                       returning public_id""", (*SW, *SW))
        return cur.fetchone()[0]


def route(conn, public_id, reason):
    """Route a stored incident (again), as gis.batch_routing does: a new incident_routing row."""
    with conn.cursor() as cur:
        cur.execute("""insert into incident_routing (incident_id, reason, version_id, status, district_id, street_id,
                                                     community_id, grid_id)
                       select i.id, %s, r.version_id, r.status, r.cell_ids[1], r.cell_ids[2], r.cell_ids[3],
                              r.cell_ids[4]
                         from incident i, route_report(ST_X(i.geom), ST_Y(i.geom)) r
                        where i.public_id = %s""", (reason, public_id))


def read_until(db, cursor, count):
    """The events after ``cursor`` once there are ``count`` of them (waiting while they are held back)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        with db.cursor() as cur:
            events = live.read_after(cur, cursor)
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


# --- over HTTP --------------------------------------------------------------------------------------------

def test_a_report_appears_on_an_open_stream_with_its_data(feed, active):  # noqa: F811
    stream = Stream(feed, backlog=0)
    try:
        posted = time.monotonic()
        public_id = post_report(feed)
        [event] = stream.until(is_report(public_id))
        delay = time.monotonic() - posted
    finally:
        stream.close()
    # no heartbeat woke the stream (60 s): the notification did. No stricter bound: a writing transaction
    # anywhere in the cluster holds the feed back while it lasts (the delay is measured outside the tests).
    assert delay < WAIT_S
    assert stream.retry == 2000
    data = event["data"]
    assert data["category"] == "0102" and data["status"] == "reported" and data["routing_status"] == "routed"
    assert (data["lon"], data["lat"]) == pytest.approx(SW)
    assert data["grid_id"] == cell_id(active, SW_GRID) and data["version_id"] == 1
    assert data["district_id"] == cell_id(active, "410105")
    assert live.parse_event_id(event["id"]) > live.START


def test_the_stream_headers(feed):
    stream = Stream(feed)
    stream.close()
    headers = stream.response.headers
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == "no-cache" and headers["X-Accel-Buffering"] == "no"


def test_a_case_action_is_a_case_event_with_its_states(feed, active):  # noqa: F811
    public_id = post_report(feed)
    stream = Stream(feed, backlog=0)
    try:
        r = requests.post(f"{feed}/api/v1/cases/{public_id}/actions", timeout=10, headers=AUTH,
                          json={"action": "open", "version": 0, "actor": {"name": "张三", "unit": f"grid:{SW_GRID}"}})
        assert r.status_code == 200, r.text
        event = stream.until(lambda e: e["event"] == "case")[-1]  # (after the report's, if it was held back)
    finally:
        stream.close()
    data = event["data"]
    assert (data["id"], data["action"], data["from_state"], data["to_state"]) == (public_id, "open", "reported",
                                                                                    "opened")
    assert data["version"] == 1 and data["holder"] == f"grid:{SW_GRID}" and data["category"] == "0102"
    assert data["grid_id"] == cell_id(active, SW_GRID)


def test_a_new_stream_starts_with_the_backlog_then_follows(feed, active):  # noqa: F811
    ids = [post_report(feed) for _ in range(3)]
    assert len(read_until(active, live.START, 3)) == 3  # past: no longer held back by any open transaction
    stream = Stream(feed, backlog=2)
    try:
        first = [stream.next()["data"]["id"] for _ in range(2)]
        later = post_report(feed)
        assert stream.until(lambda e: True)[0]["data"]["id"] == later
    finally:
        stream.close()
    assert first == ids[1:]
    everything = Stream(feed)  # backlog 50: all there is
    try:
        assert [everything.next()["data"]["id"] for _ in range(4)] == ids + [later]
    finally:
        everything.close()


def test_a_reconnect_gets_exactly_what_it_missed(feed):
    stream = Stream(feed, backlog=0)
    seen = post_report(feed)
    last = stream.until(is_report(seen))[-1]["id"]
    stream.close()
    missed = [post_report(feed) for _ in range(3)]
    marker = None

    for resume in ({"last_event_id": last}, {"after": last}):  # the header, or the parameter
        again = Stream(feed, **resume)
        try:
            if marker is None:
                marker = post_report(feed)  # comes after the missed ones: everything before it is checked
            events = again.until(is_report(marker))
        finally:
            again.close()
        assert [e["data"]["id"] for e in events] == missed + [marker]
        cursors = [live.parse_event_id(e["id"]) for e in events]
        assert cursors == sorted(cursors) and len(set(cursors)) == 4


def test_the_header_wins_over_the_parameter(feed):
    stream = Stream(feed, backlog=0)
    first = post_report(feed)
    first_id = stream.until(is_report(first))[-1]["id"]
    stream.close()
    second = post_report(feed)
    again = Stream(feed, last_event_id=first_id, after="0-0")
    try:
        assert again.next()["data"]["id"] == second
    finally:
        again.close()


def test_the_stream_ends_after_its_lifetime_and_a_reconnect_resumes(feed, app, active):  # noqa: F811
    first = post_report(feed)
    assert len(read_until(active, live.START, 1)) == 1
    app.config.update(LIVE_LIFETIME_S=1.0, LIVE_HEARTBEAT_S=0.2)
    stream = Stream(feed, backlog=1)
    last = stream.until(is_report(first))[-1]["id"]
    started = time.monotonic()
    assert stream.next(timeout=WAIT_S) is None and stream.ended
    assert time.monotonic() - started < WAIT_S
    later = post_report(feed)
    app.config.update(LIVE_LIFETIME_S=60.0)
    again = Stream(feed, last_event_id=last)
    try:
        assert again.next()["data"]["id"] == later
    finally:
        again.close()


def test_a_bad_event_id_or_backlog_is_a_400_that_says_why(client):
    for headers, query, named in (({"Last-Event-ID": "abc"}, "", "Last-Event-ID"),
                                  ({"Last-Event-ID": "12-"}, "", "Last-Event-ID"),
                                  ({}, "?after=1.5-2", "after"),
                                  ({}, "?after=99999999999999999999999-1", "after")):
        r = client.get(f"/api/v1/live{query}", headers=headers)
        assert r.status_code == 400 and r.json["error"] == "BadInput"
        assert r.json["message"].startswith(named) and "<xact>-<id>" in r.json["message"]
    for backlog in ("-1", "501", "many"):
        r = client.get(f"/api/v1/live?backlog={backlog}")
        assert r.status_code == 400 and "backlog" in r.json["message"]


def test_event_ids_read_back():
    assert live.parse_event_id(" 1234-56 ") == live.Cursor(1234, 56)
    assert live.parse_event_id(str(live.Cursor(7, 8))) == (7, 8)
    for bad in ("", "1234", "-1-2", "1-2-3", "a-1", "١٢-3", f"{2 ** 64}-1"):
        with pytest.raises(BadInput):
            live.parse_event_id(bad)


def test_the_feed_is_in_the_openapi_document(client):
    from openapi_spec_validator import validate

    doc = client.get("/api/v1/openapi.json").json
    validate(doc)
    assert "text/event-stream" in doc["paths"]["/api/v1/live"]["get"]["responses"]["200"]["content"]


# --- gis.live ---------------------------------------------------------------------------------------------

def test_a_transaction_that_commits_late_is_not_passed_over(db, database_url):
    with db.cursor() as cur:
        cur.execute("truncate live_event")
        _, start = live.tail(cur, 0)
    older, younger = psycopg2.connect(database_url), psycopg2.connect(database_url)
    try:
        first = insert_incident(older)     # takes its transaction id (and incident id) first
        second = insert_incident(younger)
        younger.commit()  # the later one commits first: a reader at `id > last` would pass over `first`
        with db.cursor() as cur:
            assert live.read_after(cur, start) == []
        older.commit()
        events = read_until(db, start, 2)
    finally:
        older.close()
        younger.close()
    assert [(e.kind, e.data["id"]) for e in events] == [("report", first), ("report", second)]
    with db.cursor() as cur:
        assert live.read_after(cur, events[-1].cursor) == []
        assert live.tail(cur, 5) == (events, events[-1].cursor)


def test_events_are_in_commit_safe_order_not_id_order(db, database_url):
    with db.cursor() as cur:
        cur.execute("truncate live_event")
        _, start = live.tail(cur, 0)
    older, younger = psycopg2.connect(database_url), psycopg2.connect(database_url)
    try:
        with older.cursor() as cur:
            cur.execute("select pg_current_xact_id()")  # the older transaction id ...
        first = insert_incident(younger)                # ... but the smaller incident and event id
        second = insert_incident(older)
        younger.commit()
        with db.cursor() as cur:
            assert live.read_after(cur, start) == []
        older.commit()
        events = read_until(db, start, 2)
    finally:
        older.close()
        younger.close()
    assert [e.data["id"] for e in events] == [second, first]
    assert events[0].cursor.id > events[1].cursor.id


def test_a_later_routing_is_news_with_the_routing_it_replaces(active):  # noqa: F811
    with active.cursor() as cur:
        cur.execute("truncate live_event")
    with active.connection() as conn:
        public_id = insert_incident(conn)
        for reason in ("intake", "reroute"):
            route(conn, public_id, reason)
    events = read_until(active, live.START, 2)
    assert [e.kind for e in events] == ["report", "routing"]  # nothing for the intake routing
    data, grid = events[1].data, cell_id(active, SW_GRID)
    assert (data["id"], data["reason"], data["grid_id"]) == (public_id, "reroute", grid)
    assert data["previous"]["grid_id"] == grid and data["previous"]["version_id"] == 1


def test_nothing_is_logged_with_gridmap_live_off(active, database_url):  # noqa: F811
    with active.cursor() as cur:
        cur.execute("truncate live_event")
    with active.connection() as conn:
        with conn.cursor() as cur:
            cur.execute("set local gridmap.live = off")
        public_id = insert_incident(conn)
        with conn.cursor() as cur:
            cur.execute("""insert into case_event (incident_id, seq, action, from_state, to_state, from_level,
                                                   to_level, actor, at)
                           select id, 1, 'open', 'reported', 'opened', 'grid', 'grid', 'tester', now()
                             from incident where public_id = %s""", (public_id,))
        route(conn, public_id, "reroute")
    demo_history.load(active, Settings.from_env({"DATABASE_URL": database_url}), count=50, echo=lambda _: None)
    with active.cursor() as cur:
        cur.execute("select count(*) as n from incident")
        assert cur.fetchone()["n"] == 51
        cur.execute("select count(*) as n from live_event")
        assert cur.fetchone()["n"] == 0
    with active.connection() as conn:  # and on again in the next transaction
        insert_incident(conn)
    assert len(read_until(active, live.START, 1)) == 1


def test_the_listener_wakes_streams_when_an_older_transaction_ends(db, database_url):
    listener = live.Listener(database_url).start()
    older = psycopg2.connect(database_url)
    writer = psycopg2.connect(database_url)
    writer.autocommit = True
    try:
        assert listener.wait(0, WAIT_S) != 0  # listening
        with older.cursor() as cur:
            cur.execute("select pg_current_xact_id()")  # a writing transaction that will notify nobody
        seen = listener.generation
        insert_incident(writer)
        assert listener.wait(seen, WAIT_S) != seen  # the notification
        time.sleep(0.5)  # the listener sees the event held back by `older`
        seen = listener.generation
        older.rollback()
        assert listener.wait(seen, WAIT_S) != seen  # no notification: it saw the event come free
    finally:
        listener.stop()
        older.close()
        writer.close()


def test_the_listener_listens_again_after_losing_its_connection(db, database_url):
    listener = live.Listener(database_url).start()
    try:
        seen = listener.wait(0, WAIT_S)
        assert seen != 0  # listening
        with db.cursor() as cur:
            cur.execute("select pg_terminate_backend(pid) from pg_stat_activity"
                        " where application_name = 'gridmap live' and datname = current_database()")
        listening = listener.wait(seen, WAIT_S)
        assert listening != seen  # listening again: it wakes the streams, since news may have come meanwhile
        with db.cursor() as cur:
            cur.execute("notify gridmap_live")
        assert listener.wait(listening, WAIT_S) != listening
    finally:
        listener.stop()


def test_the_tick_forgets_events_older_than_a_week(db):
    from gis import cases, live

    with db.cursor() as cur:
        cur.execute("insert into live_event (kind, incident_id, data, at) values "
                    "('report', 1, '{}', now() - interval '8 days'), ('report', 2, '{}', now() - interval '6 days')")
    cases.tick(db)
    with db.cursor() as cur:
        cur.execute("select incident_id from live_event order by id")
        assert [r["incident_id"] for r in cur.fetchall()] == [2]
    assert live.prune(db) == 0


def test_a_file_of_past_reports_imported_is_not_live_news(active, runner, tmp_path):  # noqa: F811
    from test_batch_routing import write_reports_csv
    from test_grid_import import run

    path = write_reports_csv(tmp_path / "past.csv", [
        {"client_request_id": f"p{i}", "lon": fixtures.X0 + 0.01, "lat": fixtures.Y0 + 0.01, "category": "0102"}
        for i in range(3)])
    assert run(runner, "incidents", "import", path, "--lon", "lon", "--lat", "lat", "--commit").exit_code == 0
    with active.cursor() as cur:
        cur.execute("select count(*) as incidents, (select count(*) from live_event) as events from incident")
        assert dict(cur.fetchone()) == {"incidents": 3, "events": 0}
