"""``/api/v1/cases``: the closed loop over HTTP — actions, deadlines on the working calendar, escalation,
optimistic locking, worklists, the tick — and bad input refused with nothing changed."""
import datetime as dt
import threading

import pytest
import requests

import fixtures
from gis import cases
from test_grid_import import run
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)

CST = dt.timezone(dt.timedelta(hours=8))
GRID = "410105001001001"
COMMUNITY, STREET, DISTRICT = GRID[:12], GRID[:9], GRID[:6]
FRIDAY = dt.datetime(2026, 11, 20, tzinfo=CST)  # a working Friday; the next working day is Monday the 23rd


def at(day, hour, minute=0):
    return (day + dt.timedelta(hours=hour, minutes=minute)).isoformat()


@pytest.fixture
def case(client, active):  # noqa: F811
    """A new report of exposed garbage (0102: 2 working hours) in GRID, made on Friday 09:00."""
    r = client.post("/api/v1/reports", json={"category": "0102", "lon": fixtures.X0 + 0.01, "lat": fixtures.Y0 + 0.01,
                                             "reported_at": at(FRIDAY, 9)})
    assert r.status_code == 201, r.json
    return r.json["id"]


def act(client, case_id, action, by, version, **fields):
    """``action`` on ``case_id`` by 张三 of unit ``by``, on case version ``version``."""
    body = {"action": action, "version": version, "actor": {"name": "张三", "unit": by}, **fields}
    return client.post(f"/api/v1/cases/{case_id}/actions", json=body)


def ok(response):
    assert response.status_code == 200, response.json
    return response.json["case"]


def events(db, case_id):
    with db.cursor() as cur:
        cur.execute("select e.seq, e.action from case_event e join incident i on i.id = e.incident_id"
                    " where i.public_id = %s order by e.seq", (case_id,))
        return [(r["seq"], r["action"]) for r in cur.fetchall()]


def test_a_case_goes_round_the_closed_loop_on_working_time(client, db, case):
    new = client.get(f"/api/v1/cases/{case}").json
    assert new["status"] == "reported" and new["case"]["holder"] == f"grid:{GRID}"
    assert new["case"]["level"] == "grid" and new["case"]["allowed"] == ["open", "void"]

    c = ok(act(client, case, "open", f"grid:{GRID}", 0, at=at(FRIDAY, 9, 30)))
    assert c["version"] == 1 and c["holder"] == f"grid:{GRID}"
    # to the subclass's department by default; the clock starts at 17:00 Friday: one working hour that day,
    # the other on Monday morning
    c = ok(act(client, case, "dispatch", f"grid:{GRID}", 1, unit_kind="department", at=at(FRIDAY, 17)))
    assert c["unit"] == {"kind": "department", "code": "CGJ"} and c["holder"] == "department:CGJ"
    assert dt.datetime.fromisoformat(c["due_at"]) == FRIDAY + dt.timedelta(days=3, hours=10)
    ok(act(client, case, "start", "department:CGJ", 2, at=at(FRIDAY, 17, 30),
           location={"lon": fixtures.X0 + 0.0101, "lat": fixtures.Y0 + 0.01, "accuracy_m": 6}))
    c = ok(act(client, case, "handle", "department:CGJ", 3, note="已清理完毕", at=at(FRIDAY, 17, 45)))
    assert c["holder"] == f"grid:{GRID}"  # back to the platform that dispatched it, to verify
    assert c["handling_hours"] == pytest.approx(0.75)
    body = act(client, case, "close", f"grid:{GRID}", 4, at=at(FRIDAY, 17, 50)).json
    c = body["case"]
    assert body["status"] == "closed" and c["holder"] is None and c["allowed"] == []
    assert [e["action"] for e in c["events"]] == ["open", "dispatch", "start", "handle", "close"]
    assert [e["seq"] for e in c["events"]] == [1, 2, 3, 4, 5]
    assert c["events"][2]["location"] == {"lon": pytest.approx(fixtures.X0 + 0.0101), "lat": pytest.approx(fixtures.Y0 + 0.01),
                                          "accuracy_m": 6}
    assert c["events"][3]["note"] == "已清理完毕" and c["events"][4]["details"] == {"on_time": True}
    assert (c["events"][1]["from_state"], c["events"][1]["to_state"]) == ("opened", "dispatched")
    assert client.get(f"/api/v1/reports/{case}").json["status"] == "closed"


