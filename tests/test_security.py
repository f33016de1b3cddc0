"""Hostile input (issue 8), without a browser: SQL injection in every query parameter, path segment and body field
of the endpoints of the access matrix; oversized and deeply nested bodies; path traversal in the served folders,
CSV download names and the CLI's export and import paths; the JSON API keeps hostile text as it came (it is
data); every page carries a Content-Security-Policy. The browser's side of XSS is tests/test_security_pages.py.

Every hostile request must be answered with a 4xx that says why in JSON (Open311: its error list), or as an
ordinary answer — never a 5xx, never slower than a payload's ``pg_sleep`` — and leave the tables as they were.
A street-scoped principal never sees anything outside its street because of a payload.
"""
import http.client
import itertools
import json
import re
import time
import urllib.parse
from pathlib import Path

import pytest

import fixtures
from gis.settings import PROJECT_ROOT
from test_access import (CGJ_SUBCLASS, IN_GRID, IN_POINT, OUT_GRID, STREET, add_user, csrf_of, mentions,
                         principal_client, requests_for, sign_in, tile_of, world)  # noqa: F401  (world: a fixture)
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)

INJECTIONS = [
    "' OR '1'='1",
    "1; drop table incident; --",
    "'); select pg_sleep(5); --",
    f"{STREET}' or 1=1 --",
    f"{STREET}\u2019 OR \u20181\u2019=\u20181 --",   # typographic quotes, which some layers fold into '
    "\uff07 or 1=1 --",                              # a full-width apostrophe
    f"{STREET}%' --",                                # a LIKE wildcard
    f"{STREET}\x00' or 1=1 --",                      # NUL: %00 in a URL, \u0000 in JSON
    "\x00",
]
SLOW_S = 3.0  # an answer this slow is a pg_sleep(5) that ran
FILTERS = ["since", "until", "category", "status"]
# the query parameters each GET endpoint of the matrix reads (webmap/: request.args, int_arg, time_arg, list_arg,
# version_arg, parse_filters, _tolerances); test_every_query_parameter_read_is_listed keeps it complete
PARAMS = {
    "auth.me": [],
    "pages.index": ["lang"],
    "map_page.live_map": ["version", "as_of", "lang"],
    "map_page.classes": ["level", "measure", "scheme", "k", "parent", "version", *FILTERS],
    "map_page.cell": ["version", *FILTERS],
    "api.grids": ["level", "bbox", "version", "as_of", "limit"],
    "api.versions": ["as_of"],
    "tiles.cell_tile": ["crs", "version", *FILTERS],
    "live.events": ["backlog", "after"],
    "reports.index": ["bbox", "cell", "level", "category", "status", "routing", "since", "until", "after", "limit"],
    "reports.show": [],
    "open311.list_requests": ["service_request_id", "start_date", "end_date", "status", "service_code",
                              "jurisdiction_id", "api_key"],
    "open311.show_request": [],
    "open311.show_token": [],
    "cases.show": [],
    "cases.worklist": ["unit", "scope", "overdue", "limit"],
    "case_pages.case": [],
    "case_pages.worklist": ["unit", "scope", "overdue"],
    "stats.stats": ["format", "level", "period", "from", "to", "within", "weights"],
    "case_pages.rankings": ["level", "period", "from", "to", "within", "weights"],
    "planner.planner": [],
    "planner.cells": ["codes", "level", "bbox", "limit"],
    "planner.edits": ["limit"],
    "api.problems": ["level", "noise_m", "sliver_area_m2", "sliver_width_m"],
    "versions.diff": ["level"],
    "versions.diff_page": ["level"],
    "activation.impact": ["format"],
    "auth.audit": ["actor", "limit"],
}
NEW_CODES = (f"410105001001{n:03d}" for n in itertools.count(100))  # unit grids under the south-west community
TABLES = ("incident", "case_event", "grid_version", "grid_cell", "cell_staff", "staff", "app_user", "api_key")


# --- helpers -------------------------------------------------------------------------------------------------

def row_counts(db):
    counts = {}
    with db.cursor() as cur:
        for table in TABLES:
            cur.execute(f"select count(*) as n from {table}")
            counts[table] = cur.fetchone()["n"]
    return counts


