"""The cases of the demo's incident history (:mod:`gis.demo_history`): what became of each report.

:func:`start_levels` tells the level each report's case starts at, :func:`draw_cases` draws every case's
events and :func:`case_columns` sets the incident's case columns after them, as ``gis.cases`` sets them.
Nothing here is real. The model, in short:

* Each report becomes a case that follows the rules of the live workflow (``gis/cases.py``): opened at the
  level it was routed to (its unit grid; the district or the city when it lies outside every grid),
  dispatched to a unit — the grid itself for many minor patrol findings, else mostly the subclass's
  department, sometimes the community or the street —, started, handled and closed after verification; or
  voided straight away (~3 %).
* Deadlines count the subclass's time limit on the working calendar (or in calendar hours), and every
  duration is drawn in those hours, so a working-time case is only ever acted on in office hours.
* Each street and each department has its own performance: slower ones are late more often (on-time rates
  from about 70 to 98 %), rework more and ask for more extensions.
* About 4 % of cases are escalated (a few twice): by the platform at once, by the unit after trying, or by
  the tick when a case is overdue by more than the settable margin. ~5 % are reworked once, ~4 % extended,
  ~2 % get stuck (never closed).
* Events after ``end`` have not happened yet, so the last days' cases are mostly open.
* Every action is an event with its actor, note and details, as ``case_event`` keeps them; people on a post
  of the grid store (grid heads and workers, community secretaries and directors, street heads) are named
  from it when the history is loaded (:func:`gis.demo_history.load`).

Every draw comes from the history's one generator, so the same seed gives the same cases. Times are int64
seconds since the epoch (:data:`NO_TIME` for none) and levels indices of :data:`LEVELS` until
:func:`gis.demo_history.generate_history` turns them into timestamps and names. Nothing here touches the
database.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from gis import batch_routing, case_workflow
from gis.demo_people import person_names

M_PER_DEG = 6371008.8 * np.pi / 180  # metres per degree of latitude (mean Earth radius)

# --- levels, units and the people acting --------------------------------------------------------------------

LEVELS = case_workflow.LEVELS  # grid, community, street, district, city: the escalation ladder, bottom up
GRID, COMMUNITY, STREET, DISTRICT, CITY = range(len(LEVELS))
UNIT_KINDS = case_workflow.UNIT_KINDS  # grid, community, street (the area unit of that level), department
DEPARTMENT = UNIT_KINDS.index("department")
# Who speaks for a level's platform and who works in an area unit: posts of the grid store's staff. The
# district and city platforms and the departments have nobody there: their people are drawn.
PLATFORM_POSTS = ("grid_head", "community_secretary", "street_head", None, None)
UNIT_POSTS = ("grid_worker", "community_director", "street_head", None)
POST_LEVEL = {"grid_head": "grid", "grid_worker": "grid", "community_secretary": "community",
              "community_director": "community", "street_head": "street"}
SYSTEM_ACTOR = "system"  # the tick, as gis.cases names it

# --- the model's knobs --------------------------------------------------------------------------------------

VOID_SHARE = 0.03          # voided straight away: a duplicate, outside the remit, nothing there
STUCK_SHARE = 0.024        # planned never to close (the tick escalates some of those left with a unit)
STUCK_AT = (0.15, 0.15, 0.20, 0.50)  # ... left opened (never dispatched), dispatched, in progress, handled
ESCALATE_SHARE = 0.025     # escalated by hand; the tick adds the cases overdue by more than its margin
TWICE_SHARE = 0.12         # ... and once more at the next level
AT_ONCE_SHARE = 0.4        # ... by the platform right after opening, else by the unit after trying
ON_TIME = 0.93             # a middling unit's share of cases handled by the deadline
REWORK = 0.045
EXTEND = 0.034
SPREAD = 1.0               # logit(on time) = logit(ON_TIME) + SPREAD · quality of the unit
CELL_SPREAD = 0.35         # the grids of a street differ a little too
FOLLOWED_UP = 1.5          # an escalated case is watched from above: logit(on time) that much higher
LATE_MEAN_H = 2.0          # a late handling is late by about this many hours of its basis (less for short limits)
GPS_SHARE = 0.85           # starts and handlings sent from a phone with its position
TICK_EVERY_S = 300         # the tick runs every few minutes
# Which unit a level dispatches to, as shares of (grid, community, street, department): a unit at or below
# the level; emergencies and cases outside every grid go to the department.
DISPATCH_P = {"grid patrol": (0.55, 0, 0, 0.45), "grid complaint": (0.15, 0, 0, 0.85),
              COMMUNITY: (0.15, 0.40, 0, 0.45), STREET: (0.05, 0.15, 0.35, 0.45),
              DISTRICT: (0, 0, 0.15, 0.85), CITY: (0, 0, 0.10, 0.90)}
CATCH_ALL_DEPARTMENT = "CGJ"   # the city administration bureau takes a few cases of other departments
CATCH_ALL_SHARE = 0.05
STAFF_PER_DEPARTMENT = 8

# --- what the people acting write ---------------------------------------------------------------------------

OPEN_NOTES = ("符合立案条件，予以立案", "经核实情况属实，立案", "核实属实，立案处理")
DISPATCH_NOTES = ("请按时限处置并反馈", "请尽快到场处置", "请核实后处置，按期反馈")
START_NOTES = ("已接单，正赶往现场", "已到达现场，开始处置", "已安排人员处置")
HANDLE_NOTES = {
    "01": ("已清理完毕，现场恢复整洁", "已组织环卫人员清运", "已督促责任单位清理到位"),
    "02": ("已清除完毕", "已责令商户整改，广告已拆除", "已拆除并登记"),
    "03": ("已责令施工单位整改", "已停工整改，现场已覆盖", "已清理遗撒路面"),
    "04": ("险情已排除，现场已恢复", "已抢修完毕", "已疏散群众并处置完毕"),
    "05": ("已劝离，现场秩序恢复", "已依法查处", "已规范停放"),
    "06": ("已维修完毕", "已更换", "已设置警示并修复"),
    "07": ("已调解，双方达成一致", "已上门核实并登记", "已督促整改，隐患消除"),
    "99": ("已协调相关单位处理", "已答复市民", "已核实处理"),
}
CLOSE_NOTES = ("现场核查合格，予以结案", "经核查已处置到位，结案", "回访群众满意，结案")
VOID_REASONS = ("重复上报，已合并处理", "不属于受理范围", "现场核实无此问题", "信息不全，无法核实")
REWORK_REASONS = ("核查发现未整改到位", "现场仍有残留，需重新处置", "群众反映问题反弹，请重新处置")
EXTEND_REASONS = ("需协调多个部门，申请延期", "施工周期较长，申请延期", "天气原因无法按期完成", "需等待配件到货，申请延期")
ESCALATE_REASONS = ("超出本级处置权限，提请上级协调", "涉及多个部门，需上级统筹", "权属不清，提请上级处理",
                    "多次处置未果，提请上级督办")

# --- what the model gives -----------------------------------------------------------------------------------

CASE_COLUMNS = ("case_level", "case_version", "holder_kind", "unit_kind", "unit_code", "opened_at",
                "first_dispatched_at", "dispatched_at", "due_at", "handled_at", "closed_at", "handling_h",
                "reworks", "extensions", "escalations")
EVENT_COLUMNS = ("row", "seq", "action", "from_state", "to_state", "from_level", "to_level", "actor",
                 "actor_kind", "actor_post", "actor_code", "at", "note", "unit_kind", "unit_code", "due_at",
                 "previous_due_at", "reason", "approved_by", "approver_post", "on_time", "lon", "lat",
                 "accuracy_m")
EVENT_TIMES = ("at", "due_at", "previous_due_at")  # the event columns that hold times
NO_TIME = -1  # int64 seconds standing for "none" (nothing here happened before 1970)


# --- drawing the cases --------------------------------------------------------------------------------------

def _add(cal, start, hours, working):
    """``start`` (int64 seconds) plus ``hours`` of each one's basis (working or calendar), to the second."""
    start = np.asarray(start, dtype=np.int64)
    hours = np.broadcast_to(np.asarray(hours, dtype=float), start.shape)
    out = np.empty(start.shape, dtype=np.int64)
    for basis, mine in (("working", working), ("calendar", ~working)):
        if mine.any():
            end = cal.add_hours(start[mine].astype("M8[s]"), hours[mine], basis)
            out[mine] = end.astype("M8[s]").astype(np.int64)
    return out


