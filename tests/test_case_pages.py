"""The case, worklist and rankings pages: in a real headless Chromium, and their templates over plain HTTP."""
import re

import pytest

import fixtures
from test_browser import browser, page  # noqa: F401  (fixtures: Debian's Chromium, a page that logs errors)
from test_cases import FRIDAY, GRID, act, at, ok
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)

browser_test = pytest.mark.browser
MARKUP = "<img src=x onerror=alert(1)>"
HERE = {"lon": fixtures.X0 + 0.01, "lat": fixtures.Y0 + 0.01}


def report(client, **extra):
    """A report of exposed garbage (0102) in GRID, made on Friday 09:00 unless told otherwise."""
    body = {"category": "0102", **HERE, "reported_at": at(FRIDAY, 9), **extra}
    body = {k: v for k, v in body.items() if v is not None}
    r = client.post("/api/v1/reports", json=body)
    assert r.status_code == 201, r.json
    return r.json["id"]


def near(d_lon, d_lat):
    return {"lon": HERE["lon"] + d_lon, "lat": HERE["lat"] + d_lat, "accuracy_m": 5}


def open_case_page(page, live_server, case_id):
    page.goto(f"{live_server}/cases/{case_id}")
    page.wait_for_selector("body[data-ready=true]", timeout=20000)


def submit(page):
    """Submit the action form and wait till the page has dealt with the answer."""
    page.click("#act button[type=submit]")
    page.wait_for_selector("#act-message:not([hidden])")
    page.wait_for_selector("body[data-ready=true]")
    return page.inner_text("#act-message")


def timeline(page):
    return page.eval_on_selector_all("#timeline li[data-seq]",
                                     "rows => rows.map(r => [r.dataset.seq, r.dataset.action])")


def console_errors(page):
    """The page's errors, less Chromium's note on each 4xx answer the page asked for on purpose."""
    return [e for e in page.errors if not re.match(r"Failed to load resource: .* status of 4\d\d", e)]


def events(db, case_id):
    with db.cursor() as cur:
        cur.execute("select e.seq, e.action, e.actor, e.note from case_event e join incident i on i.id = e.incident_id"
                    " where i.public_id = %s order by e.seq", (case_id,))
        return [tuple(r.values()) for r in cur.fetchall()]


# --- the case page ------------------------------------------------------------------------------------

@browser_test
def test_the_case_page_shows_the_timeline_and_the_gps_events_on_the_map(page, live_server, client,  # noqa: F811
                                                                        active, tmp_path):  # noqa: F811
    case_id = report(client, description="路边垃圾堆放", address="经八路 12 号")
    ok(act(client, case_id, "open", f"grid:{GRID}", 0, at=at(FRIDAY, 9, 30), location=near(0.0002, 0)))
    ok(act(client, case_id, "dispatch", f"grid:{GRID}", 1, unit_kind="department", at=at(FRIDAY, 9, 40)))
    ok(act(client, case_id, "start", "department:CGJ", 2, at=at(FRIDAY, 10), location=near(0, 0.0003),
           note="已到现场"))

    open_case_page(page, live_server, case_id)
    assert timeline(page) == [["1", "open"], ["2", "dispatch"], ["3", "start"]]
    rows = page.locator("#timeline li[data-seq]")
    assert "立案" in rows.nth(0).inner_text() and "2026-11-20 09:30" in rows.nth(0).inner_text()  # China time
    dispatch = rows.nth(1).inner_text()
    assert "已立案 opened → 已派遣 dispatched" in dispatch
    # its details: the unit, and the deadline (two working hours) in China time
    assert re.search(r"单位 unit\s+CGJ", dispatch) and re.search(r"期限 deadline\s+2026-11-20 11:40", dispatch)
    assert "已到现场" in rows.nth(2).inner_text()
    # the incident itself, and the two events that carry a GPS location, numbered as in the timeline
    assert page.locator(".leaflet-marker-pane .incident-marker").count() == 1
    assert page.locator(".leaflet-marker-pane .event-marker").all_inner_texts() == ["1", "3"]
    # dispatched on Friday with a 2-working-hour limit: long overdue, held by the department
    assert "超期 overdue" in page.inner_text("#deadline")
    assert page.get_attribute("#holder a", "href") == "/worklist?unit=department%3ACGJ&scope=mine"
    assert "西街道南社区第1网格" in page.inner_text("#cells")

    rows.nth(2).click()
    assert page.locator(".event-marker.active").all_inner_texts() == ["3"]
    assert page.get_attribute("#timeline li[data-seq='3']", "class") == "selected"
    rows.nth(0).click()
    assert page.locator(".event-marker.active").all_inner_texts() == ["1"]
    page.screenshot(path=str(tmp_path / "case.png"), full_page=True)
    assert page.errors == [] and page.outside == []


