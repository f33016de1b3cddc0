"""Evaluation (gis/evaluation.py): indicators, scores and rankings against figures worked out by hand, over
the API as JSON and CSV, through ``gridmap report`` (also to .xlsx), and every bad input refused.

The city is the fixture partition (two streets × two communities × two unit grids) loaded twice: version 1,
retired, and version 2, active. A few cases are still routed to version 1's cells, as incidents routed before
a boundary change are; they count for the cells of version 2 with the same code. The period is ISO week
2024-W47: Monday 2024-11-18 00:00 to Monday 2024-11-25 00:00, China time.
"""
import csv
import datetime as dt
import io
import re

import openpyxl
import pytest
from psycopg2.extras import RealDictCursor

import fixtures
from gis import evaluation
from gis.errors import BadInput, NotFound
from test_grid_import import import_level, run

CST = dt.timezone(dt.timedelta(hours=8))
WEEK = "2024-W47"
WEST, EAST = "410105001", "410105002"
G1, G2, G3, G4 = (f"{WEST}{c}{g}" for c in ("001", "002") for g in ("001", "002"))
G5, G6, G7, G8 = (f"{EAST}{c}{g}" for c in ("001", "002") for g in ("001", "002"))


def t(day, hour=9, minute=0):
    """A moment of November 2024, China time."""
    return dt.datetime(2024, 11, day, hour, minute, tzinfo=CST)


def closed_case(reported, due, handled, closed, hours, **more):
    return dict(reported_at=reported, opened_at=reported + dt.timedelta(minutes=30),
                dispatched_at=reported + dt.timedelta(hours=1), due_at=due, handled_at=handled, closed_at=closed,
                handling_h=hours, status="closed", status_changed_at=closed, **more)


# (name, unit grid, grid version it was routed against, case columns). What each counts for in 2024-W47:
CASES = [
    # reported, opened, due, closed, on time (handled 09:00, due 10:00); dispatched to a department
    ("A", G1, 2, closed_case(t(18), t(19, 10), t(19, 9), t(19, 11), 3.0, unit_kind="department", unit_code="CGJ")),
    # reported, opened, due, closed, late (handled 12:00, due 10:00), reworked once
    ("B", G1, 2, closed_case(t(18), t(20, 10), t(20, 12), t(20, 13), 5.0, reworks=1, unit_kind="department",
                             unit_code="CGJ")),
    # reported and opened before the week; due in it, closed only after it (not closed as of its end); extended
    ("C", G2, 2, closed_case(t(17), t(18, 10), t(18, 9), t(26), 2.0, extensions=1, unit_kind="grid",
                             unit_code=G2)),
    # reported and voided
    ("D", G3, 2, dict(reported_at=t(19), status="voided", status_changed_at=t(19, 10))),
    # reported, due and escalated long before; closed in the week (routed to version 1's cell)
    ("E", G3, 1, closed_case(t(10), t(12, 10), t(12, 9), t(19, 15), 10.0)),
    # reported, opened, due, not handled yet
    ("F", G5, 2, dict(reported_at=t(20), opened_at=t(20, 9, 30), dispatched_at=t(20, 10), due_at=t(21, 10),
                      status="in_progress", status_changed_at=t(20, 11))),
    # reported in the week's last hour, nothing else yet
    ("G", G5, 2, dict(reported_at=t(24, 23), status="reported", status_changed_at=t(24, 23))),
    # reported, opened, due, closed on time; escalated in the week
    ("H", G5, 2, closed_case(t(21, 8), t(22, 10), t(22, 8), t(22, 9), 1.0, escalations=1)),
    # two grids with the very same record: reported, opened, due, closed on time (K routed to version 1)
    ("J", G4, 2, closed_case(t(20), t(21, 10), t(21, 9), t(21, 10), 2.0)),
    ("K", G8, 1, closed_case(t(20), t(21, 10), t(21, 9), t(21, 10), 2.0)),
    # entirely before the week, entirely after it: count for nothing
    ("L", G1, 2, closed_case(t(1), t(2, 10), t(2, 9), t(2, 11), 7.0)),
    ("M", G1, 2, dict(reported_at=t(26), status="reported", status_changed_at=t(26))),
]
ESCALATIONS = [("H", t(21, 9)), ("E", t(11))]  # E's is before the week

STAFF = [(G1, "grid_head", "李四"), (G1, "grid_worker", "王五"), (WEST + "001", "community_secretary", "赵六"),
         (EAST, "street_head", "孙七"), (G7, "grid_worker", "周八")]


