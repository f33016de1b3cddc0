"""Evaluation of one month of 1,000,000 cases at street level (gis/evaluation.py, one SQL aggregate), against
pandas computing the same indicators from the rows fetched from the database (COPY → read_csv, groupby),
in the same run on the same data; the two answers are compared figure by figure.

The data: the Zhengzhou demo grid, and 1,000,000 incidents reported over the last complete month (China
time) and as many over the month before (so that the month is half the table, as in a live one), each with
a plausible case history as it stood a week after the month: most closed, some late, reworked, extended or
escalated, a few voided or still open. Loaded with COPY."""
import datetime as dt
import io
import os
import statistics
import time

import numpy as np
import pandas as pd

from gis import evaluation
from gis.demo_load import load_demo
from gis.settings import Settings

N_INCIDENTS = 1_000_000
RUNS = 5
TARGET_S = 1.0
SEED = 5
CHUNK = 250_000


def run(db, rows):
    load_demo(db, Settings.from_env(), echo=lambda line: print("  " + line))  # at once if loaded already
    period = evaluation.parse_period("month")
    before = evaluation.parse_period(f"{period.start - dt.timedelta(days=1):%Y-%m}")
    t0 = time.perf_counter()
    escalations = _load(db, [before, period])
    print(f"  {N_INCIDENTS:,} incidents in each of {before.label} and {period.label} ({escalations:,} escalations)"
          f" loaded in {time.perf_counter() - t0:.0f} s")
    with db.cursor() as cur:
        plan = evaluation.explain(cur, "street", period)
    print("  plan: " + "; ".join(line.strip() for line in plan if "Scan on incident" in line or "Scan using" in line
                                 and " on incident" in line))

    load = os.getloadavg()[0]
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        with db.cursor() as cur:
            ours = evaluation.indicators(cur, "street", period)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print(f"  GridMap: {len(ours)} streets of {period.label} in {median:.3f} s (median of {RUNS}: "
          f"{', '.join(f'{t:.3f}' for t in times)}; load average {load:.1f} on {os.cpu_count()} cores)")

    peer_times = []
    for _ in range(3):
        t0 = time.perf_counter()
        theirs = _pandas(db, period)
        peer_times.append(time.perf_counter() - t0)
    peer = statistics.median(peer_times)
    differences = _compare(ours, theirs)
    print(f"  pandas (COPY → read_csv, groupby): {peer:.3f} s (median of 3); {differences} figure(s) differ")
    rows.append(dict(name="evaluation, 1M cases in a month, street level", figure=median, unit="s",
                     peer="pandas: the period's rows fetched (COPY → read_csv) + groupby", peer_figure=peer,
                     ratio=median / peer, target=f"< {TARGET_S:g} s", met=median < TARGET_S))
    rows.append(dict(name="evaluation, figures differing from pandas", figure=differences, unit="",
                     peer=None, peer_figure=None, ratio=None, target="0", met=differences == 0))


def _load(db, periods):
    """N_INCIDENTS incidents reported in each period, with their case columns and escalation events;
    the table's own indexes are dropped for the load and built again afterwards, as a bulk load would."""
    rng = np.random.default_rng(SEED)
    with db.cursor() as cur:
        cur.execute("truncate case_event, incident_routing, incident restart identity cascade")
        cur.execute("""select g.id as grid, c.id as community, s.id as street, s.parent_id as district,
                              g.code as grid_code, c.code as community_code, s.code as street_code,
                              ST_X(ST_PointOnSurface(g.geom)) as lon, ST_Y(ST_PointOnSurface(g.geom)) as lat,
                              v.id as version
                         from grid_cell g join grid_version v on v.id = g.version_id and v.status = 'active'
                         join grid_cell c on c.id = g.parent_id join grid_cell s on s.id = c.parent_id
                        where g.level = 3 order by g.code""")
        cells = pd.DataFrame(cur.fetchall())
        cur.execute("select code, time_limit_hours::float as limit_h, time_basis, department_code"
                    " from event_subclass where in_service order by code")
        classes = pd.DataFrame(cur.fetchall())
        cur.execute("""select indexrelid::regclass::text as name, pg_get_indexdef(indexrelid) as definition
                         from pg_index x where indrelid = 'incident'::regclass
                          and not exists (select from pg_constraint c where c.conindid = x.indexrelid)""")
        indexes = cur.fetchall()
    snapshot = _utc(periods[-1].end) + np.timedelta64(7, "D")  # the cases as they stood a week later
    escalations = 0
    with db.connection() as conn, conn.cursor() as cur:
        for index in indexes:
            cur.execute(f"drop index {index['name']}")
        first_id = 1  # identities start at 1 after the truncate
        for period in periods:
            frame, events = _cases(rng, cells, classes, period, snapshot, first_id)
            for first in range(0, len(frame), CHUNK):
                _copy(cur, "incident", frame.iloc[first:first + CHUNK])
            _copy(cur, "case_event", events)
            first_id += len(frame)
            escalations += len(events)
        for index in indexes:
            cur.execute(index["definition"])
    with db.cursor(autocommit=True) as cur:
        cur.execute("vacuum analyze incident")  # as a live table would be: statistics and a visibility map
        cur.execute("vacuum analyze case_event")
    return escalations


