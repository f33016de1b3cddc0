"""Open311 GeoReport v2 at /open311/v2: JSON and XML as the specification shows them, and a real client."""
import xml.etree.ElementTree as ET

import pytest
from georeport import GeoReport

import fixtures
from test_grid_import import run
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)

X0, Y0 = fixtures.X0, fixtures.Y0


@pytest.fixture
def api_key(active, runner):  # noqa: F811
    """A field device's key (role device): it may create requests, not read them."""
    result = run(runner, "key", "create", "phone-app")
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[0]


@pytest.fixture
def open311_key(active, runner):  # noqa: F811
    """An Open311 client's key (role open311): it may create requests and read them back."""
    result = run(runner, "key", "create", "open311-consumer", "--role", "open311")
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[0]


def create(client, key, fmt="json", **fields):
    form = {"api_key": key, "service_code": "0102", "lat": str(Y0 + 0.01), "long": str(X0 + 0.01),
            "description": "路边垃圾", "first_name": "三", "last_name": "张", "email": "z@example.org", **fields}
    return client.post(f"/open311/v2/requests.{fmt}", data=form)


def xml(response):
    assert response.mimetype == "text/xml"
    return ET.fromstring(response.data)


def test_discovery_names_the_endpoint_and_formats(client, active):  # noqa: F811
    body = client.get("/open311/v2/discovery.json").json
    endpoint = body["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2")
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    root = xml(client.get("/open311/v2/discovery.xml"))
    assert root.tag == "discovery"
    assert [f.text for f in root.find("endpoints/endpoint/formats")] == ["application/json", "text/xml"]


def test_services_are_the_event_subclasses(client, active):  # noqa: F811
    body = client.get("/open311/v2/services.json").json
    assert isinstance(body, list) and len(body) == 60
    garbage = next(s for s in body if s["service_code"] == "0102")
    assert garbage == {"service_code": "0102", "service_name": "暴露垃圾", "description": garbage["description"],
                       "metadata": False, "type": "realtime", "keywords": garbage["keywords"], "group": "市容环境"}
    root = xml(client.get("/open311/v2/services.xml"))
    assert root.tag == "services" and len(root.findall("service")) == 60
    first = root.find("service")
    assert first.find("service_code").text == body[0]["service_code"]
    assert first.find("metadata").text == "false"


@pytest.mark.parametrize("path", ["services", "service"])
def test_a_service_definition(client, active, path):  # noqa: F811
    assert client.get(f"/open311/v2/{path}/0102.json").json == {"service_code": "0102", "attributes": []}
    root = xml(client.get(f"/open311/v2/{path}/0102.xml"))
    assert root.tag == "service_definition" and root.find("service_code").text == "0102"
    missing = client.get(f"/open311/v2/{path}/9999.json")
    assert missing.status_code == 404 and missing.json == [{"code": 404, "description": "no service '9999'"}]


def test_creating_a_request_needs_a_valid_key(anonymous, active, runner, api_key):  # noqa: F811
    # no key (and no session) or an unknown key: 401, in the Open311 error format
    for key, description in (("", "sign in, or send an API key"), ("gm_wrong", "the API key is unknown or revoked")):
        r = create(anonymous, key)
        assert r.status_code == 401
        assert r.json == [{"code": 401, "description": r.json[0]["description"]}]
        assert description in r.json[0]["description"]
    root = xml(create(anonymous, "gm_wrong", fmt="xml"))
    assert root.tag == "errors" and root.find("error/code").text == "401"
    assert create(anonymous, api_key).status_code == 200  # the device's key is good ...
    assert run(runner, "key", "revoke", "phone-app").exit_code == 0
    assert create(anonymous, api_key).status_code == 401  # ... revoked: refused at once
    with active.cursor() as cur:
        cur.execute("select count(*) as n from incident")
        assert cur.fetchone()["n"] == 1  # the one made while the key was good


def test_a_request_is_created_routed_and_read_back(client, active, api_key):  # noqa: F811
    r = create(client, api_key)
    assert r.status_code == 200, r.json
    [answer] = r.json
    assert set(answer) == {"service_request_id", "service_notice", "account_id"}
    assert "西街道南社区第1网格" in answer["service_notice"]
    [request] = client.get(f"/open311/v2/requests/{answer['service_request_id']}.json").json
    assert request["service_request_id"] == answer["service_request_id"]
    assert request["status"] == "open" and request["service_code"] == "0102"
    assert request["lat"] == pytest.approx(Y0 + 0.01) and request["long"] == pytest.approx(X0 + 0.01)
    assert request["agency_responsible"] == "CGJ" and request["address_id"] == "410105001001001"
    assert request["requested_datetime"].endswith("Z")
    root = xml(client.get(f"/open311/v2/requests/{answer['service_request_id']}.xml"))
    assert root.tag == "service_requests"
    assert root.find("request/service_request_id").text == answer["service_request_id"]
    with active.cursor() as cur:
        cur.execute("select source, reporter, token from incident")
        row = cur.fetchone()
    assert row["source"] == "open311" and row["reporter"] == {"name": "三 张", "email": "z@example.org"}
    [by_token] = client.get(f"/open311/v2/tokens/{row['token']}.json").json
    assert by_token == {"service_request_id": answer["service_request_id"], "token": str(row["token"])}


