"""Tests of gis.work_calendar: hand-computed deadlines, the 2025–2026 calendar data, arrays against scalars."""
import csv
import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from gis.errors import BadInput
from gis.work_calendar import CALENDAR_CSV, DEFAULT_PERIODS, WorkCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


@pytest.fixture(scope="module")
def cal():
    return WorkCalendar.from_csv()


def at(y, m, d, h=0, mi=0, weekday=None):
    """China time; ``weekday`` guards the hand computation against a misremembered calendar."""
    t = datetime.datetime(y, m, d, h, mi, tzinfo=SHANGHAI)
    assert weekday is None or t.weekday() == weekday, f"{t:%Y-%m-%d} is not weekday {weekday}"
    return t


def rows_of_csv():
    with open(CALENDAR_CSV, newline="", encoding="utf-8") as f:
        return [(datetime.date.fromisoformat(r["day"]), r["kind"], r["name"]) for r in csv.DictReader(f)]


# --- hand-computed deadlines (office hours 09:00–12:00 and 13:30–18:00) ----------------------

@pytest.mark.parametrize("start, hours, due", [
    # within one period
    (at(2026, 3, 10, 9, 30, TUE), 2, at(2026, 3, 10, 11, 30)),
    # across the lunch break: one hour before it, one after
    (at(2026, 3, 10, 11, 0, TUE), 2, at(2026, 3, 10, 14, 30)),
    # from before opening and from the lunch break
    (at(2026, 3, 10, 7, 0, TUE), 1, at(2026, 3, 10, 10, 0)),
    (at(2026, 3, 10, 12, 30, TUE), 1, at(2026, 3, 10, 14, 30)),
    # across a night
    (at(2026, 3, 10, 17, 0, TUE), 2, at(2026, 3, 11, 10, 0, WED)),
    # across a weekend, from Friday afternoon, Friday evening and Saturday evening
    (at(2026, 3, 13, 17, 0, FRI), 2, at(2026, 3, 16, 10, 0, MON)),
    (at(2026, 3, 13, 20, 0, FRI), 1, at(2026, 3, 16, 10, 0, MON)),
    (at(2026, 3, 14, 20, 0, SAT), 1, at(2026, 3, 16, 10, 0, MON)),
    # a limit that uses up a period ends at its end, not at the next opening
    (at(2026, 3, 10, 17, 0, TUE), 1, at(2026, 3, 10, 18, 0)),
    (at(2026, 3, 10, 11, 0, TUE), 1, at(2026, 3, 10, 12, 0)),
    (at(2026, 3, 10, 9, 0, TUE), 7.5, at(2026, 3, 10, 18, 0)),
    (at(2026, 3, 14, 10, 0, SAT), 7.5, at(2026, 3, 16, 18, 0, MON)),
    (at(2026, 3, 13, 9, 0, FRI), 8, at(2026, 3, 16, 9, 30, MON)),
    # National Day 2026: Oct 1–7 off, Thursday Oct 8 works
    (at(2026, 9, 30, 17, 0, WED), 2, at(2026, 10, 8, 10, 0, THU)),
    # ... and the make-up Saturday Oct 10 and Sunday Sep 20 work
    (at(2026, 10, 9, 17, 0, FRI), 2, at(2026, 10, 10, 10, 0, SAT)),
    (at(2026, 9, 18, 17, 0, FRI), 2, at(2026, 9, 20, 10, 0, SUN)),
    # Mid-Autumn 2026 (Fri Sep 25) joins the weekend
    (at(2026, 9, 24, 17, 0, THU), 2, at(2026, 9, 28, 10, 0, MON)),
    # Spring Festival 2026: make-up Saturday Feb 14, then Feb 15–23 off
    (at(2026, 2, 13, 17, 0, FRI), 2, at(2026, 2, 14, 10, 0, SAT)),
    (at(2026, 2, 14, 17, 0, SAT), 2, at(2026, 2, 24, 10, 0, TUE)),
    # National Day and Mid-Autumn 2025: Oct 1–8 off, make-up Saturday Oct 11
    (at(2025, 9, 30, 17, 0, TUE), 2, at(2025, 10, 9, 10, 0, THU)),
    (at(2025, 10, 10, 17, 0, FRI), 2, at(2025, 10, 11, 10, 0, SAT)),
])
def test_add_working_by_hand(cal, start, hours, due):
    assert cal.add_working(start, hours) == due
    assert cal.working_hours(start, due) == pytest.approx(hours)