def _copy(cur, table, frame):
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    cur.copy_expert(f"copy {table} ({', '.join(frame.columns)}) from stdin with (format csv)", buffer)


def _utc(moment):
    return np.datetime64(moment.astimezone(dt.timezone.utc).replace(tzinfo=None), "s")


def _cases(rng, cells, classes, period, snapshot, first_id):
    """The incidents reported in ``period`` and their escalation events, as frames ready for COPY."""
    n = N_INCIDENTS
    cell = rng.choice(len(cells), n, p=_weights(rng, len(cells)))  # busier in some places than others
    klass = rng.choice(len(classes), n, p=_weights(rng, len(classes)))
    seconds = int((period.end - period.start).total_seconds())
    reported = _utc(period.start) + rng.integers(0, seconds, n).astype("timedelta64[s]")
    limit = classes["limit_h"].to_numpy()[klass]
    # a working hour is about 4.5 calendar hours (37.5 working hours a week)
    factor = np.where(classes["time_basis"].to_numpy()[klass] == "working", 168 / 37.5, 1.0)

    def hours(h):
        return (np.asarray(h) * 3600).astype("int64").astype("timedelta64[s]")

    opened = reported + hours(rng.exponential(0.5, n))
    dispatched = opened + hours(rng.exponential(0.25, n))
    extended = rng.random(n) < 0.04
    due = dispatched + hours(limit * factor * (1 + extended))
    work = limit * np.exp(rng.normal(np.log(0.6), 0.8, n))  # hours of the time basis; ~1 in 5 late
    reworked = rng.random(n) < 0.05
    work = work * (1 + reworked)
    handled = dispatched + hours(work * factor)
    closed = handled + hours(rng.exponential(2.0, n))
    voided = rng.random(n) < 0.03
    escalated = ~voided & (rng.random(n) < 0.02)

    status = np.where(closed <= snapshot, "closed", np.where(handled <= snapshot, "handled", "in_progress"))
    status = np.where(voided, "voided", status)
    never = np.datetime64("NaT")
    closed = np.where(status == "closed", closed, never)
    handled = np.where(np.isin(status, ("closed", "handled")), handled, never)
    changed = np.where(voided, reported + hours(rng.uniform(0.2, 4, n)),
                       np.where(status == "closed", closed, np.where(status == "handled", handled, dispatched)))
    for column in (opened, dispatched, due):
        column[voided] = never
    kind = rng.choice(np.array(["grid", "community", "street", "department"]), n, p=[0.6, 0.15, 0.05, 0.2])
    unit_code = np.select([kind == "grid", kind == "community", kind == "street"],
                          [cells["grid_code"].to_numpy()[cell], cells["community_code"].to_numpy()[cell],
                           cells["street_code"].to_numpy()[cell]], classes["department_code"].to_numpy()[klass])
    lon, lat = cells["lon"].to_numpy()[cell], cells["lat"].to_numpy()[cell]
    frame = pd.DataFrame({
        "category": classes["code"].to_numpy()[klass], "given_x": lon, "given_y": lat, "given_crs": "EPSG:4326",
        "geom": "SRID=4326;POINT(" + lon.astype(str).astype(object) + " " + lat.astype(str).astype(object) + ")",
        "source": "import", "reported_at": _text(reported), "received_at": _text(reported),
        "status": status, "status_changed_at": _text(changed),
        "version_id": cells["version"].to_numpy()[cell], "routing_status": "routed",
        "district_id": cells["district"].to_numpy()[cell], "street_id": cells["street"].to_numpy()[cell],
        "community_id": cells["community"].to_numpy()[cell], "grid_id": cells["grid"].to_numpy()[cell],
        "unit_kind": np.where(voided, "", kind), "unit_code": np.where(voided, "", unit_code),
        "opened_at": _text(opened), "first_dispatched_at": _text(dispatched), "dispatched_at": _text(dispatched),
        "due_at": _text(due), "handled_at": _text(handled), "closed_at": _text(closed),
        "handling_h": np.where(np.isnat(handled), np.nan, work.round(2)),
        "reworks": reworked.astype(int), "extensions": extended.astype(int), "escalations": escalated.astype(int),
    })
    # one escalation each, somewhere between dispatch and handling (or the snapshot)
    picked = np.flatnonzero(escalated)
    ends = np.where(np.isnat(handled[picked]), snapshot, handled[picked])
    at = dispatched[picked] + ((ends - dispatched[picked]) * rng.random(len(picked))).astype("timedelta64[s]")
    events = pd.DataFrame({"incident_id": picked + first_id, "seq": 3, "action": "escalate",
                           "from_state": "dispatched", "to_state": "opened", "from_level": "grid",
                           "to_level": "community", "actor": "bench", "at": _text(at)})
    return frame, events