def _hours(cal, start, end, working):
    """Hours of each one's basis from ``start`` to ``end`` (int64 seconds)."""
    out = np.empty(len(start))
    for basis, mine in (("working", working), ("calendar", ~working)):
        if mine.any():
            out[mine] = cal.hours_between(start[mine].astype("M8[s]"), end[mine].astype("M8[s]"), basis)
    return out


def _pick(rng, choices, n):
    return np.asarray(choices, dtype=object)[rng.integers(0, len(choices), size=n)]


def _expit(z):
    return 1.0 / (1.0 + np.exp(-z))


def _logit(p):
    return np.log(p / (1.0 - p))


@dataclass
class Reports:
    """What the case model needs of each report (arrays aligned on the history's rows)."""

    reported: np.ndarray   # int64 seconds
    category: np.ndarray   # subclass index
    manual: np.ndarray     # hotline or Open311 rather than the field app
    start: np.ndarray      # level its case starts at: GRID, DISTRICT or CITY
    cell: np.ndarray       # its unit grid (-1: none)
    street: np.ndarray     # that grid's street (-1: none)
    lon: np.ndarray
    lat: np.ndarray


class _People:
    """The names of the people acting: drawn here; :func:`gis.demo_history.load` puts the grid store's staff in
    where it has them."""

    def __init__(self, model, rng, n, departments):
        self.workers = model.workers
        self.operators = person_names(rng, 60)
        self.staff = np.array(person_names(rng, STAFF_PER_DEPARTMENT * len(departments)), dtype=object)
        self.who = rng.integers(0, 1 << 30, size=n)  # a report's own pick of people
        self.departments = departments

    def _names(self, rows, level, cell, post_rank):
        k = np.where(cell[rows] >= 0, cell[rows] * 7919 + post_rank, self.who[rows])
        local = np.asarray(self.workers, dtype=object)[k % len(self.workers)]
        drawn = np.asarray(self.operators, dtype=object)[(self.who[rows] + level) % len(self.operators)]
        return np.where(level <= STREET, local, drawn)

    def platform(self, rows, level, cell):
        """The platform of ``level`` (array) acting on the cases of ``rows``."""
        return {"actor_kind": np.asarray(LEVELS, dtype=object)[level],
                "actor_post": np.asarray(PLATFORM_POSTS, dtype=object)[level],
                "actor": self._names(rows, level, cell, 1 + level)}

    def unit(self, rows, kind, department, cell):
        """The unit of ``kind`` (UNIT_KINDS index; ``department`` index for departments) at work on them."""
        dept = department % len(self.departments)
        names = np.where(kind == DEPARTMENT,
                         self.staff[dept * STAFF_PER_DEPARTMENT + self.who[rows] % STAFF_PER_DEPARTMENT],
                         self._names(rows, np.minimum(kind, STREET), cell, 4 * kind))
        return {"actor_kind": np.asarray(UNIT_KINDS, dtype=object)[kind],
                "actor_post": np.asarray(UNIT_POSTS, dtype=object)[kind],
                "actor_code": np.where(kind == DEPARTMENT, self.departments[dept], None), "actor": names}

    @staticmethod
    def system(n):
        return {"actor_kind": np.full(n, None), "actor_post": np.full(n, None), "actor": np.full(n, SYSTEM_ACTOR)}


