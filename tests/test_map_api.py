"""The live map's JSON beside the tiles: a cell's card (``/api/v1/cells/<code>``) and the class breaks of
its legend (``/api/v1/map/classes``), over the fixture partition with reports made through the API."""
import pytest

from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)
from test_tiles import SW_GRID, reports  # noqa: F401  (fixture: four reports, one overdue)


def test_a_unit_grids_card(client, reports):  # noqa: F811
    r = client.get(f"/api/v1/cells/{SW_GRID}")
    assert r.status_code == 200, r.json
    card = r.json
    assert (card["code"], card["name"], card["level"]) == (SW_GRID, "西街道南社区第1网格", 3)
    assert card["children"] == 0
    assert [a["code"] for a in card["ancestors"]] == ["410105", "410105001", "410105001001"]
    assert card["counts"] == {"total": 3, "open": 3, "overdue": 1, "closed": 0, "voided": 0,
                              "by_status": {"dispatched": 1, "reported": 2}}
    # most first, then by code
    assert [(c["code"], c["count"]) for c in card["top_categories"]] == [("0101", 1), ("0102", 1), ("0401", 1)]
    assert card["unit"] == f"grid:{SW_GRID}"
    x0, y0, x1, y1 = card["bbox"]
    assert x0 < x1 and y0 < y1


def test_a_street_card_counts_its_whole_territory_under_the_filters(client, reports):  # noqa: F811
    card = client.get("/api/v1/cells/410105001").json
    assert card["counts"]["total"] == 3 and card["children"] == 2
    assert card["top_categories"][1] == {"code": "0102", "name_zh": "暴露垃圾", "name_en": "Exposed garbage",
                                         "count": 1}
    assert client.get("/api/v1/cells/410105001?category=01").json["counts"]["total"] == 2
    assert client.get("/api/v1/cells/410105001?status=overdue").json["counts"]["total"] == 1
    assert client.get("/api/v1/cells/410105002?since=2026-11-20").json["counts"]["total"] == 1


def test_a_district_card_names_no_parents(client, reports):  # noqa: F811
    card = client.get("/api/v1/cells/410105").json
    assert card["ancestors"] == [] and card["counts"]["total"] == 4 and card["unit"] == "district:410105"


@pytest.mark.parametrize("path, status, message", [
    ("/api/v1/cells/410105009", 404, "grid version 1 has no cell with code '410105009'"),
    ("/api/v1/cells/410105001?version=7", 404, "grid version 7 does not exist"),
    ("/api/v1/cells/410105001?since=soon", 400, "since must be an ISO 8601 date or date-time"),
    ("/api/v1/cells/410105001?status=lost", 400, "status 'lost' is not one of open, overdue"),
    ("/api/v1/cells/410105001?version=x", 400, "version must be a whole number"),
])
def test_bad_card_requests_say_why(client, reports, path, status, message):  # noqa: F811
    r = client.get(path)
    assert r.status_code == status, r.json
    assert message in r.json["message"]


def test_reports_can_be_listed_by_overdue(client, reports):  # noqa: F811
    fc = client.get("/api/v1/reports?status=overdue").json
    assert [f["id"] for f in fc["features"]] == [reports]
    fc = client.get("/api/v1/reports?status=overdue,reported").json
    assert len(fc["features"]) == 4  # the overdue one and the three still reported


def test_the_legends_classes_over_http(client, reports):  # noqa: F811
    body = client.get("/api/v1/map/classes?level=3&scheme=quantiles&k=3").json
    assert (body["level"], body["cells"], body["total"]) == (3, 8, 4)
    assert body["breaks"][-1] == 3 and "codes" not in body
    under = client.get("/api/v1/map/classes?level=3&parent=410105001&scheme=equal_interval&k=2").json
    assert sorted(under["codes"]) == ["410105001001001", "410105001001002", "410105001002001", "410105001002002"]
    assert (under["cells"], under["total"]) == (4, 3)


@pytest.mark.parametrize("query, message", [
    ("", "level is required"),
    ("?level=4", "level must be"),
    ("?level=1&scheme=jenks", "scheme 'jenks' is not one of"),
    ("?level=1&measure=per_mu", "measure 'per_mu' is not one of"),
    ("?level=1&k=12", "k must be"),
    ("?level=1&since=2026-11-21&until=2026-11-20", "dates in the wrong order"),
    ("?level=3&parent=410105009", "no cell 410105009"),
])
def test_bad_class_requests_say_why(client, reports, query, message):  # noqa: F811
    r = client.get("/api/v1/map/classes" + query)
    assert r.status_code in (400, 404), r.json
    assert message in r.json["message"]