@pytest.mark.parametrize("start, end, hours", [
    (at(2026, 3, 10, 8, 0, TUE), at(2026, 3, 10, 20, 0), 7.5),
    (at(2026, 3, 14, 0, 0, SAT), at(2026, 3, 16, 0, 0, MON), 0),
    (at(2026, 3, 16, 0, 0, MON), at(2026, 3, 23, 0, 0, MON), 37.5),
    # National Day week 2026: Sep 28–30 and Oct 8–10 (make-up Saturday) work
    (at(2026, 9, 28, 0, 0, MON), at(2026, 10, 12, 0, 0, MON), 45),
    # Sep 20 (make-up Sunday) plus Sep 21–24; Sep 25 is Mid-Autumn
    (at(2026, 9, 19, 0, 0, SAT), at(2026, 9, 28, 0, 0, MON), 37.5),
])
def test_working_hours_by_hand(cal, start, end, hours):
    assert cal.working_hours(start, end) == hours
    assert cal.working_hours(end, start) == -hours


def test_working_hours_over_whole_years_match_numpy_busday_count(cal):
    rows = rows_of_csv()
    holidays = [d for d, k, _ in rows if k == "holiday"]
    make_up = [d for d, k, _ in rows if k == "workday"]
    days = np.busday_count("2000-01-01", "2031-01-01", holidays=holidays) + len(make_up)
    assert cal.working_hours(at(2000, 1, 1), at(2031, 1, 1)) == days * 7.5
    # 2026: 261 weekdays, 19 of them off, 6 make-up days
    assert cal.working_hours(at(2026, 1, 1), at(2027, 1, 1)) == 248 * 7.5


def test_is_working_day(cal):
    assert cal.is_working_day(datetime.date(2026, 3, 10))
    assert not cal.is_working_day(datetime.date(2026, 3, 14))         # Saturday
    assert not cal.is_working_day(datetime.date(2026, 10, 5))         # Monday of National Day
    assert cal.is_working_day(datetime.date(2026, 10, 10))            # make-up Saturday
    assert cal.is_working_day(datetime.date(2026, 9, 20))             # make-up Sunday
    # an instant counts by its date in China: Saturday 23:00 UTC is Sunday morning there
    assert cal.is_working_day(datetime.datetime(2026, 10, 9, 23, tzinfo=datetime.timezone.utc))
    days = np.array(["2026-10-05", "2026-10-08", "2026-10-10", "2026-10-11"], dtype="M8[D]")
    assert cal.is_working_day(days).tolist() == [False, True, True, False]


def test_make_up_days_win_over_weekend_and_holidays_over_weekdays():
    c = WorkCalendar(holidays=["2026-03-10"], workdays=[datetime.date(2026, 3, 14)], weekend=(6,))
    assert not c.is_working_day(datetime.date(2026, 3, 10))
    assert c.is_working_day(datetime.date(2026, 3, 14))
    assert c.is_working_day(datetime.date(2026, 3, 21))  # a Saturday, but only Sunday is weekend here
    assert not c.is_working_day(datetime.date(2026, 3, 15))


# --- calendar basis, negative and zero durations ------------------------------------------

