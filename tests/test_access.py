"""Who may see and do what: every endpoint × every role × inside and outside its scope, as gis.access's table
says; sessions, CSRF, expiry and logout; keys, their revocation and rate limits; the audit log; the CLI.

The fixture city has one district (410105) of two streets. Each role's principal here is scoped to the west
street (410105001); handlers also to the city management bureau (CGJ). Inside: a report in the west
street, of a CGJ subclass. Outside: the same in the east street (410105002) — and, for the handler, a report
of another department's subclass in the west street.
"""
import datetime as dt
import math
import re
import time

import mapbox_vector_tile
import pytest

import fixtures
from gis import access, api_keys, users
from gis.access import Scope
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)
from webmap import auth

STREET, OTHER_STREET = "410105001", "410105002"
IN_GRID, OUT_GRID = "410105001001001", "410105002001001"
IN_POINT = (fixtures.X0 + 0.012, fixtures.Y0 + 0.012)
OUT_POINT = (fixtures.XM + 0.012, fixtures.Y0 + 0.012)
CGJ_SUBCLASS, OTHER_SUBCLASS = "0102", "0106"   # 0106 is handled by SWJ
PASSWORD = "access-tests-pw"

# the principals of the matrix: (role, scope code, department)
PRINCIPALS = [(role, STREET, "CGJ" if role == "handler" else None) for role in access.ROLES] + [
    ("admin", None, None), ("planner", None, None)]


def tile_of(lon, lat, z):
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


@pytest.fixture
def world(app, client, active):  # noqa: F811
    """Reports inside and outside, a draft, and the ids the requests below name."""
    def report(point, category):
        r = client.post("/api/v1/reports", json={"category": category, "lon": point[0], "lat": point[1],
                                                 "description": "matrix"})
        assert r.status_code == 201, r.json
        return r.json
    inside, outside = report(IN_POINT, CGJ_SUBCLASS), report(OUT_POINT, CGJ_SUBCLASS)
    other_department = report(IN_POINT, OTHER_SUBCLASS)
    draft = client.post("/api/v1/versions", json={})
    assert draft.status_code == 201, draft.json
    with active.cursor() as cur:
        cur.execute("select public_id, token::text from incident")
        tokens = {r["public_id"]: r["token"] for r in cur.fetchall()}
    return {"in": inside["id"], "out": outside["id"], "other_dept": other_department["id"], "tokens": tokens,
            "draft": draft.json["id"]}