@pytest.fixture
def city(db, runner, tmp_path):
    for version in (1, 2):
        for level in range(4):
            path = fixtures.write(tmp_path / f"v{version}-level{level}.geojson", level)
            import_level(runner, path, level, *(["--version", version] if level else []))
        if version == 2:
            staff = tmp_path / "staff.csv"
            staff.write_text("cell_code,post,name,phone\n"
                             + "".join(f"{cell},{post},{name},1390000000{i}\n"
                                       for i, (cell, post, name) in enumerate(STAFF)), encoding="utf-8")
            assert run(runner, "staff", "import", staff, "--version", 2, "--commit").exit_code == 0
        assert run(runner, "grid", "activate", version, "--commit").exit_code == 0
    ids = {}
    with db.cursor() as cur:
        for name, grid, version, columns in CASES:
            cur.execute("""select g.id as grid_id, g.parent_id as community_id, c.parent_id as street_id,
                                  s.parent_id as district_id
                             from grid_cell g join grid_cell c on c.id = g.parent_id join grid_cell s on s.id = c.parent_id
                            where g.code = %s and g.version_id = %s""", (grid, version))
            row = {**cur.fetchone(), **columns, "version_id": version}
            names = ", ".join(row)
            cur.execute(f"""insert into incident (category, given_x, given_y, given_crs, geom, source, routing_status,
                                                  {names})
                            values ('0102', 113.61, 34.71, 'EPSG:4326', ST_SetSRID(ST_MakePoint(113.61, 34.71), 4326),
                                    'import', 'routed', {', '.join(['%s'] * len(row))})
                            returning id""", list(row.values()))
            ids[name] = cur.fetchone()["id"]
        for seq, (name, at) in enumerate(ESCALATIONS, start=5):
            cur.execute("""insert into case_event (incident_id, seq, action, from_state, to_state, from_level,
                                                   to_level, actor, at)
                           values (%s, %s, 'escalate', 'dispatched', 'opened', 'grid', 'community', 'tester', %s)""",
                        (ids[name], seq, at))
    return db


def rows_of(db, level, period=WEEK, **options):
    with db.cursor() as cur:
        return evaluation.indicators(cur, level, evaluation.parse_period(period), **options)


def by_code(rows):
    return {r["code"]: r for r in rows}


# --- the figures ------------------------------------------------------------------------------------

def test_each_indicator_of_a_street_matches_the_hand_count(city):
    west, east = (by_code(rows_of(city, "street"))[code] for code in (WEST, EAST))
    # west: A B C D E J. Reported A B D J; opened A B J; voided D; due A B C J; closed A B E J.
    assert (west["received"], west["opened"], west["voided"], west["due"], west["closed"]) == (4, 3, 1, 4, 4)
    # of the 4 due: A B J closed by the week's end (C a day after), A J on time, B reworked, C extended
    assert west["closure_rate"] == pytest.approx(3 / 4) and west["on_time_rate"] == pytest.approx(2 / 4)
    assert west["rework_rate"] == pytest.approx(1 / 4) and west["extension_rate"] == pytest.approx(1 / 4)
    assert west["escalations"] == 0  # E's escalation was the week before
    # handling of the cases closed in the week, A B E J: 3, 5, 10, 2 hours; p90 between 5 and 10, at 0.7
    assert west["handling_mean_h"] == pytest.approx(5.0) and west["handling_p90_h"] == pytest.approx(8.5)
    assert west["score"] == pytest.approx(100 * (0.3 * 3 / 4 + 0.4 * 2 / 4 + 0.2 * 3 / 4 + 0.1 * 3 / 4))  # 65
    # east: F G H K. Due F H K; closed H K, both on time; H escalated in the week
    assert (east["received"], east["opened"], east["voided"], east["due"], east["closed"]) == (4, 3, 0, 3, 2)
    assert east["closure_rate"] == pytest.approx(2 / 3) and east["on_time_rate"] == pytest.approx(2 / 3)
    assert east["rework_rate"] == 0 and east["extension_rate"] == 0 and east["escalations"] == 1
    assert east["handling_mean_h"] == pytest.approx(1.5) and east["handling_p90_h"] == pytest.approx(1.9)
    assert east["score"] == pytest.approx(100 * (0.3 * 2 / 3 + 0.4 * 2 / 3 + 0.2 + 0.1), abs=1e-4)  # 76.67
    assert east["name"] == "东街道" and east["kind"] == "street"


