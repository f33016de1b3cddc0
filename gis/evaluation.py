"""Evaluation (综合评价): indicators of the case workflow per unit over a period, a composite score, rankings.

Units. ``grid``, ``community``, ``street``, ``district``: every cell of that level of the active grid
version, cases or not, matched to incidents by cell code (an incident routed against an older version
points at that version's cell; the code carries over). ``within=CODE`` keeps the cells under (or equal
to) that cell of the active version. ``department``: every row of ``department``; its cases are those
dispatched to it (``unit_kind = 'department'``, ``unit_code`` its code). ``post``: every person in every
post on a cell of the active version (``cell_staff``), one row each, scored on the cases of that cell at
the cell's own level.

Period. P = [from, to) in China time (Asia/Shanghai); everything is counted as of
``cutoff = min(to, now())``, so "in P" below means ``from <= t < cutoff``.

==================  ===================================================================================
received            reported_at in P
opened              opened_at in P
voided              status = 'voided' and status_changed_at in P
due                 due_at in P (the deadline, extensions included) and status <> 'voided'
closed              closed_at in P
closure_rate        due cases with closed_at < cutoff, over due (closed early or late, but closed)
on_time_rate        due cases closed as above with handled_at <= due_at, over due
rework_rate         due cases with reworks > 0, over due
extension_rate      due cases with extensions > 0, over due
escalations         case_event rows with action 'escalate' and at in P, of the unit's cases
handling_mean_h     mean of handling_h (dispatch to handling, in the subclass's time basis: working hours
                    for most) over the cases closed in P
handling_p90_h      its 90th percentile (percentile_cont)
score               100 × Σ wᵢ·xᵢ / Σ wᵢ over x = closure_rate, on_time_rate, 1 − rework_rate,
                    1 − extension_rate; weights from table ``score_weight`` (0.3, 0.4, 0.2, 0.1 unless
                    changed there), or given per call — then an indicator not named weighs 0
rank                1..n within the level: score descending (units with nothing due have no score and
                    come last), ties by on_time_rate descending, then code (for posts: then name)
==================  ===================================================================================

A rate, and the score, is None when nothing fell due. All figures of a call come from one SQL statement:
the period's cases are read once, as one range of one index that carries the columns the figures need
(sql/008_evaluation.sql), and counted per cell in parallel workers before cells are mapped onto units.

Periods: ``day``, ``week``, ``month``, ``quarter`` (the last complete one before today, China time),
``2026-11-20``, ``2026-W47`` (ISO week, Monday to Monday), ``2026-11``, ``2026-Q4``, or from and to.

>>> period = parse_period("2026-W47")          # Monday 2026-11-16 to Monday 2026-11-23, China time
>>> rows = indicators(cur, "street", period, weights="closure_rate:1,on_time_rate:1")
"""
import csv
import datetime as dt
import io
import math
import re
import unicodedata
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from psycopg2 import sql

from gis.access import CITY_SCOPE
from gis.errors import BadInput, Forbidden, NotFound

CHINA = ZoneInfo("Asia/Shanghai")
AREA_LEVELS = {"district": 0, "street": 1, "community": 2, "grid": 3}
LEVELS = ("grid", "community", "street", "district", "department", "post")
# the score's indicators, each weighted by name; rework and extension count as 1 − rate
SCORE_INDICATORS = ("closure_rate", "on_time_rate", "rework_rate", "extension_rate")
FIGURES = ("received", "opened", "voided", "due", "closed", "closure_rate", "on_time_rate", "rework_rate",
           "extension_rate", "escalations", "handling_mean_h", "handling_p90_h", "score")
POST_FIELDS = ("staff_id", "post", "post_name", "cell_name", "cell_level")
# levels whose units are few enough to count by hashing (see _prepare)
FEW_UNITS = ("district", "street", "community", "department")


