"""The cases of the demo's incident history (gis.demo_cases), drawn through gis.demo_history.generate_history:
every case follows the live workflow, its times and deadlines the calendar, and the shares are plausible."""
import csv

import numpy as np
import pandas as pd
import pytest

import fixtures
from gis import case_workflow, cases, demo_cases, demo_history
from gis.event_classes import CLASSES_CSV
from gis.work_calendar import WorkCalendar

END = pd.Timestamp("2026-11-23T00:00:00+08:00")
CHINA = "Asia/Shanghai"
OFFICE = ((9 * 60, 12 * 60), (13 * 60 + 30, 18 * 60))  # minutes of the day, China time, ends included


@pytest.fixture(scope="module")
def full():
    return demo_history.generate_history(fixtures.frame(3), count=20_000)


@pytest.fixture(scope="module")
def history(full):
    return full.incidents


@pytest.fixture(scope="module")
def events(full):
    return full.events


@pytest.fixture(scope="module")
def calendar():
    return WorkCalendar.from_csv()


@pytest.fixture(scope="module")
def subclass():
    """time_limit_hours, time_basis and department_code per subclass code."""
    with open(CLASSES_CSV, newline="", encoding="utf-8") as f:
        return pd.DataFrame(list(csv.DictReader(f))).set_index("code").astype({"time_limit_hours": float})


def replay(events):
    """Every event through case_workflow.step(), in order: ``{row: (state, level)}`` at the end. Each event
    must start where the one before left the case and end where step() says."""
    final = {}
    state = level = previous = None
    columns = ["row", "action", "from_state", "to_state", "from_level", "to_level", "note", "unit_kind",
               "unit_code", "reason", "due_at", "approved_by"]
    for values in events[columns].itertuples(index=False):
        row, action, from_state, to_state, from_level, to_level, note, unit_kind, unit, reason, due, approver = values
        if row != previous:
            state, level, previous = "reported", from_level, row
        assert (from_state, from_level) == (state, level), (row, action)
        moved = case_workflow.step(state, level, action, {
            "note": note, "unit_kind": unit_kind, "unit": unit or unit_kind, "reason": reason,
            "deadline": None if pd.isna(due) else due.isoformat(), "approved_by": approver})
        assert (moved.state, moved.level) == (to_state, to_level), (row, action)
        state, level = moved.state, moved.level
        final[row] = (state, level)
    return final


def test_every_case_follows_the_workflow(history, events):
    final = replay(events)
    acted = history.index.isin(list(final))
    assert (history.loc[~acted, "status"] == "reported").all()
    assert history.loc[~acted, "case_level"].isna().all()
    states = pd.DataFrame(final.values(), index=list(final), columns=["status", "level"]).sort_index()
    assert (history.loc[acted, "status"] == states["status"]).all()
    assert (history.loc[acted, "case_level"] == states["level"]).all()
    # voided straight from reported, without opening
    voided = events[events["action"] == "void"]
    assert (voided["seq"] == 1).all() and len(voided) == (history["status"] == "voided").sum()
    # the version is the number of events; the counters count them
    per_row = events.groupby("row")
    assert (history.loc[acted, "case_version"] == per_row["seq"].max()).all()
    assert (per_row["seq"].count() == per_row["seq"].max()).all()
    for column, action in (("reworks", "rework"), ("extensions", "extend"), ("escalations", "escalate")):
        counted = events[events["action"] == action].groupby("row").size()
        assert (history[column] == counted.reindex(history.index, fill_value=0)).all(), column