def test_streets_rank_by_score(city):
    rows = rows_of(city, "street")
    assert [(r["rank"], r["code"]) for r in rows] == [(1, EAST), (2, WEST)]
    assert list(rows[0])[:4] == ["rank", "kind", "code", "name"]


def test_cases_routed_to_an_older_version_count_for_the_cell_with_the_same_code(city):
    rows = by_code(rows_of(city, "grid"))
    assert rows[G8]["due"] == 1 and rows[G8]["closed"] == 1  # K, routed to version 1's G8
    assert rows[G3]["closed"] == 1 and rows[G3]["handling_mean_h"] == pytest.approx(10.0)  # E
    with city.cursor() as cur:
        cur.execute("select count(*) from grid_version where status = 'retired'")
        assert cur.fetchone()["count"] == 1


def test_custom_weights_change_the_score_and_ties_go_by_on_time_rate_then_code(city):
    streets = by_code(rows_of(city, "street", weights="closure_rate:1,on_time_rate:1"))
    assert streets[WEST]["score"] == pytest.approx(100 * (3 / 4 + 2 / 4) / 2)  # 62.5
    assert streets[EAST]["score"] == pytest.approx(100 * (2 / 3 + 2 / 3) / 2, abs=1e-4)
    # closure only: G1, G4 and G8 all closed what fell due (100); G4 and G8 did it on time, G1 half of it
    # (B was late); G4 and G8 tie on both, and G4 has the lower code. Units with nothing due come last, by code.
    rows = rows_of(city, "grid", weights={"closure_rate": 1})
    assert [(r["code"], r["score"]) for r in rows] == [
        (G4, 100), (G8, 100), (G1, 100), (G5, 50), (G2, 0), (G3, None), (G6, None), (G7, None)]
    assert [r["rank"] for r in rows] == list(range(1, 9))


def test_units_without_cases_are_listed_with_zeros_and_no_score(city):
    g7 = by_code(rows_of(city, "grid"))[G7]
    assert (g7["received"], g7["due"], g7["closed"], g7["escalations"]) == (0, 0, 0, 0)
    assert g7["closure_rate"] is None and g7["score"] is None and g7["handling_p90_h"] is None
    assert g7["rank"] == 8


def test_within_keeps_the_units_under_a_cell(city):
    rows = rows_of(city, "community", within=WEST)
    # WEST001 (G1 G2: A B C) due 3, closed 2, on time 1, rework 1, extension 1; WEST002 (G3 G4: D E J) J alone due
    assert [(r["code"], r["due"]) for r in rows] == [(WEST + "002", 1), (WEST + "001", 3)]
    assert rows[0]["score"] == 100
    assert rows[1]["score"] == pytest.approx(100 * (0.3 * 2 / 3 + 0.4 / 3 + 0.2 * 2 / 3 + 0.1 * 2 / 3), abs=1e-4)
    assert [r["code"] for r in rows_of(city, "grid", within=EAST + "001")] == [G5, G6]
    assert [r["code"] for r in rows_of(city, "street", within=EAST)] == [EAST]


def test_the_district_counts_everything(city):
    (district,) = rows_of(city, "district")
    assert (district["code"], district["received"], district["due"], district["closed"]) == ("410105", 8, 7, 6)
    assert district["closure_rate"] == pytest.approx(5 / 7) and district["escalations"] == 1


def test_departments_are_scored_on_the_cases_dispatched_to_them(city):
    rows = rows_of(city, "department")
    with city.cursor() as cur:
        cur.execute("select code from department order by code")
        codes = [r["code"] for r in cur.fetchall()]
    assert [r["code"] for r in rows] == ["CGJ"] + [c for c in codes if c != "CGJ"]
    cgj = rows[0]
    assert (cgj["name"], cgj["received"], cgj["due"], cgj["closed"]) == ("城市管理局", 2, 2, 2)  # A and B
    assert (cgj["closure_rate"], cgj["on_time_rate"], cgj["rework_rate"]) == (1, 0.5, 0.5)
    assert cgj["handling_p90_h"] == pytest.approx(3 + 0.9 * (5 - 3))
    assert cgj["score"] == pytest.approx(100 * (0.3 + 0.4 * 0.5 + 0.2 * 0.5 + 0.1))  # 70
    assert all(r["score"] is None and r["received"] == 0 for r in rows[1:])