def _weights(rng, k):
    w = rng.lognormal(0, 1, k)
    return w / w.sum()


def _text(moments):
    """UTC datetime64 → text COPY reads as timestamptz; NaT → empty (null)."""
    text = np.datetime_as_string(moments, unit="s").astype(object) + "Z"
    text[np.isnat(moments)] = ""
    return text


def _pandas(db, period):
    """The peer: the period's rows out of the database, then groupby, with the same definitions."""
    with db.cursor() as cur:
        cur.execute("select now() as now")
        cutoff = min(period.end, cur.fetchone()["now"])
    start, cutoff = pd.Timestamp(period.start), pd.Timestamp(cutoff)
    columns = ("street_id, reported_at, opened_at, status, status_changed_at, due_at, handled_at, closed_at,"
               " reworks, extensions, handling_h")
    times = ["reported_at", "opened_at", "status_changed_at", "due_at", "handled_at", "closed_at"]
    with db.connection() as conn, conn.cursor() as cur:
        where = " or ".join(f"({c} >= %(s)s and {c} < %(e)s)" for c in times if c != "handled_at")
        query = cur.mogrify(f"copy (select {columns} from incident where {where}) to stdout with (format csv)",
                            {"s": start, "e": cutoff}).decode()
        buffer = io.StringIO()
        cur.copy_expert(query, buffer)
        buffer.seek(0)
        cases = pd.read_csv(buffer, names=[c.strip() for c in columns.split(",")])
        buffer = io.StringIO()
        cur.copy_expert(cur.mogrify("copy (select i.street_id from case_event e join incident i on i.id = e.incident_id"
                                    " where e.action = 'escalate' and e.at >= %s and e.at < %s) to stdout",
                                    (start, cutoff)).decode(), buffer)
        buffer.seek(0)
        events = pd.read_csv(buffer, names=["street_id"])
        cur.execute("select c.id, c.code from grid_cell c join grid_cell a on a.code = c.code and a.level = c.level"
                    " join grid_version v on v.id = a.version_id and v.status = 'active' where c.level = 1")
        code_of = dict(cur.fetchall())
    for c in times:
        cases[c] = pd.to_datetime(cases[c], format="ISO8601", utc=True)

    def within(c):
        return (cases[c] >= start) & (cases[c] < cutoff)

    due = within("due_at") & (cases["status"] != "voided")
    closed_by = cases["closed_at"] < cutoff
    closed = within("closed_at")
    flags = pd.DataFrame({
        "code": cases["street_id"].map(code_of),
        "received": within("reported_at"), "opened": within("opened_at"),
        "voided": within("status_changed_at") & (cases["status"] == "voided"), "due": due, "closed": closed,
        "due_closed": due & closed_by, "due_on_time": due & closed_by & (cases["handled_at"] <= cases["due_at"]),
        "due_reworked": due & (cases["reworks"] > 0), "due_extended": due & (cases["extensions"] > 0),
        "handling_h": cases["handling_h"].where(closed)})
    grouped = flags.groupby("code")
    out = grouped[["received", "opened", "voided", "due", "closed", "due_closed", "due_on_time", "due_reworked",
                   "due_extended"]].sum()
    out["handling_mean_h"] = grouped["handling_h"].mean()
    out["handling_p90_h"] = grouped["handling_h"].quantile(0.9)
    for name, numerator in (("closure_rate", "due_closed"), ("on_time_rate", "due_on_time"),
                            ("rework_rate", "due_reworked"), ("extension_rate", "due_extended")):
        out[name] = out[numerator] / out["due"]
    out["escalations"] = events["street_id"].map(code_of).value_counts()
    return out


def _compare(ours, theirs):
    """How many figures of our rows differ from the peer's (counts exactly, the rest to 1e-6)."""
    differences = 0
    for row in ours:
        if row["code"] not in theirs.index:
            differences += row["received"] != 0
            continue
        peer = theirs.loc[row["code"]]
        for name in ("received", "opened", "voided", "due", "closed", "escalations", "closure_rate", "on_time_rate",
                     "rework_rate", "extension_rate", "handling_mean_h", "handling_p90_h"):
            a, b = row[name], peer[name]
            a = 0 if a is None and name == "escalations" else a
            b = 0 if pd.isna(b) and name == "escalations" else b
            if (a is None or pd.isna(a)) != pd.isna(b) or (a is not None and not pd.isna(b)
                                                         and abs(float(a) - float(b)) > 1e-6 * max(1, abs(b))):
                differences += 1
    return differences