def test_case_times_are_in_order_and_in_the_window(history, events):
    reported = history["reported_at"].to_numpy()[events["row"]]
    assert (events["at"].to_numpy() >= reported).all()
    assert (events["at"] <= END).all()
    same = events["row"].to_numpy()[1:] == events["row"].to_numpy()[:-1]
    assert (events["at"].diff().dt.total_seconds().to_numpy()[1:][same] >= 0).all()
    changing = events[events["from_state"] != events["to_state"]].groupby("row")["at"].max()
    assert (history.loc[changing.index, "status_changed_at"] == changing).all()
    h = history
    for earlier, later in (("reported_at", "opened_at"), ("opened_at", "first_dispatched_at"),
                           ("first_dispatched_at", "dispatched_at"), ("dispatched_at", "handled_at"),
                           ("handled_at", "closed_at"), ("dispatched_at", "due_at")):
        both = h[earlier].notna() & h[later].notna()
        assert (h.loc[both, earlier] <= h.loc[both, later]).all(), (earlier, later)
    assert (h[[c for c in h.columns if c.endswith("_at") and c != "due_at"]].max(axis=1) <= END).all()
    # what each state must have
    assert h.loc[h["status"] == "closed", ["opened_at", "dispatched_at", "due_at", "handled_at", "closed_at",
                                          "handling_h"]].notna().all().all()
    clock = h["status"].isin(["dispatched", "in_progress"])
    assert h.loc[clock, ["dispatched_at", "due_at", "unit_kind"]].notna().all().all()
    assert h.loc[h["status"] == "opened", ["dispatched_at", "due_at", "unit_kind"]].isna().all().all()
    assert h.loc[h["status"].isin(["reported", "voided"]), "opened_at"].isna().all()


def test_deadlines_count_the_time_limit_on_the_calendar(history, events, calendar, subclass):
    h = history[history["due_at"].notna()]
    limit = subclass["time_limit_hours"].reindex(h["category"]).to_numpy()
    basis = subclass["time_basis"].reindex(h["category"]).to_numpy()
    rules = cases.Rules()
    # extended since the current dispatch (an escalation starts a new clock)
    last = events.groupby(["row", "action"])["seq"].max().unstack()
    extended_now = (last["extend"] > last["dispatch"]).reindex(h.index, fill_value=False).to_numpy()
    for b in ("working", "calendar"):
        mine = h[basis == b]
        standard = calendar.add_hours(mine["dispatched_at"], limit[basis == b], b)
        plain = pd.Series(~extended_now[basis == b], index=mine.index)
        assert plain.sum() > 100
        assert (mine.loc[plain, "due_at"] == standard[plain]).all(), b
        longest = calendar.add_hours(mine["dispatched_at"], limit[basis == b] + rules.max_extension_h, b)
        extended = ~plain
        assert extended.sum() > 5
        assert (mine.loc[extended, "due_at"] > standard[extended]).all()
        assert (mine.loc[extended, "due_at"] <= longest[extended]).all()
        # handling time: dispatch to handling, in hours of the basis
        done = mine["handled_at"].notna() & (mine["reworks"] == 0)
        hours = calendar.hours_between(mine.loc[done, "dispatched_at"], mine.loc[done, "handled_at"], b)
        assert np.allclose(mine.loc[done, "handling_h"], hours, atol=0.001)
    # an extension asks for a later deadline than the one it replaces; the details say both
    extend = events[events["action"] == "extend"]
    assert (extend["due_at"] > extend["previous_due_at"]).all()
    assert extend["approved_by"].notna().all() and extend["reason"].notna().all()


def test_working_time_cases_are_acted_on_in_office_hours(history, events, calendar, subclass):
    basis = subclass["time_basis"].reindex(history["category"]).to_numpy()[events["row"]]
    people = events[(basis == "working") & (events["actor"] != demo_cases.SYSTEM_ACTOR)]
    assert len(people) > 10_000
    local = people["at"].dt.tz_convert(CHINA)
    minute = local.dt.hour * 60 + local.dt.minute + local.dt.second / 60
    office = np.zeros(len(people), bool)
    for start, end in OFFICE:
        office |= minute.between(start, end).to_numpy()
    assert office.all(), people[~office][["action", "at"]].head()
    day = local.dt.tz_localize(None).to_numpy().astype("M8[D]")
    assert calendar.is_working_day(day).all()
    # calendar-time cases (emergencies) are dealt with at any hour
    other = events[(basis == "calendar") & (events["action"] == "handle")]
    hours = other["at"].dt.tz_convert(CHINA).dt.hour
    assert (~hours.between(9, 17)).mean() > 0.2