def test_posts_are_scored_on_their_cells_one_row_per_person(city):
    rows = rows_of(city, "post")
    assert [(r["rank"], r["name"], r["post"], r["code"]) for r in rows] == [
        (1, "孙七", "street_head", EAST),
        (2, "李四", "grid_head", G1),            # G1: A and B, both closed, one on time, one reworked: 70
        (3, "王五", "grid_worker", G1),          # the same cell: the same figures; by name
        (4, "赵六", "community_secretary", WEST + "001"),
        (5, "周八", "grid_worker", G7),          # nothing due
    ]
    assert rows[0]["score"] == pytest.approx(by_code(rows_of(city, "street"))[EAST]["score"])
    assert rows[1]["score"] == pytest.approx(100 * (0.3 + 0.4 * 0.5 + 0.2 * 0.5 + 0.1))
    assert (rows[1]["post_name"], rows[1]["cell_name"], rows[1]["cell_level"]) == ("网格长", "西街道南社区第1网格", 3)
    assert rows[4]["score"] is None
    assert [r["name"] for r in rows_of(city, "post", within=EAST)] == ["孙七", "周八"]


def test_counts_are_as_of_now_when_the_period_has_not_ended(city):
    with city.cursor() as cur:
        west = by_code(evaluation.indicators(cur, "street", evaluation.parse_period(WEEK), as_of=t(20, 12)))[WEST]
    # by Wednesday noon: due A B C (J is due Thursday); only A closed by then; closed in the week so far: A E
    assert (west["received"], west["due"], west["closed"]) == (4, 3, 2)
    assert west["closure_rate"] == pytest.approx(1 / 3)


def test_the_stored_weights_are_the_default(city):
    with city.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        assert evaluation.stored_weights(cur) == {"closure_rate": 0.3, "on_time_rate": 0.4, "rework_rate": 0.2,
                                                  "extension_rate": 0.1}
        cur.execute("update score_weight set weight = case indicator when 'closure_rate' then 2 else 0 end")
        rows = evaluation.indicators(cur, "street", evaluation.parse_period(WEEK))
        assert [(r["code"], r["score"]) for r in rows] == [(WEST, 75), (EAST, pytest.approx(200 / 3, abs=1e-4))]
        cur.execute("update score_weight set weight = 0")
        with pytest.raises(BadInput, match="the weights are all 0"):
            evaluation.indicators(cur, "street", evaluation.parse_period(WEEK))
        conn.rollback()


# --- periods and weights ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, today, label, start, end", [
    ("day", dt.date(2026, 11, 25), "2026-11-24", dt.date(2026, 11, 24), dt.date(2026, 11, 25)),
    ("week", dt.date(2026, 11, 25), "2026-W47", dt.date(2026, 11, 16), dt.date(2026, 11, 23)),
    ("week", dt.date(2026, 11, 23), "2026-W47", dt.date(2026, 11, 16), dt.date(2026, 11, 23)),  # a Monday
    ("week", dt.date(2026, 1, 5), "2026-W01", dt.date(2025, 12, 29), dt.date(2026, 1, 5)),  # ISO weeks
    ("month", dt.date(2026, 11, 25), "2026-10", dt.date(2026, 10, 1), dt.date(2026, 11, 1)),
    ("month", dt.date(2026, 1, 1), "2025-12", dt.date(2025, 12, 1), dt.date(2026, 1, 1)),
    ("quarter", dt.date(2026, 2, 10), "2025-Q4", dt.date(2025, 10, 1), dt.date(2026, 1, 1)),
    ("2024-W47", None, "2024-W47", dt.date(2024, 11, 18), dt.date(2024, 11, 25)),
    ("2024-12", None, "2024-12", dt.date(2024, 12, 1), dt.date(2025, 1, 1)),
    ("2024-11-20", None, "2024-11-20", dt.date(2024, 11, 20), dt.date(2024, 11, 21)),
    ("2024-Q2", None, "2024-Q2", dt.date(2024, 4, 1), dt.date(2024, 7, 1)),
])
def test_periods_in_china_time(text, today, label, start, end):
    period = evaluation.parse_period(text, today=today)
    assert period.label == label
    assert period.start == dt.datetime(start.year, start.month, start.day, tzinfo=evaluation.CHINA)
    assert period.end == dt.datetime(end.year, end.month, end.day, tzinfo=evaluation.CHINA)
    assert period.start.utcoffset() == dt.timedelta(hours=8)


