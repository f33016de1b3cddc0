"""Activating a grid version (gis/activation.py): the impact preview, the switch with the re-routing of open
incidents in one transaction, the refusals, the live feed, the CLI and the API — on the fixture partition,
whose version 2 moves the edge between the two south-west unit grids east."""
import csv
import io
import json
import threading

import psycopg2
import pytest
from shapely.geometry import box

import fixtures
from gis import activation, batch_routing
from gis.errors import Conflict
from test_grid_import import import_level, run
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)

X0, Y0, X1, Y1, XM, YM = fixtures.X0, fixtures.Y0, fixtures.X1, fixtures.Y1, fixtures.XM, fixtures.YM
SW, SW_EAST, NE = "410105001001001", "410105001001002", "410105002002002"
SHIFT = 0.005  # version 2's edge between SW and SW_EAST, east of version 1's
STRIP_X = (X0 + XM) / 2 + 0.002  # SW_EAST's in version 1, SW's in version 2
WORKER, OTHER = ("王网格", "13800000001"), ("李网格", "13800000002")
SHRINK = "ST_Transform(ST_Multi(ST_Buffer(ST_Transform(geom, 4547), %s, 'join=mitre')), 4326)"


def load_version(runner, tmp_path, version, *, shift=0.0, staff=(WORKER,)):
    """Import the fixture partition as draft ``version``, the edge between the south-west unit grids moved
    ``shift`` degrees east, with ``staff`` as SW's grid workers."""
    xm = (X0 + XM) / 2 + shift
    for level in range(4):
        rows = [(c, n, p, box(X0, Y0, xm, YM) if c == SW else box(xm, Y0, XM, YM) if c == SW_EAST else g)
                for c, n, p, g in fixtures.cells(level)]
        path = fixtures.write(tmp_path / f"v{version}_l{level}.geojson", level, rows=rows)
        import_level(runner, path, level, *(["--version", version] if level else []))
    if staff:
        path = tmp_path / f"v{version}_staff.csv"
        path.write_text("cell_code,post,name,phone\n" + "".join(f"{SW},grid_worker,{n},{p}\n" for n, p in staff),
                        encoding="utf-8")
        assert run(runner, "staff", "import", path, "--version", version, "--commit").exit_code == 0


def post(client, lon, lat):
    r = client.post("/api/v1/reports", json={"lon": lon, "lat": lat, "category": "0102"})
    assert r.status_code == 201, r.json
    return r.json["id"]


def query(db, sql, params=()):
    with db.cursor() as cur:
        cur.execute(sql, params)
        return [tuple(r.values()) for r in cur.fetchall()]


def cell_id(db, code, version):
    return query(db, "select id from grid_cell where code = %s and version_id = %s", (code, version))[0][0]


@pytest.fixture
def city(db, client, runner, tmp_path):
    """Version 1 active with three reports — open in the strip, closed in the strip, open in the north-east
    grid — and version 2, a draft that gives the strip to SW."""
    load_version(runner, tmp_path, 1)
    assert run(runner, "grid", "activate", 1, "--commit").exit_code == 0
    ids = {"moving": post(client, STRIP_X, Y0 + 0.01), "closed": post(client, STRIP_X, Y0 + 0.02),
           "staying": post(client, X1 - 0.01, Y1 - 0.01)}
    with db.cursor() as cur:
        cur.execute("update incident set status = 'closed' where public_id = %s", (ids["closed"],))
        cur.execute("truncate live_event")
    load_version(runner, tmp_path, 2, shift=SHIFT)
    return ids


# --- impact ------------------------------------------------------------------------------------------------

def test_the_impact_lists_the_open_incident_that_moves_and_counts_the_closed_one_too(db, city):
    result = activation.impact(db, 2)
    assert [i["id"] for i in result["incidents"]] == [city["moving"]]
    item = result["incidents"][0]
    assert item["change"] == "cell" and item["status"] == "reported"
    assert [c["code"] for c in item["before"]["cells"]] == ["410105", "410105001", "410105001001", SW_EAST]
    assert [c["code"] for c in item["after"]["cells"]] == ["410105", "410105001", "410105001001", SW]
    assert item["after"]["cells"][3]["name"] == "西街道南社区第1网格"
    assert item["before"]["staff"] == [] and item["after"]["staff"] == [{"name": WORKER[0], "phone": WORKER[1]}]
    assert (item["lon"], item["lat"]) == pytest.approx((STRIP_X, Y0 + 0.01))
    assert {(c["level"], c["code"]): (c["before"], c["after"], c["difference"]) for c in result["cells"]} == {
        (3, SW): (0, 2, 2), (3, SW_EAST): (2, 0, -2)}
    summary = {k: v for k, v in result["summary"].items() if k != "seconds"}
    assert summary == {"incidents": 3, "open": 2, "moved": 1, "staff_changed": 0, "recounted": 2,
                       "cells_changed": {"district": 0, "street": 0, "community": 0, "grid": 2}}
    assert (result["version"], result["active_version"]) == (2, 1)
    assert query(db, "select count(*) from incident_routing where reason <> 'intake'") == [(0,)]  # wrote nothing