@browser_test
def test_acting_through_the_form_updates_the_timeline(page, live_server, client, db, active):  # noqa: F811
    case_id = report(client)
    open_case_page(page, live_server, case_id)
    assert timeline(page) == [] and "No events yet" in page.inner_text("#timeline")
    assert page.input_value("#act [name=actor_unit]") == f"grid:{GRID}"  # the holder
    assert page.eval_on_selector_all("#action option", "os => os.map(o => o.value)") == ["open", "void"]

    # a missing field: the server's 400 message beside the form, nothing done
    page.select_option("#action", "void")
    assert page.is_visible("#act [name=reason]") and not page.is_visible("#act [name=approved_by]")
    assert "void needs reason" in submit(page)
    assert timeline(page) == [] and events(db, case_id) == []

    page.select_option("#action", "open")
    assert "Done" in submit(page)
    assert timeline(page) == [["1", "open"]] and page.inner_text("#form-version") == "1"
    page.select_option("#action", "dispatch")
    assert page.is_visible("#act [name=unit_kind]")
    page.select_option("#act [name=unit_kind]", "department")
    page.fill("#act [name=note]", "请城管局处理")
    assert "Done" in submit(page)
    assert timeline(page) == [["1", "open"], ["2", "dispatch"]]
    assert "CGJ" in page.inner_text("#holder") and "已派遣 dispatched" in page.inner_text("#status")
    assert page.input_value("#act [name=actor_unit]") == "department:CGJ"  # the new holder
    assert page.eval_on_selector_all("#action option", "os => os.map(o => o.value)") == ["start", "extend",
                                                                                       "escalate"]
    # recorded as who is signed in (the page fixture's user), not the name typed into the form
    assert events(db, case_id) == [(1, "open", "browser-admin", ""),
                                   (2, "dispatch", "browser-admin", "请城管局处理")]
    assert console_errors(page) == [] and page.outside == []


@browser_test
def test_a_stale_form_shows_the_409_message_and_the_case_as_it_is_now(page, live_server, client, db,  # noqa: F811
                                                                      active):  # noqa: F811
    case_id = report(client)
    open_case_page(page, live_server, case_id)
    ok(act(client, case_id, "open", f"grid:{GRID}", 0))  # someone else, meanwhile

    page.select_option("#action", "void")
    page.fill("#act [name=reason]", "重复上报")
    text = submit(page)
    assert "409" in text and "changed since version 0" in text and "version 1 now" in text
    assert "error" in page.get_attribute("#act-message", "class")
    # reloaded: the other person's action is there, and the form acts on the new version
    assert timeline(page) == [["1", "open"]] and page.inner_text("#form-version") == "1"
    assert "void" not in page.eval_on_selector_all("#action option", "os => os.map(o => o.value)")
    assert events(db, case_id) == [(1, "open", "test-admin", "")]  # the other one: the tests' API key
    assert console_errors(page) == [] and page.outside == []