class _Events:
    """Events as they are drawn, a batch of cases at a time; :meth:`frame` puts them in order."""

    def __init__(self):
        self.batches = []

    def add(self, rows, at, action, from_state, to_state, from_level, to_level, order, **fields):
        if len(rows):
            self.batches.append(dict(fields, row=rows, at=at, action=action, from_state=from_state,
                                     to_state=to_state, from_level=from_level, to_level=to_level, order=order))

    def frame(self, end_s):
        columns = {}
        for name in (*EVENT_COLUMNS, "order", "handling_h"):
            if name == "seq":
                continue
            parts = []
            for b in self.batches:
                n = len(b["row"])
                value = b.get(name)
                if value is None:
                    value = (np.full(n, NO_TIME) if name in EVENT_TIMES else np.full(n, np.nan)
                             if name in ("lon", "lat", "accuracy_m", "handling_h") else np.full(n, None))
                parts.append(np.broadcast_to(value, (n,)))
            empty = (np.int64 if name in ("row", "order", *EVENT_TIMES) else
                     float if name in ("lon", "lat", "accuracy_m", "handling_h") else object)
            columns[name] = np.concatenate(parts) if parts else np.empty(0, dtype=empty)
        happened = np.flatnonzero(columns["at"] <= end_s)
        keep = happened[np.lexsort((columns["order"][happened], columns["row"][happened]))]
        row = columns["row"][keep]
        first = np.r_[True, row[1:] != row[:-1]] if len(row) else np.zeros(0, bool)
        position = np.arange(len(row))
        columns["seq"] = position - np.maximum.accumulate(np.where(first, position, 0)) + 1
        # object columns stay object: inferring pandas' string dtype for half a million rows takes a while
        return pd.DataFrame({name: pd.Series(values if name == "seq" else values[keep],
                                             dtype=object if values.dtype == object else None)
                             for name, values in columns.items()})


