"""Cases: acting on an incident's case, its deadline and timeline; worklists, overdue cases, the tick.

:mod:`gis.case_workflow` says which action is allowed and where it leads; this module checks who acts
(the unit holding the case), keeps the clock (the deadline starts at dispatch and counts the subclass's
time limit on the working calendar, or calendar time for emergencies), writes the incident's case columns
and the immutable event in one transaction, and reads them back.

Two people acting at once: each action names the case version it saw; the case row is locked, and a
version that is no longer current is refused (409) with what happened meanwhile. Nothing is half-written.
"""
import csv
import datetime as dt
import json
import math
import time
from dataclasses import dataclass

from gis import case_workflow, live
from gis.case_workflow import LEVELS
from gis.access import CITY_SCOPE
from gis.errors import BadInput, Conflict, Forbidden, GridMapError, NotFound
from gis.work_calendar import CALENDAR_CSV, WorkCalendar

CHINA_TIME = dt.timezone(dt.timedelta(hours=8))
ACTION_FIELDS = {"action", "version", "actor", "at", "note", "location", "unit_kind", "unit", "reason",
                 "deadline", "approved_by"}
CELL_LEVEL = {"grid": 3, "community": 2, "street": 1, "district": 0}  # grid_cell.level of each case level
OPEN_CASE_STATES = ("reported", "opened", "dispatched", "in_progress", "handled")
CLOCK_STATES = ("dispatched", "in_progress")  # a deadline runs
SYSTEM_ACTOR = "system"
MAX_NOTE = 2000


@dataclass(frozen=True)
class Rules:
    """The settable limits of the workflow, in hours of each case's time basis."""

    escalate_after_h: float = 8.0   # overdue by more than this: the tick escalates the case
    max_extension_h: float = 40.0   # extensions push a deadline at most this far past the standard one

    @classmethod
    def from_settings(cls, settings):
        return cls(settings.escalate_after_h, settings.max_extension_h)


@dataclass(frozen=True)
class ActionRequest:
    """A checked action: what, on which case version, by whom (a name and the unit acting), with its fields."""

    action: str
    version: int
    actor: str
    unit: str | None        # 'kind:code' of the acting unit; None for the system
    fields: dict            # unit_kind, unit, reason, deadline, approved_by as sent
    note: str = ""
    at: dt.datetime | None = None
    location: tuple | None = None  # (lon, lat, accuracy_m or None)


def parse_action(data, *, now=None, signed_in=None, default_unit=None):
    """Check an action's JSON body; :class:`BadInput` names the first wrong field.

    ``signed_in``: the name of who is signed in, recorded as the actor (a body's ``actor.name`` is then not
    needed, and not believed); ``default_unit``: the unit acting when the body names none."""
    if not isinstance(data, dict):
        raise BadInput("an action is an object with action, version and actor")
    unknown = set(data) - ACTION_FIELDS
    if unknown:
        raise BadInput(f"unknown field(s): {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(ACTION_FIELDS))}")
    action = data.get("action")
    if not isinstance(action, str) or not action:
        raise BadInput(f"action is required: one of {', '.join(case_workflow.ACTIONS)}")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise BadInput("version is required: the case version you acted on (the case's case.version), "
                       "so that a concurrent change is not overwritten")
    actor = data.get("actor")
    if signed_in is not None and actor is None:
        actor = {"name": signed_in, "unit": default_unit}
    if not isinstance(actor, dict) or (signed_in is None and (not isinstance(actor.get("name"), str)
                                                              or not actor["name"].strip())):
        raise BadInput('actor is required: {"name": "...", "unit": "kind:code"}, the person and the unit acting')
    if set(actor) - {"name", "unit"}:
        raise BadInput(f"actor has unknown field(s) {', '.join(sorted(set(actor) - {'name', 'unit'}))}")
    if signed_in is not None:
        actor = {"name": signed_in, "unit": actor.get("unit") or default_unit}
    unit = actor.get("unit")
    if not isinstance(unit, str) or not unit.strip():
        raise BadInput("actor.unit is required: the unit acting, e.g. 'street:410102001', 'department:CGJ'")
    note = data.get("note") or ""
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise BadInput(f"note must be a string of at most {MAX_NOTE} characters")
    fields = {}
    for name in ("unit_kind", "unit", "reason", "deadline", "approved_by"):
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > 500):
            raise BadInput(f"{name} must be a string of at most 500 characters")
        fields[name] = value.strip() if value else value
    return ActionRequest(action=action, version=version, actor=actor["name"].strip()[:100], unit=unit.strip(),
                         fields=fields, note=note.strip(), at=_time(data.get("at"), "at", now=now),
                         location=_location(data.get("location")))