def test_an_emergency_counts_calendar_hours_through_the_night(client, active):  # noqa: F811
    r = client.post("/api/v1/reports", json={"category": "0401", "lon": fixtures.X0 + 0.01, "lat": fixtures.Y0 + 0.01,
                                             "reported_at": at(FRIDAY, 23)})
    case_id = r.json["id"]
    ok(act(client, case_id, "open", f"grid:{GRID}", 0, at=at(FRIDAY, 23, 10)))
    c = ok(act(client, case_id, "dispatch", f"grid:{GRID}", 1, unit_kind="department", at=at(FRIDAY, 23, 30)))
    assert dt.datetime.fromisoformat(c["due_at"]) == FRIDAY + dt.timedelta(days=1, minutes=30)  # 1 h, Saturday


def test_an_action_the_state_does_not_allow_is_409_naming_the_allowed_ones(client, db, case):
    r = act(client, case, "close", f"grid:{GRID}", 0)
    assert r.status_code == 409
    assert "allowed: open, void" in r.json["message"] and r.json["details"] == [{"allowed": ["open", "void"]}]
    assert events(db, case) == [] and client.get(f"/api/v1/cases/{case}").json["case"]["version"] == 0


def test_a_stale_version_is_409_with_what_happened_meanwhile(client, db, case):
    ok(act(client, case, "open", f"grid:{GRID}", 0))
    r = act(client, case, "void", f"grid:{GRID}", 0, reason="重复上报")
    assert r.status_code == 409 and "version 1 now" in r.json["message"]
    assert [e["action"] for e in r.json["details"][0]["since"]] == ["open"]
    assert events(db, case) == [(1, "open")]


def test_two_people_acting_at_once_one_wins_the_other_gets_409(live_server, admin_headers, db, case):
    url = f"{live_server}/api/v1/cases/{case}/actions"
    barrier, answers = threading.Barrier(2), []

    def go(action, extra):
        body = {"action": action, "version": 0, "actor": {"name": "甲", "unit": f"grid:{GRID}"}, **extra}
        barrier.wait()
        answers.append(requests.post(url, json=body, headers=admin_headers, timeout=30))

    threads = [threading.Thread(target=go, args=a) for a in (("open", {}), ("void", {"reason": "不属实"}))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in answers) == [200, 409]
    winner = next(r for r in answers if r.status_code == 200).json()
    assert [(1, winner["case"]["events"][0]["action"])] == events(db, case)


def test_only_the_unit_holding_the_case_may_act(client, db, case):
    r = act(client, case, "open", f"street:{STREET}", 0)
    assert r.status_code == 409 and f"held by grid:{GRID}" in r.json["message"]
    ok(act(client, case, "open", f"grid:{GRID}", 0))
    ok(act(client, case, "dispatch", f"grid:{GRID}", 1, unit_kind="grid"))
    r = act(client, case, "start", "department:CGJ", 2)
    assert r.status_code == 409 and f"held by grid:{GRID}" in r.json["message"]
    assert events(db, case) == [(1, "open"), (2, "dispatch")]


def test_escalation_climbs_the_ladder_and_the_level_above_dispatches(client, case):
    ok(act(client, case, "open", f"grid:{GRID}", 0))
    r = act(client, case, "dispatch", f"grid:{GRID}", 1, unit_kind="street")
    assert r.status_code == 409 and "escalate it instead" in r.json["message"]
    c = ok(act(client, case, "escalate", f"grid:{GRID}", 1, reason="需要执法力量"))
    assert (c["level"], c["holder"], c["escalations"]) == ("community", f"community:{COMMUNITY}", 1)
    c = ok(act(client, case, "dispatch", f"community:{COMMUNITY}", 2, unit_kind="department", unit="ZJJ"))
    assert c["holder"] == "department:ZJJ"
    c = ok(act(client, case, "escalate", "department:ZJJ", 3, reason="涉及多个部门"))
    assert (c["level"], c["holder"], c["unit"], c["due_at"]) == ("street", f"street:{STREET}", None, None)
    c = ok(act(client, case, "escalate", f"street:{STREET}", 4, reason="超出街道权限"))
    c = ok(act(client, case, "escalate", f"district:{DISTRICT}", 5, reason="需市级协调"))
    assert (c["level"], c["holder"], c["escalations"]) == ("city", "city", 4)
    r = act(client, case, "escalate", "city", 6, reason="再上报")
    assert r.status_code == 409 and "top level" in r.json["message"]