def _dispatch_kind(rng, level, patrol, emergency, in_grid):
    """The kind of unit (UNIT_KINDS index) each case is dispatched to by the platform of ``level``."""
    table = np.array([DISPATCH_P["grid patrol"], DISPATCH_P["grid complaint"],
                      *(DISPATCH_P[k] for k in (COMMUNITY, STREET, DISTRICT, CITY))])
    row = np.where(level == GRID, np.where(patrol, 0, 1), level + 1)
    cumulative = np.cumsum(table, axis=1)[row]
    kind = np.minimum((rng.random(len(level))[:, None] >= cumulative[:, :-1]).sum(axis=1), DEPARTMENT)
    return np.where(emergency | ~in_grid, DEPARTMENT, kind)


def draw_cases(rng, reports, cats, model, cal, rules, end_s):
    """Each report's case, acted on as the live workflow allows, up to ``end_s``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The history's generator, drawn from in a fixed order: same state, same cases.
    reports : Reports
        The reports, oldest first.
    cats : gis.demo_history.Categories
        The subclasses (time limits and their basis, departments, emergencies); ``reports.category`` indexes
        them.
    model : gis.demo_history.LocationModel
        The unit grids the reports were drawn in, and their workers' names.
    cal : gis.work_calendar.WorkCalendar
        The one deadlines count on.
    rules : gis.cases.Rules
        The tick's margin and the longest extension.
    end_s : int
        Seconds since the epoch: nothing happens after it.

    Returns
    -------
    pandas.DataFrame
        The events: :data:`EVENT_COLUMNS`, ``order`` and ``handling_h``, in order of row and seq; times as int64
        seconds (:data:`NO_TIME` for none), levels as indices of :data:`LEVELS`.
    """
    x = reports
    n = len(x.reported)
    depts = np.unique(cats.departments)
    catch_all = int(np.searchsorted(depts, CATCH_ALL_DEPARTMENT)) if CATCH_ALL_DEPARTMENT in depts else -1
    working, limit = cats.working[x.category], cats.limit_h[x.category]
    own_dept = np.searchsorted(depts, cats.departments[x.category])
    emergency, patrol = cats.emergency[x.category], ~cats.complaint[x.category]
    people = _People(model, rng, n, depts)
    # the performance of the units: each street (its grids and communities share it, the grids differ a
    # little) and each department; index -1 (no street, no grid) is a middling one
    street_q = np.append(rng.normal(size=max(x.street.max(initial=-1) + 1, 0)), 0.0)
    cell_q = np.append(rng.normal(scale=CELL_SPREAD, size=len(model.geoms)), 0.0)
    dept_q = rng.normal(size=len(depts))
    ev = _Events()

    void = rng.random(n) < VOID_SHARE
    stuck = np.where(rng.random(n) < STUCK_SHARE, 1 + rng.choice(4, size=n, p=STUCK_AT), 0)
    escalations = np.where(rng.random(n) < ESCALATE_SHARE, 1 + (rng.random(n) < TWICE_SHARE), 0)
    escalations = np.minimum(escalations, CITY - x.start)
    # the first action: a hotline call or an Open311 request waits longer; emergencies are quick
    first = _add(cal, x.reported, (rng.exponential(np.where(x.manual, 1.5, 0.4)) * np.where(working, 1.0, 0.2)
                                   + 1 / 60), working)
    rows = np.flatnonzero(void)
    reason = _pick(rng, VOID_REASONS, rows.size)
    ev.add(rows, first[rows], "void", "reported", "voided", x.start[rows], x.start[rows], 0,
           **people.platform(rows, x.start[rows], x.cell), reason=reason, note=reason)
    g = np.flatnonzero(~void)
    ev.add(g, first[g], "open", "reported", "opened", x.start[g], x.start[g], 0,
           **people.platform(g, x.start[g], x.cell), note=_pick(rng, OPEN_NOTES, g.size))
    t0, level, left, stuck = first[g], x.start[g], escalations[g], stuck[g]

    segment = 0
    while g.size:  # one level at a time: every case of g was opened at `level` at t0
        order = 1 + 10 * segment
        w, lim = working[g], limit[g]
        up_at = np.full(g.size, NO_TIME)
        # the platform escalates at once; or leaves a case in its queue for good
        at_once = (left > 0) & (rng.random(g.size) < AT_ONCE_SHARE)
        r = np.flatnonzero(at_once)
        up_at[r] = _add(cal, t0[r], rng.exponential(1.5, r.size) + 0.05, w[r])
        reason = _pick(rng, ESCALATE_REASONS, r.size)
        ev.add(g[r], up_at[r], "escalate", "opened", "opened", level[r], level[r] + 1, order,
               **people.platform(g[r], level[r], x.cell), reason=reason, note=reason)
        d = np.flatnonzero(~at_once & ~((left == 0) & (stuck == 1)))
        gd, wd, ld, lvd = g[d], w[d], lim[d], level[d]

        # dispatch: the clock starts
        td = _add(cal, t0[d], rng.exponential(np.where(wd, 0.6, 0.1)) + 1 / 60, wd)
        kind = _dispatch_kind(rng, lvd, patrol[gd], emergency[gd], x.start[gd] == GRID)
        dept = np.where((rng.random(d.size) < CATCH_ALL_SHARE) & (catch_all >= 0), catch_all, own_dept[gd])
        due = _add(cal, td, ld, wd)
        ev.add(gd, td, "dispatch", "opened", "dispatched", lvd, lvd, order + 1,
               **people.platform(gd, lvd, x.cell), note=_pick(rng, DISPATCH_NOTES, d.size),
               unit_kind=np.asarray(UNIT_KINDS, dtype=object)[kind],
               unit_code=np.where(kind == DEPARTMENT, depts[dept], None), due_at=due)
        unit = people.unit(gd, kind, dept, x.cell)
        street = street_q[x.street[gd]]
        quality = np.where(kind == DEPARTMENT, dept_q[dept] + 0.4 * street, street + cell_q[x.cell[gd]])

        # the plan, in hours of the basis after dispatch: start S, extension X, handling H or escalation E
        by_unit = left[d] > 0  # the unit finds it beyond its authority and escalates
        hold = np.where(by_unit, 0, stuck[d])  # 2: never started, 3: never handled, 4: never closed
        on_time = rng.random(d.size) < _expit(_logit(ON_TIME) + SPREAD * quality + FOLLOWED_UP * (segment > 0))
        extend = ~by_unit & (hold == 0) & (rng.random(d.size) < _expit(_logit(EXTEND) - 0.6 * quality))
        rework = ~by_unit & (hold == 0) & (rng.random(d.size) < _expit(_logit(REWORK) - 0.6 * quality))
        extra = np.minimum(ld * rng.uniform(0.5, 1.5, d.size), rules.max_extension_h)
        h = np.where(on_time, ld * np.maximum(rng.beta(2.0, 1.5, d.size), 0.02),
                     ld + rng.exponential(np.minimum(0.6 * ld, LATE_MEAN_H)) + 0.02)
        h = np.where(extend, ld + extra * rng.uniform(0.1, 1.15, d.size), h)
        s = rng.uniform(0.05, 0.4, d.size) * np.minimum(h, ld)
        xh = s + rng.uniform(0.2, 0.9, d.size) * (ld - s)
        e = ld * rng.uniform(0.1, 0.8, d.size)
        started = (hold != 2) & ~(by_unit & (e < s))
        handled = ~by_unit & (hold != 2) & (hold != 3)

        ts = _add(cal, td, s, wd)
        r = np.flatnonzero(started)
        gps = _gps(rng, x, gd[r])
        ev.add(gd[r], ts[r], "start", "dispatched", "in_progress", lvd[r], lvd[r], order + 2,
               **_at(unit, r), note=_pick(rng, START_NOTES, r.size), **gps)
        r = np.flatnonzero(extend)
        deadline = due.copy()
        deadline[r] = _add(cal, td[r], ld[r] + extra[r], wd[r])
        reason = _pick(rng, EXTEND_REASONS, r.size)
        approver = np.minimum(lvd[r] + 1, CITY)
        ev.add(gd[r], _add(cal, td[r], xh[r], wd[r]), "extend", "in_progress", "in_progress", lvd[r], lvd[r],
               order + 3, **_at(unit, r), note=reason, reason=reason, due_at=deadline[r], previous_due_at=due[r],
               approved_by=people.platform(gd[r], approver, x.cell)["actor"],
               approver_post=np.asarray(PLATFORM_POSTS, dtype=object)[approver])
        # the unit escalates
        r = np.flatnonzero(by_unit)
        te = _add(cal, td[r], e[r], wd[r])
        reason = _pick(rng, ESCALATE_REASONS, r.size)
        state = np.where(started[r], "in_progress", "dispatched")
        ev.add(gd[r], te, "escalate", state, "opened", lvd[r], lvd[r] + 1, order + 4, **_at(unit, r),
               note=reason, reason=reason)
        up_at[d[r]] = te
        # the tick escalates a case overdue by more than its margin, unless the city platform holds it
        tick = _add(cal, deadline, rules.escalate_after_h, wd) + rng.integers(1, TICK_EVERY_S, d.size)
        th = np.full(d.size, np.iinfo(np.int64).max)
        th[handled] = _add(cal, td[handled], h[handled], wd[handled])
        late = ~by_unit & (lvd < CITY) & (th > tick)
        r = np.flatnonzero(late)
        _tick(ev, cal, rules, gd[r], tick[r], deadline[r], wd[r], started[r], lvd[r], order + 4)
        up_at[d[r]] = tick[r]
        handled &= ~late
        r = np.flatnonzero(handled)
        gps = _gps(rng, x, gd[r])
        ev.add(gd[r], th[r], "handle", "in_progress", "handled", lvd[r], lvd[r], order + 4, **_at(unit, r),
               note=_handle_notes(rng, cats.class_codes[x.category[gd[r]]]), **gps,
               handling_h=_hours(cal, td[r], th[r], wd[r]))

        # verification: back to the unit once in a while (the clock keeps running from the dispatch)
        rework &= handled
        r = np.flatnonzero(rework)
        tr = _add(cal, th[r], rng.exponential(np.where(wd[r], 2.0, 0.5)) + 0.05, wd[r])
        reason = _pick(rng, REWORK_REASONS, r.size)
        ev.add(gd[r], tr, "rework", "handled", "dispatched", lvd[r], lvd[r], order + 5,
               **people.platform(gd[r], lvd[r], x.cell), note=reason, reason=reason)
        again = ld[r] * rng.uniform(0.15, 0.6, r.size) + 0.05
        ts2 = _add(cal, tr, again * rng.uniform(0.05, 0.4, r.size), wd[r])
        th2 = _add(cal, tr, again, wd[r])
        tick2 = np.maximum(tick[r], tr + rng.integers(1, TICK_EVERY_S, r.size))
        late2 = (lvd[r] < CITY) & (th2 > tick2)
        begun = ~late2 | (ts2 <= tick2)
        gps = _gps(rng, x, gd[r])
        ev.add(gd[r][begun], ts2[begun], "start", "dispatched", "in_progress", lvd[r][begun], lvd[r][begun],
               order + 6, **_at(unit, r[begun]), note=_pick(rng, START_NOTES, begun.sum()), **_at(gps, begun))
        q = np.flatnonzero(late2)
        _tick(ev, cal, rules, gd[r][q], tick2[q], deadline[r][q], wd[r][q], begun[q], lvd[r][q], order + 7)
        up_at[d[r][q]] = tick2[q]
        handled[r[q]] = False
        q = np.flatnonzero(~late2)
        th[r[q]] = th2[q]
        gps = _gps(rng, x, gd[r][q])
        ev.add(gd[r][q], th2[q], "handle", "in_progress", "handled", lvd[r][q], lvd[r][q], order + 7,
               **_at(unit, r[q]), note=_handle_notes(rng, cats.class_codes[x.category[gd[r][q]]]), **gps,
               handling_h=_hours(cal, td[r][q], th2[q], wd[r][q]))
        # closed after verification, unless nobody ever comes to verify
        r = np.flatnonzero(handled & (hold != 4))
        tc = _add(cal, th[r], rng.exponential(np.where(wd[r], 2.5, 0.8)) + 0.05, wd[r])
        ev.add(gd[r], tc, "close", "handled", "closed", lvd[r], lvd[r], order + 8,
               **people.platform(gd[r], lvd[r], x.cell), note=_pick(rng, CLOSE_NOTES, r.size),
               on_time=th[r] <= deadline[r])

        # escalated cases go on at the next level; one the tick moved up is dealt with there
        r = np.flatnonzero(up_at != NO_TIME)
        by_hand = at_once.copy()
        by_hand[d] |= by_unit
        g, t0, level = g[r], up_at[r], level[r] + 1
        left, stuck = left[r] - by_hand[r], np.where(by_hand[r], stuck[r], 0)
        segment += 1
    return ev.frame(end_s)


