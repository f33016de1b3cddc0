"""``/api/v1/reports``: reports in, routed in every edge case, idempotent, duplicates linked, bad input refused."""
import json
import math

import pytest

import fixtures
from gis import crs
from gis.worker_router import WorkerRouter
from test_grid_import import import_level, run
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)

X0, Y0, X1, Y1, XM, YM = fixtures.X0, fixtures.Y0, fixtures.X1, fixtures.Y1, fixtures.XM, fixtures.YM
SW_GRID = "410105001001001"


def post(client, **fields):
    body = {"category": "0102", **fields}
    return client.post("/api/v1/reports", json=body)


@pytest.fixture(params=["sql", "worker"])
def routing_client(request, app):
    """A client of an app that routes reports in SQL, or in the web worker (its router built first)."""
    request.getfixturevalue("active")
    if request.param == "worker":
        router = WorkerRouter(app.extensions["gridmap_db"])
        assert router.wait_ready(120)
        app.extensions["gridmap_router"] = router
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {app.config['TEST_ADMIN_KEY']}"
    return client


def count_incidents(db):
    with db.cursor() as cur:
        cur.execute("select count(*) as n, (select count(*) from incident_routing) as routings from incident")
        return cur.fetchone()


@pytest.fixture
def staffed(active):  # noqa: F811
    with active.cursor() as cur:
        cur.execute("insert into staff (name, phone) values ('王网格', '13800000001'), ('李书记', '13800000002')")
        cur.execute("""insert into cell_staff (cell_id, staff_id, post)
                       select c.id, s.id, p from grid_cell c, staff s, (values ('grid_worker'), ('community_secretary')) v(p)
                        where (c.code = %s and s.name = '王网格' and p = 'grid_worker')
                           or (c.code = %s and s.name = '李书记' and p = 'community_secretary')""",
                    (SW_GRID, SW_GRID[:12]))
    return active


def test_a_report_inside_a_grid_is_routed_to_every_level_and_its_people(routing_client, staffed):
    r = post(routing_client, lon=X0 + 0.01, lat=Y0 + 0.01, accuracy_m=5, description="垃圾堆在路边",
             reporter={"name": "张三", "phone": "13900000000"}, media=["https://example.org/a.jpg"])
    assert r.status_code == 201, r.json
    body = r.json
    assert r.headers["Location"] == f"/api/v1/reports/{body['id']}"
    routing = body["routing"]
    assert routing["status"] == "routed"
    assert [c["code"] for c in routing["cells"]] == ["410105", "410105001", "410105001001", SW_GRID]
    assert [c["level_name"] for c in routing["cells"]] == ["district", "street", "community", "grid"]
    assert routing["cells"][3]["name"] == "西街道南社区第1网格"
    assert {(s["name"], s["post"], s["cell_code"]) for s in routing["staff"]} == {
        ("王网格", "grid_worker", SW_GRID), ("李书记", "community_secretary", SW_GRID[:12])}
    assert routing["staff"][0]["level"] == 3  # unit grid first
    assert body["category"]["name_zh"] == "暴露垃圾" and body["category"]["department"] == "CGJ"
    assert body["media"] == ["https://example.org/a.jpg"] and body["reporter"]["name"] == "张三"
    again = routing_client.get(body["Location"] if "Location" in body else f"/api/v1/reports/{body['id']}")
    assert again.status_code == 200 and again.json == body


def test_a_point_on_a_shared_edge_is_routed_by_the_tie_break_and_flagged(routing_client, active):  # noqa: F811
    r = post(routing_client, lon=(X0 + XM) / 2, lat=Y0 + 0.01)
    routing = r.json["routing"]
    assert routing["status"] == "shared_edge"
    assert routing["candidates"] == [SW_GRID, "410105001001002"]
    assert routing["cells"][3]["code"] == SW_GRID


def test_a_point_on_a_vertex_shared_by_four_cells(routing_client, active):  # noqa: F811
    routing = post(routing_client, lon=XM, lat=YM).json["routing"]
    assert routing["status"] == "shared_edge" and len(routing["candidates"]) == 4
    assert routing["cells"][3]["code"] == min(routing["candidates"])
    assert routing["cells"][2]["code"] == routing["cells"][3]["code"][:12]


def test_a_gps_accuracy_circle_over_an_edge_is_ambiguous(routing_client, active):  # noqa: F811
    # 10 m west of the edge between the two south-west unit grids; the circle of 25 m reaches across
    edge_x = (X0 + XM) / 2
    metres_per_degree = 6371008.8 * math.pi / 180 * math.cos(math.radians(Y0 + 0.01))
    routing = post(routing_client, lon=edge_x - 10 / metres_per_degree, lat=Y0 + 0.01, accuracy_m=25).json["routing"]
    assert routing["status"] == "ambiguous"
    assert routing["candidates"] == [SW_GRID, "410105001001002"]
    assert routing["cells"][3]["code"] == SW_GRID
    assert post(routing_client, lon=edge_x - 10 / metres_per_degree, lat=Y0 + 0.01, accuracy_m=5).json["routing"]["status"] == "routed"


