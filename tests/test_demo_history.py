"""The demo's incident history (gis.demo_history) and the live report simulator (gis.simulate); the cases'
model on its own is tested in test_demo_cases.py."""
import csv
import datetime as dt
import json
import threading

import numpy as np
import pandas as pd
import pytest
import requests

import fixtures
from gis import case_workflow, cases, demo_cases, demo_history, simulate
from gis.errors import NotFound
from gis.event_classes import CLASSES_CSV
from gis.incidents import CLOSED_STATES, OPEN_STATES
from gis.settings import Settings
from test_grid_import import import_all, run

END = pd.Timestamp("2026-11-23T00:00:00+08:00")
CHINA = "Asia/Shanghai"


@pytest.fixture(scope="module")
def cells():
    return fixtures.frame(3)


@pytest.fixture(scope="module")
def full(cells):
    return demo_history.generate_history(cells, count=20_000)


@pytest.fixture(scope="module")
def history(full):
    return full.incidents


@pytest.fixture(scope="module")
def events(full):
    return full.events


@pytest.fixture
def active(db, runner, tmp_path):
    import_all(runner, tmp_path)
    assert run(runner, "grid", "activate", 1, "--commit").exit_code == 0
    return db


def count(db, sql, params=()):
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


# --- generate() ---------------------------------------------------------------------------------------

def test_same_seed_same_frame_other_seed_other_frame(cells):
    a = demo_history.generate_history(cells, count=3000, seed=7)
    again = demo_history.generate_history(cells, count=3000, seed=7)
    pd.testing.assert_frame_equal(a.incidents, again.incidents)
    pd.testing.assert_frame_equal(a.events, again.events)
    pd.testing.assert_frame_equal(a.incidents, demo_history.generate(cells, count=3000, seed=7))
    b = demo_history.generate(cells, count=3000, seed=8)
    assert not a.incidents[["lon", "lat"]].equals(b[["lon", "lat"]])
    assert not a.incidents["reported_at"].equals(b["reported_at"])
    assert not a.incidents["closed_at"].equals(b["closed_at"])


def test_columns_count_and_the_time_window(history, events):
    assert list(history.columns) == [*demo_history.COLUMNS, *demo_cases.CASE_COLUMNS]
    assert list(events.columns) == [*demo_cases.EVENT_COLUMNS, "handling_h"]
    assert len(history) == 20_000
    assert str(history["reported_at"].dt.tz) == "UTC"
    assert history["reported_at"].min() >= END - pd.Timedelta(days=90)
    assert history["reported_at"].max() < END
    assert history["reported_at"].is_monotonic_increasing
    assert history["client_request_id"].iloc[0] == "demo-000000"
    assert history["client_request_id"].is_unique
    assert history["client_request_id"].str.fullmatch(r"demo-\d{6}").all()
    # every day of the window has reports
    days = history["reported_at"].dt.tz_convert(CHINA).dt.date.nunique()
    assert days in (90, 91)


def test_an_explicit_end_and_window(cells):
    end = pd.Timestamp("2026-06-01T12:00:00+08:00")
    frame = demo_history.generate(cells, count=500, days=7, end=end)
    assert frame["reported_at"].min() >= end - pd.Timedelta(days=7)
    assert frame["reported_at"].max() < end
    assert frame["status_changed_at"].max() <= end


def test_few_reports_at_night_many_mid_morning(history):
    hours = history["reported_at"].dt.tz_convert(CHINA).dt.hour.value_counts()
    night = hours.reindex([2, 3, 4], fill_value=0).mean()
    morning = hours.reindex([9, 10], fill_value=0).mean()
    assert night < 0.15 * morning
    afternoon = hours.reindex([15, 16], fill_value=0).mean()
    lunch = hours.reindex([12, 13], fill_value=0).mean()
    assert afternoon > lunch  # the second peak


def test_patrol_categories_are_busier_on_weekdays(history):
    local = history["reported_at"].dt.tz_convert(CHINA)
    patrol = ~history["category"].isin(demo_history.COMPLAINT_CODES)
    day = local[patrol].dt.normalize()
    per_day = day.value_counts()
    weekend = per_day.index.day_of_week >= 5
    assert per_day[weekend].mean() < 0.75 * per_day[~weekend].mean()