@browser_test
def test_markup_in_a_note_or_a_description_is_shown_as_text(page, live_server, client, active):  # noqa: F811
    case_id = report(client, description=MARKUP, address="</script>" + MARKUP)
    ok(act(client, case_id, "open", f"grid:{GRID}", 0, note=MARKUP))
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    open_case_page(page, live_server, case_id)
    assert page.inner_text("#timeline .note") == MARKUP
    assert page.inner_text("#description") == MARKUP and page.inner_text("#address") == "</script>" + MARKUP
    assert page.locator("img[src=x]").count() == 0
    assert dialogs == [] and page.errors == [] and page.outside == []


def test_a_missing_case_is_a_404_page(client, active):  # noqa: F811
    r = client.get("/cases/20261120-9999999")
    assert r.status_code == 404 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert "No such case" in html and "20261120-9999999" in html
    r = client.get("/cases/<i>x")
    assert r.status_code == 404 and "&lt;i&gt;x" in r.get_data(as_text=True)
    assert "<i>x" not in r.get_data(as_text=True)


def test_the_case_template_escapes_what_users_wrote(client, active):  # noqa: F811
    case_id = report(client, description="</script>" + MARKUP, address=MARKUP)
    ok(act(client, case_id, "open", f"grid:{GRID}", 0, note="</script><script>alert(2)</script>"))
    r = client.get(f"/cases/{case_id}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert MARKUP not in html and "</script><script>alert(2)" not in html
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html  # the description, as text
    # the case's JSON for the script: no tag can close its <script> element early
    data = re.search(r'<script id="case-data" type="application/json">(.*?)</script>', html, re.S).group(1)
    assert "<" not in data and "\\u003c/script\\u003e\\u003cscript\\u003ealert(2)" in data


def test_the_worklist_and_rankings_templates_escape_their_query(client, active):  # noqa: F811
    r = client.get("/worklist", query_string={"unit": '"><script>alert(1)</script>'})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "<script>alert(1)" not in html
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html
    r = client.get("/rankings", query_string={"level": '"><img src=x>', "period": "week"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "<img src=x>" not in html


# --- the worklist ---------------------------------------------------------------------------------------

@browser_test
def test_the_worklist_lists_overdue_first_and_links_to_the_case(page, live_server, client, active,  # noqa: F811
                                                                tmp_path):
    fresh = report(client, reported_at=None)
    late = report(client, reported_at=at(FRIDAY, 8))
    ok(act(client, late, "open", f"grid:{GRID}", 0, at=at(FRIDAY, 9)))
    ok(act(client, late, "dispatch", f"grid:{GRID}", 1, unit_kind="grid", at=at(FRIDAY, 9, 10)))  # due 11:10

    page.goto(f"{live_server}/worklist?unit=grid:{GRID}&scope=mine")
    page.wait_for_selector("body[data-ready=true]", timeout=20000)
    rows = page.locator("#worklist tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => [r.dataset.id, r.className])") == [[late, "overdue"], [fresh, ""]]
    assert "超期 overdue" in rows.nth(0).inner_text() and "暴露垃圾" in rows.nth(0).inner_text()
    assert "2026-11-20 08:00" in rows.nth(0).inner_text()  # reported, China time
    assert "2 case(s), 1 overdue" in page.inner_text("#worklist-status")
    page.screenshot(path=str(tmp_path / "worklist.png"), full_page=True)

    # the form: overdue only
    page.check("#worklist-query [name=overdue]")
    page.click("#worklist-query button[type=submit]")
    page.wait_for_url(re.compile(r"overdue=1"))
    page.wait_for_selector("body[data-ready=true]")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.id)") == [late]

    page.click(f"#worklist a[href='/cases/{late}']")
    page.wait_for_selector("body[data-ready=true]")
    assert page.inner_text("#case-id") == late
    assert page.errors == [] and page.outside == []


@browser_test
def test_a_bad_unit_on_the_worklist_shows_the_apis_message(page, live_server, active):  # noqa: F811
    page.goto(f"{live_server}/worklist?unit=mayor:1")
    page.wait_for_selector("body[data-ready=true]", timeout=20000)
    assert "not 'kind:code'" in page.inner_text("#worklist-status")
    assert page.is_hidden("#worklist")
    assert page.outside == []


def test_the_map_page_links_to_the_worklist_and_the_rankings(client):
    html = client.get("/").get_data(as_text=True)
    assert 'href="/worklist"' in html and 'href="/rankings"' in html
    html = client.get("/worklist").get_data(as_text=True)
    assert 'href="/"' in html and 'href="/rankings"' in html


# --- the rankings ---------------------------------------------------------------------------------------

WEST, EAST = "410105001", "410105002"


def _handled_case(client, lon, unit, *, close):
    """A case of ``unit``'s grid dispatched on Friday 09:10 (due 11:10); handled and closed on time if ``close``."""
    case_id = report(client, lon=lon)
    ok(act(client, case_id, "open", unit, 0, at=at(FRIDAY, 9)))
    ok(act(client, case_id, "dispatch", unit, 1, unit_kind="grid", at=at(FRIDAY, 9, 10)))
    if close:
        ok(act(client, case_id, "start", unit, 2, at=at(FRIDAY, 9, 30)))
        ok(act(client, case_id, "handle", unit, 3, note="已清理", at=at(FRIDAY, 10)))
        ok(act(client, case_id, "close", unit, 4, at=at(FRIDAY, 10, 30)))
    return case_id


@browser_test
def test_the_rankings_page_ranks_by_score_and_offers_the_csv(page, live_server, client, active,  # noqa: F811
                                                             tmp_path):
    # the east street closes its case on time, the west one lets it run over: east ranks first, against
    # the order of the codes
    _handled_case(client, HERE["lon"], f"grid:{GRID}", close=False)
    _handled_case(client, fixtures.XM + 0.01, f"grid:{EAST}001001", close=True)

    page.goto(f"{live_server}/rankings?level=street&from=2026-11-16&to=2026-11-23")
    page.wait_for_selector("body[data-ready=true]", timeout=20000)
    rows = page.locator("#rankings tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => [r.dataset.rank, r.dataset.code])") == [["1", EAST], ["2", WEST]]
    assert rows.locator(".name").all_inner_texts() == ["东街道", "西街道"]
    # closed on time: every rate-based part of the score; overdue and open: only 1 − rework and 1 − extension
    assert rows.locator(".score").all_inner_texts() == ["100.0", "30.0"]
    assert rows.locator("[data-field=closure_rate]").all_inner_texts() == ["100.0%", "0.0%"]
    assert rows.locator("[data-field=due]").all_inner_texts() == ["1", "1"]
    widths = rows.locator(".score-bar").evaluate_all("bars => bars.map(b => b.getBoundingClientRect().width)")
    assert widths[0] > widths[1] > 0
    weights = page.eval_on_selector_all("#weights [data-weight]", "ws => ws.map(w => [w.dataset.weight, w.innerText])")
    assert weights == [["closure_rate", "0.3"], ["on_time_rate", "0.4"], ["rework_rate", "0.2"],
                       ["extension_rate", "0.1"]]
    assert "2026-11-16 00:00" in page.inner_text("#period-label")
    assert page.input_value("#rankings-query [name=from]") == "2026-11-16"

    # the CSV link: the same query, as CSV, in the same order
    href = page.get_attribute("#csv-link", "href")
    assert "format=csv" in href and "level=street" in href and "from=2026-11-16" in href
    csv_text = client.get(href).get_data(as_text=True)
    assert csv_text.startswith("rank,kind,code,name,")
    assert [line.split(",")[2] for line in csv_text.splitlines()[1:]] == [EAST, WEST]

    # another level through the form: the unit grids, the two with a case first
    page.select_option("#rankings-query [name=level]", "grid")
    page.click("#rankings-query button[type=submit]")
    page.wait_for_url(re.compile(r"level=grid"))
    page.wait_for_selector("body[data-ready=true]")
    assert rows.evaluate_all("rs => rs.slice(0, 2).map(r => r.dataset.code)") == [f"{EAST}001001", GRID]
    assert rows.count() == 8
    page.screenshot(path=str(tmp_path / "rankings.png"), full_page=True)
    assert page.errors == [] and page.outside == []