def test_from_and_to():
    period = evaluation.parse_period(start="2024-11-18", end="2024-11-20T12:00")
    assert (period.start, period.end) == (t(18, 0), t(20, 12))
    assert evaluation.parse_period(start=dt.date(2024, 11, 18), end="2024-11-19T00:00+00:00").end == t(19, 8)


@pytest.mark.parametrize("kwargs, message", [
    (dict(text="2024-13"), "is not a real day, week or month"),
    (dict(text="2024-W54"), "is not a real day, week or month"),
    (dict(text="2024-02-30"), "is not a real day, week or month"),
    (dict(text="yesterday"), "period must be day, week, month, quarter"),
    (dict(start="2024-11-25", end="2024-11-18"), "dates in the wrong order"),
    (dict(start="2024-11-18", end="2024-11-18"), "dates in the wrong order"),
    (dict(start="2024-11-18"), "from and to go together"),
    (dict(text="week", start="2024-11-18", end="2024-11-25"), "not both"),
    (dict(start="18/11/2024", end="2024-11-25"), "from must be a date YYYY-MM-DD"),
])
def test_bad_periods(kwargs, message):
    text = kwargs.pop("text", None)
    with pytest.raises(BadInput, match=re.escape(message)):
        evaluation.parse_period(text, **kwargs)


def test_weights():
    assert evaluation.parse_weights("closure_rate:0.5, on_time_rate:0.5") == {
        "closure_rate": 0.5, "on_time_rate": 0.5, "rework_rate": 0, "extension_rate": 0}


@pytest.mark.parametrize("text, message", [
    ("speed:1", "unknown indicator(s) in weights: speed"),
    ("closure_rate:-1", "weight of closure_rate must be a number ≥ 0"),
    ("closure_rate:nan", "weight of closure_rate must be a number ≥ 0"),
    ("closure_rate:0,on_time_rate:0", "the weights are all 0"),
    ("closure_rate:lots", "weight of closure_rate must be a number"),
    ("closure_rate", "weights must look like closure_rate:0.5,on_time_rate:0.5"),
    ("closure_rate:1,closure_rate:2", "weight of closure_rate given twice"),
])
def test_bad_weights(text, message):
    with pytest.raises(BadInput, match=re.escape(message)):
        evaluation.parse_weights(text)


def test_bad_level_and_within(city):
    with pytest.raises(BadInput, match="level must be one of grid, community, street, district, department, post"):
        rows_of(city, "province")
    with pytest.raises(NotFound, match="no cell with code '999'"):
        rows_of(city, "grid", within="999")
    with pytest.raises(BadInput, match="is below the street level"):
        rows_of(city, "street", within=G1)
    with pytest.raises(BadInput, match="within applies to areas and posts"):
        rows_of(city, "department", within=WEST)


# --- the API ----------------------------------------------------------------------------------------

def test_stats_as_json(client, city):
    res = client.get(f"/api/v1/stats?level=street&period={WEEK}")
    assert res.status_code == 200
    body = res.get_json()
    assert body["period"] == {"label": WEEK, "from": "2024-11-18T00:00:00+08:00", "to": "2024-11-25T00:00:00+08:00"}
    assert body["as_of"] == "2024-11-25T00:00:00+08:00"
    assert body["weights"] == {"closure_rate": 0.3, "on_time_rate": 0.4, "rework_rate": 0.2, "extension_rate": 0.1}
    assert [(r["rank"], r["code"], r["due"]) for r in body["rows"]] == [(1, EAST, 3), (2, WEST, 4)]
    assert body["rows"][1]["handling_p90_h"] == pytest.approx(8.5)
    same = client.get("/api/v1/stats?level=street&from=2024-11-18&to=2024-11-25").get_json()
    assert same["rows"] == body["rows"] and same["period"]["label"] == "2024-11-18/2024-11-25"
    weighted = client.get(f"/api/v1/stats?level=grid&period={WEEK}&weights=closure_rate:1&within={EAST}001")
    assert [(r["code"], r["score"]) for r in weighted.get_json()["rows"]] == [(G5, 50), (G6, None)]


def test_stats_as_csv(client, city):
    res = client.get(f"/api/v1/stats?level=post&period={WEEK}&format=csv")
    assert res.status_code == 200 and res.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="stats-post-{WEEK}.csv"' in res.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(res.get_data(as_text=True))))
    assert list(rows[0]) == evaluation.columns("post")
    assert [(r["rank"], r["name"], r["post_name"]) for r in rows][:2] == [("1", "孙七", "街道/乡镇负责人"),
                                                                       ("2", "李四", "网格长")]
    assert float(rows[1]["score"]) == pytest.approx(70) and float(rows[1]["on_time_rate"]) == 0.5
    assert rows[4]["score"] == "" and rows[4]["received"] == "0"