def test_categories_exist_and_the_mix_is_plausible(history):
    with open(CLASSES_CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    codes = {r["code"] for r in rows}
    emergency = {r["code"] for r in rows if r["emergency"] == "true"}
    assert set(history["category"]) <= codes
    share = history["category"].str[:2].value_counts(normalize=True)
    assert share.index[0] in ("01", "05") and share.index[1] in ("01", "05")
    assert history["category"].isin(emergency).mean() < 0.05


def test_statuses_and_their_times(history):
    assert set(history["status"]) <= set(demo_history.STATUSES)
    assert (history["status_changed_at"] >= history["reported_at"]).all()
    assert (history["status_changed_at"] <= END).all()
    reported = history["status"] == "reported"
    assert (history.loc[reported, "status_changed_at"] == history.loc[reported, "reported_at"]).all()
    old = history[history["reported_at"] < END - pd.Timedelta(days=30)]
    assert (old["status"] == "closed").mean() > 0.85
    recent = history[history["reported_at"] >= END - pd.Timedelta(hours=6)]
    assert len(recent) and recent["status"].isin(OPEN_STATES).mean() > 0.6
    voided = (history["status"] == "voided").mean()
    assert 0.01 < voided < 0.06
    assert set(OPEN_STATES) | set(CLOSED_STATES) >= set(history["status"])


def test_sources_accuracy_and_reporters(history):
    share = history["source"].value_counts(normalize=True)
    assert share["field_app"] > 0.7 and share["hotline"] > 0.03 and share["open311"] > 0.02
    acc = history["accuracy_m"]
    assert acc.between(2, 50).all() and acc.between(3, 15).mean() > 0.8
    reporters = [json.loads(r) for r in history["reporter"]]
    assert all(isinstance(r, dict) and r for r in reporters)
    field = history["source"] == "field_app"
    assert all("name" in r for r, f in zip(reporters, field) if f)
    assert history["description"].str.len().between(4, 80).all()


def test_hot_spots_and_a_few_points_just_outside(history):
    lon, lat = history["lon"], history["lat"]
    inside = lon.between(fixtures.X0, fixtures.X1) & lat.between(fixtures.Y0, fixtures.Y1)
    outside = history[~inside]
    assert 0 < len(outside) < 0.02 * len(history)
    # just outside: within a few hundred metres of the fixture square
    margin = 0.005  # about 450 m
    assert outside["lon"].between(fixtures.X0 - margin, fixtures.X1 + margin).all()
    assert outside["lat"].between(fixtures.Y0 - margin, fixtures.Y1 + margin).all()
    # clustered: the busiest 1 % of 100 m squares hold far more than 1 % of the reports
    squares = (np.floor(lon / 0.001).astype(int).astype(str) + "," + np.floor(lat / 0.001).astype(int).astype(str))
    counts = squares.value_counts()
    top = counts.iloc[: max(1, len(counts) // 100)].sum()
    assert top > 0.08 * len(history)


# --- load() ---------------------------------------------------------------------------------------------

def test_load_inserts_routes_once(active, database_url):
    settings = Settings.from_env({"DATABASE_URL": database_url})
    lines = []
    message = demo_history.load(active, settings, count=300, echo=lines.append)
    assert "300" in message
    assert count(active, "select count(*) from incident where client_request_id like 'demo-%%'") == 300
    assert count(active, "select count(*) from incident where routing_id is null") == 0
    assert count(active, "select count(*) from incident_routing where reason = 'import'") == 300
    assert count(active, "select count(*) from incident where received_at <> reported_at") == 0
    # public ids carry the report date (China time), and ids follow the report time
    assert count(active, """select count(*) from incident
                             where left(public_id, 8) <> to_char(reported_at at time zone 'Asia/Shanghai', 'YYYYMMDD')""") == 0
    assert count(active, """select count(*) from incident a join incident b on b.id = a.id + 1
                             where b.reported_at < a.reported_at""") == 0
    assert count(active, "select count(*) from incident where grid_id is not null") > 280

    again = demo_history.load(active, settings, count=300, echo=lines.append)
    assert "already" in again
    assert count(active, "select count(*) from incident") == 300
    assert count(active, "select count(*) from incident_routing") == 300


def test_load_gives_every_incident_its_case(active, database_url):
    settings = Settings.from_env({"DATABASE_URL": database_url})
    # a grid worker and a community secretary the grid store knows: their names come from it
    with active.cursor() as cur:
        cur.execute("""with p as (insert into staff (name, phone) values ('网格员甲', '13800000001'),
                                                                     ('书记乙', '13800000002') returning id, name)
                       insert into cell_staff (cell_id, staff_id, post)
                       select c.id, p.id, case p.name when '网格员甲' then 'grid_worker' else 'community_secretary' end
                         from p join grid_cell c on c.level = case p.name when '网格员甲' then 3 else 2 end""")
    lines = []
    demo_history.load(active, settings, count=2000, echo=lines.append)
    assert not any("left reported" in line for line in lines), lines
    with active.cursor() as cur:
        calendar = cases.calendar(cur)  # the one load() counted on
    history = demo_history.generate_history(fixtures.frame(3), count=2000, calendar=calendar,
                                            rules=cases.Rules.from_settings(settings))
    assert count(active, "select count(*) from case_event") == len(history.events)
    assert count(active, "select sum(case_version) from incident") == len(history.events)
    with active.cursor() as cur:
        cur.execute("""select i.id, i.client_request_id, i.status, i.case_level, i.holder, i.unit_kind, i.unit_code,
                              i.reported_at, i.status_changed_at, i.case_version, i.reworks, i.escalations,
                              g.code as grid, m.code as community, s.code as street, d.code as district
                         from incident i
                         left join grid_cell g on g.id = i.grid_id left join grid_cell m on m.id = i.community_id
                         left join grid_cell s on s.id = i.street_id left join grid_cell d on d.id = i.district_id
                        order by i.id""")
        incidents = pd.DataFrame(cur.fetchall()).set_index("id")
        cur.execute("select * from case_event order by incident_id, seq")
        events = pd.DataFrame(cur.fetchall())
    stored = incidents.set_index("client_request_id")
    frame = history.incidents.set_index("client_request_id")
    for column in ("status", "case_level", "unit_kind", "case_version", "reworks", "escalations"):
        assert (stored[column].fillna("-") == frame[column].fillna("-")).all(), column

    def code(row, kind):
        return "city" if kind == "city" else f"{kind}:{row[kind]}"

    for row in incidents.itertuples():
        row = row._asdict()
        if row["status"] in ("reported", "closed", "voided"):
            assert pd.isna(row["holder"]), row
        elif row["status"] in ("opened", "handled"):
            assert row["holder"] == code(row, row["case_level"]), row
        else:
            assert row["holder"] == f"{row['unit_kind']}:{row['unit_code']}", row
        if row["unit_kind"] in ("grid", "community", "street"):
            assert row["unit_code"] == row[row["unit_kind"]], row
    # the events, replayed with what case_event keeps, end where the incidents are
    final, acting = {}, {}
    for e in events.itertuples():
        state, level = final.get(e.incident_id, ("reported", e.from_level))
        assert (e.seq == 1) == (e.incident_id not in final)
        assert (e.from_state, e.from_level) == (state, level)
        details = e.details
        moved = case_workflow.step(state, level, e.action, {**details, "note": e.note})
        assert (moved.state, moved.level) == (e.to_state, e.to_level)
        final[e.incident_id] = (moved.state, moved.level)
        incident = incidents.loc[e.incident_id].to_dict()
        # the unit acting holds the case: its platform, or the unit dispatched to
        if e.actor == "system":
            assert pd.isna(e.actor_unit) and e.action == "escalate"
        elif state in ("reported", "opened", "handled"):
            assert e.actor_unit == code(incident, level), e
        else:
            assert e.actor_unit == acting[e.incident_id], e
        if e.action == "dispatch":
            acting[e.incident_id] = f"{details['unit_kind']}:{details['unit']}"
            if details["unit_kind"] != "department":
                assert details["unit"] == incident[details["unit_kind"]]
            assert dt.datetime.fromisoformat(details["due_at"]) > e.at
        assert incident["reported_at"] <= e.at <= END
    for incident_id, (state, level) in final.items():
        assert (incidents.loc[incident_id, "status"], incidents.loc[incident_id, "case_level"]) == (state, level)
    changed = events[events["from_state"] != events["to_state"]].groupby("incident_id")["at"].max()
    assert (incidents.loc[changed.index, "status_changed_at"] == changed).all()
    # names from the grid store where it has them
    workers = events[(events["action"] == "handle") & events["actor_unit"].str.startswith("grid:")]
    assert len(workers) and (workers["actor"] == "网格员甲").all()
    opened = events[(events["action"] == "open") & events["from_level"].eq("community")]
    assert (opened["actor"] == "书记乙").all()
    assert count(active, "select count(*) from case_event where action = 'handle' and geom is not null") > 0
    # the case pages read them back
    with active.cursor() as cur:
        cur.execute("select public_id from incident where escalations > 0 and status = 'closed' limit 1")
        doc = cases.get(cur, cur.fetchone()["public_id"])
    assert [e["action"] for e in doc["case"]["events"]][-1] == "close"
    assert doc["case"]["holder"] is None and doc["case"]["escalations"] >= 1

def test_load_needs_an_active_version(db, database_url):
    with pytest.raises(NotFound):
        demo_history.load(db, Settings.from_env({"DATABASE_URL": database_url}), count=10, echo=lambda _: None)
    assert count(db, "select count(*) from incident") == 0


# --- simulate() -----------------------------------------------------------------------------------------

def test_simulate_posts_reports(app, active, live_server):
    lines = []
    summary = simulate.simulate(live_server, rate=200, count=10, seed=1, echo=lines.append,
                                api_key=app.config["TEST_ADMIN_KEY"])
    assert summary["sent"] == 10 and summary["created"] == 10
    assert summary["repeated"] == 0 and summary["errors"] == 0, summary
    assert count(active, "select count(*) from incident where source = 'field_app'") == 10
    assert count(active, "select count(*) from incident where routing_id is null") == 0
    assert summary["p50_ms"] > 0 and summary["p99_ms"] >= summary["p50_ms"]


def test_simulate_keeps_a_steady_pace(app, active, live_server, cells):
    summary = simulate.simulate(live_server, rate=40, count=12, seed=2, cells=cells, echo=lambda _: None,
                                api_key=app.config["TEST_ADMIN_KEY"])
    assert summary["created"] == 12
    assert summary["seconds"] >= 11 / 40 * 0.95  # 12 reports at 40/s: 11 intervals, not a burst


def test_simulate_stops_after_a_duration(app, active, live_server, cells):
    summary = simulate.simulate(live_server, rate=20, duration=0.5, cells=cells, echo=lambda _: None,
                                api_key=app.config["TEST_ADMIN_KEY"])
    assert 1 <= summary["sent"] <= 11  # at most 0.5 s × 20/s (+1): it stopped; fewer on a slow machine
    assert summary["created"] == summary["sent"]


def test_some_reports_come_in_gcj02(app, active, live_server, cells):
    simulate.simulate(live_server, rate=500, count=30, seed=4, cells=cells, gcj02_share=0.5,
                      echo=lambda _: None, api_key=app.config["TEST_ADMIN_KEY"])
    gcj = count(active, "select count(*) from incident where given_crs = 'gcj02'")
    assert 0 < gcj < 30
    # given as GCJ-02, stored in WGS84: a few hundred metres apart near Zhengzhou
    assert count(active, """select count(*) from incident where given_crs = 'gcj02'
                             and abs(given_x - ST_X(geom)) between 0.001 and 0.01""") == gcj


class LosesFirstAnswer:
    """A session whose first POST reaches the server but whose answer is lost on the way back."""

    def __init__(self, session):
        self.session = session
        self.posts = 0
        self.lock = threading.Lock()

    def post(self, *args, **kwargs):
        response = self.session.post(*args, **kwargs)
        with self.lock:
            self.posts += 1
            first = self.posts == 1
        if first:
            raise requests.ConnectionError("connection reset before the answer arrived")
        return response


def test_a_retry_gets_the_same_incident_back(active, live_server, admin_headers):
    body = {"lon": fixtures.X0 + 0.01, "lat": fixtures.Y0 + 0.01, "category": "0102",
            "client_request_id": "retry-me", "accuracy_m": 5.0}
    with requests.Session() as http:
        http.headers.update(admin_headers)
        status, _, attempts, error = simulate.post_report(http, live_server, body)
        assert (status, attempts, error) == (201, 1, None)
        status, _, attempts, error = simulate.post_report(http, live_server, body)
        assert (status, attempts, error) == (200, 1, None)
        body2 = dict(body, client_request_id="lost-answer")
        status, _, attempts, error = simulate.post_report(LosesFirstAnswer(http), live_server, body2,
                                                          backoff_s=0.01)
        assert (status, attempts, error) == (200, 2, None)
    assert count(active, "select count(*) from incident") == 2


def test_simulate_counts_a_retried_report_as_a_repeat(active, live_server, cells, admin_headers):
    with requests.Session() as http:
        http.headers.update(admin_headers)
        summary = simulate.simulate(live_server, rate=100, count=3, seed=5, cells=cells,
                                    session=LosesFirstAnswer(http), concurrency=1, echo=lambda _: None)
    assert (summary["created"], summary["repeated"], summary["retried"], summary["errors"]) == (2, 1, 1, 0)
    assert count(active, "select count(*) from incident") == 3