def test_rework_keeps_the_deadline_and_the_clock(client, case):
    ok(act(client, case, "open", f"grid:{GRID}", 0, at=at(FRIDAY, 9, 10)))
    first = ok(act(client, case, "dispatch", f"grid:{GRID}", 1, unit_kind="grid", at=at(FRIDAY, 9, 20)))
    assert dt.datetime.fromisoformat(first["due_at"]) == FRIDAY + dt.timedelta(hours=11, minutes=20)
    ok(act(client, case, "start", f"grid:{GRID}", 2, at=at(FRIDAY, 9, 30)))
    ok(act(client, case, "handle", f"grid:{GRID}", 3, note="已处理", at=at(FRIDAY, 10)))
    c = ok(act(client, case, "rework", f"grid:{GRID}", 4, reason="现场仍有垃圾", at=at(FRIDAY, 10, 30)))
    assert (c["reworks"], c["handled_at"], c["due_at"]) == (1, None, first["due_at"])
    ok(act(client, case, "start", f"grid:{GRID}", 5, at=at(FRIDAY, 11)))
    c = ok(act(client, case, "handle", f"grid:{GRID}", 6, note="已彻底清理", at=at(FRIDAY, 14)))
    # 9:20–12:00 and 13:30–14:00 of working time since the first dispatch
    assert c["handling_hours"] == pytest.approx(2 + 40 / 60 + 0.5, abs=1e-3)
    c = act(client, case, "close", f"grid:{GRID}", 7, at=at(FRIDAY, 14, 5)).json["case"]
    assert c["events"][-1]["details"] == {"on_time": False}  # 14:00 is past the 11:20 deadline


def test_an_extension_needs_approval_a_later_date_and_stays_within_the_maximum(client, db, case):
    ok(act(client, case, "open", f"grid:{GRID}", 0, at=at(FRIDAY, 9, 10)))
    ok(act(client, case, "dispatch", f"grid:{GRID}", 1, unit_kind="department", at=at(FRIDAY, 9, 20)))
    due = dt.datetime.fromisoformat(client.get(f"/api/v1/cases/{case}").json["case"]["due_at"])
    r = act(client, case, "extend", "department:CGJ", 2, deadline=at(FRIDAY, 16), reason="需采购设备")
    assert r.status_code == 400 and "approved_by" in r.json["message"]
    r = act(client, case, "extend", "department:CGJ", 2, deadline=at(FRIDAY, 10), reason="需采购设备",
            approved_by="李科长")
    assert r.status_code == 400 and "dates in the wrong order" in r.json["message"]
    # the standard deadline plus 40 working hours: 42 h from 9:20 Friday is 7:10 that Friday, 4 × 7:30 from
    # Monday to Thursday, and 4:50 of the next Friday (the 27th): 9:00–12:00 and 13:30–15:20
    r = act(client, case, "extend", "department:CGJ", 2, deadline="2026-11-27T15:30:00+08:00", reason="需采购设备",
            approved_by="李科长")
    assert r.status_code == 400 and "beyond the maximum extension" in r.json["message"]
    assert "2026-11-27T15:20:00+08:00" in r.json["message"]
    c = ok(act(client, case, "extend", "department:CGJ", 2, deadline="2026-11-27T15:20:00+08:00",
               reason="需采购设备", approved_by="李科长"))
    assert c["extensions"] == 1 and dt.datetime.fromisoformat(c["due_at"]) > due
    details = c["events"][-1]["details"]
    assert details["approved_by"] == "李科长" and details["approver_level"] == "community"
    assert events(db, case) == [(1, "open"), (2, "dispatch"), (3, "extend")]


