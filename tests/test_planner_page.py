"""The planners' editor in headless Chromium: a shared boundary dragged (every neighbour follows, no gap), a
reshape of one cell alone (its gap drawn at once), split along a drawn line, merge, undo and redo."""
import pytest

from test_browser import browser, page  # noqa: F401  (fixtures: Debian's Chromium, a page that logs errors)
from test_map_page import keep_screenshot
from test_planner_api import SW, SW2, XQ, YM, X0, Y0, draft  # noqa: F401  (fixture: a draft of the fixture partition)
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)

pytestmark = pytest.mark.browser


def open_planner(page, base):  # noqa: F811
    page.goto(f"{base}/planner")
    page.wait_for_selector("body[data-ready=true]", timeout=20000)


def screen(page, lon, lat):  # noqa: F811
    point = page.evaluate(f"() => planner.map.latLngToContainerPoint([{lat}, {lon}])")
    box = page.locator("#map").bounding_box()
    return box["x"] + point["x"], box["y"] + point["y"]


def click(page, lon, lat, **kw):  # noqa: F811
    page.mouse.click(*screen(page, lon, lat), **kw)


def drag(page, start, end):  # noqa: F811
    page.mouse.move(*screen(page, *start))
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(*screen(page, start[0] + (end[0] - start[0]) * i / 10, start[1] + (end[1] - start[1]) * i / 10))
    page.mouse.up()


def revisions(client, draft, *codes):  # noqa: F811
    fc = client.get(f"/api/v1/versions/{draft}/cells?codes={','.join(codes)}").json
    return {f["id"]: f["properties"]["revision"] for f in fc["features"]}


def status_after(page, text):  # noqa: F811
    page.wait_for_function(f"() => document.getElementById('status').textContent.includes({text!r})", timeout=10000)
    return page.inner_text("#status")


def zoom_to_south_west(page):  # noqa: F811
    page.evaluate(f"() => planner.map.setView([{(Y0 + YM) / 2}, {(X0 + XQ * 2) / 3}], 14, {{animate: false}})")
    page.wait_for_function(f"() => planner.S.features.has('{SW}')", timeout=10000)


def test_dragging_a_shared_vertex_moves_every_neighbour(page, live_server, client, draft):  # noqa: F811
    open_planner(page, live_server)
    zoom_to_south_west(page)
    click(page, X0 + 0.005, Y0 + 0.01)  # inside SW
    page.wait_for_selector(".marker-icon", timeout=5000)
    drag(page, (XQ, YM), (XQ + 0.004, YM))
    assert "✓" in status_after(page, "Move vertex")
    assert revisions(client, draft, SW, SW2, "410105001002001", "410105001002002") == {
        SW: 2, SW2: 2, "410105001002001": 2, "410105001002002": 2}
    assert page.inner_text("#problem-count") == "(0)"
    keep_screenshot(page, "planner-shared-drag.png")
    assert page.errors == []
    assert page.outside == []


def test_a_reshape_of_one_cell_alone_shows_its_gap(page, live_server, client, draft):  # noqa: F811
    open_planner(page, live_server)
    zoom_to_south_west(page)
    page.uncheck("#shared")
    click(page, X0 + 0.005, Y0 + 0.01)
    page.wait_for_selector(".marker-icon", timeout=5000)
    drag(page, (XQ, YM), (XQ - 0.006, YM))
    assert "✓" in status_after(page, "Reshape")
    page.wait_for_selector("#problems li[data-type=gap]", timeout=5000)
    assert revisions(client, draft, SW, SW2) == {SW: 2, SW2: 1}
    assert page.errors == []


def test_split_undo_redo_and_merge(page, live_server, client, draft):  # noqa: F811
    open_planner(page, live_server)
    zoom_to_south_west(page)
    click(page, X0 + 0.005, Y0 + 0.01)
    page.click("#split")
    x = X0 + 0.01
    click(page, x, Y0 - 0.003)
    page.mouse.dblclick(*screen(page, x, YM + 0.003))
    assert "✓" in status_after(page, "Split")
    page.wait_for_function("() => planner.S.features.has('410105001001003')")
    page.click("#undo")
    status_after(page, "Undone")
    page.wait_for_function("() => !planner.S.features.has('410105001001003')")
    page.click("#redo")
    status_after(page, "Redone")
    page.wait_for_function("() => planner.S.features.has('410105001001003')")
    # merge the two parts back: shift-click the second, then Merge
    page.evaluate(f"() => {{ planner.select('{SW}', false); planner.select('410105001001003', true); }}")
    page.click("#merge")
    assert "✓" in status_after(page, "Merge")
    page.wait_for_function("() => !planner.S.features.has('410105001001003')")
    assert page.inner_text("#problem-count") == "(0)"
    assert page.errors == []
    assert page.outside == []


def test_split_preview_the_moved_report_activate_and_the_routing_follows(page, live_server, client, draft):  # noqa: F811
    r = client.post("/api/v1/reports", json={"category": "0102", "lon": X0 + 0.005, "lat": Y0 + 0.01})
    assert r.status_code == 201
    moving = r.json["id"]  # in the west strip the split gives to a new unit grid
    open_planner(page, live_server)
    zoom_to_south_west(page)
    click(page, X0 + 0.015, Y0 + 0.01)
    page.click("#split")
    click(page, X0 + 0.01, Y0 - 0.003)
    page.mouse.dblclick(*screen(page, X0 + 0.01, YM + 0.003))
    assert "✓" in status_after(page, "Split")
    page.click("#impact")
    row = page.wait_for_selector(f'#impact-table tr[data-id="{moving}"]', timeout=20000)
    assert "410105001001003" in row.inner_text() and SW in row.inner_text()
    assert page.get_attribute("#impact-csv", "href") == f"/api/v1/versions/{draft}/impact?format=csv"
    page.fill("#reason", "小区新建，网格一分为二")
    page.click("#activate")
    assert f"Version {draft} is active" in status_after(page, "is active")
    routing = client.get(f"/api/v1/reports/{moving}").json["routing"]
    assert (routing["version"], routing["cells"][3]["code"]) == (draft, "410105001001003")
    # the old version is still there to see
    assert len(client.get("/api/v1/grids?version=1&level=3").json["features"]) == 8
    assert len(client.get(f"/api/v1/grids?version={draft}&level=3").json["features"]) == 9
    keep_screenshot(page, "planner-activated.png")
    assert page.errors == []
    assert page.outside == []


def test_a_cells_name_code_and_staff_edited_in_the_form_and_undone(page, live_server, client, draft):  # noqa: F811
    open_planner(page, live_server)
    zoom_to_south_west(page)
    click(page, X0 + 0.005, Y0 + 0.01)
    page.wait_for_selector("#cell:not([hidden])")
    page.fill("#cell input[name=code]", "410105001001008")
    page.fill("#cell input[name=name]", "幸福里网格")
    page.fill("#cell textarea[name=staff]", "grid_worker,王五,13800000001")
    page.click("#cell button[type=submit]")
    assert "✓" in status_after(page, "Edit")
    cell = client.get(f"/api/v1/versions/{draft}/cells?codes=410105001001008").json["features"][0]["properties"]
    assert (cell["name"], [s["name"] for s in cell["staff"]]) == ("幸福里网格", ["王五"])
    assert page.evaluate(f"() => planner.S.features.has('{SW}')") is False
    page.click("#undo")
    status_after(page, "Undone")
    cell = client.get(f"/api/v1/versions/{draft}/cells?codes={SW}").json["features"][0]["properties"]
    assert (cell["name"], cell["staff"]) == ("西街道南社区第1网格", [])
    assert page.errors == []