def with_param(url, name, value):
    """``url`` with query parameter ``name`` set to ``value`` (replacing the one it had)."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != name]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode([*query, (name, value)])))


def in_path(template, payload):
    return template.replace("{}", urllib.parse.quote(payload, safe=""))


def probe(client, method, url, body=None, *, form=False, never=(), headers=None):
    """Send one hostile request: [] when the answer is as it should be, else [what is wrong with it]. ``never``:
    strings the answer must not hold (unless the request itself named them)."""
    kwargs = {"headers": headers or {}}
    if body is not None:
        kwargs["data" if form else "json"] = body
    where = f"{method} {url} {json.dumps(body, ensure_ascii=False)[:120] if body is not None else ''}"
    started = time.monotonic()
    try:
        r = client.open(url, method=method, **kwargs)
    except Exception as exc:  # the test app propagates what a server would answer with a 500
        return [f"{where}: 500 {type(exc).__name__}: {str(exc)[:150]}"]
    elapsed = time.monotonic() - started
    text = r.get_data(as_text=True) if r.mimetype != "application/vnd.mapbox-vector-tile" else ""
    if r.status_code >= 500:
        return [f"{where}: {r.status_code} {text[:200]}"]
    if elapsed > SLOW_S:
        return [f"{where}: took {elapsed:.1f} s"]
    path = urllib.parse.urlsplit(url).path
    if 400 <= r.status_code < 500:
        answer = r.get_json(silent=True)
        if path.startswith("/open311/"):  # the specification's errors, in JSON or XML
            if not ((isinstance(answer, list) and answer and answer[0].get("description"))
                    or re.search(r"<errors><error><code>\d+</code><description>.+</description>", text)):
                return [f"{where}: {r.status_code} without an Open311 error: {text[:200]}"]
        elif path.startswith(("/api/", "/tiles/")) or r.is_json or method != "GET":
            if not (isinstance(answer, dict) and answer.get("message")):
                return [f"{where}: {r.status_code} without a JSON message: {text[:200]}"]
    asked = urllib.parse.unquote(url) + json.dumps(body, ensure_ascii=False)
    for needle in never:  # (a message may repeat what was asked)
        if needle not in asked and mentions(r, needle):
            return [f"{where}: {r.status_code} shows {needle}, which is outside the scope"]
    return []


def outside(world):
    """What a street-scoped principal must never be shown."""
    return (world["out"], world["tokens"][world["out"]], OUT_GRID)


def scoped_client(app, who):
    return principal_client(app, "admin", STREET if who == "street" else None, None)


def stop_live(app):
    listener = app.extensions.get("gridmap_live")
    if listener is not None:
        listener.stop()


def revision(client, draft, code):
    r = client.get(f"/api/v1/versions/{draft}/cells?codes={code}")
    assert r.status_code == 200, r.json
    return r.json["features"][0]["properties"]["revision"]


def new_case(client):
    r = client.post("/api/v1/reports", json={"category": CGJ_SUBCLASS, "lon": IN_POINT[0], "lat": IN_POINT[1]})
    assert r.status_code == 201, r.json
    return r.json["id"]


def square(x, y, d=0.002):
    return {"type": "Polygon", "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]}


# --- SQL injection ----------------------------------------------------------------------------------------

def test_every_query_parameter_read_is_listed(world):
    """Every name the views read from the query string is probed below (for the endpoints of the matrix)."""
    source = "\n".join(p.read_text() for p in (PROJECT_ROOT / "webmap").glob("*.py") if p.name != "openapi.py")
    reader = r"""(?<!view_)(?:args\.get|args\[|int_arg|time_arg|list_arg)\(?\s*["']([a-z_]+)["']"""
    read = set(re.findall(reader, source))
    read |= set(FILTERS) | {"api_key"}  # parse_filters' names (gis/tiles.py); Open311's key (webmap/auth.py)
    probed = {name for names in PARAMS.values() for name in names}
    assert read - probed == set()
    assert {e for e, m, *_ in requests_for(world) if m == "GET"} == set(PARAMS)


@pytest.mark.parametrize("who", ["city", "street"])
def test_injection_in_every_query_parameter(app, world, active, who):  # noqa: F811
    """Each payload in each query parameter of each GET endpoint, as a city-wide and as a street admin."""
    app.config.update(LIVE_LIFETIME_S=0.05, LIVE_HEARTBEAT_S=0.05)
    client = scoped_client(app, who)
    never = outside(world) if who == "street" else ()
    before = row_counts(active)
    wrong = []
    for endpoint, method, url, *_ in requests_for(world):
        if method != "GET":
            continue
        for name in PARAMS[endpoint]:
            for payload in INJECTIONS:
                wrong += probe(client, "GET", with_param(url, name, payload), never=never)
    stop_live(app)
    assert wrong == []
    assert row_counts(active) == before


def path_requests(world):
    """(method, URL with {} for the hostile segment, body) of every endpoint that names a thing in its path."""
    d = world["draft"]
    z, x, y = tile_of(*IN_POINT, 12)
    return [
        ("GET", "/api/v1/cells/{}", None), ("GET", "/api/v1/reports/{}", None), ("GET", "/api/v1/cases/{}", None),
        ("GET", "/cases/{}", None), ("GET", "/open311/v2/requests/{}.json", None),
        ("GET", "/open311/v2/requests/{}.xml", None), ("GET", "/open311/v2/tokens/{}.json", None),
        ("GET", f"/open311/v2/requests/{world['in']}.{{}}", None), ("GET", "/open311/v2/services/{}.json", None),
        ("GET", "/tiles/{}/" + f"{z}/{x}/{y}.pbf", None), ("GET", f"/tiles/3/{{}}/{x}/{y}.pbf", None),
        ("GET", f"/tiles/3/{z}/{{}}/{y}.pbf", None), ("GET", f"/tiles/3/{z}/{x}/{{}}.pbf", None),
        ("GET", "/api/v1/versions/{}/cells?level=3", None), ("GET", "/versions/1/diff/{}", None),
        ("GET", "/vendor/{}/leaflet.js", None), ("GET", "/vendor/leaflet/{}", None),
        ("POST", "/api/v1/cases/{}/actions", {"action": "open", "version": 0, "actor": {"unit": f"grid:{IN_GRID}"}}),
        ("PUT", f"/api/v1/versions/{d}/cells/{{}}", {"revision": 1, "name": "改名"}),
        ("DELETE", f"/api/v1/versions/{d}/cells/{{}}", {"revision": 1}),
        ("POST", f"/api/v1/versions/{d}/cells/{{}}/split", {"revision": 1, "line": {
            "type": "LineString", "coordinates": [[fixtures.X0 + 0.01, fixtures.Y0 - 0.01],
                                                  [fixtures.X0 + 0.01, fixtures.YM + 0.01]]}}),
    ]


@pytest.mark.parametrize("who", ["city", "street"])
def test_injection_in_path_segments(app, world, active, who):  # noqa: F811
    """Each payload as the code, id, token, version, tile number or format a path names."""
    client = scoped_client(app, who)
    never = outside(world) if who == "street" else ()
    before = row_counts(active)
    wrong = []
    for method, template, body in path_requests(world):
        for payload in INJECTIONS:
            wrong += probe(client, method, in_path(template, payload), body, never=never)
    assert wrong == []
    assert row_counts(active) == before


def body_requests(client, world, payload):
    """(method, url, body, form) with ``payload`` in each field of the write endpoints' bodies, in turn. Each
    action goes to a case of its own, and each edit names the cell's current revision, so that no check of
    state answers before the field is looked at."""
    d = world["draft"]
    report = {"category": CGJ_SUBCLASS, "lon": IN_POINT[0], "lat": IN_POINT[1]}
    out = [("POST", "/api/v1/reports", {**report, field: payload}, False)
           for field in ("category", "description", "address", "client_request_id", "crs", "lon", "lat",
                         "accuracy_m", "reported_at", "media")]
    out += [("POST", "/api/v1/reports", {**report, "media": [payload]}, False),
            ("POST", "/api/v1/reports", {**report, "reporter": {"name": payload, "phone": payload,
                                                               "email": payload}}, False),
            ("POST", "/api/v1/reports", {**report, payload: 1}, False),
            ("POST", "/api/v1/reports", {**report, "description": payload}, True)]
    open311 = {"service_code": CGJ_SUBCLASS, "lat": str(IN_POINT[1]), "long": str(IN_POINT[0])}
    out += [("POST", "/open311/v2/requests.json", {**open311, field: payload}, True)
            for field in ("service_code", "lat", "long", "address_string", "address_id", "description", "email",
                          "device_id", "account_id", "first_name", "last_name", "phone", "media_url",
                          "jurisdiction_id", "attribute[x]")]
    # case actions: open (note), void (reason), each field on a case just reported
    unit = {"unit": f"grid:{IN_GRID}"}
    for action, field in [("open", "note"), ("void", "reason"), ("open", "action"), ("open", "unit_kind"),
                          ("open", "unit"), ("open", "deadline"), ("open", "approved_by"), ("open", "at"),
                          ("open", "location"), ("open", "version")]:
        body = {"action": action, "version": 0, "actor": unit, "reason": "理由", field: payload}
        out.append(("POST", f"/api/v1/cases/{new_case(client)}/actions", body, False))
    out += [("POST", f"/api/v1/cases/{new_case(client)}/actions",
             {"action": "open", "version": 0, "actor": {"unit": payload}}, False),
            ("POST", f"/api/v1/cases/{new_case(client)}/actions",
             {"action": "open", "version": 0, "actor": {**unit, "name": payload}}, False),
            ("POST", f"/api/v1/cases/{new_case(client)}/actions",
             {"action": "open", "version": 0, "actor": unit, payload: 1}, False)]
    # the planner: a new draft, then edits of the matrix's draft
    out += [("POST", "/api/v1/versions", {"from": payload}, False),
            ("POST", "/api/v1/versions", {"note": payload}, False)]
    staff = [{"post": "grid_worker", "name": "张三", "phone": "13800000000"}]
    for field, value in [("name", payload), ("kind", payload), ("population", payload), ("code", payload),
                         ("reason", payload), ("revision", payload), ("geometry", {"type": payload}),
                         ("staff", [{**staff[0], "name": payload}]), ("staff", [{**staff[0], "post": payload}]),
                         ("staff", [{**staff[0], "phone": payload}]), ("staff", [{**staff[0], payload: 1}])]:
        body = {"revision": revision(client, d, IN_GRID), field: value}
        out.append(("PUT", f"/api/v1/versions/{d}/cells/{IN_GRID}", body, False))
    x, y = fixtures.X0 + 0.001, fixtures.Y0 + 0.001
    for field in ("code", "name", "parent_code", "kind", "population", "reason"):
        body = {"code": next(NEW_CODES), "name": "新网格", "parent_code": "410105001001",
                "geometry": square(x, y), field: payload}
        out.append(("POST", f"/api/v1/versions/{d}/cells", body, False))
    line = {"type": "LineString", "coordinates": [[x + 0.001, y - 0.001], [x + 0.001, y + 0.003]]}
    for field in ("new_code", "new_name", "reason", "line"):
        code = next(NEW_CODES)
        created = client.post(f"/api/v1/versions/{d}/cells", json={
            "code": code, "name": "待切分", "parent_code": "410105001001", "geometry": square(x, y)})
        assert created.status_code == 201, created.json
        body = {"revision": 1, "line": line, "new_code": next(NEW_CODES), field: payload}
        out.append(("POST", f"/api/v1/versions/{d}/cells/{code}/split", body, False))
    out += [("DELETE", f"/api/v1/versions/{d}/cells/{IN_GRID}", {"revision": payload}, False),
            ("POST", f"/api/v1/versions/{d}/merge", {"revisions": {payload: 1, IN_GRID: 1}}, False),
            ("POST", f"/api/v1/versions/{d}/merge", {"revisions": {IN_GRID: 1, "410105001001002": 1},
                                                     "keep": payload}, False),
            ("POST", f"/api/v1/versions/{d}/move-vertex", {"from": [payload, 1], "to": [1, 2]}, False),
            ("POST", f"/api/v1/versions/{d}/move-vertex", {"from": payload, "to": payload}, False),
            ("POST", f"/api/v1/versions/{d}/move-vertex", {"from": [fixtures.X0, fixtures.Y0],
                                                           "to": [fixtures.X0, fixtures.Y0 + 1e-5],
                                                           "revisions": {payload: 1}}, False)]
    polygon = {"type": "Polygon", "coordinates": square(fixtures.X0, fixtures.Y0)["coordinates"]}
    for field, value in [("code", payload), ("parent_code", payload), ("level", payload),
                         ("geometry", {"type": payload})]:
        out.append(("POST", f"/api/v1/versions/{d}/check-cell", {"code": IN_GRID, "geometry": polygon,
                                                                 field: value}, False))
    out.append(("POST", f"/api/v1/versions/{d}/check-cell?noise_m={urllib.parse.quote(payload)}",
                {"code": IN_GRID, "geometry": polygon}, False))
    # activation: version 1 is active already (409), so the fields are read without activating anything
    out += [("POST", "/api/v1/versions/1/activate", {field: payload}, False)
            for field in ("reason", "force", "actor", payload)]
    return out


def test_injection_in_every_body_field(app, client, world, active):  # noqa: F811
    """Each payload in each field (and as a field name) of the JSON and form bodies of the write endpoints."""
    before = row_counts(active)
    wrong = []
    for payload in INJECTIONS:
        for method, url, body, form in body_requests(client, world, payload):
            wrong += probe(client, method, url, body, form=form)
    assert wrong == []
    after = row_counts(active)
    assert after["app_user"] == before["app_user"] and after["api_key"] == before["api_key"]
    assert all(after[t] >= before[t] for t in TABLES)  # (new reports, drafts and cells were made: none lost)


NUMBERS = [10**20, -(10**20), 2**31, -1, 1e308, 0.5, True, [], {}, "1e999"]


def test_numbers_out_of_range(app, client, world, active):  # noqa: F811
    """Numbers no column can hold, or of the wrong type, in every numeric field of the bodies and the query
    strings: a 4xx (or an empty answer), never a failing query."""
    app.config.update(LIVE_LIFETIME_S=0.05, LIVE_HEARTBEAT_S=0.05)
    d = world["draft"]
    report = {"category": CGJ_SUBCLASS, "lon": IN_POINT[0], "lat": IN_POINT[1]}
    wrong = []
    for n in NUMBERS:
        requests = [("POST", "/api/v1/reports", {**report, field: n}) for field in ("lon", "lat", "accuracy_m")]
        requests += [
            ("POST", f"/api/v1/cases/{new_case(client)}/actions",
             {"action": "open", "version": n, "actor": {"unit": f"grid:{IN_GRID}"}}),
            ("POST", "/api/v1/versions", {"from": n}),
            ("PUT", f"/api/v1/versions/{d}/cells/{IN_GRID}", {"revision": n, "name": "x"}),
            ("PUT", f"/api/v1/versions/{d}/cells/{IN_GRID}", {"revision": revision(client, d, IN_GRID),
                                                               "population": n}),
            ("POST", f"/api/v1/versions/{d}/cells", {"code": next(NEW_CODES), "name": "新网格", "population": n,
                                                     "parent_code": "410105001001",
                                                     "geometry": square(fixtures.X0 + 0.001, fixtures.Y0 + 0.001)}),
            ("POST", f"/api/v1/versions/{d}/merge", {"revisions": {IN_GRID: n, "410105001001002": n}}),
            ("POST", f"/api/v1/versions/{d}/move-vertex", {"from": [n, n], "to": [n, n]}),
            ("POST", f"/api/v1/versions/{d}/check-cell", {"code": IN_GRID, "level": n,
                                                          "geometry": square(fixtures.X0, fixtures.Y0)}),
            ("POST", f"/api/v1/versions/{d}/check-cell", {"code": IN_GRID, "geometry": {
                "type": "Polygon", "coordinates": [[[n, n], [n, 0], [0, n], [n, n]]]}}),
            ("POST", "/api/v1/versions/1/activate", {"force": n}),
        ]
        for method, url, body in requests:
            wrong += probe(client, method, url, body)
    z, x, y = tile_of(*IN_POINT, 12)
    for big in (2**31, 10**30):
        for url in ("/api/v1/reports?", "/api/v1/map/classes?level=1&", f"/api/v1/cells/{IN_GRID}?", "/map?",
                    "/api/v1/grids?level=1&", f"/tiles/1/{z}/{x}/{y}.pbf?", "/api/v1/live?",
                    "/api/v1/cases?unit=city&"):
            for field in ("limit", "after", "level", "version", "k", "backlog"):
                wrong += probe(client, "GET", f"{url}{field}={big}")
        wrong += probe(client, "GET", f"/tiles/3/{big}/{big}/{big}.pbf")
        wrong += probe(client, "GET", f"/api/v1/versions/{big}/cells?level=3")
        wrong += probe(client, "GET", f"/api/v1/versions/{big}/diff/{big}")
        wrong += probe(client, "GET", f"/versions/{big}/diff/{big}")
        wrong += probe(client, "GET", f"/api/v1/versions/{big}/impact")
    stop_live(app)
    assert wrong == []


def test_hostile_text_is_stored_as_it_came(client, world, active):  # noqa: F811
    """A payload that is a valid value is kept verbatim: the database never ran it, and nothing was rewritten."""
    for payload in INJECTIONS[:7]:
        r = client.post("/api/v1/reports", json={"category": CGJ_SUBCLASS, "lon": IN_POINT[0], "lat": IN_POINT[1],
                                                 "description": payload, "address": payload})
        assert r.status_code == 201, r.json
        shown = client.get(f"/api/v1/reports/{r.json['id']}").json
        assert (shown["description"], shown["address"]) == (payload.strip(), payload.strip())
        d = world["draft"]
        saved = client.put(f"/api/v1/versions/{d}/cells/{IN_GRID}",
                           json={"revision": revision(client, d, IN_GRID), "name": payload})
        assert saved.status_code == 200, saved.json
        assert saved.json["cells"][0]["properties"]["name"] == payload.strip()


def test_a_street_principals_hostile_writes_reach_nothing_outside(app, client, world, active):  # noqa: F811
    """A street admin naming the east street's cells and case with payloads attached changes nothing there."""
    street = scoped_client(app, "street")
    d = world["draft"]
    wrong = []
    for payload in INJECTIONS:
        hostile = f"{OUT_GRID}{payload}"
        for method, url, body in [
            ("PUT", f"/api/v1/versions/{d}/cells/{urllib.parse.quote(hostile, safe='')}", {"revision": 1, "name": "x"}),
            ("POST", f"/api/v1/versions/{d}/merge", {"revisions": {hostile: 1, OUT_GRID: 1}}),
            ("POST", f"/api/v1/versions/{d}/merge", {"revisions": {IN_GRID: revision(client, d, IN_GRID),
                                                                   "410105001001002": 1}, "keep": hostile}),
            ("POST", f"/api/v1/versions/{d}/check-cell",
             {"code": hostile, "geometry": square(fixtures.XM, fixtures.Y0)}),
            ("POST", f"/api/v1/cases/{urllib.parse.quote(world['out'] + payload, safe='')}/actions",
             {"action": "open", "version": 0}),
            ("POST", f"/api/v1/cases/{world['in']}/actions",
             {"action": "open", "version": 0, "actor": {"unit": f"grid:{hostile}"}}),
        ]:
            problems = probe(street, method, url, body, never=outside(world))
            wrong += problems
    assert wrong == []
    out_cells = client.get(f"/api/v1/versions/{d}/cells?level=3").json["features"]
    assert {f["id"]: f["properties"]["revision"] for f in out_cells if f["id"].startswith("410105002")} == {
        c[0]: 1 for c in fixtures.cells(3) if c[0].startswith("410105002")}
    assert client.get(f"/api/v1/cases/{world['out']}").json["case"]["events"] == []


def test_injection_in_credentials_and_headers(app, anonymous, world, active):  # noqa: F811
    """Payloads as sign-in name, password and next; as API keys (header, Open311 parameter); as Last-Event-ID;
    as the language cookie. Nobody is signed in by one, and nothing is written."""
    add_user(app, "lihua", "admin")
    app.config.update(LIVE_LIFETIME_S=0.05, LIVE_HEARTBEAT_S=0.05)
    before = row_counts(active)
    wrong = []
    for payload in INJECTIONS:
        for field in ("name", "password", "next"):
            form = {"name": "lihua", "password": "wrong-password", "csrf_token": csrf_of(anonymous), field: payload}
            r = anonymous.post("/login", data=form)
            if r.status_code >= 500 or r.status_code == 302:  # signed in by a payload
                wrong.append(f"login with {field}={payload!r}: {r.status_code}")
        for headers in ({"Authorization": f"Bearer {payload}"}, {"X-API-Key": payload}):
            wrong += probe(app.test_client(), "GET", "/api/v1/me", headers=headers)
        wrong += probe(app.test_client(), "GET",
                       "/open311/v2/requests.json?" + urllib.parse.urlencode({"api_key": payload}))
        admin = app.test_client()
        admin.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {app.config['TEST_ADMIN_KEY']}"
        wrong += probe(admin, "GET", "/api/v1/live", headers={"Last-Event-ID": payload})
        admin.set_cookie("gridmap_lang", payload)
        wrong += probe(admin, "GET", "/map")
    stop_live(app)
    assert wrong == []
    after = row_counts(active)
    assert after == before


# --- oversized and deeply nested bodies ---------------------------------------------------------------------

DEPTH = 100_000
DEEP = {"array": "[" * DEPTH + "]" * DEPTH, "object": '{"a":' * DEPTH + "1" + "}" * DEPTH,
        # as deep as still fits under the 64 kB limit of case actions and activation
        "array under 64 kB": "[" * 30_000 + "]" * 30_000,
        "geometry": ('{"revision": 1, "geometry": {"type": "Polygon", "coordinates": '
                     + "[" * DEPTH + "]" * DEPTH + "}}")}


def nested_targets(world):
    d = world["draft"]
    return [("POST", "/api/v1/reports"), ("POST", f"/api/v1/cases/{world['in']}/actions"),
            ("POST", "/api/v1/versions"), ("PUT", f"/api/v1/versions/{d}/cells/{IN_GRID}"),
            ("POST", f"/api/v1/versions/{d}/move-vertex"), ("POST", f"/api/v1/versions/{d}/merge"),
            ("POST", f"/api/v1/versions/{d}/cells"), ("POST", f"/api/v1/versions/{d}/cells/{IN_GRID}/split"),
            ("POST", f"/api/v1/versions/{d}/check-cell"), ("POST", f"/api/v1/versions/{d}/activate")]


def test_deeply_nested_json_is_refused_with_a_4xx(client, world):
    """JSON nested 100,000 deep (arrays, objects, a geometry's coordinates) to every JSON write endpoint."""
    wrong = []
    for method, url in nested_targets(world):
        for kind, body in DEEP.items():
            r = client.open(url, method=method, data=body, content_type="application/json")
            if not 400 <= r.status_code < 500 or not (r.get_json(silent=True) or {}).get("message"):
                wrong.append(f"{method} {url} {kind}: {r.status_code} {r.get_data(as_text=True)[:150]}")
        assert client.get("/api/v1/me").status_code == 200  # the worker still answers
    assert wrong == []


def test_the_served_worker_survives_nested_and_oversized_bodies(live_server, admin_headers, world):
    """Over a real socket: the worker thread answers the next request after each."""
    import requests

    headers = {**admin_headers, "Content-Type": "application/json"}
    for body in DEEP.values():
        r = requests.post(f"{live_server}/api/v1/reports", data=body, headers=headers, timeout=30)
        assert 400 <= r.status_code < 500, r.text[:200]
    r = requests.post(f"{live_server}/api/v1/reports", data=b"{" + b" " * 2_000_000 + b"}", headers=headers, timeout=30)
    assert r.status_code == 413
    assert requests.get(f"{live_server}/api/v1/me", headers=admin_headers, timeout=10).status_code == 200


def test_oversized_bodies_are_refused_with_413(app, client, anonymous, world):
    """Reports over 1 MB, case actions and activations over 64 kB: 413, with a key and with a session."""
    big = "x" * (1024 * 1024 + 1)
    report = {"category": CGJ_SUBCLASS, "lon": IN_POINT[0], "lat": IN_POINT[1], "description": big}
    for r in (client.post("/api/v1/reports", json=report),
              client.post("/api/v1/reports", data=report),
              client.post("/open311/v2/requests.json", data={"description": big})):
        assert r.status_code == 413, r.get_data(as_text=True)[:200]
    action = {"action": "open", "version": 0, "note": "x" * (64 * 1024)}
    r = client.post(f"/api/v1/cases/{world['in']}/actions", json=action)
    assert r.status_code == 413 and r.json["message"]
    r = client.post(f"/api/v1/versions/{world['draft']}/activate", json={"reason": "x" * (64 * 1024)})
    assert r.status_code == 413
    # a browser's session: the CSRF check reads the form before the report's limit applies
    add_user(app, "lihua", "admin")
    sign_in(anonymous, "lihua")
    token = csrf_of(anonymous, "/map")
    r = anonymous.post("/api/v1/reports", json=report, headers={"X-CSRFToken": token})
    assert r.status_code == 413, r.get_data(as_text=True)[:200]
    r = anonymous.post("/api/v1/reports", data={**report, "csrf_token": token})
    assert r.status_code == 413, r.get_data(as_text=True)[:200]
    assert client.get("/api/v1/me").status_code == 200


def test_a_geometry_of_very_many_vertices_meets_only_the_body_limit(app, client, world):
    """There is no limit on a cell's vertex count: the app's 64 MB body limit is the only one (about 1.5 million
    vertices). A body over it is refused before it is read."""
    d = world["draft"]
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit == 64 * 1024 * 1024
    vertices = 3_000_000  # (the body is refused before it is read: the same vertex will do)
    ring = "[" + "[113.6012345,34.7012345]," * vertices + "[113.6012345,34.7012345]]"
    body = '{"code": "%s", "revision": 1, "geometry": {"type": "Polygon", "coordinates": [%s]}}' % (IN_GRID, ring)
    assert len(body) > limit
    for method, url in (("POST", f"/api/v1/versions/{d}/check-cell"), ("PUT", f"/api/v1/versions/{d}/cells/{IN_GRID}"),
                        ("POST", f"/api/v1/versions/{d}/cells")):
        r = client.open(url, method=method, data=body, content_type="application/json")
        assert r.status_code == 413, (url, r.status_code)


# --- path traversal ---------------------------------------------------------------------------------------

TRAVERSALS = [
    "/vendor/leaflet/../../package.json", "/vendor/leaflet/%2e%2e/%2e%2e/package.json",
    "/vendor/leaflet/..%2f..%2fpackage.json", "/vendor/leaflet/..%2F..%2F..%2Fpackage.json",
    "/vendor/leaflet/....//....//package.json", "/vendor/leaflet/..\\..\\package.json",
    "/vendor/leaflet/%252e%252e/%252e%252e/package.json", "/vendor/leaflet/%c0%ae%c0%ae/package.json",
    "/vendor/leaflet//etc/passwd", "/vendor/leaflet/%2fetc%2fpasswd", "/vendor/leaflet/leaflet.js%00.css",
    "/vendor/..%2f..%2fpackage.json/x", "/vendor/leaflet-geoman/../../../gis/settings.py",
    "/static/../gis/settings.py", "/static/%2e%2e/gis/settings.py", "/static/..%2fgis%2fsettings.py",
    "/static/..%5cgis%5csettings.py", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
    "/static/../../../../../../etc/passwd", "/static/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
]


def raw_get(base, target):
    """GET with the request-target sent exactly as written (no client folds its dot segments):
    ``(status, Location, body)``."""
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.getheader("Location"), response.read()
    finally:
        conn.close()


def test_no_file_outside_the_served_folders_is_served(live_server):
    """Dot segments, encoded and double-encoded, backslashes, absolute paths and NUL in /vendor and /static."""
    secrets = [b'"name": "gridmap', b"class Settings", b"root:x:0:0", b"def ensure_secret_key"]
    status, _, body = raw_get(live_server, "/vendor/leaflet/leaflet.js")
    assert status == 200 and b"Leaflet" in body  # the folder itself is served
    wrong = []
    for target in TRAVERSALS:
        status, location, body = raw_get(live_server, target)
        if status in (301, 308):  # werkzeug merges the slashes of '//': the new path is then asked for
            parts = urllib.parse.urlsplit(location or "")
            if parts.netloc not in ("", urllib.parse.urlsplit(live_server).netloc):
                wrong.append(f"{target}: redirected off the site, to {location}")
                continue
            status, _, body = raw_get(live_server, parts.path)
        expected = (400, 404) if "%00" in target else (404,)  # NUL: refused before any route (webmap/security.py)
        if status not in expected or any(s in body for s in secrets):
            wrong.append(f"{target}: {status} {body[:80]!r}")
    assert wrong == []


SAFE_FILENAME = re.compile(r'attachment; filename="[A-Za-z0-9][A-Za-z0-9._-]*\.csv"')


def test_csv_download_names_hold_no_path_or_header_injection(client, world):
    """The name in Content-Disposition holds only letters, digits and - . _, whatever the period or dates."""
    d = world["draft"]
    wrong = []
    for params in [{"period": "../../etc/passwd"}, {"period": '2026-11"; x="'}, {"period": "2026-11\r\nX-Evil: 1"},
                   {"period": "2026-11/.."}, {"from": "2026-11-01", "to": "2026-11-02"},
                   {"from": '2026-11-01"00:00', "to": "2026-11-02"}, {"from": "2026-11-01\n00:00", "to": "2026-11-02"},
                   {"from": "2026-11-01\r00:00", "to": "2026-11-02"}, {"from": "2026-11-01\\00:00", "to": "2026-11-02"},
                   {"from": "2026-11-01/00:00", "to": "2026-11-02;00"}, {"from": "2026-11-01", "to": "2026-11-02.5"}]:
        query = urllib.parse.urlencode({"format": "csv", "level": "grid", **params})
        r = client.get(f"/api/v1/stats?{query}")
        if r.status_code == 200:
            disposition = r.headers.get("Content-Disposition", "")
            if not SAFE_FILENAME.fullmatch(disposition) or ".." in disposition or "X-Evil" in r.headers:
                wrong.append(f"{params}: {disposition!r}")
        elif r.status_code != 400:
            wrong.append(f"{params}: {r.status_code}")
    assert wrong == []
    r = client.get(f"/api/v1/versions/{d}/impact?format=csv")
    assert r.status_code == 200 and r.headers["Content-Disposition"] == f'attachment; filename="impact-version-{d}.csv"'
    assert client.get(f"/api/v1/versions/{d}/impact?format=../../x").status_code == 400


# --- the CLI's paths -------------------------------------------------------------------------------------

def cli(runner, *args):
    from gis.cli import main
    return runner.invoke(main, [str(a) for a in args])


def assert_refused(result, *words):
    """Exit status 2 with a message (gridmap's "error: …" or click's "Error: Invalid value …"), no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and re.search(r"^(error: |Error: Invalid value)", result.output, re.M)
    assert any(w in result.output for w in words), result.output


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*"))


def test_grid_export_refuses_hostile_paths_and_leaves_nothing(runner, active, tmp_path):  # noqa: F811
    """`gridmap grid export` to '..' through a missing folder, a missing folder, NUL, a directory: exit 2."""
    (tmp_path / "dir.geojson").mkdir()
    before = leftovers(tmp_path)
    for path, words in [(tmp_path / "missing" / ".." / "x.geojson", ("no such directory",)),
                        (tmp_path / "missing" / "x.geojson", ("no such directory",)),
                        (tmp_path / "x\x00.geojson", ("NUL", "no such directory", "invalid")),
                        (tmp_path / "dir.geojson", ("directory",)),
                        (tmp_path, ("directory",))]:
        assert_refused(cli(runner, "grid", "export", path, "--level", 3, "--format", "geojson"), *words)
        assert leftovers(tmp_path) == before, path
    good = tmp_path / "sub" / ".." / "ok.geojson"  # a '..' that resolves inside is an ordinary path
    (tmp_path / "sub").mkdir()
    assert cli(runner, "grid", "export", good, "--level", 3, "--format", "geojson").exit_code == 0
    assert (tmp_path / "ok.geojson").is_file()


def test_map_export_refuses_hostile_paths_and_leaves_nothing(runner, active, tmp_path):  # noqa: F811
    """`gridmap map export --out` to the same, and to a name that is not .html: exit 2, no file."""
    (tmp_path / "dir.html").mkdir()
    before = leftovers(tmp_path)
    for path, words in [(tmp_path / "missing" / ".." / "x.html", ("does not exist",)),
                        (tmp_path / "missing" / "x.html", ("does not exist",)),
                        (tmp_path / "x\x00.html", ("NUL", "does not exist", "invalid")),
                        (tmp_path / "dir.html", ("directory",)),
                        (tmp_path, ("directory", ".html")),
                        (tmp_path / "x.sh", (".html",))]:
        assert_refused(cli(runner, "map", "export", "--level", 3, "--out", path), *words)
        assert leftovers(tmp_path) == before, path


def test_grid_import_refuses_hostile_paths_and_writes_nothing(runner, active, tmp_path):  # noqa: F811
    """`gridmap grid import --commit` of missing, NUL, directory and non-GIS paths: exit 2, no version."""
    (tmp_path / "dir.geojson").mkdir()
    before = row_counts(active)
    for path, words in [(tmp_path / "missing" / ".." / "x.geojson", ("no such file",)),
                        (tmp_path / "x\x00.geojson", ("NUL", "no such file", "invalid")),
                        (tmp_path / "dir.geojson", ("layer", "readable", "directory")),
                        (tmp_path, ("layer", "readable", "directory")),
                        (Path("/etc/passwd"), ("readable", "layer", "cannot read"))]:
        assert_refused(cli(runner, "grid", "import", path, "--level", 3, "--commit"), *words)
    assert row_counts(active) == before


# --- pages: the Content-Security-Policy -----------------------------------------------------------------------

def test_every_page_has_a_content_security_policy(client, anonymous, world):
    """No inline script or eval (script-src 'self'), no plugins, no framing: on every page, also the 404s."""
    pages = ["/", "/map", "/planner", "/worklist?unit=city", "/rankings", f"/cases/{world['in']}",
             f"/versions/1/diff/{world['draft']}", "/cases/missing"]
    for url in pages:
        r = client.get(url)
        assert r.status_code in (200, 404), url
        policy = r.headers.get("Content-Security-Policy", "")
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives.get("script-src") == "'self'", (url, policy)  # no inline script, no eval
        assert directives.get("object-src") == "'none'" and directives.get("frame-ancestors") == "'none'", url
        assert r.headers.get("X-Content-Type-Options") == "nosniff"
    assert "script-src 'self'" in anonymous.get("/login").headers["Content-Security-Policy"]