def _at(fields, r):
    """The rows ``r`` of every array in ``fields`` (scalars as they are)."""
    return {k: (v[r] if isinstance(v, np.ndarray) else v) for k, v in fields.items()}


def _tick(ev, cal, rules, rows, at, deadline, working, started, level, order):
    """The tick's escalation of overdue cases: the system acts, with the reason gis.cases gives."""
    hours = _hours(cal, deadline, at, working)
    reason = np.array([f"overdue by {h:.1f} {'working' if w else 'calendar'} hours "
                       f"(more than {rules.escalate_after_h:g}): escalated automatically"
                       for h, w in zip(hours, working)], dtype=object)
    ev.add(rows, at, "escalate", np.where(started, "in_progress", "dispatched"), "opened", level, level + 1,
           order, **_People.system(len(rows)), reason=reason, note="")


def _gps(rng, x, rows):
    """Where the phones of the people at work said they were: near the report, for most of them."""
    n = len(rows)
    fixed = rng.random(n) < GPS_SHARE
    dx, dy = rng.normal(0.0, 12.0, n), rng.normal(0.0, 12.0, n)
    accuracy = np.round(np.clip(np.exp(rng.normal(np.log(8.0), 0.4, n)), 3.0, 40.0), 1)
    lon = x.lon[rows] + dx / (M_PER_DEG * np.cos(np.radians(x.lat[rows])))
    return {"lon": np.where(fixed, np.round(lon, 7), np.nan),
            "lat": np.where(fixed, np.round(x.lat[rows] + dy / M_PER_DEG, 7), np.nan),
            "accuracy_m": np.where(fixed, accuracy, np.nan)}