@pytest.mark.parametrize("body, status, message", [
    ({"action": "teleport", "version": 0, "actor": {"name": "张三", "unit": f"grid:{GRID}"}}, 400, "unknown action"),
    ({"action": "open", "actor": {"name": "张三", "unit": f"grid:{GRID}"}}, 400, "version is required"),
    # without actor.unit the key acts as its scope's unit (the whole city's), which does not hold the case
    ({"action": "open", "version": 0}, 409, f"held by grid:{GRID}; city cannot act"),
    ({"action": "open", "version": 0, "actor": {"name": "张三"}}, 409, f"held by grid:{GRID}; city cannot act"),
    ({"action": "open", "version": 0, "actor": "张三"}, 400, "actor is required"),
    ({"action": "open", "version": 0, "actor": {"name": "张三", "unit": " "}}, 400, "actor.unit is required"),
    ({"action": "open", "version": 0, "actor": {"name": "张三", "unit": f"grid:{GRID}", "phone": "1"}}, 400,
     "actor has unknown field"),
    ({"action": "void", "version": 0, "actor": {"name": "张三", "unit": f"grid:{GRID}"}}, 400, "void needs reason"),
    ({"action": "open", "version": 0, "actor": {"name": "张三", "unit": f"grid:{GRID}"}, "colour": "red"}, 400,
     "unknown field"),
    ({"action": "open", "version": 0, "actor": {"name": "张三", "unit": f"grid:{GRID}"}, "at": "yesterday"}, 400,
     "not an ISO 8601"),
    ({"action": "open", "version": 0, "actor": {"name": "张三", "unit": f"grid:{GRID}"},
      "at": "2026-11-19T09:00:00+08:00"}, 400, "dates in the wrong order"),
    ({"action": "open", "version": 0, "actor": {"name": "张三", "unit": f"grid:{GRID}"},
      "at": "2999-01-01T00:00:00+08:00"}, 400, "in the future"),
    ({"action": "open", "version": 0, "actor": {"name": "张三", "unit": f"grid:{GRID}"},
      "location": {"lon": 500, "lat": 1}}, 400, "not a place on Earth"),
    ("open", 400, "an action is an object"),
])
def test_bad_actions_are_refused_and_nothing_changes(client, db, case, body, status, message):
    r = client.post(f"/api/v1/cases/{case}/actions", json=body)
    assert r.status_code == status and message in r.json["message"], r.json
    assert events(db, case) == [] and client.get(f"/api/v1/cases/{case}").json["status"] == "reported"


def test_a_missing_case_is_404(client, active):  # noqa: F811
    r = act(client, "20261120-9999999", "open", f"grid:{GRID}", 0)
    assert r.status_code == 404 and "no case" in r.json["message"]
    assert client.get("/api/v1/cases/nope").status_code == 404


def test_dispatch_to_a_cell_the_case_is_not_in_or_an_unknown_department_is_400(client, db, case):
    ok(act(client, case, "open", f"grid:{GRID}", 0))
    r = act(client, case, "dispatch", f"grid:{GRID}", 1, unit_kind="grid", unit="410105002001001")
    assert r.status_code == 400 and f"lies in grid {GRID}" in r.json["message"]
    r = act(client, case, "dispatch", f"grid:{GRID}", 1, unit_kind="department", unit="NOPE")
    assert r.status_code == 400 and "unknown department" in r.json["message"]
    assert events(db, case) == [(1, "open")]


def test_events_are_history(db, client, case):
    ok(act(client, case, "open", f"grid:{GRID}", 0))
    with pytest.raises(Exception, match="case_event is history"):
        with db.cursor() as cur:
            cur.execute("update case_event set note = 'changed'")
    assert events(db, case) == [(1, "open")]


def _dispatched(client, case_id, when):
    ok(act(client, case_id, "open", f"grid:{GRID}", 0, at=when.isoformat()))
    return ok(act(client, case_id, "dispatch", f"grid:{GRID}", 1, unit_kind="grid", at=when.isoformat()))


