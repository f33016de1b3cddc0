"""Editing a draft through the API: a draft copied from the active version, saves with revisions (a stale copy
is refused with 409 and nothing changes), new cells, deletes, split, merge and the shared-vertex move, each
answering the problems the changed cells take part in; the edit log."""
import pytest
import shapely
from shapely.geometry import box, mapping

import fixtures
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)

X0, Y0, XM, YM, X1, Y1 = fixtures.X0, fixtures.Y0, fixtures.XM, fixtures.YM, fixtures.X1, fixtures.Y1
XQ = (X0 + XM) / 2  # the unit grids' boundary inside the west street's communities
SW, SW2 = "410105001001001", "410105001001002"  # the south-west community's west and east unit grids
ACTOR = {"actor": "规划员 李四"}


@pytest.fixture
def draft(client, active):  # noqa: F811
    r = client.post("/api/v1/versions", json={**ACTOR, "note": "拆分社区"})
    assert r.status_code == 201, r.json
    return r.json["id"]


def cells(client, draft, *codes):
    r = client.get(f"/api/v1/versions/{draft}/cells?codes={','.join(codes)}")
    assert r.status_code == 200, r.json
    return {f["id"]: f for f in r.json["features"]}


def problem_types(answer):
    return sorted(f["properties"]["type"] for f in answer["problems"]["features"])


def test_a_draft_copies_the_active_version(client, draft, active):  # noqa: F811
    assert client.get("/api/v1/versions").json[0]["counts"] == {"0": 1, "1": 2, "2": 4, "3": 8}
    sw = cells(client, draft, SW)[SW]["properties"]
    assert (sw["parent_code"], sw["level"], sw["revision"]) == ("410105001001", 3, 1)
    with active.cursor() as cur:  # the copy's parents are its own version's cells
        cur.execute("""select count(*) as n from grid_cell c join grid_cell p on p.id = c.parent_id
                        where c.version_id = %s and p.version_id <> c.version_id""", (draft,))
        assert cur.fetchone()["n"] == 0


def test_a_save_bumps_the_revision_and_reports_the_gap_it_leaves(client, draft):
    smaller = box(X0, Y0, XQ - 0.002, YM)  # the west grid pulled back from its east neighbour
    r = client.put(f"/api/v1/versions/{draft}/cells/{SW}", json={**ACTOR, "revision": 1, "reason": "测试",
                                                                "geometry": mapping(smaller)})
    assert r.status_code == 200, r.json
    cell = r.json["cells"][0]
    assert cell["properties"]["revision"] == 2
    assert shapely.geometry.shape(cell["geometry"]).equals(shapely.MultiPolygon([smaller]))
    assert "gap" in problem_types(r.json)


def test_a_stale_save_is_refused_and_changes_nothing(client, draft):
    first = client.put(f"/api/v1/versions/{draft}/cells/{SW}", json={**ACTOR, "revision": 1, "name": "甲"})
    assert first.status_code == 200
    stale = client.put(f"/api/v1/versions/{draft}/cells/{SW}", json={**ACTOR, "revision": 1, "name": "乙"})
    assert stale.status_code == 409
    assert "changed since you loaded it (now at revision 2)" in stale.json["message"]
    assert stale.json["details"][0]["properties"]["name"] == "甲"  # what it is now, to redo the edit on
    assert cells(client, draft, SW)[SW]["properties"]["name"] == "甲"


def test_moving_a_shared_vertex_moves_it_for_every_neighbour(client, draft):
    r = client.post(f"/api/v1/versions/{draft}/move-vertex",
                    json={**ACTOR, "from": [XQ, YM], "to": [XQ + 0.004, YM], "revisions": {SW: 1}})
    assert r.status_code == 200, r.json
    moved = {f["id"] for f in r.json["cells"]}
    assert moved == {SW, SW2, "410105001002001", "410105001002002"}  # both communities' grids meet there
    assert problem_types(r.json) == []  # no gap, no overlap
    assert all(f["properties"]["revision"] == 2 for f in r.json["cells"])


def test_split_and_merge_back(client, draft):
    line = {"type": "LineString", "coordinates": [[X0 + 0.01, Y0 - 0.01], [X0 + 0.01, YM + 0.01]]}
    r = client.post(f"/api/v1/versions/{draft}/cells/{SW}/split", json={**ACTOR, "revision": 1, "line": line})
    assert r.status_code == 200, r.json
    (kept, new) = r.json["cells"]
    assert (kept["id"], new["id"]) == (SW, "410105001001003")  # the next free code among its siblings
    assert kept["properties"]["area_m2"] > new["properties"]["area_m2"]
    assert problem_types(r.json) == []
    revisions = {SW: kept["properties"]["revision"], "410105001001003": new["properties"]["revision"]}
    r = client.post(f"/api/v1/versions/{draft}/merge", json={**ACTOR, "revisions": revisions})
    assert r.status_code == 200, r.json
    assert r.json["removed"] == ["410105001001003"] and problem_types(r.json) == []
    merged = shapely.geometry.shape(r.json["cells"][0]["geometry"])
    assert merged.symmetric_difference(box(X0, Y0, XQ, YM)).area < 1e-12