@dataclass(frozen=True)
class Period:
    """[start, end) as aware datetimes in China time; ``label`` names it ("2026-W47", "2026-11", ...)."""

    start: dt.datetime
    end: dt.datetime
    label: str


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` found: the rows, ranked, and what they were computed with."""

    level: str
    period: Period
    as_of: dt.datetime  # min(period end, now): the moment the counts describe
    weights: dict
    rows: list


# --- periods ----------------------------------------------------------------------------------------

def parse_period(text=None, *, start=None, end=None, today=None):
    """A :class:`Period` from words or dates, in China time.

    Parameters
    ----------
    text : str, optional
        ``day``, ``week``, ``month``, ``quarter``: the last complete day, Monday–Sunday week, calendar
        month or quarter before ``today``; or ``2026-11-20`` (a day), ``2026-W47`` (an ISO week),
        ``2026-11`` (a month), ``2026-Q4`` (a quarter). Default ``week``.
    start, end : str or date or datetime, optional
        Instead of ``text``: ``from`` and ``to`` (exclusive), dates (midnight China time) or ISO
        date-times (China time unless they carry an offset).
    today : date, optional
        Today in China time (default: the clock's).
    """
    if text and (start is not None or end is not None):
        raise BadInput("give either a period or from and to, not both")
    if start is not None or end is not None:
        if start is None or end is None:
            raise BadInput("from and to go together: give both (to is exclusive)")
        first, last = _moment(start, "from"), _moment(end, "to")
        if first >= last:
            raise BadInput(f"dates in the wrong order: from ({start}) must be before to ({end})")
        return Period(first, last, f"{_iso(start)}/{_iso(end)}")
    text = (text or "week").strip()
    today = today or dt.datetime.now(CHINA).date()
    if text == "day":
        return _days(today - dt.timedelta(days=1), 1, None)
    if text == "week":
        monday = today - dt.timedelta(days=today.weekday() + 7)
        return _days(monday, 7, "{0:%G}-W{0:%V}")
    if text == "month":
        return _month(*_month_before(today.year, today.month))
    if text == "quarter":
        year, quarter = today.year, (today.month - 1) // 3  # the quarter before this one, 1-based
        return _quarter(year - 1, 4) if quarter == 0 else _quarter(year, quarter)
    try:
        if m := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text):
            return _days(dt.date(*map(int, m.groups())), 1, None)
        if m := re.fullmatch(r"(\d{4})-W(\d{2})", text):
            return _days(dt.date.fromisocalendar(int(m[1]), int(m[2]), 1), 7, "{0:%G}-W{0:%V}")
        if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
            return _month(int(m[1]), int(m[2]))
        if m := re.fullmatch(r"(\d{4})-Q([1-4])", text):
            return _quarter(int(m[1]), int(m[2]))
    except ValueError:
        raise BadInput(f"period {text!r} is not a real day, week or month") from None
    raise BadInput(f"period must be day, week, month, quarter, YYYY-MM-DD, YYYY-Www, YYYY-MM or YYYY-Qn; "
                   f"got {text!r}")


def _midnight(day):
    return dt.datetime(day.year, day.month, day.day, tzinfo=CHINA)


def _days(first, n, label):
    return Period(_midnight(first), _midnight(first + dt.timedelta(days=n)),
                  label.format(first) if label else first.isoformat())


def _month_before(year, month):
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _month(year, month):
    if not 1 <= month <= 12:
        raise ValueError(month)
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    return Period(_midnight(dt.date(year, month, 1)), _midnight(dt.date(*following, 1)), f"{year}-{month:02d}")


def _quarter(year, quarter):
    first = dt.date(year, 3 * quarter - 2, 1)
    following = dt.date(year + 1, 1, 1) if quarter == 4 else dt.date(year, 3 * quarter + 1, 1)
    return Period(_midnight(first), _midnight(following), f"{year}-Q{quarter}")


def _moment(value, name):
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        return _midnight(value)
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise BadInput(f"{name} must be a date YYYY-MM-DD or an ISO date-time; got {value!r}") from None
    return moment.replace(tzinfo=CHINA) if moment.tzinfo is None else moment


def _iso(value):
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value).strip()


# --- weights ----------------------------------------------------------------------------------------

def parse_weights(text):
    """``"closure_rate:0.5,on_time_rate:0.5"`` → a dict of all four weights (those not named: 0)."""
    weights = {}
    for part in str(text).split(","):
        name, sep, value = part.partition(":")
        name = name.strip()
        if not sep or not name:
            raise BadInput(f"weights must look like closure_rate:0.5,on_time_rate:0.5; got {text!r}")
        if name in weights:
            raise BadInput(f"weight of {name} given twice")
        try:
            weights[name] = float(value)
        except ValueError:
            raise BadInput(f"weight of {name} must be a number; got {value.strip()!r}") from None
    return check_weights(weights)


def check_weights(weights):
    """Every name known, every weight a finite number ≥ 0, not all 0; returns all four as floats."""
    unknown = sorted(set(weights) - set(SCORE_INDICATORS))
    if unknown:
        raise BadInput(f"unknown indicator(s) in weights: {', '.join(unknown)}; "
                       f"the score weighs {', '.join(SCORE_INDICATORS)}")
    out = {}
    for name in SCORE_INDICATORS:
        value = weights.get(name, 0)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise BadInput(f"weight of {name} must be a number; got {value!r}") from None
        if not (math.isfinite(value) and value >= 0):
            raise BadInput(f"weight of {name} must be a number ≥ 0; got {value}")
        out[name] = value
    if not any(out.values()):
        raise BadInput("the weights are all 0: give at least one a positive weight")
    return out


def stored_weights(cur):
    """The weights of table score_weight."""
    cur.execute("select indicator, weight from score_weight")
    return check_weights({r["indicator"]: r["weight"] for r in cur.fetchall()})


# --- the aggregate ----------------------------------------------------------------------------------

# One statement. `counted` reads the period's cases once, through incident_case_span_idx (an index-only
# scan: sql/008_evaluation.sql says why) and counts them per cell as the incidents name it (or per
# department), in parallel workers; only then are cells mapped onto units, so that the unit mapping
# works on a few thousand rows, not on a million. handling_h values are gathered as arrays
# (real_array_agg can run in parallel, unlike percentile_cont) and the 90th percentile of each unit is
# taken from its array at the end.
_QUERY = """
with recursive
within_tree as (  -- the cell named by within and every cell below it, down to the units' level
    select id, level from grid_cell where id = %(within)s
    union all
    select c.id, c.level from grid_cell c join within_tree t on c.parent_id = t.id where t.level < %(depth)s
),
{units},
counted as (
    select {cell_names},
           count(*) filter (where is_received) as received,
           count(*) filter (where is_opened) as opened,
           count(*) filter (where is_voided) as voided,
           count(*) filter (where is_due) as due,
           count(*) filter (where is_closed) as closed,
           count(*) filter (where is_due and closed_by_cutoff) as due_closed,
           count(*) filter (where is_due and closed_by_cutoff and handled_in_time) as due_on_time,
           count(*) filter (where is_due and reworked) as due_reworked,
           count(*) filter (where is_due and extended) as due_extended,
           sum(handling_h::float8) filter (where is_closed) as handling_sum,
           count(handling_h) filter (where is_closed) as handling_n,
           real_array_agg(handling_h) filter (where is_closed and handling_h is not null) as handling_values
      from (select {cells},
                   i.reported_at >= %(start)s and i.reported_at < %(cutoff)s as is_received,
                   i.opened_at >= %(start)s and i.opened_at < %(cutoff)s as is_opened,
                   i.status = 'voided' and i.status_changed_at >= %(start)s
                       and i.status_changed_at < %(cutoff)s as is_voided,
                   i.due_at >= %(start)s and i.due_at < %(cutoff)s and i.status <> 'voided' as is_due,
                   i.closed_at >= %(start)s and i.closed_at < %(cutoff)s as is_closed,
                   i.closed_at < %(cutoff)s as closed_by_cutoff,
                   i.handled_at <= i.due_at as handled_in_time,
                   i.reworks > 0 as reworked,
                   i.extensions > 0 as extended,
                   i.handling_h
              from incident i
             -- a case counts when one of its times is in [start, cutoff): its latest is at or after
             -- start and its earliest before cutoff (the first condition is the index's key)
             where greatest(i.reported_at, i.status_changed_at, i.opened_at, i.due_at, i.closed_at) >= %(start)s
               and least(i.reported_at, i.status_changed_at, i.opened_at, i.due_at, i.closed_at) < %(cutoff)s
               {only}) f
     group by {cell_names}
),
escalated as (  -- their cases looked up in id order: neighbours share pages (0.11 s against 0.15 s, 19,000)
    select {cells}, count(*) as escalations
      from (select e.incident_id from case_event e
             where e.action = 'escalate' and e.at >= %(start)s and e.at < %(cutoff)s
             order by e.incident_id offset 0) e
      join incident i on i.id = e.incident_id
     where true {only}
     group by {cell_names}
),
per_unit as (
    select uc.key, sum(c.received) as received, sum(c.opened) as opened, sum(c.voided) as voided,
           sum(c.due) as due, sum(c.closed) as closed, sum(c.due_closed) as due_closed,
           sum(c.due_on_time) as due_on_time, sum(c.due_reworked) as due_reworked,
           sum(c.due_extended) as due_extended, sum(c.handling_sum) / nullif(sum(c.handling_n), 0) as handling_mean_h,
           real_array_concat(c.handling_values) as handling_values
      from counted c {to_unit}
     group by uc.key
),
figure as materialized (  -- materialized: the percentile once per unit, not once per person of a post
    select p.*, (select percentile_cont(0.9) within group (order by v)
                   from (select unnest(p.handling_values) as v) s) as handling_p90_h
      from per_unit p
),
escalation as (
    select uc.key, sum(c.escalations) as escalations from escalated c {to_unit} group by uc.key
)
select {columns},
       coalesce(f.received, 0)::int as received, coalesce(f.opened, 0)::int as opened,
       coalesce(f.voided, 0)::int as voided, coalesce(f.due, 0)::int as due, coalesce(f.closed, 0)::int as closed,
       coalesce(f.due_closed, 0)::int as due_closed, coalesce(f.due_on_time, 0)::int as due_on_time,
       coalesce(f.due_reworked, 0)::int as due_reworked, coalesce(f.due_extended, 0)::int as due_extended,
       coalesce(e.escalations, 0)::int as escalations, f.handling_mean_h, f.handling_p90_h
  from {rows}
  left join figure f on f.key = u.key
  left join escalation e on e.key = u.key
"""

# Cells of the active version as units; unit_cell maps every cell of any version with the same level and
# code (what older incidents were routed to) onto them.
_AREA_UNITS = """
unit as (
    select c.id as key, c.code, c.name, c.level from grid_cell c
     where c.version_id = %(version)s and c.level = %(depth)s
       and (%(within)s::bigint is null or c.id in (select id from within_tree))
),
unit_cell as (
    select c.id, u.key from unit u join grid_cell c on c.code = u.code and c.level = u.level
)"""

# Posts: the staffed cells of the active version, each at its own level.
_POST_UNITS = """
unit as (
    select distinct c.id as key, c.code, c.name, c.level from cell_staff s join grid_cell c on c.id = s.cell_id
     where c.version_id = %(version)s
       and (%(within)s::bigint is null or c.id in (select id from within_tree))
),
unit_cell as (
    select c.id, u.key from unit u join grid_cell c on c.code = u.code and c.level = u.level
)"""

_DEPARTMENT_UNITS = """
unit as (select code as key, code, name_zh as name from department),
unit_cell as (select key as id, key from unit)"""

_ALL_LEVELS = "i.district_id, i.street_id, i.community_id, i.grid_id"


def _query(level):
    if level in AREA_LEVELS:
        column = ("district_id", "street_id", "community_id", "grid_id")[AREA_LEVELS[level]]
        parts = dict(units=_AREA_UNITS, cells=f"i.{column} as cell", only="",
                     to_unit="join unit_cell uc on uc.id = c.cell", rows="unit u", columns="u.code, u.name")
    elif level == "department":
        parts = dict(units=_DEPARTMENT_UNITS, cells="i.unit_code as cell", only="and i.unit_kind = 'department'",
                     to_unit="join unit_cell uc on uc.id = c.cell", rows="unit u", columns="u.code, u.name")
    else:
        parts = dict(
            units=_POST_UNITS, cells=_ALL_LEVELS, only="",
            # a case counts for the staffed cell at each of its levels
            to_unit="cross join lateral (values (c.district_id), (c.street_id), (c.community_id), (c.grid_id))"
                    " as r (cell) join unit_cell uc on uc.id = r.cell",
            rows="unit u join cell_staff cs on cs.cell_id = u.key join staff s on s.id = cs.staff_id"
                 " join post p on p.code = cs.post",
            columns="u.code, s.name, s.id as staff_id, cs.post, p.name_zh as post_name, u.name as cell_name,"
                    " u.level as cell_level")
    # what the cells are called once selected: grouped by, and read by to_unit
    parts["cell_names"] = "cell" if parts["cells"].endswith(" as cell") else _ALL_LEVELS.replace("i.", "")
    return sql.SQL(_QUERY).format(**{k: sql.SQL(v) for k, v in parts.items()})


def evaluate(cur, level, period, *, within=None, weights=None, as_of=None, scope=CITY_SCOPE):
    """Indicators, score and rank of every unit of ``level`` over ``period``: an :class:`Evaluation`.

    Parameters
    ----------
    cur : a RealDictCursor
    level : str
        ``grid``, ``community``, ``street``, ``district``, ``department`` or ``post``.
    period : Period
    within : str, optional
        A cell code of the active version: only units under (or equal to) it (areas and posts).
    weights : str or dict, optional
        ``"closure_rate:0.5,on_time_rate:0.5"`` or a dict; default: table score_weight.
    as_of : datetime, optional
        Count as of this moment instead of now (the cutoff is min(period end, as_of)).
    scope : gis.access.Scope
        Whose evaluation: a department sees its own row of the department ranking (with its rank among
        all); a district, street or community the units inside it, at its level or below.
    """
    if level not in LEVELS:
        raise BadInput(f"level must be one of {', '.join(LEVELS)}; got {level!r}")
    within = _scoped_within(cur, level, within, scope)
    if weights is None:
        weights = stored_weights(cur)
    else:
        weights = parse_weights(weights) if isinstance(weights, str) else check_weights(weights)
    query, params = _prepare(cur, level, period, within, as_of)
    cur.execute(query, params)
    rows = [_finish(dict(r), level, weights) for r in cur.fetchall()]
    rows.sort(key=_ranking)
    for n, row in enumerate(rows, start=1):
        row["rank"] = n
    if scope.department is not None:
        rows = [row for row in rows if row["code"] == scope.department]
    return Evaluation(level, period, params["cutoff"], weights, [_ordered(r, level) for r in rows])


def indicators(cur, level, period, *, within=None, weights=None, as_of=None):
    """The rows of :func:`evaluate`: one dict per unit, ranked (rank 1 first)."""
    return evaluate(cur, level, period, within=within, weights=weights, as_of=as_of).rows


def explain(cur, level, period, *, within=None, as_of=None, analyze=False):
    """The plan of the evaluation query (EXPLAIN, or EXPLAIN ANALYZE), as lines: for benchmarks and for
    finding out why a database is slow."""
    if level not in LEVELS:
        raise BadInput(f"level must be one of {', '.join(LEVELS)}; got {level!r}")
    query, params = _prepare(cur, level, period, within, as_of)
    cur.execute(sql.SQL("explain (analyze) " if analyze else "explain ") + query, params)
    return [next(iter(r.values())) for r in cur.fetchall()]


def _prepare(cur, level, period, within, as_of):
    # For this transaction (measured on a month of 1,000,000 cases, bench/bench_stats.py): compiling the
    # aggregate's expressions (JIT) costs 0.3 s and saves less; the arrays of handling times want more
    # than the default 4 MB to stay in memory; and PostgreSQL's default random_page_cost (4, for spinning
    # disks) prices the index-only scan of a month above a parallel scan of the whole table, which is
    # 1.6× slower when the table is in memory, as a live one is. The levels of tens of thousands of units
    # (grid, post) are counted by sorting rather than hashing: PostgreSQL 15's hash aggregation walks the
    # memory of every group's array each time it adds a group, quadratic in the number of groups (12 s for
    # the 25,708 unit grids of the demo, 3.6 s sorted; the 3,306 communities hash faster than they sort).
    cur.execute("select now() as now, set_config('jit', 'off', true), set_config('work_mem', '64MB', true),"
                " set_config('random_page_cost', '1.1', true), set_config('enable_hashagg', %s, true)",
                ("on" if level in FEW_UNITS else "off",))
    now = cur.fetchone()["now"]
    cutoff = max(period.start, min(period.end, now if as_of is None else as_of))
    params = dict(start=period.start, cutoff=cutoff, version=None, within=None, depth=AREA_LEVELS.get(level, 3))
    if level == "department":
        if within:
            raise BadInput("within applies to areas and posts, not to departments")
    else:
        cur.execute("select id from grid_version where status = 'active'")
        version = cur.fetchone()
        if version is None:
            raise NotFound("no grid version is active: there are no areas or posts to evaluate")
        params["version"] = version["id"]
        if within:
            params["within"] = _within_cell(cur, version["id"], within, level)
    return _query(level), params


def _within_cell(cur, version_id, code, level):
    cur.execute("select id, level, name from grid_cell where version_id = %s and code = %s",
                (version_id, str(code).strip()))
    cell = cur.fetchone()
    if cell is None:
        raise NotFound(f"within: no cell with code {code!r} in the active grid version")
    if level in AREA_LEVELS and cell["level"] > AREA_LEVELS[level]:
        raise BadInput(f"within: {code} ({cell['name']}) is below the {level} level; it holds no {level} units")
    return cell["id"]


def _scoped_within(cur, level, within, scope):
    """The ``within`` a scope allows (its own cell by default); Forbidden for levels it may not rank."""
    if scope.department is not None:
        if level != "department":
            raise Forbidden(f"a department's handlers see the department ranking only (level=department); "
                            f"your scope is {scope}")
        return within
    if scope.is_city:
        return within
    if level == "department":
        raise Forbidden(f"the department ranking is city-wide; your scope is {scope}")
    if level in AREA_LEVELS and AREA_LEVELS[level] < scope.level:
        raise Forbidden(f"your scope is {scope}: rank units at its level or below, not {level}s")
    if within is None:
        return scope.code
    cur.execute("select id from grid_version where status = 'active'")
    active = cur.fetchone()
    if active is not None:
        scope.require_cell(cur, active["id"], str(within).strip())
    return within


def _finish(row, level, weights):
    due = row.pop("due")
    counts = {k: row.pop(k) for k in ("due_closed", "due_on_time", "due_reworked", "due_extended")}
    rate = (lambda n: n / due) if due else (lambda n: None)
    row.update(due=due, closure_rate=rate(counts["due_closed"]), on_time_rate=rate(counts["due_on_time"]),
               rework_rate=rate(counts["due_reworked"]), extension_rate=rate(counts["due_extended"]))
    row["kind"] = level
    row["score"] = None
    if due:
        x = {"closure_rate": row["closure_rate"], "on_time_rate": row["on_time_rate"],
             "rework_rate": 1 - row["rework_rate"], "extension_rate": 1 - row["extension_rate"]}
        # rounded, so that units that look tied are tied and the documented tie-break decides
        row["score"] = round(100 * sum(w * x[k] for k, w in weights.items()) / sum(weights.values()), 4)
    return row


def _ranking(row):
    unscored = row["score"] is None
    return (unscored, 0 if unscored else -row["score"], row["on_time_rate"] is None, -(row["on_time_rate"] or 0),
            row["code"], row["name"], row.get("staff_id") or 0)


def _ordered(row, level):
    head = ["rank", "kind", "code", "name", *(POST_FIELDS if level == "post" else ())]
    return {k: row[k] for k in (*head, *FIGURES)}


# --- output -----------------------------------------------------------------------------------------

def columns(level):
    """The columns of a level's rows, in order."""
    return ["rank", "kind", "code", "name", *(POST_FIELDS if level == "post" else ()), *FIGURES]


def to_csv(rows, level):
    """The rows as CSV text with a header row (rates as fractions, empty when nothing fell due)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns(level))
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in columns(level)])
    return out.getvalue()


def write_xlsx(rows, level, path, *, title=None):
    """The rows as an Excel workbook at ``path``: one sheet, a frozen header, rates as percentages."""
    from openpyxl import Workbook  # only this needs it

    book = Workbook()
    sheet = book.active
    sheet.title = (title or level)[:31].replace("/", " ")  # Excel's limit and forbidden character
    names = columns(level)
    sheet.append(names)
    for row in rows:
        sheet.append([row[c] for c in names])
    for j, name in enumerate(names, start=1):
        fmt = "0.0%" if name.endswith("_rate") else "0.0" if name in ("score", "handling_mean_h",
                                                                      "handling_p90_h") else None
        if fmt:
            for cell in sheet.iter_rows(min_row=2, min_col=j, max_col=j):
                cell[0].number_format = fmt
    sheet.freeze_panes = "A2"
    book.save(path)


def format_table(rows, level):
    """An aligned text table of the rows, for a terminal (Chinese names count as two columns)."""
    head = ["rank", "code", "name", *(("post",) if level == "post" else ()), "received", "due", "closed",
            "closure", "on-time", "rework", "extension", "score"]
    body = []
    for r in rows:
        body.append([str(r["rank"]), r["code"], r["name"], *((r["post_name"],) if level == "post" else ()),
                     str(r["received"]), str(r["due"]), str(r["closed"]),
                     *(_percent(r[k]) for k in ("closure_rate", "on_time_rate", "rework_rate", "extension_rate")),
                     "—" if r["score"] is None else f"{r['score']:.1f}"])
    widths = [max(map(_width, col)) for col in zip(head, *body)]
    text_columns = {1, 2, 3} if level == "post" else {1, 2}
    lines = []
    for cells in [head, *body]:
        lines.append("  ".join(_pad(c, w, left=j in text_columns) for j, (c, w) in enumerate(zip(cells, widths)))
                     .rstrip())
    return "\n".join(lines) + "\n"


def _percent(value):
    return "—" if value is None else f"{100 * value:.1f}%"


def _width(text):
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text, width, *, left):
    fill = " " * (width - _width(text))
    return text + fill if left else fill + text