def _time(value, name, *, now=None):
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadInput(f"{name} must be an ISO 8601 date-time, e.g. 2026-11-23T09:30:00+08:00")
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{name} {value!r} is not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=CHINA_TIME)
    if name == "at" and when > (now or dt.datetime.now(dt.timezone.utc)) + dt.timedelta(minutes=5):
        raise BadInput(f"at {value!r} is in the future")
    return when


def _location(value):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadInput("location must be an object with lon, lat and optionally accuracy_m (WGS84)")
    try:
        lon, lat = float(value["lon"]), float(value["lat"])
        accuracy = value.get("accuracy_m")
        accuracy = None if accuracy is None else float(accuracy)
    except (KeyError, TypeError, ValueError):
        raise BadInput("location needs numeric lon and lat (WGS84), and accuracy_m if given") from None
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadInput(f"location ({lon}, {lat}) is not a place on Earth")
    if accuracy is not None and not 0 <= accuracy <= 100_000:
        raise BadInput("location.accuracy_m must be between 0 and 100000 metres")
    return lon, lat, accuracy


# --- the calendar ------------------------------------------------------------------------------------

def calendar(cur):
    """The working calendar kept in the database (office_hours, calendar_day)."""
    cur.execute("select start_time, end_time from office_hours order by start_time")
    periods = [(r["start_time"], r["end_time"]) for r in cur.fetchall()]
    cur.execute("select day, kind from calendar_day order by day")
    return WorkCalendar.from_rows([(r["day"], r["kind"]) for r in cur.fetchall()], periods)


def sync_calendar(db, path=None):
    """Add the holidays and make-up working days of ``path`` (data/calendar_cn.csv) that the database lacks;
    days already there keep what they say (they may have been set by hand). Returns how many were added."""
    with open(path or CALENDAR_CSV, newline="", encoding="utf-8") as f:
        rows = [(r["day"], r["kind"], r["name"]) for r in csv.DictReader(f)]
    with db.cursor() as cur:
        cur.execute("insert into calendar_day (day, kind, name) select * from unnest(%s::date[], %s::text[], %s::text[])"
                    " on conflict (day) do nothing",
                    ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]))
        return cur.rowcount


# --- acting ------------------------------------------------------------------------------------------

_CASE_ROW = """
    select i.id, i.public_id, i.status, i.case_version, i.case_level, i.holder, i.unit_kind, i.unit_code,
           i.reported_at, i.dispatched_at, i.first_dispatched_at, i.due_at, i.handled_at, i.reworks,
           i.extensions, i.escalations,
           s.time_limit_hours::float8 as limit_h, s.time_basis, s.department_code,
           (select code from grid_cell where id = i.grid_id) as grid_code,
           (select code from grid_cell where id = i.community_id) as community_code,
           (select code from grid_cell where id = i.street_id) as street_code,
           (select code from grid_cell where id = i.district_id) as district_code,
           (select max(e.at) from case_event e where e.incident_id = i.id) as last_at
      from incident i join event_subclass s on s.code = i.category
"""


