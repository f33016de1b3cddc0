"""Working-time arithmetic for case deadlines: office hours on working days, in China time.

A time limit counts either *working* time (only office hours of working days) or *calendar* time (every
hour, for emergencies). Working time is measured on a working-seconds axis: ``W(t)`` is the office time
from a fixed origin to the instant ``t``. ``W`` rises one second per second inside an office period and is
flat outside, so a duration is ``W(end) - W(start)`` and a deadline is the earliest ``t`` with
``W(t) = W(start) + hours``.

A :class:`WorkCalendar` keeps, for a span of local days, one row per office period of each day: the
period's start instant, its length (0 on a day off) and ``W`` at its start, the cumulative sum of the
lengths before it. Looking an instant up is one ``numpy.searchsorted``, so a million instants cost well
under a second. The span grows when an instant falls outside it; ``W`` keeps its origin, so values never
shift. Supported instants lie in the years 1900 to 2149.

Instants are given and returned as

- a scalar: a timezone-aware ``datetime.datetime`` or ``pandas.Timestamp``; a result has the same type and
  the same time zone as ``start``. A ``datetime`` result is rounded up to the microsecond.
- an array: a ``numpy`` ``datetime64`` array (any unit; numpy has no time zones, so it is read as UTC),
  returned as ``datetime64[ns]`` (UTC); or a ``pandas.Series`` of timezone-aware datetimes, returned as a
  Series with the same index, in the same time zone, unit ``ns``. NaT gives NaT (or NaN hours).

Hours are a number or an array of numbers (a Series is taken by position); arrays broadcast as in numpy.
Any array argument gives an array result.

>>> cal = WorkCalendar.from_csv()
>>> friday = datetime.datetime(2026, 3, 13, 17, tzinfo=ZoneInfo("Asia/Shanghai"))
>>> cal.add_working(friday, 2).isoformat()
'2026-03-16T10:00:00+08:00'
"""
import csv
import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from gis.errors import BadInput
from gis.settings import PROJECT_ROOT

CALENDAR_CSV = PROJECT_ROOT / "data" / "calendar_cn.csv"
DEFAULT_PERIODS = ((datetime.time(9), datetime.time(12)), (datetime.time(13, 30), datetime.time(18)))
BASES = ("working", "calendar")
KINDS = ("holiday", "workday")

_NS_PER_HOUR = 3_600_000_000_000
_NS_PER_DAY = 86_400_000_000_000
_NAT = np.iinfo(np.int64).min
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_MICROSECOND = datetime.timedelta(microseconds=1)
# W is int64 nanoseconds from an origin inside the span: 250 years of round-the-clock office hours still
# fit, and so does a step of _MAX_HOURS on top.
_FIRST_DAY = datetime.date(1900, 1, 1).toordinal() - _EPOCH_ORDINAL
_LAST_DAY = datetime.date(2150, 1, 1).toordinal() - _EPOCH_ORDINAL
_MIN_NS = (_FIRST_DAY + 1) * _NS_PER_DAY  # a day inside, so that every time zone's local day is in range
_MAX_NS = (_LAST_DAY - 1) * _NS_PER_DAY
_MAX_HOURS = 100_000


class _Span(NamedTuple):
    """Office periods of local days ``first`` .. ``last - 1`` (days since 1970-01-01), flattened in order."""
    first: int
    last: int
    start: np.ndarray   # int64 ns, UTC
    length: np.ndarray  # int64 ns, 0 on a day off
    w: np.ndarray       # int64 ns, W at the period's start