@pytest.mark.parametrize("fields, message", [
    ({"service_code": "9999"}, "unknown category"),
    ({"lat": ""}, "lat and long are required"),
    ({"long": "abc"}, "lon must be a number"),
    ({"lat": "95"}, "out of range"),
    ({"description": "x" * 4001}, "at most 4000"),
    ({"colour": "red"}, "unknown parameter"),
])
def test_bad_requests_are_400_in_the_open311_error_format(client, active, api_key, fields, message):  # noqa: F811
    r = create(client, api_key, **fields)
    assert r.status_code == 400
    [error] = r.json
    assert error["code"] == 400 and message in error["description"]
    root = xml(create(client, api_key, fmt="xml", **fields))
    assert root.find("error/code").text == "400" and message in root.find("error/description").text


def test_requests_are_listed_with_the_specified_filters(client, active, api_key):  # noqa: F811
    a = create(client, api_key).json[0]["service_request_id"]
    b = create(client, api_key, service_code="0501").json[0]["service_request_id"]
    with active.cursor() as cur:
        cur.execute("update incident set status = 'closed' where public_id = %s", (b,))

    def ids(query):
        r = client.get("/open311/v2/requests.json?" + query)
        assert r.status_code == 200, r.json
        return [x["service_request_id"] for x in r.json]

    assert ids("") == [b, a]
    assert ids("service_code=0501") == [b] and ids("service_code=0102,0501") == [b, a]
    assert ids("status=open") == [a] and ids("status=closed") == [b]
    assert ids(f"service_request_id={a}&status=closed") == [a]  # ids override the other filters
    assert ids("start_date=2000-01-01T00:00:00Z&end_date=2000-02-01T00:00:00Z") == []
    too_long = client.get("/open311/v2/requests.json?start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z")
    assert too_long.status_code == 400 and "90 days" in too_long.json[0]["description"]
    assert client.get("/open311/v2/requests.json?status=lost").status_code == 400
    assert client.get("/open311/v2/requests.yaml").status_code == 404
    assert client.get("/open311/v2/requests/20200101-0000009.json").json == [
        {"code": 404, "description": "no report '20200101-0000009'"}]


@pytest.mark.parametrize("output_format", ["json", "xml"])
def test_an_open311_client_from_pypi_works_unchanged(live_server, active, open311_key, output_format,  # noqa: F811
                                                     monkeypatch):
    """georeport (PyPI), as a city's Open311 consumer would use it, with a key of role open311."""
    import types

    import georeport.georeport
    import requests

    created = requests.post(f"{live_server}/open311/v2/requests.json", timeout=10, data={
        "api_key": open311_key, "service_code": "0501", "lat": Y0 + 0.01, "long": X0 + 0.01,
        "description": "占道经营"})
    service_request_id = created.json()[0]["service_request_id"]

    # georeport sends its api_key only when creating; reading requests needs one now, so its GETs carry the
    # key as the specification's api_key parameter (the library itself is unchanged)
    def get(url, params=None, **kwargs):
        return requests.get(url, params={**(params or {}), "api_key": open311_key}, timeout=10, **kwargs)

    monkeypatch.setattr(georeport.georeport, "requests", types.SimpleNamespace(get=get, post=requests.post))

    client = GeoReport(f"{live_server}/open311/v2", output_format=output_format)
    services = client.get_service_list()
    assert len(services) == 60 and {s["service_code"] for s in services} >= {"0102", "0501"}
    definition = client.get_service_definition("0501")
    assert definition["service_code"] == "0501"
    listed = client.get_service_requests(service_code="0501")
    listed = listed if isinstance(listed, list) else [listed]  # xmltodict gives a dict for a single element
    assert [r["service_request_id"] for r in listed] == [service_request_id]
    one = client.get_service_request(service_request_id)
    assert one["service_request_id"] == service_request_id and one["description"] == "占道经营"


def test_key_commands_refuse_bad_names_and_unknown_keys(active, runner):  # noqa: F811
    bad = run(runner, "key", "create", "not a name!")
    assert bad.exit_code == 2 and "a key name is" in bad.output
    assert run(runner, "key", "create", "tablet-7").exit_code == 0
    again = run(runner, "key", "create", "tablet-7")
    assert again.exit_code == 2 and "exists already" in again.output
    missing = run(runner, "key", "revoke", "nobody")
    assert missing.exit_code == 2 and "no API key 'nobody'" in missing.output
    listed = run(runner, "key", "list")
    assert "tablet-7" in listed.output and "in use" in listed.output
    with active.cursor() as cur:
        cur.execute("select key_sha256 from api_key")
        assert len(cur.fetchone()["key_sha256"]) == 64  # only the hash is kept