def principal_client(app, role, code, department):
    with app.extensions["gridmap_db"].cursor() as cur:
        key = api_keys.create(cur, f"k-{role}-{code or 'city'}", created_by="tests", role=role,
                              scope=Scope(code, department), per_minute=None)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def requests_for(world):
    """(endpoint, method, url inside, url outside, body inside, body outside, what to look for) per endpoint.

    An outside URL of None: the endpoint names no object; the answer (a list, a map) must then not hold the
    outside object, named by `look` ("in"/"out" strings to find in the body, or a callable)."""
    d, i, o, t = world["draft"], world["in"], world["out"], world["tokens"]
    z, x, y = tile_of(*IN_POINT, 12)  # one tile over both streets' south-west corners
    reports = {"category": CGJ_SUBCLASS, "lon": IN_POINT[0], "lat": IN_POINT[1]}
    act = {"action": "open", "version": 0}
    # the corner of two unit grids of the west street on the city's edge, slid along it
    corner = (fixtures.X0 + fixtures.XM) / 2
    vertex = {"from": [corner, fixtures.Y0], "to": [corner + 0.0001, fixtures.Y0]}
    return [
        ("auth.me", "GET", "/api/v1/me", None, None, None, None),
        ("pages.index", "GET", "/", None, None, None, None),
        ("map_page.live_map", "GET", "/map", None, None, None, None),
        ("map_page.classes", "GET", "/api/v1/map/classes?level=3", None, None, None, (None, OUT_GRID)),
        ("map_page.cell", "GET", f"/api/v1/cells/{IN_GRID}", f"/api/v1/cells/{OUT_GRID}", None, None, None),
        ("api.grids", "GET", "/api/v1/grids?level=3", None, None, None, (IN_GRID, OUT_GRID)),
        ("api.versions", "GET", "/api/v1/versions", None, None, None, None),
        ("tiles.cell_tile", "GET", f"/tiles/3/{z}/{x}/{y}.pbf", None, None, None, "tile"),
        ("live.events", "GET", "/api/v1/live?backlog=50", None, None, None, (i, o)),
        ("reports.index", "GET", "/api/v1/reports", None, None, None, (i, o)),
        ("reports.show", "GET", f"/api/v1/reports/{i}", f"/api/v1/reports/{o}", None, None, None),
        ("reports.create", "POST", "/api/v1/reports", "/api/v1/reports", reports,
         {**reports, "lon": OUT_POINT[0], "lat": OUT_POINT[1]}, None),
        ("open311.list_requests", "GET", "/open311/v2/requests.json", None, None, None, (i, o)),
        ("open311.show_request", "GET", f"/open311/v2/requests/{i}.json", f"/open311/v2/requests/{o}.json",
         None, None, None),
        ("open311.show_token", "GET", f"/open311/v2/tokens/{t[i]}.json", f"/open311/v2/tokens/{t[o]}.json",
         None, None, None),
        ("open311.create_request", "POST", "/open311/v2/requests.json", "/open311/v2/requests.json",
         {"service_code": CGJ_SUBCLASS, "lat": str(IN_POINT[1]), "long": str(IN_POINT[0])},
         {"service_code": CGJ_SUBCLASS, "lat": str(OUT_POINT[1]), "long": str(OUT_POINT[0])}, "form"),
        ("cases.show", "GET", f"/api/v1/cases/{i}", f"/api/v1/cases/{o}", None, None, None),
        # a worklist named by a unit outside: its case must not show
        ("cases.worklist", "GET", f"/api/v1/cases?unit=grid:{OUT_GRID}", None, None, None, (None, o)),
        ("case_pages.case", "GET", f"/cases/{i}", f"/cases/{o}", None, None, None),
        ("case_pages.worklist", "GET", "/worklist", None, None, None, None),
        ("cases.act", "POST", f"/api/v1/cases/{i}/actions", f"/api/v1/cases/{o}/actions", act, act, None),
        ("stats.stats", "GET", "/api/v1/stats?level=grid&period=2026-11", None, None, None, (IN_GRID, OUT_GRID)),
        ("case_pages.rankings", "GET", "/rankings", None, None, None, None),
        ("planner.planner", "GET", "/planner", None, None, None, None),
        ("planner.new_draft", "POST", "/api/v1/versions", None, {}, None, None),
        ("planner.cells", "GET", f"/api/v1/versions/{d}/cells?level=3", None, None, None, (IN_GRID, OUT_GRID)),
        ("planner.save_cell", "PUT", f"/api/v1/versions/{d}/cells/{IN_GRID}",
         f"/api/v1/versions/{d}/cells/{OUT_GRID}", {"revision": 1, "name": "改名"}, {"revision": 1, "name": "改名"},
         None),
        ("planner.create_cell", "POST", f"/api/v1/versions/{d}/cells", None,
         {"code": "410105001001009", "name": "新网格", "parent_code": "410105001001",
          "geometry": {"type": "Polygon", "coordinates": [[[113.601, 34.701], [113.602, 34.701],
                                                            [113.602, 34.702], [113.601, 34.701]]]}}, None, None),
        ("planner.delete_cell", "DELETE", f"/api/v1/versions/{d}/cells/{IN_GRID}",
         f"/api/v1/versions/{d}/cells/{OUT_GRID}", {"revision": 99}, {"revision": 99}, None),
        ("planner.split_cell", "POST", f"/api/v1/versions/{d}/cells/{IN_GRID}/split",
         f"/api/v1/versions/{d}/cells/{OUT_GRID}/split", {"revision": 99, "line": None},
         {"revision": 99, "line": None}, None),
        ("planner.merge", "POST", f"/api/v1/versions/{d}/merge", f"/api/v1/versions/{d}/merge",
         {"revisions": {IN_GRID: 99, "410105001001002": 99}},
         {"revisions": {OUT_GRID: 99, "410105002001002": 99}}, None),
        ("planner.move_vertex", "POST", f"/api/v1/versions/{d}/move-vertex", None, vertex, None, None),
        ("planner.edits", "GET", f"/api/v1/versions/{d}/edits", None, None, None, None),
        ("api.problems", "GET", f"/api/v1/versions/{d}/problems", None, None, None, None),
        ("api.check_cell", "POST", f"/api/v1/versions/{d}/check-cell", f"/api/v1/versions/{d}/check-cell",
         {"code": IN_GRID, "geometry": fixtures_polygon(IN_GRID)},
         {"code": OUT_GRID, "geometry": fixtures_polygon(OUT_GRID)}, None),
        ("versions.diff", "GET", f"/api/v1/versions/1/diff/{d}", None, None, None, None),
        ("versions.diff_page", "GET", f"/versions/1/diff/{d}", None, None, None, None),
        ("activation.impact", "GET", f"/api/v1/versions/{d}/impact", None, None, None, None),
        ("activation.activate", "POST", "/api/v1/versions/1/activate", None, {}, None, None),  # not a draft: 409
        ("auth.audit", "GET", "/api/v1/audit", None, None, None, None),
        ("auth.logout", "POST", "/logout", None, None, None, None),
    ]