def test_shares_of_escalated_reworked_extended_and_stuck_cases(history, events):
    h = history
    assert 0.025 < (h["escalations"] > 0).mean() < 0.06
    twice = (h["escalations"] > 1).mean()
    assert 0 < twice < (h["escalations"] > 0).mean() / 4
    assert 0.035 < (h["reworks"] > 0).mean() < 0.07
    assert 0.025 < (h["extensions"] > 0).mean() < 0.06
    old = h[h["reported_at"] < END - pd.Timedelta(days=7)]
    stuck = ~old["status"].isin(["closed", "voided"])
    assert 0.01 < stuck.mean() < 0.035
    assert set(old.loc[stuck, "status"]) >= {"opened", "handled"}
    clock = h["status"].isin(["dispatched", "in_progress"])
    assert (clock & (h["due_at"] < END)).sum() > 0  # overdue at the end
    # the tick escalated some: the system acts, on a case overdue by more than its margin
    tick = events[events["actor"] == demo_cases.SYSTEM_ACTOR]
    assert len(tick) and (tick["action"] == "escalate").all() and tick["actor_kind"].isna().all()
    assert tick["reason"].str.contains("escalated automatically").all()


def test_the_tick_never_left_a_case_overdue_beyond_its_margin(history, calendar, subclass):
    h = history[history["status"].isin(["dispatched", "in_progress"]) & (history["case_level"] != "city")]
    margin = cases.Rules().escalate_after_h
    basis = subclass["time_basis"].reindex(h["category"]).to_numpy()
    for b in ("working", "calendar"):
        limit = calendar.add_hours(h.loc[basis == b, "due_at"], margin, b)
        assert (limit >= END - pd.Timedelta(seconds=demo_cases.TICK_EVERY_S)).all(), b


def test_units_dispatched_to_and_how_they_perform(history, events, subclass):
    h = history[history["unit_kind"].notna()]
    share = h["unit_kind"].value_counts(normalize=True)
    assert 0.3 < share["grid"] < 0.65 and 0.3 < share["department"] < 0.65
    assert share.get("community", 0) > 0.005
    assert set(share.index) <= set(case_workflow.UNIT_KINDS)
    departments = h[h["unit_kind"] == "department"]
    own = subclass["department_code"].reindex(departments["category"]).to_numpy()
    assert 0.9 < (departments["unit_code"] == own).mean() < 1
    assert h.loc[h["unit_kind"] != "department", "unit_code"].isna().all()  # the routing brings those
    # emergencies always go to their department
    emergency = subclass.index[subclass["emergency"] == "true"]
    assert (h.loc[h["category"].isin(emergency), "unit_kind"] == "department").all()
    # patrol findings are handled by the grid itself far more often than complaints
    patrol = ~h["category"].isin(demo_history.COMPLAINT_CODES)
    assert (h.loc[patrol, "unit_kind"] == "grid").mean() > 2 * (h.loc[~patrol, "unit_kind"] == "grid").mean()
    # departments differ: some are late far more often than others
    done = h[h["handled_at"].notna() & (h["unit_kind"] == "department")]
    on_time = (done["handled_at"] <= done["due_at"]).groupby(done["unit_code"]).agg(["mean", "count"])
    on_time = on_time[on_time["count"] >= 100]["mean"]
    assert len(on_time) >= 4 and on_time.max() - on_time.min() > 0.08
    handled = h[h["handled_at"].notna()]
    assert 0.7 < (handled["handled_at"] <= handled["due_at"]).mean() < 0.97
    # every dispatch and every close says what the case pages show
    dispatch = events[events["action"] == "dispatch"]
    assert dispatch["due_at"].notna().all() and dispatch["unit_kind"].notna().all()
    close = events[events["action"] == "close"]
    assert close["on_time"].notna().all()


def test_people_and_phones(events):
    assert events["actor"].str.len().between(2, 6).all()
    unit = events["action"].isin(["start", "handle"])
    assert 0.7 < events.loc[unit, "lon"].notna().mean() < 0.95
    assert events.loc[~unit, "lon"].isna().all()
    # a phone near the report: within a hundred metres or so
    assert events["accuracy_m"].dropna().between(3, 40).all()
    platform = events["actor_kind"].isin(["grid", "community", "street"]) & events["action"].isin(["open", "close"])
    assert events.loc[platform, "actor_post"].isin(["grid_head", "community_secretary", "street_head"]).all()