def test_just_outside_the_city_snaps_within_30_m_and_is_unrouted_beyond(routing_client, active):  # noqa: F811
    metres_per_degree = 6371008.8 * math.pi / 180 * math.cos(math.radians(Y0 + 0.01))
    near = post(routing_client, lon=X1 + 20 / metres_per_degree, lat=Y0 + 0.01).json["routing"]
    assert near["status"] == "snapped"
    assert near["snap_distance_m"] == pytest.approx(20, abs=0.01)
    assert near["cells"][3]["code"] == "410105002001002" and len(near["cells"]) == 4
    far = post(routing_client, lon=X1 + 40 / metres_per_degree, lat=Y0 + 0.01).json["routing"]
    assert far["status"] == "unrouted"
    assert [c["code"] for c in far["cells"]] == ["410105"]  # the district platform's queue
    assert far["staff"] == []


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_a_phone_sdk_location_is_converted_before_routing(routing_client, active, system):  # noqa: F811
    # 50 m west of the edge between the two south-west unit grids, as an AMap/Baidu SDK would give it
    lon, lat = (X0 + XM) / 2 - 0.0005, Y0 + 0.01
    x, y = crs.from_wgs84(lon, lat, system)
    assert x > (X0 + XM) / 2  # taken as WGS84 it would land in the east neighbour
    body = post(routing_client, lon=x, lat=y, crs=system).json
    assert body["routing"]["cells"][3]["code"] == SW_GRID
    assert body["location"]["lon"] == pytest.approx(lon, abs=1e-8)
    assert body["given_location"] == {"x": x, "y": y, "crs": system}


def test_a_projected_cgcs2000_location_is_accepted(routing_client, active):  # noqa: F811
    x, y = crs.from_wgs84(X0 + 0.01, Y0 + 0.01, "EPSG:4547")
    body = post(routing_client, lon=x, lat=y, crs="EPSG:4547").json
    assert body["routing"]["cells"][3]["code"] == SW_GRID
    assert body["given_location"]["crs"] == "EPSG:4547"


def test_form_data_is_accepted_too(client, active):  # noqa: F811
    r = client.post("/api/v1/reports", data={"lon": str(X0 + 0.01), "lat": str(Y0 + 0.01), "category": "0102",
                                             "media": ["https://example.org/1.jpg", "https://example.org/2.jpg"]})
    assert r.status_code == 201, r.json
    assert r.json["media"] == ["https://example.org/1.jpg", "https://example.org/2.jpg"]


def test_the_same_client_request_id_gives_the_same_incident(client, active):  # noqa: F811
    first = post(client, lon=X0 + 0.01, lat=Y0 + 0.01, client_request_id="phone-1-0001")
    second = post(client, lon=X0 + 0.01, lat=Y0 + 0.01, client_request_id="phone-1-0001")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json == second.json
    assert count_incidents(active) == {"n": 1, "routings": 1}


def test_a_reused_client_request_id_with_other_content_is_a_conflict(client, active):  # noqa: F811
    post(client, lon=X0 + 0.01, lat=Y0 + 0.01, client_request_id="phone-1-0002")
    r = post(client, lon=X0 + 0.02, lat=Y0 + 0.01, client_request_id="phone-1-0002")
    assert r.status_code == 409
    assert "different report" in r.json["message"]
    assert count_incidents(active)["n"] == 1


def test_a_report_near_an_open_one_of_the_same_subclass_is_a_possible_duplicate(routing_client, active):  # noqa: F811
    metres_per_degree = 6371008.8 * math.pi / 180 * math.cos(math.radians(Y0 + 0.01))
    first = post(routing_client, lon=X0 + 0.01, lat=Y0 + 0.01).json
    near = post(routing_client, lon=X0 + 0.01 + 30 / metres_per_degree, lat=Y0 + 0.01).json
    third = post(routing_client, lon=X0 + 0.01 + 20 / metres_per_degree, lat=Y0 + 0.01).json
    other_kind = post(routing_client, lon=X0 + 0.01, lat=Y0 + 0.01, category="0101").json
    far = post(routing_client, lon=X0 + 0.01 + 90 / metres_per_degree, lat=Y0 + 0.01).json  # 60 m from near
    assert near["duplicate_of"] == first["id"]
    assert third["duplicate_of"] == first["id"]  # the first of the chain, not the nearest duplicate
    assert other_kind["duplicate_of"] is None and far["duplicate_of"] is None
    with active.cursor() as cur:
        cur.execute("update incident set status = 'closed' where public_id = %s", (first["id"],))
    # the first is closed now: a new report repeats the nearest open one instead
    assert post(routing_client, lon=X0 + 0.01, lat=Y0 + 0.01).json["duplicate_of"] == third["id"]
    old = post(routing_client, lon=X0 + 0.01, lat=Y0 + 0.01, category="0101", reported_at="2026-01-01T08:00:00+08:00")
    assert old.json["duplicate_of"] is None  # far apart in time