def fixtures_polygon(code):
    cell = next(c for c in fixtures.cells(3) if c[0] == code)
    return {"type": "Polygon", "coordinates": [list(map(list, cell[3].exterior.coords))]}


def send(client, method, url, body, form=False):
    if body is None:
        return client.open(url, method=method)
    return client.open(url, method=method, data=body) if form else client.open(url, method=method, json=body)


def mentions(response, needle):
    if response.mimetype == "application/vnd.mapbox-vector-tile":
        return any(f["properties"]["code"] == needle for f in mapbox_vector_tile.decode(response.data)["cells"]["features"])
    return needle in response.get_data(as_text=True)


def test_every_endpoint_is_in_the_table_of_permissions(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - auth.PUBLIC - set(auth.ENDPOINTS) == set()
    assert set(auth.ENDPOINTS) - endpoints == set()  # nothing listed that does not exist


def test_the_matrix_covers_every_protected_endpoint(world):
    assert {r[0] for r in requests_for(world)} == set(auth.ENDPOINTS)


@pytest.mark.parametrize("role,code,department", PRINCIPALS,
                         ids=[f"{r}@{c or 'city'}" for r, c, _ in PRINCIPALS])
def test_endpoint_by_role_inside_and_outside_the_scope(app, world, role, code, department):
    """Allowed or refused as the table says; objects outside the scope are 404 (or 403), and lists and maps
    never hold them."""
    app.config.update(LIVE_LIFETIME_S=0.3, LIVE_HEARTBEAT_S=0.1)
    client = principal_client(app, role, code, department)
    who = access.Principal("k", role, Scope(code, department), "key")
    wrong = []
    for endpoint, method, url_in, url_out, body_in, body_out, look in requests_for(world):
        permission = auth.ENDPOINTS[endpoint]
        allowed = permission is None or who.can(permission)
        form = look == "form"
        r = send(client, method, url_in, body_in, form)
        if endpoint == "live.events" and r.status_code == 200:
            # the feed holds events back while any transaction of the cluster that began before them is
            # open (gis/live.py): other sessions' on a shared machine; wait for them
            for _ in range(40):
                if mentions(r, world["in"]):
                    break
                time.sleep(0.25)
                r = send(client, method, url_in, body_in)
        if not allowed:
            if r.status_code != 403:
                wrong.append(f"{method} {url_in}: {r.status_code}, expected 403 ({permission})")
            continue
        if handler_limits(endpoint, role):
            if r.status_code != 403:
                wrong.append(f"{method} {url_in}: {r.status_code}, expected 403 for a handler")
            continue
        if r.status_code in (401, 403, 404) or r.status_code >= 500:
            wrong.append(f"{method} {url_in}: {r.status_code} {r.get_data(as_text=True)[:200]}, expected allowed")
            continue
        if url_out is not None and code is not None:
            r_out = send(client, method, url_out, body_out, form)
            if r_out.status_code not in (403, 404):
                wrong.append(f"{method} {url_out}: {r_out.status_code}, expected 404 or 403 outside {code}")
        if isinstance(look, tuple) and r.status_code == 200:
            needle_in, needle_out = look
            if role == "handler" and endpoint in ("reports.index", "open311.list_requests", "live.events"):
                if mentions(r, world["other_dept"]):
                    wrong.append(f"{method} {url_in}: shows another department's report to a handler")
            if needle_in is not None and not mentions(r, needle_in):
                wrong.append(f"{method} {url_in}: misses {needle_in}, which is inside")
            if code is not None and mentions(r, needle_out):
                wrong.append(f"{method} {url_in}: shows {needle_out}, outside {code}")
        if look == "tile" and code is not None and r.status_code == 200 and mentions(r, OUT_GRID):
            wrong.append(f"{method} {url_in}: the tile shows {OUT_GRID}, outside {code}")
    listener = app.extensions.get("gridmap_live")
    if listener is not None:
        listener.stop()
    assert wrong == []


def handler_limits(endpoint, role):
    """A department's handlers rank only departments: asking for unit grids is refused."""
    return role == "handler" and endpoint == "stats.stats"


def test_a_district_user_sees_only_its_district_in_stats_and_a_department_its_own_row(app, world):
    street = principal_client(app, "viewer", STREET, None)
    rows = street.get("/api/v1/stats?level=street&period=2026-11").json["rows"]
    assert [r["code"] for r in rows] == [STREET]
    assert street.get("/api/v1/stats?level=district&period=2026-11").status_code == 403
    assert street.get(f"/api/v1/stats?level=grid&within={OTHER_STREET}&period=2026-11").status_code == 404
    handler = principal_client(app, "handler", None, "CGJ")
    rows = handler.get("/api/v1/stats?level=department&period=2026-11").json["rows"]
    assert {r["code"] for r in rows} <= {"CGJ"}


def test_the_roles_table_says_what_the_issue_asks():
    assert access.ROLES["device"] == {access.REPORT}             # field devices may only report
    assert access.ROLES["viewer"] & {access.REPORT, access.ACT, access.PLAN, access.ACTIVATE} == set()
    assert all(access.PLAN not in access.ROLES[r] for r in ("dispatcher", "handler", "grid_worker", "viewer"))
    assert [r for r in access.ROLES if access.AUDIT in access.ROLES[r]] == ["admin"]
    street_admin = access.Principal("a", "admin", Scope(STREET))
    assert not street_admin.can(access.ACTIVATE) and not street_admin.can(access.AUDIT)


# --- sessions -------------------------------------------------------------------------------------------

def add_user(app, name, role="viewer", code=None, department=None):
    with app.extensions["gridmap_db"].cursor() as cur:
        users.add(cur, name, role=role, scope=Scope(code, department), password=PASSWORD, created_by="tests")


def csrf_of(client, path="/login"):
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def sign_in(client, name, password=PASSWORD):
    return client.post("/login", data={"name": name, "password": password, "csrf_token": csrf_of(client)})


def test_sign_in_then_out(app, anonymous, active):  # noqa: F811
    add_user(app, "lihua", "dispatcher", STREET)
    assert anonymous.get("/api/v1/me").status_code == 401
    page = anonymous.get("/map")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login?next=/map")
    r = sign_in(anonymous, "lihua")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    me = anonymous.get("/api/v1/me").json
    assert (me["name"], me["role"], me["scope"], me["via"]) == ("lihua", "dispatcher", STREET, "session")
    cookie = anonymous.get_cookie("gridmap_session")
    assert cookie.http_only and cookie.same_site == "Lax"
    token = csrf_of(anonymous, "/worklist")
    assert anonymous.post("/logout", headers={"X-CSRFToken": token}).status_code == 302
    assert anonymous.get("/api/v1/me").status_code == 401


def test_a_copied_cookie_is_dead_after_logout(app, anonymous, active):  # noqa: F811
    add_user(app, "lihua")
    sign_in(anonymous, "lihua")
    stolen = anonymous.get_cookie("gridmap_session").value
    anonymous.post("/logout", headers={"X-CSRFToken": csrf_of(anonymous, "/worklist")})
    thief = app.test_client()
    thief.set_cookie("gridmap_session", stolen)
    assert thief.get("/api/v1/me").status_code == 401


def test_wrong_passwords_and_unknown_users_are_refused_alike_and_audited(app, anonymous, active):  # noqa: F811
    add_user(app, "lihua")
    wrong = sign_in(anonymous, "lihua", "not-the-password")
    unknown = sign_in(anonymous, "nobody", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in wrong.get_data(as_text=True) and "用户名或密码错误" in unknown.get_data(as_text=True)
    with app.extensions["gridmap_db"].cursor() as cur:
        cur.execute("select actor, action from audit_log where action = 'login_failed' order by id")
        assert [tuple(r.values()) for r in cur.fetchall()] == [("lihua", "login_failed"), ("nobody", "login_failed")]


def test_writes_from_a_session_need_the_csrf_token(app, anonymous, world):
    add_user(app, "lihua", "dispatcher")
    sign_in(anonymous, "lihua")
    url = f"/api/v1/cases/{world['in']}/actions"
    r = anonymous.post(url, json={"action": "open", "version": 0})
    assert r.status_code == 400 and "CSRF" in r.json["message"]
    r = anonymous.post(url, json={"action": "open", "version": 0},
                       headers={"X-CSRFToken": "forged"})
    assert r.status_code == 400
    r = anonymous.post(url, json={"action": "open", "version": 0, "actor": {"unit": f"grid:{IN_GRID}"}},
                       headers={"X-CSRFToken": csrf_of(anonymous, "/map")})
    assert r.status_code == 200, r.json
    assert r.json["case"]["events"][-1]["actor"] == "lihua"  # who is signed in
    assert anonymous.post("/login", data={"name": "lihua", "password": PASSWORD}).status_code == 400  # login CSRF


def test_a_session_expires_when_idle_and_in_any_case(app, anonymous, active):  # noqa: F811
    add_user(app, "lihua")
    sign_in(anonymous, "lihua")
    assert anonymous.get("/api/v1/me").status_code == 200
    with app.extensions["gridmap_db"].cursor() as cur:
        cur.execute("update user_session set seen_at = now() - interval '3 hours'")
    assert anonymous.get("/api/v1/me").status_code == 401  # idle for longer than 2 h
    sign_in(anonymous, "lihua")
    with app.extensions["gridmap_db"].cursor() as cur:
        cur.execute("update user_session set created_at = now() - interval '13 hours' where ended_at is null")
    assert anonymous.get("/api/v1/me").status_code == 401  # older than 12 h, however busy


def test_disabling_a_user_ends_its_sessions_at_once(app, anonymous, runner, active):  # noqa: F811
    add_user(app, "lihua")
    sign_in(anonymous, "lihua")
    result = runner.invoke(__import__("gis.cli", fromlist=["main"]).main, ["user", "disable", "lihua"])
    assert result.exit_code == 0, result.output
    assert anonymous.get("/api/v1/me").status_code == 401
    assert sign_in(anonymous, "lihua").status_code == 401


def test_sign_in_only_sends_back_to_this_site(app, anonymous, active):  # noqa: F811
    add_user(app, "lihua")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = anonymous.post("/login", data={"name": "lihua", "password": PASSWORD, "next": target,
                                           "csrf_token": csrf_of(anonymous)})
        assert r.headers["Location"] == "/", target


# --- API keys -------------------------------------------------------------------------------------------

def test_a_revoked_key_is_refused_at_once(app, runner, active):  # noqa: F811
    from gis.cli import main
    created = runner.invoke(main, ["key", "create", "tablet-7", "--scope", STREET])
    key = created.output.splitlines()[0]
    client = app.test_client()
    body = {"category": CGJ_SUBCLASS, "lon": IN_POINT[0], "lat": IN_POINT[1]}
    assert client.post("/api/v1/reports", json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 201
    assert runner.invoke(main, ["key", "revoke", "tablet-7"]).exit_code == 0
    r = client.post("/api/v1/reports", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 401 and "revoked" in r.json["message"]
    assert client.post("/api/v1/reports", json=body, headers={"X-API-Key": key}).status_code == 401


def test_a_device_key_may_only_report_inside_its_scope(app, active):  # noqa: F811
    device = principal_client(app, "device", STREET, None)
    inside = device.post("/api/v1/reports", json={"category": CGJ_SUBCLASS, "lon": IN_POINT[0], "lat": IN_POINT[1]})
    assert inside.status_code == 201
    outside = device.post("/api/v1/reports", json={"category": CGJ_SUBCLASS, "lon": OUT_POINT[0], "lat": OUT_POINT[1]})
    assert outside.status_code == 403 and "outside your scope" in outside.json["message"]
    assert device.get(f"/api/v1/reports/{inside.json['id']}").status_code == 403
    with app.extensions["gridmap_db"].cursor() as cur:
        cur.execute("select count(*) as n from incident")
        assert cur.fetchone()["n"] == 1  # the refused one was not stored


def test_keys_are_rate_limited_per_key(app, active):  # noqa: F811
    with app.extensions["gridmap_db"].cursor() as cur:
        slow = api_keys.create(cur, "slow", created_by="tests", role="viewer", per_minute=3)
        fast = api_keys.create(cur, "fast", created_by="tests", role="viewer", per_minute=100)
    client = app.test_client()
    answers = [client.get("/api/v1/versions", headers={"Authorization": f"Bearer {slow}"}).status_code
               for _ in range(5)]
    assert answers == [200, 200, 200, 429, 429]
    limited = client.get("/api/v1/versions", headers={"Authorization": f"Bearer {slow}"})
    assert limited.json["error"] == "Too Many Requests" and "Retry-After" in limited.headers
    assert client.get("/api/v1/versions", headers={"Authorization": f"Bearer {fast}"}).status_code == 200


def test_key_use_refusals_and_writes_are_audited(app, client, world):
    bad = app.test_client().get("/api/v1/versions", headers={"Authorization": "Bearer gm_not-a-key"})
    assert bad.status_code == 401
    device = principal_client(app, "device", STREET, None)
    assert device.get("/api/v1/versions").status_code == 403
    client.post(f"/api/v1/cases/{world['in']}/actions", json={"action": "open", "version": 0,
                                                               "actor": {"unit": f"grid:{IN_GRID}"}})
    with app.extensions["gridmap_db"].cursor() as cur:
        cur.execute("select actor, via, action, status from audit_log order by id")
        lines = [tuple(r.values()) for r in cur.fetchall()]
    assert ("test-admin", "key", "key_used", None) in lines
    assert ("", "anonymous", "refused", 401) in lines
    assert (f"k-device-{STREET}", "key", "refused", 403) in lines
    assert ("test-admin", "key", "POST /api/v1/cases/<public_id>/actions", 200) in lines
    assert ("test-admin", "key", "POST /api/v1/versions", 201) in lines


# --- the CLI --------------------------------------------------------------------------------------------

def test_user_add_checks_role_scope_department_and_password(runner, active):  # noqa: F811
    from gis.cli import main

    def add(*args, password="long-enough-pw"):
        return runner.invoke(main, ["user", "add", *args, "--password-stdin"], input=password + "\n")
    assert add("wang", "--role", "viewer", "--scope", STREET).exit_code == 0
    assert add("wang", "--role", "viewer").exit_code == 2                                 # exists
    assert "no such cell" in add("li", "--role", "viewer", "--scope", "410199").output    # unknown scope
    assert "6, 9, 12 or 15 digits" in add("li", "--role", "viewer", "--scope", "41 0").output
    assert "needs a department" in add("li", "--role", "handler").output
    assert "no event subclass" in add("li", "--role", "handler", "--department", "XYZ").output
    assert "at least 10 characters" in add("li", "--role", "viewer", password="short").output
    assert add("li", "--role", "handler", "--department", "CGJ").exit_code == 0
    listed = runner.invoke(main, ["user", "list"]).output
    assert re.search(r"li\s+handler\s+city \(CGJ\)", listed) and re.search(rf"wang\s+viewer\s+{STREET}", listed)


def test_the_first_admin_is_made_once(runner, active, monkeypatch):  # noqa: F811
    from gis.cli import main
    first = runner.invoke(main, ["user", "init-admin"])
    assert first.exit_code == 0 and "password, shown this once" in first.output
    again = runner.invoke(main, ["user", "init-admin"])
    assert again.exit_code == 0 and "exists already" in again.output


def test_sessions_are_signed_with_a_secret_from_outside_the_repository(tmp_path):
    from gis.settings import Settings, ensure_secret_key
    path = ensure_secret_key(tmp_path)
    assert path.stat().st_mode & 0o077 == 0 and len(path.read_text().strip()) == 64
    assert Settings.from_env({"GRIDMAP_STATE_DIR": str(tmp_path)}).secret_key == path.read_text().strip()
    assert Settings.from_env({"GRIDMAP_STATE_DIR": str(tmp_path), "GRIDMAP_SECRET_KEY": "x"}).secret_key == "x"


def test_an_app_without_a_secret_key_does_not_start(tmp_path, database_url, monkeypatch):
    from webmap import create_app
    monkeypatch.setenv("GRIDMAP_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("GRIDMAP_SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="no secret key"):
        create_app({"DATABASE_URL": database_url})


def test_session_expiry_is_checked_against_the_database_clock(app, active):  # noqa: F811
    add_user(app, "lihua")
    with app.extensions["gridmap_db"].cursor() as cur:
        token = users.start_session(cur, "lihua")
        assert users.session_principal(cur, token).name == "lihua"
        assert users.session_principal(cur, token, lifetime=dt.timedelta(0)) is None


def test_a_street_planner_cannot_move_a_vertex_its_neighbour_street_shares(app, world):
    planner = principal_client(app, "planner", STREET, None)
    shared = {"from": [fixtures.XM, fixtures.Y0], "to": [fixtures.XM + 0.0001, fixtures.Y0]}
    r = planner.post(f"/api/v1/versions/{world['draft']}/move-vertex", json=shared)
    assert r.status_code == 403 and OUT_GRID in r.json["message"]
    with app.extensions["gridmap_db"].cursor() as cur:
        cur.execute("select count(*) as n from grid_edit where version_id = %s and operation = 'move-vertex'",
                    (world["draft"],))
        assert cur.fetchone()["n"] == 0  # nothing was changed
    city = principal_client(app, "planner", None, None)
    assert city.post(f"/api/v1/versions/{world['draft']}/move-vertex", json=shared).status_code == 200


def test_the_clis_planning_commands_are_audited(runner, tmp_path, db):
    from gis.cli import main
    from test_grid_import import import_all
    import_all(runner, tmp_path)
    assert runner.invoke(main, ["grid", "activate", "1"]).exit_code == 0            # a dry run: not audited
    assert runner.invoke(main, ["grid", "activate", "1", "--commit"]).exit_code == 0
    with db.cursor() as cur:
        cur.execute("select actor, via, action, detail->>'version_id' as version from audit_log where action like 'grid%'")
        lines = [tuple(r.values()) for r in cur.fetchall()]
    assert ("tester", "cli", "grid activate", "1") in lines and len([a for a in lines if a[2] == "grid activate"]) == 1
    assert any(a[2] == "grid import" for a in lines)