def test_a_new_cell_and_a_delete(client, draft):
    r = client.delete(f"/api/v1/versions/{draft}/cells/{SW2}", json={**ACTOR, "revision": 1})
    assert r.status_code == 200, r.json
    assert r.json["removed"] == [SW2] and problem_types(r.json) == ["gap"]
    r = client.post(f"/api/v1/versions/{draft}/cells", json={**ACTOR, "code": "410105001001009", "name": "新网格",
                                                             "geometry": mapping(box(XQ, Y0, XM, YM))})
    assert r.status_code == 201, r.json
    new = r.json["cells"][0]["properties"]
    assert (new["level"], new["parent_code"]) == (3, "410105001001")  # derived by the database
    assert problem_types(r.json) == []


def test_the_edit_log_says_who_what_and_why(client, draft):
    client.put(f"/api/v1/versions/{draft}/cells/{SW}", json={**ACTOR, "revision": 1, "name": "甲",
                                                             "reason": "更名"})
    log = client.get(f"/api/v1/versions/{draft}/edits").json
    # who edits is who is signed in (the tests' API key), not the body's actor
    assert (log[0]["actor"], log[0]["operation"], log[0]["cell_code"], log[0]["reason"]) == \
        ("test-admin", "edit", SW, "更名")


@pytest.mark.parametrize("method, path, body, status, message", [
    ("put", f"/cells/{SW}", {**ACTOR, "name": "甲"}, 400, "revision is required"),
    ("put", f"/cells/{SW}", {**ACTOR, "revision": 1}, 400, "nothing to change"),
    ("put", f"/cells/{SW}", {**ACTOR, "revision": 1, "kind": "odd"}, 400, "kind must be one of regular, special"),
    ("put", f"/cells/{SW}", {**ACTOR, "revision": 1, "geometry": {"type": "Polygon", "coordinates": [
        [[X0, Y0], [XQ, YM], [XQ, Y0], [X0, YM], [X0, Y0]]]}}, 400, "geometry is not valid: Self-intersection"),
    ("put", "/cells/410105009009009", {**ACTOR, "revision": 1, "name": "甲"}, 404, "has no cell 410105009009009"),
    ("post", f"/cells/{SW}/split", {**ACTOR, "revision": 1, "line": {"type": "LineString", "coordinates": [
        [X0 - 1, Y0 - 1], [X0 - 0.5, Y0 - 0.5]]}}, 400, "the line must cross cell"),
    ("post", "/merge", {**ACTOR, "revisions": {SW: 1}}, 400, "name at least two cells to merge"),
    ("post", "/merge", {**ACTOR, "revisions": {SW: 1, "410105002001001": 1}}, 400, "same level and the same parent"),
    ("post", "/move-vertex", {**ACTOR, "from": [X0 + 0.0123, Y0 + 0.0123], "to": [X0, Y0]}, 400, "has a vertex at"),
    ("post", "/move-vertex", {**ACTOR, "from": "here", "to": [X0, Y0]}, 400, "from must be [longitude, latitude]"),
    ("post", "/move-vertex", {**ACTOR, "from": [XQ, YM], "to": [X1 + 0.1, YM]}, 400, "makes cell"),
    ("post", "/cells", {**ACTOR, "code": SW, "name": "重复", "geometry": mapping(box(X0, Y0, XQ, YM))}, 409,
     "has a cell 410105001001001 already"),
    ("delete", "/cells/410105001001", {**ACTOR, "revision": 1}, 409, "the database refused the edit"),
])
def test_bad_edits_say_why_and_change_nothing(client, draft, method, path, body, status, message):
    before = client.get(f"/api/v1/versions/{draft}/cells?level=3").json
    r = getattr(client, method)(f"/api/v1/versions/{draft}{path}", json=body)
    assert r.status_code == status, r.json
    assert message in r.json["message"]
    assert client.get(f"/api/v1/versions/{draft}/cells?level=3").json == before


def test_the_active_version_cannot_be_edited(client, active):  # noqa: F811
    r = client.put(f"/api/v1/versions/1/cells/{SW}", json={**ACTOR, "revision": 1, "name": "甲"})
    assert r.status_code == 409 and "draft" in r.json["message"]


def test_a_cells_code_and_staff_can_change(client, draft):
    staff = [{"post": "grid_worker", "name": "王五", "phone": "13800000001"},
             {"post": "网格长", "name": "赵六", "phone": "13800000002"}]
    r = client.put(f"/api/v1/versions/{draft}/cells/{SW}", json={**ACTOR, "revision": 1, "code": "410105001001007",
                                                                "staff": staff})
    assert r.status_code == 200, r.json
    cell = r.json["cells"][0]
    assert cell["id"] == "410105001001007" and cell["properties"]["revision"] == 2
    assert sorted((p["post"], p["name"]) for p in cell["properties"]["staff"]) == [
        ("grid_head", "赵六"), ("grid_worker", "王五")]
    r = client.put(f"/api/v1/versions/{draft}/cells/410105001001007", json={**ACTOR, "revision": 2, "staff": [
        {"post": "street_head", "name": "钱七", "phone": "13800000003"}]})
    assert r.status_code == 400 and "belongs to level 1" in r.json["details"][0]
    r = client.put(f"/api/v1/versions/{draft}/cells/410105001001007", json={**ACTOR, "revision": 2, "code": "4101"})
    assert r.status_code == 400 and "code must be 15 digits" in r.json["message"]
    r = client.put(f"/api/v1/versions/{draft}/cells/410105001001007", json={**ACTOR, "revision": 2, "code": SW2})
    assert r.status_code == 409 and f"has a cell {SW2} already" in r.json["message"]
    assert len(cells(client, draft, "410105001001007")["410105001001007"]["properties"]["staff"]) == 2