def test_the_tick_escalates_only_cases_overdue_beyond_the_margin(client, db, case):
    other = client.post("/api/v1/reports", json={"category": "0102", "lon": fixtures.X0 + 0.02,
                                                 "lat": fixtures.Y0 + 0.01, "reported_at": at(FRIDAY, 9)}).json["id"]
    _dispatched(client, case, FRIDAY + dt.timedelta(hours=9))     # due Friday 11:00
    _dispatched(client, other, FRIDAY + dt.timedelta(hours=16))   # due Monday 09:30
    rules = cases.Rules(escalate_after_h=8)
    # Monday 10:00: the first is 6.5 working hours late (Friday 11:00–18:00 less lunch, and Monday 9–10);
    # at 11:45, 8.25 hours: past the 8-hour margin. The second is 2.25 hours late then.
    monday = FRIDAY + dt.timedelta(days=3)
    with db.cursor() as cur:
        assert [r["public_id"] for r in cases.overdue(cur, now=monday + dt.timedelta(hours=10))] == [case, other]
    result = cases.tick(db, rules, now=monday + dt.timedelta(hours=10))
    assert (result.overdue, result.escalated) == (2, ())
    result = cases.tick(db, rules, now=monday + dt.timedelta(hours=11, minutes=45))
    assert (result.overdue, result.escalated) == (2, (case,))
    c = client.get(f"/api/v1/cases/{case}").json
    assert (c["status"], c["case"]["level"], c["case"]["holder"]) == ("opened", "community", f"community:{COMMUNITY}")
    assert c["case"]["events"][-1]["actor"] == "system" and c["case"]["events"][-1]["actor_unit"] is None
    assert "escalated automatically" in c["case"]["events"][-1]["details"]["reason"]
    assert client.get(f"/api/v1/cases/{other}").json["status"] == "dispatched"


def test_worklists_put_overdue_first_and_know_untouched_cases(client, db, case):
    fresh = client.post("/api/v1/reports", json={"category": "0101", "lon": fixtures.X0 + 0.02,
                                                 "lat": fixtures.Y0 + 0.01}).json["id"]
    _dispatched(client, case, FRIDAY + dt.timedelta(hours=9, minutes=30))  # long overdue
    mine = client.get(f"/api/v1/cases?unit=grid:{GRID}").json["cases"]
    assert [c["id"] for c in mine] == [case, fresh]
    assert mine[0]["case"]["overdue"] is True and mine[1]["case"]["holder"] == f"grid:{GRID}"
    assert client.get(f"/api/v1/cases?unit=grid:{GRID}&overdue=1").json["cases"][0]["id"] == case
    assert len(client.get(f"/api/v1/cases?unit=grid:{GRID}&overdue=1").json["cases"]) == 1
    assert client.get(f"/api/v1/cases?unit=community:{COMMUNITY}").json["cases"] == []
    # the grid level of the community's area: both cases are owned by the grid level, none by the community
    level = client.get(f"/api/v1/cases?unit=grid:{GRID}&scope=level").json["cases"]
    assert {c["id"] for c in level} == {case, fresh}
    assert [c["public_id"] for c in client.get("/api/v1/cases?overdue=1").json["cases"]] == [case]


@pytest.mark.parametrize("query, message", [("", "name a unit"), ("unit=mayor:1", "not 'kind:code'"),
                                            (f"unit=grid:{GRID}&scope=all", "scope must be"),
                                            (f"unit=grid:{GRID}&limit=0", "limit")])
def test_bad_worklist_queries_are_400(client, active, query, message):  # noqa: F811
    r = client.get(f"/api/v1/cases?{query}")
    assert r.status_code == 400 and message in r.json["message"], r.json


def test_the_tick_and_overdue_commands(client, runner, case):
    _dispatched(client, case, FRIDAY + dt.timedelta(hours=9))
    result = run(runner, "overdue")
    assert result.exit_code == 0 and case in result.output and "1 overdue case(s)" in result.output
    result = run(runner, "tick")
    assert result.exit_code == 0 and f"escalated 1: {case}" in result.output
    assert "0 overdue case(s)" in run(runner, "overdue").output