def act(db, public_id, request, rules=Rules(), *, scope=CITY_SCOPE, now=None, system=False):
    """Apply ``request`` (an :class:`ActionRequest`) to the case of incident ``public_id``; returns the case.

    ``scope``: the actor's (:mod:`gis.access`): a case outside it is not found, and the acting unit must be
    one the scope may act as (:class:`Forbidden` otherwise).
    ``system``: the platform itself acts (the tick): no unit is checked. Raises :class:`NotFound`,
    :class:`BadInput` (a wrong field, a date out of order, an extension beyond the maximum) or
    :class:`Conflict` (a stale version, a unit that does not hold the case, an action the state forbids).
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    with db.cursor() as cur:
        cur.execute(_CASE_ROW + " where i.public_id = %s and " + scope.incident_filter_text(cur) + " for update of i",
                    (public_id,))
        case = cur.fetchone()
        if case is None:
            raise NotFound(f"no case {public_id!r}")
        if not system:
            _check_unit(cur, scope, request.unit)
        if request.version != case["case_version"]:
            raise Conflict(f"case {public_id} changed since version {request.version}: it is at version "
                           f"{case['case_version']} now; reload it and act again",
                           details=[{"version": case["case_version"], "since": _events(cur, case["id"],
                                                                                   request.version)}])
        level = case["case_level"] or _routing_level(case)
        holder = _holder(case, case["status"], level, case["unit_kind"], case["unit_code"])
        if not system and request.unit != holder:
            raise Conflict(f"case {public_id} is held by {holder or 'nobody (it is ' + case['status'] + ')'}; "
                           f"{request.unit} cannot act on it")
        moved = case_workflow.step(case["status"], level, request.action, {**request.fields, "note": request.note})
        at = request.at or now
        earliest = case["last_at"] or case["reported_at"]
        if at < earliest:
            raise BadInput(f"dates in the wrong order: at {_local(at)} is before the case's last event "
                           f"({_local(earliest)})")
        changes, details = _effects(cur, case, request, moved, at, rules)
        unit_kind, unit_code = changes.get("unit_kind", case["unit_kind"]), changes.get("unit_code", case["unit_code"])
        changes["holder"] = _holder(case, moved.state, moved.level, unit_kind, unit_code)
        changes["case_level"] = moved.level
        if moved.state != case["status"]:
            changes.update(status=moved.state, status_changed_at=at)
        sets = ", ".join(f"{column} = %({column})s" for column in changes)
        cur.execute(f"update incident set {sets}, case_version = case_version + 1"
                    " where id = %(id)s and case_version = %(version)s",
                    {**changes, "id": case["id"], "version": request.version})
        lon, lat, accuracy = request.location or (None, None, None)
        cur.execute("""insert into case_event (incident_id, seq, action, from_state, to_state, from_level,
                                               to_level, actor, actor_unit, at, note, details, geom, accuracy_m)
                       values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                               case when %s::float8 is null then null
                                    else ST_SetSRID(ST_MakePoint(%s, %s), 4326) end, %s)""",
                    (case["id"], request.version + 1, request.action, case["status"], moved.state, level,
                     moved.level, request.actor, None if system else request.unit, at, request.note,
                     _json(details), lon, lon, lat, accuracy))
        return _case_doc(cur, case["id"])


def _check_unit(cur, scope, unit):
    kind, code = parse_unit(unit)
    if scope.unrestricted:
        return
    cur.execute("select id from grid_version where status = 'active'")
    active = cur.fetchone()
    if not scope.unit_allowed(cur, kind, code, active["id"] if active else None):
        raise Forbidden(f"your scope ({scope}) may not act as {unit}")


def _effects(cur, case, request, moved, at, rules):
    """The case columns an action sets, and the details its event keeps."""
    action, fields = request.action, request.fields
    if action == "open":
        return {"opened_at": at}, {}
    if action in ("void", "rework", "escalate"):
        details = {"reason": fields["reason"]}
        if action == "rework":
            return {"reworks": _plus(case, "reworks"), "handled_at": None}, details
        if action == "escalate":
            return {"escalations": _plus(case, "escalations"), "unit_kind": None, "unit_code": None,
                    "dispatched_at": None, "due_at": None}, details
        return {}, details
    if action == "dispatch":
        kind, code = _dispatch_unit(cur, case, fields["unit_kind"], fields.get("unit"))
        due = calendar(cur).add_hours(at, case["limit_h"], case["time_basis"])
        return ({"unit_kind": kind, "unit_code": code, "dispatched_at": at, "due_at": due,
                 "first_dispatched_at": case["first_dispatched_at"] or at},
                {"unit_kind": kind, "unit": code, "due_at": _local(due)})
    if action == "handle":
        hours = calendar(cur).hours_between(case["dispatched_at"], at, case["time_basis"])
        return {"handled_at": at, "handling_h": round(float(hours), 3)}, {}
    if action == "close":
        return {"closed_at": at}, {"on_time": case["handled_at"] is not None and case["due_at"] is not None
                                   and case["handled_at"] <= case["due_at"]}
    if action == "extend":
        deadline = _time(fields["deadline"], "deadline")
        if deadline <= case["due_at"]:
            raise BadInput(f"dates in the wrong order: the new deadline {_local(deadline)} is not after the "
                           f"current one ({_local(case['due_at'])})")
        cal = calendar(cur)
        latest = cal.add_hours(case["dispatched_at"], case["limit_h"] + rules.max_extension_h, case["time_basis"])
        if deadline > latest:
            raise BadInput(f"the new deadline {_local(deadline)} is beyond the maximum extension: at most "
                           f"{rules.max_extension_h:g} {case['time_basis']} hours past the standard deadline, "
                           f"i.e. {_local(latest)}")
        return ({"due_at": deadline, "extensions": _plus(case, "extensions")},
                {"deadline": _local(deadline), "previous_deadline": _local(case["due_at"]),
                 "reason": fields["reason"], "approved_by": fields["approved_by"],
                 "approver_level": LEVELS[min(LEVELS.index(moved.level) + 1, len(LEVELS) - 1)]})
    return {}, {}  # start


def _local(when):
    return when.astimezone(CHINA_TIME).isoformat()


def _plus(case, column):
    return case[column] + 1  # the row is locked: what was read is what is there


def _dispatch_unit(cur, case, kind, code):
    """The unit a case goes to: the case's own cell at an area level, or a department (the subclass's by
    default)."""
    if kind == "department":
        code = code or case["department_code"]
        cur.execute("select 1 from department where code = %s", (code,))
        if cur.fetchone() is None:
            raise BadInput(f"unknown department {code!r}")
        return kind, code
    own = case[f"{kind}_code"]
    if own is None:
        raise BadInput(f"case {case['public_id']} lies in no {kind} cell: dispatch it to a department "
                       "or a level it has a cell at")
    if code and code != own:
        raise BadInput(f"case {case['public_id']} lies in {kind} {own}, not {code}")
    return kind, own


def _routing_level(case):
    for level in ("grid", "community", "street", "district"):
        if case[f"{level}_code"]:
            return level
    return "city"


def _holder(case, state, level, unit_kind, unit_code):
    """Who must act next, 'kind:code': the dispatched unit while the clock runs, else the level's platform."""
    if state in case_workflow.FINAL_STATES:
        return None
    if state in CLOCK_STATES:
        return f"{unit_kind}:{unit_code}"
    if level == "city":
        return "city"
    return f"{level}:{case[f'{level}_code']}"


