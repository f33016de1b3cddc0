"""The web app: /health and /api/v1/grids, through the test client and over a real socket."""
import requests

from test_grid_import import import_all, run


def load(runner, tmp_path, activate=True):
    import_all(runner, tmp_path)
    if activate:
        assert run(runner, "grid", "activate", 1, "--commit").exit_code == 0


def test_health_without_an_active_version(client):
    res = client.get("/health")
    assert res.status_code == 503
    body = res.get_json()
    assert body["status"] == "no active grid version"
    assert body["postgis"].startswith("3.")
    assert body["active_version"] is None


def test_health_green(client, runner, tmp_path):
    load(runner, tmp_path)
    res = client.get("/health")
    assert res.status_code == 200, res.get_json()
    body = res.get_json()
    assert body["status"] == "ok"
    assert body["active_version"] == 1
    assert body["cells"] == {"0": 1, "1": 2, "2": 4, "3": 8}


def test_health_when_the_database_is_down(tmp_path, db):
    from webmap import create_app

    app = create_app({"DATABASE_URL": f"postgresql://nobody@/nodb?host={tmp_path}&port=1"})
    res = app.test_client().get("/health")
    assert res.status_code == 503
    assert "cannot connect" in res.get_json()["message"]


def test_grids_geojson(client, runner, tmp_path):
    load(runner, tmp_path)
    res = client.get("/api/v1/grids?level=2")
    assert res.status_code == 200
    assert res.mimetype == "application/geo+json"
    fc = res.get_json()
    assert fc["type"] == "FeatureCollection" and fc["version"] == 1 and fc["truncated"] is False
    assert [f["id"] for f in fc["features"]] == ["410105001001", "410105001002", "410105002001", "410105002002"]
    props = fc["features"][0]["properties"]
    assert props["parent_code"] == "410105001" and props["level"] == 2 and props["name"] == "西街道南社区"
    assert fc["features"][0]["geometry"]["type"] == "MultiPolygon"
    assert 20e6 < props["area_m2"] < 30e6


def test_grids_bbox_and_limit(client, runner, tmp_path):
    load(runner, tmp_path)
    # a box inside the north-east community only
    fc = client.get("/api/v1/grids?level=2&bbox=113.68,34.78,113.69,34.79").get_json()
    assert [f["id"] for f in fc["features"]] == ["410105002002"]
    fc = client.get("/api/v1/grids?level=3&limit=3").get_json()
    assert len(fc["features"]) == 3 and fc["truncated"] is True


def test_grids_of_a_draft_version(client, runner, tmp_path):
    load(runner, tmp_path, activate=False)
    assert client.get("/api/v1/grids").status_code == 404
    fc = client.get("/api/v1/grids?version=1&level=0").get_json()
    assert [f["id"] for f in fc["features"]] == ["410105"]


def test_bad_parameters_are_400_with_a_message(client, runner, tmp_path):
    load(runner, tmp_path)
    cases = {
        "level=7": "level must be between 0 and 3",
        "level=x": "level must be a whole number",
        "bbox=1,2,3": "bbox must be four numbers",
        "bbox=114,35,113,34": "min < max",
        "bbox=a,b,c,d": "bbox must be four numbers",
        "limit=0": "limit must be between 1",
        "version=abc": "version must be a whole number",
    }
    for query, message in cases.items():
        res = client.get(f"/api/v1/grids?{query}")
        assert res.status_code == 400, query
        assert message in res.get_json()["message"], query
    res = client.get("/api/v1/grids?version=99")
    assert res.status_code == 404 and "version 99 does not exist" in res.get_json()["message"]
    res = client.get("/api/v1/nothing")
    assert res.status_code == 404 and res.is_json


def test_versions_api(client, runner, tmp_path):
    load(runner, tmp_path)
    body = client.get("/api/v1/versions").get_json()
    assert body[0]["id"] == 1 and body[0]["status"] == "active" and body[0]["counts"] == {"0": 1, "1": 2, "2": 4, "3": 8}


def test_over_a_real_socket(live_server, admin_headers, runner, tmp_path):
    load(runner, tmp_path)
    res = requests.get(f"{live_server}/api/v1/grids", params={"level": 1}, headers=admin_headers, timeout=10)
    assert res.status_code == 200
    assert [f["id"] for f in res.json()["features"]] == ["410105001", "410105002"]
    assert requests.get(f"{live_server}/health", timeout=10).json()["status"] == "ok"


def test_vendor_assets_are_served_locally(client):
    with client.get("/vendor/leaflet/leaflet.js") as res:
        assert res.status_code == 200 and b"Leaflet" in res.data[:2000]
    assert client.get("/vendor/leaflet/../../package.json").status_code == 404
    assert client.get("/vendor/left-pad/index.js").status_code == 404


def test_index_page_loads_nothing_from_outside(client):
    html = client.get("/").get_data(as_text=True)
    assert "/vendor/leaflet/leaflet.js" in html
    assert "http://" not in html and "https://" not in html


def test_every_answer_carries_the_security_headers(client):
    for path in ("/health", "/map", "/api/v1/versions"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert (headers["X-Content-Type-Options"], headers["X-Frame-Options"]) == ("nosniff", "DENY")