class WorkCalendar:
    """Office hours, working days and days off of one place, and time arithmetic on them.

    Parameters
    ----------
    periods : sequence of (datetime.time, datetime.time)
        Office hours of a working day, in order and not overlapping; default 09:00–12:00 and 13:30–18:00.
    holidays : iterable of datetime.date or ISO date strings
        Days off even on a weekday (public holidays and the days moved next to them).
    workdays : iterable of datetime.date or ISO date strings
        Make-up working days (调休上班), working even on a weekend.
    weekend : iterable of int
        Weekdays off, Monday = 0.
    tz : str
        IANA time zone in which the office hours are read.
    """

    def __init__(self, periods=DEFAULT_PERIODS, *, holidays=(), workdays=(), weekend=(5, 6), tz="Asia/Shanghai"):
        self.periods = _check_periods(periods)
        self.holidays = frozenset(_as_date(d) for d in holidays)
        self.workdays = frozenset(_as_date(d) for d in workdays)
        both = sorted(self.holidays & self.workdays)
        if both:
            raise BadInput(f"{', '.join(map(str, both))}: listed both as holiday and as make-up working day")
        self.weekend = _check_weekend(weekend)
        self.tz = _zone(tz)
        self._holiday_days = np.array(sorted(self.holidays), dtype="M8[D]")
        self._workday_days = np.array(sorted(self.workdays), dtype="M8[D]")
        self._offsets = np.array([[_ns_since_midnight(a), _ns_since_midnight(b)] for a, b in self.periods],
                                 dtype=np.int64)
        self._span = None  # built on first use, then only grown, replaced whole (safe for threads to read)

    @classmethod
    def from_rows(cls, rows, periods=DEFAULT_PERIODS, **options):
        """A calendar from ``(day, kind)`` rows, kind ``holiday`` or ``workday``; ``options`` as for the class."""
        days = {}
        for day, kind in rows:
            day = _as_date(day)
            if kind not in KINDS:
                raise BadInput(f"{day}: kind {kind!r} must be holiday or workday")
            if day in days:
                raise BadInput(f"{day}: listed twice" if days[day] == kind else
                               f"{day}: listed both as holiday and as make-up working day")
            days[day] = kind
        return cls(periods, holidays=[d for d, k in days.items() if k == "holiday"],
                   workdays=[d for d, k in days.items() if k == "workday"], **options)

    @classmethod
    def from_csv(cls, path=CALENDAR_CSV, periods=DEFAULT_PERIODS, **options):
        """A calendar from a CSV file with columns ``day`` (ISO date) and ``kind``, like ``data/calendar_cn.csv``."""
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"day", "kind"} - set(reader.fieldnames or ())
            if missing:
                raise BadInput(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            rows = []
            for row in reader:
                try:
                    rows.append((_as_date((row["day"] or "").strip()), (row["kind"] or "").strip()))
                except BadInput as e:
                    raise BadInput(f"{path} line {reader.line_num}: {e.message}") from None
        try:
            return cls.from_rows(rows, periods, **options)
        except BadInput as e:
            raise BadInput(f"{path}: {e.message}") from None

    # --- working days --------------------------------------------------------------------------

    def is_working_day(self, day):
        """Whether ``day`` is a working day: make-up days are, then holidays are not, then weekends are not.

        ``day`` is a ``datetime.date``, an aware datetime (its local date here) or a ``datetime64`` array
        (an array of booleans comes back).
        """
        if isinstance(day, np.ndarray):
            return self._working(day.astype("M8[D]"))
        if isinstance(day, datetime.datetime):
            if day.tzinfo is None or day.utcoffset() is None:
                raise BadInput("a datetime needs a time zone; give a date to ask about a calendar day")
            day = day.astimezone(self.tz).date()
        elif not isinstance(day, datetime.date):
            raise BadInput(f"expected a date, got {type(day).__name__}")
        if day in self.workdays:
            return True
        return day not in self.holidays and day.weekday() not in self.weekend

    def _working(self, days):
        weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        working = ~np.isin(weekday, list(self.weekend)) & ~np.isin(days, self._holiday_days)
        return working | np.isin(days, self._workday_days)

    # --- the four operations -------------------------------------------------------------------

    def working_hours(self, start, end):
        """Office hours from ``start`` to ``end``; negative if ``end`` is earlier."""
        return self.hours_between(start, end, "working")

    def add_working(self, start, hours):
        """The earliest instant at which ``hours`` of office time after ``start`` have passed.

        So a limit that uses up the last minute of a day ends at 18:00, not at 09:00 of the next working
        day, and one that starts out of hours runs from the next opening. ``hours = 0`` gives ``start``
        itself; negative hours go back, again to the earliest instant (one hour back from Monday 10:00 is
        Friday 18:00).
        """
        return self.add_hours(start, hours, "working")

    def hours_between(self, start, end, basis="working"):
        """Hours from ``start`` to ``end``: office hours (``basis="working"``) or elapsed (``"calendar"``)."""
        basis = _check_basis(basis)
        a, b = _broadcast(_to_ns(start, "start"), _to_ns(end, "end"))
        ok = (a != _NAT) & (b != _NAT)
        out = np.full(a.shape, np.nan)
        if basis == "working":
            out[ok] = (self._w(b[ok]) - self._w(a[ok])) / _NS_PER_HOUR
        else:
            out[ok] = (b[ok] - a[ok]) / _NS_PER_HOUR
        if _is_scalar(start) and _is_scalar(end):
            return float(out)
        series = start if isinstance(start, pd.Series) else end
        if isinstance(series, pd.Series) and out.shape == series.shape:
            return pd.Series(out, index=series.index)
        return out

    def add_hours(self, start, hours, basis="working"):
        """The deadline ``hours`` after ``start``: working time (see :meth:`add_working`) or calendar time."""
        basis = _check_basis(basis)
        t, h = _broadcast(_to_ns(start, "start"), _hours(hours))
        ok = t != _NAT
        t_ok = t[ok]
        step = np.rint(h[ok] * _NS_PER_HOUR).astype(np.int64)
        out = np.full(t.shape, _NAT, dtype=np.int64)
        if basis == "working":
            # zero hours give start itself: W is flat out of hours, so W(start) may be reached before start
            due, moved = t_ok.copy(), step != 0
            due[moved] = self._w_inverse(self._w(t_ok[moved]) + step[moved])
            out[ok] = due
        else:
            out[ok] = t_ok + step
        if _is_scalar(start) and np.ndim(hours) == 0:
            return _scalar_like(int(out), start)
        if isinstance(start, pd.Series) and out.shape == start.shape:
            utc = pd.DatetimeIndex(out.view("M8[ns]")).tz_localize("UTC")
            return pd.Series(utc.tz_convert(start.dt.tz), index=start.index)
        return out.view("M8[ns]")

    # --- the working-seconds axis --------------------------------------------------------------

    def _w(self, t):
        """W at instants ``t`` (int64 ns, no NaT)."""
        if not t.size:
            return t
        span = self._covering(self._local_day(t.min()), self._local_day(t.max()) + 1)
        k = np.maximum(np.searchsorted(span.start, t, "right") - 1, 0)
        return span.w[k] + np.clip(t - span.start[k], 0, span.length[k])

    def _w_inverse(self, w):
        """The earliest instant at which W reaches ``w`` (int64 ns)."""
        if not w.size:
            return w
        span = self._span  # built by the W of the starts
        lo, hi = w.min(), w.max()
        # W before the span is at most w[0], so a target above it is reached inside the span
        while not (span.w[0] < lo and hi <= span.w[-1] + span.length[-1]):
            back, ahead = int(span.w[0] >= lo), int(hi > span.w[-1] + span.length[-1])
            grown = self._covering(span.first - back, span.last + ahead, limit=False)
            if grown is span:
                raise BadInput("the deadline falls outside the years 1900–2149 (or the calendar has no working time)")
            span = grown
        end = span.w + span.length
        k = np.searchsorted(end, w, "left")  # the first period that reaches w; ties go to the earlier end
        return span.start[k] + (w - span.w[k])

    def _covering(self, first, last, limit=True):
        """The span, grown if needed to hold local days ``first`` .. ``last - 1``."""
        if limit and (first < _FIRST_DAY or last > _LAST_DAY):
            raise BadInput("instants must lie in the years 1900–2149")
        first, last = max(first, _FIRST_DAY), min(last, _LAST_DAY)
        span = self._span
        if span is None:
            # a month back and a year ahead of the first request, the usual reach of case deadlines
            first, last = max(first - 31, _FIRST_DAY), min(last + 366, _LAST_DAY)
            start, length = self._periods_of(first, last)
            span = _Span(first, last, start, length, _running(length))
        if first >= span.first and last <= span.last:
            self._span = span
            return span
        room = max(span.last - span.first, 366)  # grow geometrically, so many small steps stay cheap
        if first < span.first:
            new_first = max(min(first, span.first - room), _FIRST_DAY)
            start, length = self._periods_of(new_first, span.first)
            w = _running(length) + span.w[0] - length.sum()
            span = _Span(new_first, span.last, np.concatenate([start, span.start]),
                         np.concatenate([length, span.length]), np.concatenate([w, span.w]))
        if last > span.last:
            new_last = min(max(last, span.last + room), _LAST_DAY)
            start, length = self._periods_of(span.last, new_last)
            w = _running(length) + span.w[-1] + span.length[-1]
            span = _Span(span.first, new_last, np.concatenate([span.start, start]),
                         np.concatenate([span.length, length]), np.concatenate([span.w, w]))
        self._span = span
        return span

    def _periods_of(self, first, last):
        """Start instants and lengths of every office period of local days ``first`` .. ``last - 1``."""
        days = np.arange(first, last, dtype=np.int64)
        wall = (days[:, None, None] * _NS_PER_DAY + self._offsets[None]).ravel()
        # a wall time skipped by a DST change moves forward; one that happens twice takes the earlier
        utc = (pd.DatetimeIndex(wall.view("M8[ns]"))
               .tz_localize(self.tz, ambiguous=np.ones(wall.size, bool), nonexistent="shift_forward")
               .as_unit("ns").asi8.reshape(len(days), len(self.periods), 2))
        working = self._working(days.astype("M8[D]"))
        length = np.where(working[:, None], utc[..., 1] - utc[..., 0], 0)
        return utc[..., 0].ravel(), length.ravel()

    def _local_day(self, ns):
        local = (_EPOCH + int(ns) // 1000 * _MICROSECOND).astimezone(self.tz)
        return local.toordinal() - _EPOCH_ORDINAL


def _running(length):
    """W at each period's start, counting from the first."""
    w = np.zeros_like(length)
    np.cumsum(length[:-1], out=w[1:])
    return w


def _check_periods(periods):
    try:
        periods = tuple((a, b) for a, b in periods)
    except (TypeError, ValueError):
        raise BadInput("periods must be (start, end) pairs of datetime.time") from None
    if not periods:
        raise BadInput("periods: a working day needs at least one office period")
    previous = None
    for a, b in periods:
        if not (isinstance(a, datetime.time) and isinstance(b, datetime.time)) or a.tzinfo or b.tzinfo:
            raise BadInput("periods must be (start, end) pairs of datetime.time without time zone")
        if b <= a:
            raise BadInput(f"office period {a.isoformat()}–{b.isoformat()} must end after it starts")
        if previous and a < previous[1]:
            raise BadInput(f"office periods {previous[0].isoformat()}–{previous[1].isoformat()} and "
                           f"{a.isoformat()}–{b.isoformat()} overlap or are out of order")
        previous = (a, b)
    return periods


def _check_weekend(weekend):
    days = frozenset(weekend)
    if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days):
        raise BadInput("weekend must hold weekday numbers 0 (Monday) to 6 (Sunday)")
    return days


def _check_basis(basis):
    if basis not in BASES:
        raise BadInput(f"time basis {basis!r} must be working or calendar")
    return basis


def _zone(tz):
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise BadInput(f"unknown time zone {tz!r}") from None


def _as_date(value):
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            raise BadInput(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    raise BadInput(f"expected a date, got {value!r}")


def _ns_since_midnight(t):
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000_000 + t.microsecond * 1000


def _is_scalar(value):
    return isinstance(value, datetime.datetime)


def _to_ns(value, what):
    """Instants as int64 ns since 1970 UTC, NaT as the int64 minimum; 0-d for a scalar."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise BadInput(f"{what}: a naive time is ambiguous; give a time zone")
        try:
            ns = value.value if isinstance(value, pd.Timestamp) else (value - _EPOCH) // _MICROSECOND * 1000
        except OverflowError:  # a Timestamp beyond the range of ns
            ns = None
        if ns is None or not _MIN_NS <= ns <= _MAX_NS:
            raise BadInput(f"{what}: instants must lie in the years 1900–2149")
        return np.asarray(ns, dtype=np.int64)
    if isinstance(value, pd.Series):
        if not isinstance(value.dtype, pd.DatetimeTZDtype):
            raise BadInput(f"{what}: a Series of instants must be timezone-aware datetime64, not {value.dtype}")
        value = pd.DatetimeIndex(value).tz_convert("UTC").tz_localize(None).to_numpy()
    elif not isinstance(value, np.ndarray):
        raise BadInput(f"{what}: expected an aware datetime, a datetime64 array or a Series, "
                       f"got {type(value).__name__}")
    elif value.dtype.kind != "M":
        raise BadInput(f"{what}: an array of instants must be datetime64, not {value.dtype}")
    # bounds in days compare in the array's own unit without overflow, unlike a cast to ns; NaT compares false
    low, high = np.datetime64(_MIN_NS // _NS_PER_DAY, "D"), np.datetime64(_MAX_NS // _NS_PER_DAY, "D")
    if ((value < low) | (value > high)).any():
        raise BadInput(f"{what}: instants must lie in the years 1900–2149")
    return value.astype("M8[ns]").view(np.int64)


def _hours(hours):
    if isinstance(hours, pd.Series):
        hours = hours.to_numpy()
    try:
        h = np.asarray(hours, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInput(f"hours must be a number or an array of numbers, got {type(hours).__name__}") from None
    if not (np.isfinite(h) & (np.abs(h) <= _MAX_HOURS)).all():
        raise BadInput(f"hours must be finite and at most {_MAX_HOURS:,} in size")
    return h


def _broadcast(a, b):
    try:
        return np.broadcast_arrays(a, b)
    except ValueError:
        raise BadInput(f"arrays of shapes {a.shape} and {b.shape} do not match") from None


def _scalar_like(ns, like):
    if isinstance(like, pd.Timestamp):
        return pd.Timestamp(ns, unit="ns", tz="UTC").tz_convert(like.tz)
    microseconds = -(-ns // 1000)  # round up, so a deadline is never early
    return (_EPOCH + datetime.timedelta(microseconds=microseconds)).astimezone(like.tzinfo)