def _json(value):
    return json.dumps(value, ensure_ascii=False, default=str)


# --- reading -----------------------------------------------------------------------------------------

_EVENT_COLUMNS = """
    select e.seq, e.action, e.from_state, e.to_state, e.from_level, e.to_level, e.actor, e.actor_unit, e.at,
           e.recorded_at, e.note, e.details,
           case when e.geom is null then null
                else json_build_object('lon', ST_X(e.geom), 'lat', ST_Y(e.geom), 'accuracy_m', e.accuracy_m)
           end as location
      from case_event e
"""


def _events(cur, incident_id, after_seq=0):
    cur.execute(_EVENT_COLUMNS + " where e.incident_id = %s and e.seq > %s order by e.seq", (incident_id, after_seq))
    return [_event_doc(row) for row in cur.fetchall()]


def _event_doc(row):
    doc = dict(row)
    doc["name_zh"] = case_workflow.ACTIONS[row["action"]].name_zh
    for key in ("at", "recorded_at"):
        doc[key] = row[key].isoformat()
    return doc


def _case_doc(cur, incident_id):
    """The incident's document with its events and the actions allowed next."""
    cur.execute("select doc from incident_docs(array[%s::bigint])", (incident_id,))
    doc = cur.fetchone()["doc"]
    doc["case"]["events"] = _events(cur, incident_id)
    doc["case"]["allowed"] = list(case_workflow.allowed(doc["status"]))
    return doc