def test_sql_and_html_in_text_are_stored_verbatim(client, active):  # noqa: F811
    text = "'); drop table incident; -- <script>alert('x')</script> & <b>粗</b>"
    body = post(client, lon=X0 + 0.01, lat=Y0 + 0.01, description=text, address=text,
                reporter={"name": text}).json
    stored = client.get(f"/api/v1/reports/{body['id']}").json
    assert stored["description"] == text and stored["address"] == text and stored["reporter"]["name"] == text
    assert count_incidents(active)["n"] == 1


BAD_FIELDS = [
    ({"lat": Y0}, "lon is required"),
    ({"lon": X0}, "lat is required"),
    ({"lon": "NaN", "lat": Y0}, "finite"),
    ({"lon": "Infinity", "lat": Y0}, "finite"),
    ({"lon": "-inf", "lat": Y0}, "finite"),
    ({"lon": 200, "lat": Y0}, "out of range"),
    ({"lon": X0, "lat": -91}, "out of range"),
    ({"lon": "east", "lat": Y0}, "must be a number"),
    ({"lon": True, "lat": Y0}, "must be a number"),
    ({"lon": X0, "lat": Y0, "crs": "EPSG:999999"}, "not a CRS known"),
    ({"lon": X0, "lat": Y0, "crs": "mars2000"}, "unknown CRS"),
    ({"lon": X0, "lat": Y0, "category": "9999"}, "unknown category"),
    ({"lon": X0, "lat": Y0, "category": ""}, "category is required"),
    ({"lon": X0, "lat": Y0, "description": "长" * 4001}, "at most 4000"),
    ({"lon": X0, "lat": Y0, "accuracy_m": -1}, "accuracy_m"),
    ({"lon": X0, "lat": Y0, "reported_at": "yesterday"}, "ISO 8601"),
    ({"lon": X0, "lat": Y0, "reported_at": "2999-01-01T00:00:00Z"}, "future"),
    ({"lon": X0, "lat": Y0, "media": ["file:///etc/passwd"]}, "http(s) URL"),
    ({"lon": X0, "lat": Y0, "reporter": {"password": "x"}}, "reporter has unknown field"),
    ({"lon": X0, "lat": Y0, "colour": "red"}, "unknown field"),
    ({"lon": X0, "lat": Y0, "source": "import"}, "source must be"),
]


@pytest.mark.parametrize("fields, message", BAD_FIELDS, ids=[m for _, m in BAD_FIELDS])
def test_bad_fields_are_refused_and_nothing_is_stored(client, active, fields, message):  # noqa: F811
    r = client.post("/api/v1/reports", json={"category": "0102", **fields})
    assert r.status_code == 400, r.json
    assert message in r.json["message"]
    assert count_incidents(active)["n"] == 0


def test_nan_and_infinity_as_json_literals_are_refused(client, active):  # noqa: F811
    for literal in ("NaN", "Infinity", "-Infinity"):
        r = client.post("/api/v1/reports", data=f'{{"lon": {literal}, "lat": 34.7, "category": "0102"}}',
                        content_type="application/json")
        assert r.status_code == 400 and "finite" in r.json["message"]
    assert count_incidents(active)["n"] == 0


@pytest.mark.parametrize("data, content_type, status, message", [
    ("lon=113.6&lat=34.7", "text/plain", 415, "JSON"),
    ("{not json", "application/json", 400, "not a JSON object"),
    ("[1, 2]", "application/json", 400, "not a JSON object"),
])
def test_bodies_that_are_not_json_or_form_data_are_refused(client, active, data, content_type, status, message):  # noqa: F811
    r = client.post("/api/v1/reports", data=data, content_type=content_type)
    assert r.status_code == status
    assert message in r.json["message"]
    assert count_incidents(active)["n"] == 0


def test_a_body_over_1_mb_is_refused(client, active):  # noqa: F811
    body = json.dumps({"lon": X0, "lat": Y0, "category": "0102", "description": "x" * (1024 * 1024)})
    r = client.post("/api/v1/reports", data=body, content_type="application/json")
    assert r.status_code == 413
    assert r.json["error"] == "Request Entity Too Large"
    assert count_incidents(active)["n"] == 0