def test_other_people_in_the_same_cell_are_a_staff_change_and_news(db, client, runner, tmp_path):
    load_version(runner, tmp_path, 1)
    assert run(runner, "grid", "activate", 1, "--commit").exit_code == 0
    public_id = post(client, X0 + 0.01, Y0 + 0.01)  # in SW
    load_version(runner, tmp_path, 2, staff=(OTHER,))
    result = activation.impact(db, 2)
    assert [(i["id"], i["change"]) for i in result["incidents"]] == [(public_id, "staff")]
    assert result["incidents"][0]["before"]["staff"] == [{"name": WORKER[0], "phone": WORKER[1]}]
    assert result["incidents"][0]["after"]["staff"] == [{"name": OTHER[0], "phone": OTHER[1]}]
    assert result["cells"] == [] and (result["summary"]["moved"], result["summary"]["staff_changed"]) == (0, 1)

    activation.activate(db, 2, actor="张规划")
    (data,) = [d for (d,) in query(db, "select data from live_event where kind = 'routing'")]
    assert data["id"] == public_id and data["grid_id"] == cell_id(db, SW, 2)
    assert data["staff"] == [{"name": OTHER[0], "phone": OTHER[1], "post": "grid_worker"}]
    assert data["previous"]["staff"] == [{"name": WORKER[0], "phone": WORKER[1], "post": "grid_worker"}]



def test_the_impact_of_a_version_when_there_are_no_incidents_is_nothing(db, active, runner, tmp_path):  # noqa: F811
    load_version(runner, tmp_path, 2, shift=SHIFT)
    result = activation.impact(db, 2)
    assert (result["incidents"], result["cells"], result["summary"]["incidents"]) == ([], [], 0)

# --- activation ----------------------------------------------------------------------------------------------

def test_activation_reroutes_the_open_incidents_and_leaves_the_closed_ones(db, client, city):
    done = activation.activate(db, 2, actor="张规划", reason="边界东移")
    assert {k: done[k] for k in ("activated", "retired", "rerouted", "moved", "forced", "problems", "committed")} == {
        "activated": 2, "retired": 1, "rerouted": 2, "moved": 1, "forced": False, "problems": {}, "committed": True}
    assert query(db, "select id, status from grid_version order by id") == [(1, "retired"), (2, "active")]
    routings = query(db, """select i.public_id, r.reason, r.version_id, c.code
                              from incident_routing r join incident i on i.id = r.incident_id
                              join grid_cell c on c.id = r.grid_id order by r.id""")
    moving, closed, staying = city["moving"], city["closed"], city["staying"]
    assert routings == [(moving, "intake", 1, SW_EAST), (closed, "intake", 1, SW_EAST), (staying, "intake", 1, NE),
                        (moving, "activation", 2, SW), (staying, "activation", 2, NE)]
    now = {k: client.get(f"/api/v1/reports/{v}").json["routing"] for k, v in city.items()}
    assert (now["moving"]["version"], now["moving"]["cells"][3]["code"]) == (2, SW)
    assert now["moving"]["staff"][0]["name"] == WORKER[0]
    assert (now["closed"]["version"], now["closed"]["cells"][3]["code"]) == (1, SW_EAST)
    assert query(db, "select version_id, retired_version_id, actor, forced, reason, problems, rerouted, moved"
                     " from grid_activation where version_id = 2") == [(2, 1, "张规划", False, "边界东移", {}, 2, 1)]