def test_calendar_basis(cal):
    friday = at(2026, 3, 13, 17, 0, FRI)
    assert cal.add_hours(friday, 2, "calendar") == at(2026, 3, 13, 19, 0)
    assert cal.add_hours(friday, 0.5, "calendar") == at(2026, 3, 13, 17, 30)
    assert cal.add_hours(friday, -20, "calendar") == at(2026, 3, 12, 21, 0)
    assert cal.hours_between(friday, at(2026, 3, 16, 10, 0), "calendar") == 65
    assert cal.hours_between(friday, at(2026, 3, 16, 10, 0), "working") == 2
    assert cal.add_hours(friday, 2, "working") == at(2026, 3, 16, 10, 0)
    # working is the default basis
    assert cal.add_hours(friday, 2) == at(2026, 3, 16, 10, 0)


def test_zero_hours_give_start_itself(cal):
    for start in (at(2026, 3, 14, 20, 0, SAT), at(2026, 3, 10, 10, 0, TUE), at(2026, 3, 10, 12, 30)):
        assert cal.add_working(start, 0) == start
        assert cal.working_hours(start, start) == 0
    assert cal.working_hours(at(2026, 3, 14, 10, 0, SAT), at(2026, 3, 15, 15, 0, SUN)) == 0


def test_negative_hours_go_back_to_the_earliest_instant(cal):
    monday = at(2026, 3, 16, 10, 0, MON)
    assert cal.add_working(monday, -1) == at(2026, 3, 13, 18, 0, FRI)  # not Monday 09:00
    assert cal.add_working(at(2026, 3, 16, 11, 0), -1) == monday
    assert cal.add_working(monday, -2) == at(2026, 3, 13, 17, 0)
    assert cal.add_working(at(2026, 3, 10, 14, 30, TUE), -1.5) == at(2026, 3, 10, 11, 30)
    assert cal.working_hours(monday, at(2026, 3, 13, 17, 0)) == -2


def test_result_never_before_start_and_is_the_earliest(cal):
    rng = np.random.default_rng(7)
    starts = _random_instants(rng, 2_000)
    hours = rng.choice([0, 0.25, 1, 3, 7.5, 8, 24], size=starts.size)
    due = cal.add_working(starts, hours)
    assert (due >= starts).all()
    positive = hours > 0
    # a nanosecond earlier, the time is not yet used up
    before = cal.working_hours(starts[positive], due[positive] - np.timedelta64(1, "ns"))
    assert (before < hours[positive]).all()


def test_datetime_result_is_rounded_up_to_the_microsecond(cal):
    start = at(2026, 3, 10, 10, 0, TUE)
    due = cal.add_working(start, 1e-10)  # 360 ns
    assert due == start + datetime.timedelta(microseconds=1)


# --- round trips and arrays ------------------------------------------------------------------

def _random_instants(rng, n, first="2024-12-01", last="2027-01-31"):
    lo, hi = np.datetime64(first, "ns").astype(np.int64), np.datetime64(last, "ns").astype(np.int64)
    return rng.integers(lo, hi, size=n).view("M8[ns]")


def test_round_trip_arrays(cal):
    rng = np.random.default_rng(20260101)
    starts = _random_instants(rng, 5_000)
    hours = np.round(rng.uniform(-200, 200, size=starts.size), 3)
    due = cal.add_working(starts, hours)
    np.testing.assert_allclose(cal.working_hours(starts, due), hours, rtol=0, atol=1e-9)
    assert ((due > starts) == (hours > 0)).all()