def test_an_unknown_report_is_404(client, active):  # noqa: F811
    r = client.get("/api/v1/reports/20260101-0000001")
    assert r.status_code == 404 and "no report" in r.json["message"]


def test_reports_are_listed_as_geojson_with_filters_and_pages(client, active):  # noqa: F811
    ids = [post(client, lon=X0 + 0.01 + i * 0.001, lat=Y0 + 0.01).json["id"] for i in range(5)]
    east = post(client, lon=X1 - 0.01, lat=Y1 - 0.01, category="0501").json["id"]
    everything = client.get("/api/v1/reports").json
    assert everything["type"] == "FeatureCollection"
    assert [f["id"] for f in everything["features"]] == [east, *reversed(ids)]
    feature = everything["features"][0]
    assert feature["geometry"]["type"] == "Point" and feature["properties"]["category"]["code"] == "0501"

    def listed(query):
        r = client.get("/api/v1/reports?" + query)
        assert r.status_code == 200, r.json
        return [f["id"] for f in r.json["features"]]

    assert listed("category=0501") == [east]
    assert listed("category=05") == [east]
    assert listed(f"cell={SW_GRID}") == list(reversed(ids))
    assert listed("cell=410105002") == [east]
    assert listed(f"bbox={X1 - 0.02},{Y1 - 0.02},{X1},{Y1}") == [east]
    assert listed("status=open") == listed("") and listed("status=closed") == []
    assert listed("routing=unrouted") == []
    assert listed("since=2999-01-01") == [] and len(listed("until=2999-01-01")) == 6
    page1 = client.get("/api/v1/reports?limit=4").json
    page2 = client.get(f"/api/v1/reports?limit=4&after={page1['next']}").json
    assert [f["id"] for f in page1["features"] + page2["features"]] == [east, *reversed(ids)]
    assert page2["next"] is None


@pytest.mark.parametrize("query, message", [
    ("bbox=1,2,3", "bbox"), ("cell=12345", "not a grid code"), ("status=lost", "status"),
    ("routing=maybe", "routing"), ("since=soon", "ISO 8601"), ("limit=0", "limit"), ("level=7", "level"),
    ("cell=410105&level=2", "level 0 code"),
])
def test_bad_list_filters_are_400(client, active, query, message):  # noqa: F811
    r = client.get("/api/v1/reports?" + query)
    assert r.status_code == 400 and message in r.json["message"]


def test_the_openapi_document_is_valid_and_describes_the_reports_api(client, active):  # noqa: F811
    from openapi_spec_validator import validate

    doc = client.get("/api/v1/openapi.json").json
    validate(doc)
    assert {"post", "get"} <= set(doc["paths"]["/api/v1/reports"])
    schema = doc["paths"]["/api/v1/reports"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["lon", "lat", "category"] and schema["properties"]["description"]["maxLength"] == 4000
    # every field the API accepts is described, and nothing else
    assert set(schema["properties"]) == {"lon", "lat", "crs", "accuracy_m", "category", "description", "address",
                                         "client_request_id", "reporter", "reported_at", "media", "source"}


def test_a_worker_router_of_a_retired_version_is_not_trusted(app, client, active, runner, tmp_path):  # noqa: F811
    router = WorkerRouter(app.extensions["gridmap_db"])
    assert router.wait_ready(120) and router.route(X0 + 0.01, Y0 + 0.01, None, 30).version_id == 1
    app.extensions["gridmap_router"] = router
    # version 2: the district alone, made active while the worker still holds version 1
    import_level(runner, fixtures.write(tmp_path / "district.geojson", 0), 0)
    assert run(runner, "grid", "activate", 2, "--commit").exit_code == 0

    routing = post(client, lon=X0 + 0.01, lat=Y0 + 0.01).json["routing"]
    assert routing["version"] == 2
    assert [c["code"] for c in routing["cells"]] == ["410105"]  # the database routed it, against version 2
    assert router.wait_ready(120) and router.route(X0 + 0.01, Y0 + 0.01, None, 30).version_id == 2


@pytest.mark.parametrize("text, expected", [("", True), ("0", False), ("off", False), ("1", True), ("yes", True)])
def test_the_worker_router_setting(text, expected):
    from gis.settings import Settings

    assert Settings.from_env({"GRIDMAP_WORKER_ROUTER": text}).worker_router is expected


def test_a_bad_worker_router_setting_is_refused():
    from gis.settings import Settings

    with pytest.raises(ValueError, match="GRIDMAP_WORKER_ROUTER must be 1 or 0"):
        Settings.from_env({"GRIDMAP_WORKER_ROUTER": "maybe"})