def get(cur, public_id, *, scope=CITY_SCOPE):
    """One case (the incident with its events), or :class:`NotFound` (also outside ``scope``)."""
    cur.execute("select id from incident i where public_id = %s and " + scope.incident_filter_text(cur), (public_id,))
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"no case {public_id!r}")
    return _case_doc(cur, row["id"])


def parse_unit(text):
    """'kind:code' → (kind, code); 'city' → ('city', None)."""
    kind, _, code = (text or "").partition(":")
    if kind == "city" and not code:
        return kind, None
    if kind not in (*CELL_LEVEL, "department") or not code:
        raise BadInput(f"unit {text!r} is not 'kind:code' with kind grid, community, street, district or "
                       "department (or 'city')")
    return kind, code


def worklist(cur, unit, *, reach="mine", overdue_only=False, limit=100, now=None, scope=CITY_SCOPE):
    """Open cases for a unit, overdue first, then by deadline, then oldest first; only those in ``scope``.

    ``reach`` ``mine``: the cases the unit holds (must act on next); ``level``: every open case owned by the
    unit's level within its area (for a department, the cases dispatched to it).
    """
    kind, code = parse_unit(unit)
    if reach not in ("mine", "level"):
        raise BadInput(f"scope must be mine or level; got {reach!r}")
    if not 1 <= limit <= 1000:
        raise BadInput("limit must be between 1 and 1000")
    now = now or dt.datetime.now(dt.timezone.utc)
    params = {"unit": unit, "code": code, "now": now, "limit": limit}
    visible = " and " + scope.incident_filter_text(cur)
    if kind == "department":
        where = "i.unit_kind = 'department' and i.unit_code = %(code)s"
        if reach == "mine":
            where += " and i.holder = %(unit)s"
        return _listed(cur, where + visible, params, overdue_only)
    # a case nobody has acted on yet belongs to its routing's deepest level: the levels below are empty
    # (said so rather than asked of routing_holder() row by row: 20 times faster on a busy grid)
    deeper = [f"i.{name}_id is null" for name in ("grid", "community", "street", "district")
              if kind == "city" or CELL_LEVEL[name] > CELL_LEVEL[kind]]
    area = ("true" if kind == "city" else
            f"i.{kind}_id in (select id from grid_cell where code = %(code)s and level = {CELL_LEVEL[kind]})")
    untouched = " and ".join(["i.case_level is null", area, *deeper])
    if reach == "mine":
        where = f"(i.holder = %(unit)s or (i.holder is null and i.status = 'reported' and {untouched}))"
    else:
        where = f"((i.case_level = '{kind}' and {area}) or ({untouched}))"
    return _listed(cur, where + visible, params, overdue_only)