@pytest.mark.parametrize("query, status, message", [
    ("level=planet", 400, "level must be one of"),
    ("from=2024-11-25&to=2024-11-18", 400, "dates in the wrong order"),
    ("from=2024-11-25", 400, "from and to go together"),
    ("period=2024-13", 400, "is not a real day, week or month"),
    ("period=last-week", 400, "period must be day, week, month"),
    ("weights=speed:1", 400, "unknown indicator(s) in weights: speed"),
    ("weights=closure_rate:-0.5", 400, "must be a number ≥ 0"),
    ("weights=closure_rate:0", 400, "the weights are all 0"),
    ("within=410105009", 404, "no cell with code '410105009'"),
    ("format=xml", 400, "format must be json or csv"),
])
def test_stats_bad_input(client, city, query, status, message):
    res = client.get(f"/api/v1/stats?{query}")
    assert res.status_code == status, res.get_json()
    assert message in res.get_json()["message"]


def test_stats_is_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    names = [p["name"] for p in paths["/api/v1/stats"]["get"]["parameters"]]
    assert names == ["level", "period", "from", "to", "within", "weights", "format"]


# --- the command line -------------------------------------------------------------------------------

def test_report_prints_an_aligned_table(runner, city):
    result = run(runner, "report", "--period", WEEK, "--level", "street")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"street ranking, {WEEK}: 2024-11-18 00:00 to 2024-11-25 00:00 China time")
    assert lines[1].split() == ["rank", "code", "name", "received", "due", "closed", "closure", "on-time", "rework",
                                "extension", "score"]
    assert lines[2].split() == ["1", EAST, "东街道", "4", "3", "2", "66.7%", "66.7%", "0.0%", "0.0%", "76.7"]
    assert lines[3].split() == ["2", WEST, "西街道", "4", "4", "4", "75.0%", "50.0%", "25.0%", "25.0%", "65.0"]
    # the score column ends at the same place on every line (Chinese names are two columns wide)
    assert len({evaluation._width(line) for line in lines[1:4]}) == 1


def test_report_writes_xlsx_and_csv(runner, city, tmp_path):
    out = tmp_path / "grids.xlsx"
    result = run(runner, "report", "--from", "2024-11-18", "--to", "2024-11-25", "--level", "grid",
                 "--weights", "closure_rate:1", "--out", out)
    assert result.exit_code == 0, result.output
    assert f"wrote 8 row(s) to {out}" in result.output
    sheet = openpyxl.load_workbook(out).active
    values = list(sheet.values)
    assert list(values[0]) == evaluation.columns("grid")
    assert [(row[0], row[2], row[-1]) for row in values[1:4]] == [(1, G4, 100), (2, G8, 100), (3, G1, 100)]
    assert values[8][2] == G7 and values[8][-1] is None
    assert sheet.cell(row=2, column=values[0].index("closure_rate") + 1).number_format == "0.0%"
    out = tmp_path / "posts.csv"
    assert run(runner, "report", "--period", WEEK, "--level", "post", "--within", EAST, "--out", out).exit_code == 0
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["name"], r["code"]) for r in rows] == [("孙七", EAST), ("周八", G7)]
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("args, message", [
    (["--level", "planet"], "level must be one of"),
    (["--from", "2024-11-25", "--to", "2024-11-18"], "dates in the wrong order"),
    (["--period", "2024-W60"], "period '2024-W60' is not a real day, week or month"),
    (["--weights", "closure_rate:1,speed:2"], "unknown indicator(s) in weights: speed"),
    (["--weights", "on_time_rate:-1"], "weight of on_time_rate must be a number ≥ 0"),
    (["--within", "999"], "within: no cell with code '999' in the active grid version"),
    (["--out", "ranking.pdf"], "--out must name a .csv or .xlsx file; got 'ranking.pdf'"),
])
def test_report_bad_input_exits_2_with_a_message(runner, city, tmp_path, args, message):
    out = tmp_path / "out"
    out.mkdir()
    args = [str(out / a) if a.endswith(".pdf") else a for a in args]
    period = [] if {"--period", "--from"} & set(args) else ["--period", WEEK]
    result = run(runner, "report", *period, *args)
    assert result.exit_code == 2
    assert f"error: {message}" in result.output
    assert not list(out.iterdir())  # nothing written
