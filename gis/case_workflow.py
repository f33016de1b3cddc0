"""The case workflow as data: which action takes a case from which state to which, at which level.

统一受理、分类处置、逐级上报、跟踪督查、评价奖惩: a report is opened (立案) or voided (作废), dispatched (派遣)
to a unit, worked on, handled (处理反馈) and closed after verification (核查结案), or sent back as rework
(返工); a deadline may be extended (延期, approved one level up); a case beyond a level's authority is
escalated (上报) one level up the ladder unit grid → community → street → district → city platform.

No I/O here: the store asks :func:`step` whether an action is allowed and what it leads to, and records
the event. The statuses are those of the ``incident.status`` column (``sql/004_incidents.sql``).
"""
from dataclasses import dataclass

from gis.errors import BadInput, Conflict

STATES = ("reported", "opened", "voided", "dispatched", "in_progress", "handled", "closed")
FINAL_STATES = ("voided", "closed")
# the escalation ladder, bottom up: the level that owns a case
LEVELS = ("grid", "community", "street", "district", "city")
# who a case can be dispatched to: the grid's own staff, a level's platform, or a line department (条块结合)
UNIT_KINDS = ("grid", "community", "street", "department")


@dataclass(frozen=True)
class Action:
    name: str
    name_zh: str
    sources: frozenset  # states it may be taken from
    target: str | None  # the state it leads to; None: the state stays (an extension)
    needs: tuple = ()   # payload fields it cannot do without


ACTIONS = {a.name: a for a in (
    Action("open", "立案", frozenset({"reported"}), "opened"),
    Action("void", "作废", frozenset({"reported"}), "voided", ("reason",)),
    # the unit's code may be left out: the case's own cell at that level, or the subclass's department
    Action("dispatch", "派遣", frozenset({"opened"}), "dispatched", ("unit_kind",)),
    Action("start", "开始处置", frozenset({"dispatched"}), "in_progress"),
    Action("handle", "处理反馈", frozenset({"in_progress"}), "handled", ("note",)),
    Action("close", "核查结案", frozenset({"handled"}), "closed"),
    Action("rework", "返工", frozenset({"handled"}), "dispatched", ("reason",)),
    # approved one level up: the approver is named
    Action("extend", "延期", frozenset({"dispatched", "in_progress"}), None, ("deadline", "reason", "approved_by")),
    # the level above takes the case over and dispatches it itself
    Action("escalate", "上报", frozenset({"opened", "dispatched", "in_progress"}), "opened", ("reason",)),
)}


class InvalidTransition(Conflict):
    """The action is not allowed in the case's state (HTTP 409); ``allowed`` lists those that are."""

    def __init__(self, message, allowed):
        super().__init__(message, details=[{"allowed": list(allowed)}])
        self.allowed = tuple(allowed)


@dataclass(frozen=True)
class Step:
    """Where an action leaves a case."""

    state: str
    level: str


def allowed(state):
    """The actions allowed in ``state``, in the order of ACTIONS."""
    if state not in STATES:
        raise BadInput(f"unknown case state {state!r}; states are {', '.join(STATES)}")
    return tuple(name for name, action in ACTIONS.items() if state in action.sources)


def step(state, level, action_name, payload=None):
    """Where ``action_name`` with ``payload`` takes a case in ``state`` owned by ``level``.

    Raises :class:`BadInput` for an unknown action or a missing or wrong payload field, and
    :class:`InvalidTransition` when the action is not allowed in this state or at this level.
    """
    payload = payload or {}
    action = ACTIONS.get(action_name)
    if action is None:
        raise BadInput(f"unknown action {action_name!r}; actions are {', '.join(ACTIONS)}")
    if level not in LEVELS:
        raise BadInput(f"unknown level {level!r}; levels are {', '.join(LEVELS)}")
    possible = allowed(state)
    if action_name not in possible:
        raise InvalidTransition(
            f"{action_name} is not allowed on a case that is {state}; "
            + (f"allowed: {', '.join(possible)}" if possible else "it is final: nothing more can be done"),
            possible)
    missing = [f for f in action.needs if payload.get(f) in (None, "")]
    if missing:
        raise BadInput(f"{action_name} needs {', '.join(missing)}")
    if action_name == "dispatch":
        kind = payload["unit_kind"]
        if kind not in UNIT_KINDS:
            raise BadInput(f"unit_kind must be one of {', '.join(UNIT_KINDS)}; got {kind!r}")
        if kind in LEVELS and LEVELS.index(kind) > LEVELS.index(level):
            # a level hands work down or across to a department, never up: that is escalation
            raise Conflict(f"a case held at {level} level cannot be dispatched to a {kind}: "
                           f"escalate it instead")
    if action_name == "escalate":
        if level == LEVELS[-1]:
            raise InvalidTransition("the city platform is the top level: there is nobody to escalate to",
                                    tuple(a for a in possible if a != "escalate"))
        level = LEVELS[LEVELS.index(level) + 1]
    return Step(action.target or state, level)