def _handle_notes(rng, class_codes):
    k = rng.integers(0, 3, size=len(class_codes))
    return np.array([HANDLE_NOTES.get(c, HANDLE_NOTES["99"])[i] for c, i in zip(class_codes, k)], dtype=object)


# --- the case columns after the events ----------------------------------------------------------------------

def last_of(rows, mask, first=False):
    """Positions of the last (or first) event of each row among those where ``mask`` holds; the events are
    in order of row and seq."""
    pos = np.flatnonzero(mask)
    r = rows[pos]
    if first:
        return pos[np.r_[True, r[1:] != r[:-1]]] if pos.size else pos
    return pos[np.r_[r[1:] != r[:-1], True]] if pos.size else pos


def case_columns(events, reported):
    """The case columns of each incident after its events (as gis.cases sets them), and its status."""
    n = len(reported)
    rows, seq = events["row"].to_numpy(), events["seq"].to_numpy()
    action, at = events["action"].to_numpy(), events["at"].to_numpy()
    out = {"status": np.full(n, "reported", dtype=object), "status_changed_at": reported.copy()}
    last = last_of(rows, np.ones(len(rows), bool))
    out["status"][rows[last]] = events["to_state"].to_numpy()[last]
    out["case_level"] = np.full(n, None, dtype=object)
    out["case_level"][rows[last]] = np.asarray(LEVELS, dtype=object)[events["to_level"].to_numpy(dtype=int)[last]]
    out["case_version"] = np.zeros(n, dtype=np.int64)
    out["case_version"][rows[last]] = seq[last]
    p = last_of(rows, events["from_state"].to_numpy() != events["to_state"].to_numpy())
    out["status_changed_at"][rows[p]] = at[p]

    def latest(*actions, after=None):
        """Rows and positions of each incident's latest event of ``actions`` later than seq ``after``."""
        p = last_of(rows, np.isin(action, actions))
        if after is not None:
            p = p[seq[p] > after[rows[p]]]
        return rows[p], p

    escalated = np.zeros(n, dtype=np.int64)
    r, p = latest("escalate")
    escalated[r] = seq[p]
    reworked = np.zeros(n, dtype=np.int64)
    r, p = latest("rework")
    reworked[r] = seq[p]
    for name in ("opened_at", "first_dispatched_at", "dispatched_at", "due_at", "handled_at", "closed_at"):
        out[name] = np.full(n, NO_TIME)
    for name in ("unit_kind", "unit_code"):
        out[name] = np.full(n, None, dtype=object)
    out["handling_h"] = np.full(n, np.nan)
    r, p = latest("open")
    out["opened_at"][r] = at[p]
    p = last_of(rows, action == "dispatch", first=True)
    out["first_dispatched_at"][rows[p]] = at[p]
    r, p = latest("dispatch", after=escalated)  # an escalation clears the unit and the clock
    out["dispatched_at"][r] = at[p]
    out["unit_kind"][r] = events["unit_kind"].to_numpy()[p]
    out["unit_code"][r] = events["unit_code"].to_numpy()[p]
    r, p = latest("dispatch", "extend", after=escalated)
    out["due_at"][r] = events["due_at"].to_numpy()[p]
    r, p = latest("handle", after=reworked)  # a rework clears the handling time, not the hours
    out["handled_at"][r] = at[p]
    r, p = latest("handle")
    out["handling_h"][r] = np.round(events["handling_h"].to_numpy()[p], 3)
    r, p = latest("close")
    out["closed_at"][r] = at[p]
    for name, what in (("reworks", "rework"), ("extensions", "extend"), ("escalations", "escalate")):
        out[name] = np.bincount(rows[action == what], minlength=n)
    platform = np.isin(out["status"], ("opened", "handled"))
    clock = np.isin(out["status"], ("dispatched", "in_progress"))
    out["holder_kind"] = np.where(platform, out["case_level"], np.where(clock, out["unit_kind"], None))
    return out