def test_round_trip_scalars(cal):
    rng = np.random.default_rng(42)
    for ns, h in zip(_random_instants(rng, 200).astype(np.int64), rng.uniform(0, 60, size=200)):
        start = datetime.datetime.fromtimestamp(int(ns) // 10**9, SHANGHAI)
        assert cal.working_hours(start, cal.add_working(start, h)) == pytest.approx(h, abs=1e-9)


def test_arrays_equal_scalars(cal):
    rng = np.random.default_rng(1234)
    starts = _random_instants(rng, 1_000).astype("M8[us]")
    ends = _random_instants(rng, 1_000).astype("M8[us]")
    hours = np.round(rng.uniform(-40, 120, size=starts.size), 2)
    basis = "working"
    due = cal.add_hours(starts, hours, basis)
    between = cal.hours_between(starts, ends, basis)
    assert due.dtype == np.dtype("M8[ns]") and between.dtype == np.float64
    series = pd.Series(pd.DatetimeIndex(starts).tz_localize("UTC").tz_convert(SHANGHAI))
    due_series = cal.add_hours(series, hours, basis)
    assert str(due_series.dt.tz) == "Asia/Shanghai"
    utc = datetime.timezone.utc
    for i, (s, e, h) in enumerate(zip(starts.tolist(), ends.tolist(), hours)):
        s, e = s.replace(tzinfo=utc), e.replace(tzinfo=utc)
        one = cal.add_hours(s, h, basis)
        assert np.datetime64(one.replace(tzinfo=None), "ns") == due[i]
        assert due_series.iloc[i] == one
        assert cal.hours_between(s, e, basis) == between[i]


def test_series_in_and_out(cal):
    index = pd.Index([10, 20, 30], name="case_id")
    starts = pd.Series(pd.to_datetime(["2026-03-13 17:00", "2026-03-14 17:00", None]).tz_localize(SHANGHAI),
                       index=index)
    due = cal.add_working(starts, pd.Series([1, 2, 3]))
    assert list(due.index) == [10, 20, 30]
    assert due.iloc[0] == at(2026, 3, 13, 18, 0) and due.iloc[1] == at(2026, 3, 16, 11, 0)
    assert pd.isna(due.iloc[2])
    hours = cal.working_hours(starts, due)
    assert list(hours.index) == [10, 20, 30] and hours.iloc[:2].tolist() == [1, 2] and np.isnan(hours.iloc[2])


def test_nat_passes_through_numpy(cal):
    starts = np.array(["2026-03-13T09:00", "NaT"], dtype="M8[s]")
    assert np.isnat(cal.add_working(starts, 1)).tolist() == [False, True]
    assert np.isnan(cal.working_hours(starts, starts)).tolist() == [False, True]


def test_scalar_types_and_zones_are_kept(cal):
    utc_friday = datetime.datetime(2026, 3, 13, 9, 0, tzinfo=datetime.timezone.utc)  # 17:00 in China
    due = cal.add_working(utc_friday, 2)
    assert due.tzinfo is datetime.timezone.utc and due == at(2026, 3, 16, 10, 0)
    due = cal.add_working(pd.Timestamp(at(2026, 3, 13, 17, 0)), 2)
    assert isinstance(due, pd.Timestamp) and str(due.tz) == "Asia/Shanghai" and due == at(2026, 3, 16, 10, 0)
    assert isinstance(cal.working_hours(utc_friday, due), float)
    # a Timestamp keeps its nanoseconds
    ts = pd.Timestamp("2026-03-10 10:00:00.000000001", tz=SHANGHAI)
    assert cal.add_working(ts, 1) == ts + pd.Timedelta(hours=1)


# --- far from the precomputed span -----------------------------------------------------------

def test_far_instants_grow_the_span_either_way():
    cases = [(at(2030, 1, 4, 17, 0, FRI), 2, at(2030, 1, 7, 10, 0, MON)),
             (at(2000, 3, 3, 17, 0, FRI), 2, at(2000, 3, 6, 10, 0, MON)),
             (at(2000, 1, 3, 10, 0, MON), -1, at(1999, 12, 31, 18, 0, FRI)),
             (at(2026, 3, 13, 17, 0, FRI), 2, at(2026, 3, 16, 10, 0, MON))]
    for order in (cases, cases[::-1]):
        c = WorkCalendar.from_csv()
        for start, hours, due in order:
            assert c.add_working(start, hours) == due
        assert c.working_hours(at(2000, 1, 3), at(2030, 1, 7)) == c.working_hours(at(2030, 1, 7), at(2000, 1, 3)) * -1
    # one array reaching both ends at once
    c = WorkCalendar.from_csv()
    starts = np.array([np.datetime64(s.astimezone(datetime.timezone.utc).replace(tzinfo=None), "ns")
                       for s, _, _ in cases])
    due = c.add_working(starts, np.array([h for _, h, _ in cases]))
    assert [pd.Timestamp(d, tz="UTC") for d in due] == [d for _, _, d in cases]


def test_a_long_limit_grows_the_span_forward():
    c = WorkCalendar()  # weekends only: 2 years of office time is 261 + 261 working days or so
    start = at(2026, 1, 5, 9, 0, MON)
    due = c.add_working(start, 7.5 * 5 * 104)
    assert due == at(2027, 12, 31, 18, 0, FRI)


# --- other places ------------------------------------------------------------------------

def test_office_hours_follow_the_local_clock_across_dst():
    berlin = ZoneInfo("Europe/Berlin")
    c = WorkCalendar(tz="Europe/Berlin")
    friday = datetime.datetime(2026, 3, 27, 17, tzinfo=berlin)  # clocks go forward on Sunday 29th
    due = c.add_working(friday, 2)
    assert due == datetime.datetime(2026, 3, 30, 10, tzinfo=berlin) and due.utcoffset() == datetime.timedelta(hours=2)
    # a night shift across the skipped hour 02:00–03:00 is one hour shorter
    night = WorkCalendar([(datetime.time(1), datetime.time(4))], weekend=(), tz="Europe/Berlin")
    assert night.working_hours(datetime.datetime(2026, 3, 28, tzinfo=berlin),
                               datetime.datetime(2026, 3, 30, tzinfo=berlin)) == 3 + 2


def test_custom_periods():
    c = WorkCalendar([(datetime.time(8), datetime.time(12)), (datetime.time(14), datetime.time(17, 30))])
    assert c.add_working(at(2026, 3, 10, 11, 0, TUE), 2) == at(2026, 3, 10, 15, 0)
    assert c.working_hours(at(2026, 3, 10), at(2026, 3, 11)) == 7.5


# --- the data ------------------------------------------------------------------------------

def test_calendar_csv_is_consistent():
    rows = rows_of_csv()
    days = [d for d, _, _ in rows]
    assert days == sorted(set(days))
    assert {k for _, k, _ in rows} == {"holiday", "workday"} and all(n for _, _, n in rows)
    assert all(d.weekday() >= SAT for d, k, _ in rows if k == "workday")
    for year in (2025, 2026):
        weekday_off = sum(1 for d, k, _ in rows if k == "holiday" and d.year == year and d.weekday() < SAT)
        make_up = sum(1 for d, k, _ in rows if k == "workday" and d.year == year)
        # 13 statutory days a year since 2025: 元旦 1, 春节 4, 清明 1, 劳动节 2, 端午 1, 中秋 1, 国庆 3
        assert weekday_off - make_up == 13


def test_from_rows_equals_from_csv():
    rows = [(d, k) for d, k, _ in rows_of_csv()]
    c = WorkCalendar.from_rows(rows, DEFAULT_PERIODS)
    assert c.holidays == WorkCalendar.from_csv().holidays and len(c.workdays) == 11


# --- bad input -----------------------------------------------------------------------------

def test_naive_instants_are_rejected(cal):
    naive = datetime.datetime(2026, 3, 10, 9)
    with pytest.raises(BadInput, match="naive"):
        cal.add_working(naive, 1)
    with pytest.raises(BadInput, match="naive"):
        cal.working_hours(at(2026, 3, 10), naive)
    with pytest.raises(BadInput, match="naive"):
        cal.add_hours(pd.Timestamp("2026-03-10 09:00"), 1, "calendar")
    with pytest.raises(BadInput, match="timezone-aware"):
        cal.add_working(pd.Series(pd.to_datetime(["2026-03-10 09:00"])), 1)
    with pytest.raises(BadInput, match="datetime64"):
        cal.add_working(np.array([1, 2]), 1)
    with pytest.raises(BadInput, match="date"):
        cal.add_working(datetime.date(2026, 3, 10), 1)


@pytest.mark.parametrize("basis", ["work", "Working", "", None])
def test_unknown_basis(cal, basis):
    with pytest.raises(BadInput, match="working or calendar"):
        cal.add_hours(at(2026, 3, 10), 1, basis)
    with pytest.raises(BadInput, match="working or calendar"):
        cal.hours_between(at(2026, 3, 10), at(2026, 3, 11), basis)


T = datetime.time


@pytest.mark.parametrize("periods, message", [
    ((), "at least one"),
    ([(T(9), T(9))], "end after"),
    ([(T(13), T(12))], "end after"),
    ([(T(13), T(18)), (T(9), T(12))], "out of order"),
    ([(T(9), T(12)), (T(11), T(18))], "overlap"),
    ([("09:00", "12:00")], "datetime.time"),
    ([(T(9),)], "pairs"),
])
def test_bad_periods(periods, message):
    with pytest.raises(BadInput, match=message):
        WorkCalendar(periods)


def test_day_both_holiday_and_workday():
    with pytest.raises(BadInput, match="2026-10-10"):
        WorkCalendar(holidays=["2026-10-10"], workdays=[datetime.date(2026, 10, 10)])
    with pytest.raises(BadInput, match="both"):
        WorkCalendar.from_rows([("2026-10-10", "holiday"), (datetime.date(2026, 10, 11), "workday"),
                                ("2026-10-11", "holiday")], DEFAULT_PERIODS)


def test_bad_rows_and_files(tmp_path):
    with pytest.raises(BadInput, match="holiday or workday"):
        WorkCalendar.from_rows([("2026-10-10", "festival")], DEFAULT_PERIODS)
    with pytest.raises(BadInput, match="twice"):
        WorkCalendar.from_rows([("2026-10-10", "workday"), ("2026-10-10", "workday")], DEFAULT_PERIODS)
    path = tmp_path / "cal.csv"
    path.write_text("day,kind,name\n2026-10-01,holiday,国庆节\n2026-13-01,holiday,错误\n", encoding="utf-8")
    with pytest.raises(BadInput, match="line 3"):
        WorkCalendar.from_csv(path)
    path.write_text("date,kind\n", encoding="utf-8")
    with pytest.raises(BadInput, match="missing column"):
        WorkCalendar.from_csv(path)


def test_other_bad_arguments(cal):
    with pytest.raises(BadInput, match="time zone"):
        WorkCalendar(tz="Asia/Zhengzhou")
    with pytest.raises(BadInput, match="weekend"):
        WorkCalendar(weekend=(6, 7))
    with pytest.raises(BadInput, match="finite"):
        cal.add_working(at(2026, 3, 10), float("inf"))
    with pytest.raises(BadInput, match="number"):
        cal.add_working(at(2026, 3, 10), "two")
    with pytest.raises(BadInput, match="1900"):
        cal.add_working(datetime.datetime(1800, 1, 1, tzinfo=SHANGHAI), 1)
    with pytest.raises(BadInput, match="1900"):
        cal.add_working(np.array(["3000-01-01"], dtype="M8[D]"), 1)
    with pytest.raises(BadInput, match="1900"):
        cal.add_working(pd.Timestamp("3000-01-01", tz="UTC"), 1)
    with pytest.raises(BadInput, match="shapes"):
        cal.add_working(np.array(["2026-03-10"] * 3, dtype="M8[ns]"), [1, 2])
    no_work = WorkCalendar(weekend=range(7))
    with pytest.raises(BadInput, match="no working time"):
        no_work.add_working(at(2026, 3, 10), 1)
    assert no_work.add_working(at(2026, 3, 10), 0) == at(2026, 3, 10)
    assert no_work.working_hours(at(2026, 3, 10), at(2027, 3, 10)) == 0