def _listed(cur, where, params, overdue_only):
    """The open cases matching ``where``: overdue first, then by deadline, then oldest first."""
    if overdue_only:
        where += " and i.status in ('dispatched', 'in_progress') and i.due_at < %(now)s"
    cur.execute(f"""select i.id from incident i
                     where i.status not in ('closed', 'voided') and {where}
                     order by (i.status in ('dispatched', 'in_progress') and i.due_at < %(now)s) desc,
                              i.due_at nulls last, i.reported_at, i.id
                     limit %(limit)s""", params)
    ids = [r["id"] for r in cur.fetchall()]
    cur.execute("select doc from incident_docs(%s)", (ids,))
    return [r["doc"] for r in cur.fetchall()]


def overdue(cur, *, now=None, limit=1000, scope=CITY_SCOPE):
    """Open cases past their deadline in ``scope``, most overdue first: ``(public_id, due_at, holder, status)``
    rows. A query, so it is right at any moment whether or not the tick has run."""
    cur.execute("""select i.public_id, i.due_at, i.holder, i.status, i.case_level
                     from incident i
                    where i.status in ('dispatched', 'in_progress') and i.due_at < %s and """
                + scope.incident_filter_text(cur) + " order by i.due_at, i.id limit %s",
                (now or dt.datetime.now(dt.timezone.utc), limit))
    return cur.fetchall()


# --- the tick ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TickResult:
    overdue: int            # cases past their deadline now
    escalated: tuple        # public ids escalated by this tick
    skipped: int            # changed by someone while the tick looked at them: left for the next tick


def tick(db, rules=Rules(), *, now=None):
    """Escalate every case overdue by more than ``rules.escalate_after_h`` hours of its time basis.

    Each escalation is its own transaction, made as the system on the version the tick read: a case a
    person acted on meanwhile is skipped (and looked at again next time)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    with db.cursor() as cur:
        cur.execute("""select i.public_id, i.case_version, i.due_at, coalesce(i.case_level, 'grid') as level,
                              s.time_basis
                         from incident i join event_subclass s on s.code = i.category
                        where i.status in ('dispatched', 'in_progress') and i.due_at < %s
                        order by i.due_at, i.id""", (now,))
        late = cur.fetchall()
        cal = calendar(cur)
    escalated, skipped = [], 0
    for case in late:
        if case["level"] == "city":
            continue  # nobody above the city platform: it stays on the overdue list
        limit = cal.add_hours(case["due_at"], rules.escalate_after_h, case["time_basis"])
        if limit >= now:
            continue
        hours = cal.hours_between(case["due_at"], now, case["time_basis"])
        request = ActionRequest(
            action="escalate", version=case["case_version"], actor=SYSTEM_ACTOR, unit=None,
            fields={"reason": f"overdue by {float(hours):.1f} {case['time_basis']} hours "
                              f"(more than {rules.escalate_after_h:g}): escalated automatically"})
        try:
            act(db, case["public_id"], request, rules, now=now, system=True)
            escalated.append(case["public_id"])
        except Conflict:
            skipped += 1
    live.prune(db)  # the live feed's old events: the tick is the platform's periodic chore
    return TickResult(overdue=len(late), escalated=tuple(escalated), skipped=skipped)


def run_ticks(db, rules, every_s, *, echo=print, stop=None):
    """Tick every ``every_s`` seconds until ``stop()`` is true (forever by default)."""
    while not (stop and stop()):
        try:
            result = tick(db, rules)
        except GridMapError as exc:  # the database restarting, say: try again next time
            echo(f"tick failed: {exc.message}")
            time.sleep(every_s)
            continue
        if result.escalated or result.skipped:
            echo(f"{dt.datetime.now(CHINA_TIME):%Y-%m-%d %H:%M:%S} overdue {result.overdue}, escalated "
                 f"{len(result.escalated)}, skipped {result.skipped}")
        time.sleep(every_s)