# --- where a case starts and who performs how well ----------------------------------------------------------

def street_of_cells(cells):
    """The street of each unit grid, as an index: ``street`` (its code) when the frame has it, else the first
    9 digits of a national 15-digit code, else every grid its own."""
    if "street" in cells:
        key = cells["street"].astype(str).to_numpy()
    elif "code" in cells:
        key = cells["code"].astype(str).str[:9].to_numpy()
    else:
        key = np.arange(len(cells))
    return pd.factorize(key)[0]


def start_levels(model, lon, lat, cell, snap_m):
    """Where routing will put each report, as far as its case cares: its unit grid (-1: none) and the level the
    case starts at — GRID in a grid or within ``snap_m`` of one (the router snaps it), DISTRICT farther out
    (the district platform within 5 km takes it), CITY beyond. Distances in the router's metric."""
    n = len(lon)
    place = np.full(n, -1)
    level = np.full(n, GRID)
    inside = cell >= 0
    inside[inside] = shapely.contains_xy(model.geoms[cell[inside]], lon[inside], lat[inside])
    place[inside] = cell[inside]
    todo = np.flatnonzero(~inside)
    if not todo.size:
        return place, level
    tree = model.tree()
    point, found = tree.query(shapely.points(lon[todo], lat[todo]), predicate="intersects")
    if point.size:  # several on a shared edge: the lowest (the cells come in code order, as the router breaks ties)
        lowest = pd.Series(found).groupby(point).min()
        place[todo[lowest.index.to_numpy()]] = lowest.to_numpy()
    for i in todo[place[todo] < 0]:
        here = shapely.Point(lon[i], lat[i])
        kx = np.cos(np.radians(lat[i])) * M_PER_DEG  # a distance in degrees ≤ metres / kx
        near = (tree.query(here, predicate="dwithin", distance=snap_m / kx) if snap_m >= batch_routing.MIN_RADIUS_M
                else np.empty(0, dtype=int))
        dist = np.array([batch_routing.local_distance_m(model.geoms[c], lon[i], lat[i]) for c in near])
        if near.size and dist.min() <= snap_m:
            place[i] = near[dist == dist.min()].min()
            continue
        near = tree.query_nearest(here, max_distance=batch_routing.QUEUE_M / kx, all_matches=True)
        dist = [batch_routing.local_distance_m(model.geoms[c], lon[i], lat[i]) for c in near]
        level[i] = DISTRICT if near.size and min(dist) <= batch_routing.QUEUE_M else CITY
    return place, level