def test_the_live_feed_hears_of_the_incident_that_moved_with_its_cells_and_people(db, city):
    activation.activate(db, 2, actor="张规划")
    events = query(db, "select kind, data from live_event order by id")
    assert [(kind, data["id"]) for kind, data in events] == [("routing", city["moving"])]  # the other one: no news
    data = events[0][1]
    assert (data["reason"], data["version_id"], data["grid_id"]) == ("activation", 2, cell_id(db, SW, 2))
    assert (data["previous"]["version_id"], data["previous"]["grid_id"]) == (1, cell_id(db, SW_EAST, 1))
    assert data["staff"] == [{"name": WORKER[0], "phone": WORKER[1], "post": "grid_worker"}]
    assert data["previous"]["staff"] == []


def test_a_failure_part_way_leaves_everything_as_it_was(db, city, monkeypatch):
    real = batch_routing.route_stored

    def fails_after_writing(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(batch_routing, "route_stored", fails_after_writing)
    with pytest.raises(RuntimeError, match="disk is full"):
        activation.activate(db, 2, actor="张规划")
    assert query(db, "select id, status from grid_version order by id") == [(1, "active"), (2, "draft")]
    assert query(db, "select distinct reason, version_id from incident_routing") == [("intake", 1)]
    assert query(db, "select distinct version_id from incident") == [(1,)]
    assert query(db, "select (select count(*) from grid_activation where version_id = 2) as activations,"
                     " (select count(*) from live_event) as events") == [(0, 0)]


def test_a_second_activation_meanwhile_is_refused_and_a_report_meanwhile_is_caught_up(db, client, city, monkeypatch):
    real, started, release = batch_routing.route_stored, threading.Event(), threading.Event()

    def held(*args, **kwargs):
        started.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(batch_routing, "route_stored", held)
    outcome = {}
    first = threading.Thread(target=lambda: outcome.update(activation.activate(db, 2, actor="张规划")))
    first.start()
    try:
        assert started.wait(30)
        with pytest.raises(Conflict, match="another activation is under way"):
            activation.activate(db, 2, actor="李规划")
        late = post(client, STRIP_X, Y0 + 0.03)  # stored against version 1, still active for it
    finally:
        release.set()
        first.join(30)
    assert outcome["activated"] == 2 and outcome["rerouted"] == 3
    assert query(db, "select r.reason, r.version_id, c.code from incident_routing r"
                     " join incident i on i.id = r.incident_id join grid_cell c on c.id = r.grid_id"
                     " where i.public_id = %s order by r.id", (late,)) == [
        ("intake", 1, SW_EAST), ("activation", 2, SW)]
    assert query(db, "select rerouted from grid_activation where version_id = 2") == [(3,)]
    with pytest.raises(Conflict, match="only a draft can be activated"):
        activation.activate(db, 2, actor="李规划")


def test_the_lock_of_another_activation_is_respected(db, city, database_url):
    other = psycopg2.connect(database_url)
    try:
        with other.cursor() as cur:
            cur.execute("select pg_advisory_lock(hashtext('gridmap activation'))")
        with pytest.raises(Conflict, match="another activation"):
            activation.activate(db, 2, actor="李规划")
    finally:
        with other.cursor() as cur:  # released now, not when the server gets round to the closed connection
            cur.execute("select pg_advisory_unlock(hashtext('gridmap activation'))")
        other.close()
    assert activation.activate(db, 2, actor="李规划")["activated"] == 2


@pytest.fixture
def gap(db, runner, tmp_path, active):  # noqa: F811
    """Version 2: the fixture partition with SW shrunk by 2 m, leaving a gap around it."""
    load_version(runner, tmp_path, 2, staff=())
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(f"update grid_cell set geom = {SHRINK} where version_id = 2 and code = %s", (-2.0, SW))
    return 2


def test_a_draft_with_a_gap_is_refused_unless_forced_with_a_reason(db, client, gap):
    url = "/api/v1/versions/2/activate"
    r = client.post(url, json={"actor": "张规划"})
    assert r.status_code == 409 and r.json["problems"]["gap"] >= 1, r.json
    assert "force" in r.json["message"] and any("gap" in line for line in r.json["details"])
    for body in ({"actor": "张规划", "force": True}, {"actor": "张规划", "force": True, "reason": "  "}):
        r = client.post(url, json=body)
        assert r.status_code == 400 and "reason" in r.json["message"], r.json
    assert query(db, "select status from grid_version where id = 2") == [("draft",)]
    r = client.post(url, json={"actor": "张规划", "force": True, "reason": "缺口次日补测"})
    assert r.status_code == 200 and r.json["activated"] == 2 and r.json["forced"], r.json
    assert query(db, "select forced, reason, (problems ->> 'gap')::int >= 1 from grid_activation"
                     " where version_id = 2") == [
        (True, "缺口次日补测", True)]


def test_only_a_draft_that_exists_can_be_activated_by_someone(client, active):  # noqa: F811
    r = client.post("/api/v1/versions/1/activate", json={"actor": "张规划"})
    assert r.status_code == 409 and "only a draft can be activated" in r.json["message"]
    assert client.post("/api/v1/versions/9/activate", json={"actor": "张规划"}).status_code == 404
    # who activates is who is signed in: a body without an actor gets as far as the check of the version
    assert client.post("/api/v1/versions/1/activate", json={}).status_code == 409
    for body, field in (({"force": "yes"}, "force"), ({"actor": "张规划", "now": True}, "now"),
                        ([], "JSON object")):
        r = client.post("/api/v1/versions/1/activate", json=body)
        assert r.status_code == 400 and field in r.json["message"], (body, r.json)


# --- exports, API, CLI -----------------------------------------------------------------------------------------

def test_the_impact_api_as_json_csv_and_geojson(client, city):
    r = client.get("/api/v1/versions/2/impact")
    assert r.status_code == 200 and r.json["summary"]["moved"] == 1 and r.json["incidents"][0]["id"] == city["moving"]
    r = client.get("/api/v1/versions/2/impact?format=csv")
    assert r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"] == 'attachment; filename="impact-version-2.csv"'
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [(row["kind"], row["code"], row["difference"]) for row in rows] == [
        ("incident", SW, ""), ("cell", SW, "2"), ("cell", SW_EAST, "-2")]
    assert rows[0]["codes_before"].endswith("/" + SW_EAST) and rows[0]["staff_after"] == " ".join(WORKER)
    r = client.get("/api/v1/versions/2/impact?format=geojson")
    assert r.mimetype == "application/geo+json" and "impact-version-2.geojson" in r.headers["Content-Disposition"]
    features = r.json["features"]
    assert [(f["properties"]["kind"], f["geometry"]["type"]) for f in features] == [
        ("incident", "Point"), ("cell", "MultiPolygon"), ("cell", "MultiPolygon")]
    assert features[0]["properties"]["codes_after"][-1] == SW
    assert client.get("/api/v1/versions/2/impact?format=xml").status_code == 400
    assert client.get("/api/v1/versions/9/impact").status_code == 404


def test_the_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert "get" in paths["/api/v1/versions/{version}/impact"]
    assert "post" in paths["/api/v1/versions/{version}/activate"]


def test_the_cli_previews_exports_and_activates(db, runner, city, tmp_path):
    preview = run(runner, "grid", "impact", 2)
    assert preview.exit_code == 0, preview.output
    assert "1 of 2 open incidents move to other cells" in preview.output and city["moving"] in preview.output
    for name in ("impact.csv", "impact.geojson"):
        assert run(runner, "grid", "impact", 2, "--out", tmp_path / name).exit_code == 0
    assert (tmp_path / "impact.csv").read_text(encoding="utf-8").startswith("kind,level,code")
    assert len(json.loads((tmp_path / "impact.geojson").read_text(encoding="utf-8"))["features"]) == 3
    wrong = run(runner, "grid", "impact", 2, "--out", tmp_path / "impact.txt")
    assert wrong.exit_code == 2 and ".csv or .geojson" in wrong.output

    dry = run(runner, "grid", "activate", 2)
    assert dry.exit_code == 0 and "would activate" in dry.output, dry.output
    assert "2 open incident(s) routed against version 2, 1 of them to other cells" in dry.output
    assert query(db, "select status from grid_version where id = 2") == [("draft",)]
    assert query(db, "select count(*) from grid_activation where version_id = 2") == [(0,)]
    forced = run(runner, "grid", "activate", 2, "--force", "--commit")
    assert forced.exit_code == 2 and "needs a reason" in forced.output
    done = run(runner, "grid", "activate", 2, "--commit")
    assert done.exit_code == 0 and "activated version 2; version 1 retired" in done.output, done.output
    assert query(db, "select actor from grid_activation where version_id = 2") == [("tester",)]


def test_a_draft_with_problems_is_refused_by_the_cli_with_counts(runner, gap):
    refused = run(runner, "grid", "activate", 2, "--commit")
    assert refused.exit_code == 2 and "partition problem(s)" in refused.output and "gap" in refused.output
    forced = run(runner, "grid", "activate", 2, "--commit", "--force", "--reason", "补测中")
    assert forced.exit_code == 0 and "forced past" in forced.output, forced.output
