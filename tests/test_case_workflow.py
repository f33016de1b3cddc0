"""The case workflow table, exhaustively: every state × action × level."""
import itertools

import pytest

from gis.case_workflow import (ACTIONS, FINAL_STATES, LEVELS, STATES, InvalidTransition, Step, allowed, step)
from gis.errors import BadInput, Conflict

# What the issue asks for, written out independently of the table: (state, action) → next state.
EXPECTED = {
    ("reported", "open"): "opened",
    ("reported", "void"): "voided",
    ("opened", "dispatch"): "dispatched",
    ("opened", "escalate"): "opened",
    ("dispatched", "start"): "in_progress",
    ("dispatched", "extend"): "dispatched",
    ("dispatched", "escalate"): "opened",
    ("in_progress", "handle"): "handled",
    ("in_progress", "extend"): "in_progress",
    ("in_progress", "escalate"): "opened",
    ("handled", "close"): "closed",
    ("handled", "rework"): "dispatched",
}
PAYLOAD = {"reason": "超出权限", "unit_kind": "department", "unit": "CGJ", "note": "已清理",
           "deadline": "2026-12-01T18:00:00+08:00", "approved_by": "李强"}


@pytest.mark.parametrize("state, action, level", list(itertools.product(STATES, ACTIONS, LEVELS[:-1])))
def test_every_state_and_action_below_the_top(state, action, level):
    if (state, action) in EXPECTED:
        result = step(state, level, action, PAYLOAD)
        assert result.state == EXPECTED[(state, action)]
        up = LEVELS[LEVELS.index(level) + 1]
        assert result.level == (up if action == "escalate" else level)
    else:
        with pytest.raises(InvalidTransition) as refused:
            step(state, level, action, PAYLOAD)
        assert refused.value.http_status == 409
        assert refused.value.allowed == allowed(state)
        for name in allowed(state):  # the message names what is allowed instead
            assert name in refused.value.message


def test_final_states_allow_nothing_and_say_so():
    for state in FINAL_STATES:
        assert allowed(state) == ()
        with pytest.raises(InvalidTransition, match="final"):
            step(state, "grid", "open")


def test_the_city_platform_cannot_escalate_but_can_do_the_rest():
    with pytest.raises(InvalidTransition, match="top level") as refused:
        step("opened", "city", "escalate", PAYLOAD)
    assert refused.value.allowed == ("dispatch",)
    assert step("opened", "city", "dispatch", PAYLOAD).state == "dispatched"


def test_escalation_climbs_the_ladder_one_level_at_a_time():
    level, seen = "grid", ["grid"]
    while level != "city":
        level = step("in_progress", level, "escalate", PAYLOAD).level
        seen.append(level)
    assert seen == list(LEVELS)


@pytest.mark.parametrize("action", [a for a in ACTIONS.values() if a.needs], ids=lambda a: a.name)
def test_each_action_refuses_a_payload_without_what_it_needs(action):
    state = sorted(action.sources)[0]
    for field in action.needs:
        with pytest.raises(BadInput, match=field):
            step(state, "grid", action.name, {**PAYLOAD, field: ""})


def test_a_dispatch_names_a_known_kind_of_unit():
    with pytest.raises(BadInput, match="unit_kind"):
        step("opened", "grid", "dispatch", {**PAYLOAD, "unit_kind": "mayor"})


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", ["grid", "community", "street", "department"])
def test_a_level_dispatches_down_or_to_a_department_never_up(level, kind):
    payload = {**PAYLOAD, "unit_kind": kind}
    if kind != "department" and LEVELS.index(kind) > LEVELS.index(level):
        with pytest.raises(Conflict, match="escalate it instead"):
            step("opened", level, "dispatch", payload)
    else:
        assert step("opened", level, "dispatch", payload) == Step("dispatched", level)


@pytest.mark.parametrize("state, level, action", [("lost", "grid", "open"), ("reported", "galaxy", "open"),
                                                  ("reported", "grid", "teleport")])
def test_unknown_states_levels_and_actions_are_bad_input(state, level, action):
    with pytest.raises(BadInput):
        step(state, level, action, PAYLOAD)


def test_every_state_is_reachable_from_reported_and_every_path_can_end():
    reachable, frontier = {"reported"}, ["reported"]
    while frontier:
        state = frontier.pop()
        for action in allowed(state):
            nxt = step(state, "grid", action, PAYLOAD).state
            if nxt not in reachable:
                reachable.add(nxt)
                frontier.append(nxt)
    assert reachable == set(STATES)
    # from every state some sequence of actions reaches a final state
    can_end = set(FINAL_STATES)
    changed = True
    while changed:
        changed = False
        for state in set(STATES) - can_end:
            if any(step(state, "grid", a, PAYLOAD).state in can_end for a in allowed(state)):
                can_end.add(state)
                changed = True
    assert can_end == set(STATES)
