"""The live feed: the events that the triggers of ``sql/009_live.sql`` log in ``live_event`` (new reports,
case actions, re-routings), read in an order in which none is ever missed, and the :class:`Listener` that
tells a process's streams when to read.

Why the order is (xact, id), not id: ids are taken when a row is written, but transactions commit in any
order, so a reader at ``id > last`` could pass a row whose transaction commits after it read. Each event
therefore carries its transaction's id (``xact``, an xid8), and a reader delivers only events of
transactions older than its snapshot's xmin: every such transaction has ended, so that set of events is
final — no later commit can add to it — and reading it in (xact, id) order from the last (xact, id)
delivered misses nothing and repeats nothing. The cursor, and the SSE event id, is ``"<xact>-<id>"``.

The price: a writing transaction that stays open holds the feed back until it ends, whatever it writes and
in whichever database of the cluster (transaction ids are cluster-wide) — ``gridmap incidents import`` or
``reroute --commit``, the demo history loader, a session left idle in a transaction. Read-only transactions
take no transaction id and hold nothing back.
"""
import logging
import re
import select
import threading
from typing import NamedTuple

import psycopg2

from psycopg2 import sql

from gis.access import CITY_SCOPE
from gis.errors import BadInput

log = logging.getLogger(__name__)

CHANNEL = "gridmap_live"
_EVENT_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,19})")


class Cursor(NamedTuple):
    """A place in the feed: the (xact, id) of the last event delivered."""

    xact: int
    id: int

    def __str__(self):
        return f"{self.xact}-{self.id}"


START = Cursor(0, 0)  # before every event


class Event(NamedTuple):
    """One event: where it is in the feed, ``'report'``, ``'case'`` or ``'routing'``, and what it says."""

    cursor: Cursor
    kind: str
    data: dict


def parse_event_id(text, name="Last-Event-ID"):
    """The :class:`Cursor` an event id names.

    Parameters
    ----------
    text : str
        An event id as the feed sends it, ``"<xact>-<id>"``.
    name : str
        What the text came in as, for the message.

    Raises
    ------
    BadInput
        When ``text`` is not of that form.

    Examples
    --------
    >>> parse_event_id("1234-56")
    Cursor(xact=1234, id=56)
    """
    match = _EVENT_ID.fullmatch(text.strip())
    if not match or int(match[1]) >= 2 ** 64 or int(match[2]) >= 2 ** 63:
        raise BadInput(f"{name} must be an event id of this feed, <xact>-<id> (two whole numbers, e.g. "
                       f"1234-56); got {text!r}")
    return Cursor(int(match[1]), int(match[2]))


def read_after(cur, cursor, limit=100):
    """The events after ``cursor`` whose transactions, and all older ones, have ended: oldest first.

    Parameters
    ----------
    cur : psycopg2 cursor
    cursor : Cursor
        The last event delivered (:data:`START` for none).
    limit : int
        At most this many; when that many come back, read again after the last of them.

    Returns
    -------
    list of Event
    """
    with cur.connection.cursor() as plain:  # any kind of cursor in, tuples here
        plain.execute("""select e.xact::text, e.id, e.kind, e.data from live_event e
                          where (e.xact, e.id) > (%s::xid8, %s) and e.xact < pg_snapshot_xmin(pg_current_snapshot())
                          order by e.xact, e.id
                          limit %s""", (str(cursor.xact), cursor.id, limit))
        return [_event(row) for row in plain.fetchall()]


def read_visible(cur, cursor, limit, scope):
    """:func:`read_after` for someone of ``scope`` (:mod:`gis.access`): ``(events, cursor, scanned)`` — the
    events of the next ``limit`` whose incidents are in scope, the cursor to read on from (the last event
    scanned, visible or not) and how many were scanned (``limit``: read again at once)."""
    events = read_after(cur, cursor, limit)
    if not events:
        return [], cursor, 0
    if scope.unrestricted:
        return events, events[-1].cursor, len(events)
    with cur.connection.cursor() as plain:
        plain.execute(sql.SQL("""select e.id from live_event e join incident i on i.id = e.incident_id
                                  where e.id = any(%s) and {}""").format(scope.incident_filter(plain, "i")),
                      ([e.cursor.id for e in events],))
        visible = {row[0] for row in plain.fetchall()}
    return [e for e in events if e.cursor.id in visible], events[-1].cursor, len(events)


def tail(cur, n, scope=CITY_SCOPE):
    """The newest ``n`` deliverable events, oldest first, and the cursor to follow the feed from.

    Parameters
    ----------
    cur : psycopg2 cursor
    n : int
        How many events of the past to show (0: none).

    Returns
    -------
    (list of Event, Cursor)
        The cursor is the newest deliverable event's — also when ``n`` is 0 — or :data:`START`.
    """
    with cur.connection.cursor() as plain:
        plain.execute("""select e.xact::text, e.id, e.kind, e.data from live_event e
                          where e.xact < pg_snapshot_xmin(pg_current_snapshot())
                          order by e.xact desc, e.id desc
                          limit %s""", (max(n, 1),))
        newest_first = [_event(row) for row in plain.fetchall()]
        cursor = newest_first[0].cursor if newest_first else START
        if not scope.unrestricted and n > 0:
            plain.execute(sql.SQL("""select e.xact::text, e.id, e.kind, e.data
                                       from live_event e join incident i on i.id = e.incident_id
                                      where e.xact < pg_snapshot_xmin(pg_current_snapshot()) and {}
                                      order by e.xact desc, e.id desc
                                      limit %s""").format(scope.incident_filter(plain, "i")), (n,))
            newest_first = [_event(row) for row in plain.fetchall()]
    return newest_first[:n][::-1], cursor


KEEP_DAYS = 7


def prune(db, keep_days=KEEP_DAYS):
    """Forget the events older than ``keep_days`` (the tick calls this); returns how many went.

    A browser away longer than that resumes from where the feed now starts: the counts it shows are
    redrawn from the tiles anyway, only the feed panel misses those old lines."""
    with db.cursor() as cur:
        cur.execute("delete from live_event where at < now() - make_interval(days => %s)", (keep_days,))
        return cur.rowcount


def _event(row):
    xact, id_, kind, data = row
    return Event(Cursor(int(xact), id_), kind, data)


class Listener:
    """Wakes the streams of this process when the feed may have news.

    One daemon thread holds one dedicated connection, in autocommit, that LISTENs on ``gridmap_live``; each
    notification bumps a generation counter and wakes every :meth:`wait`. It also wakes them when events it
    saw committed but held back by an older open transaction (see the module's docstring) become
    deliverable — that transaction need not be one that notifies — by looking every ``held_poll_s`` while
    some are held back. When the database goes away it connects again, backing off up to ``max_backoff_s``,
    and wakes the streams once it listens again: notifications sent meanwhile are lost.

    A stream reads the generation, reads the feed after its cursor, then waits for a generation past the one
    it read, with a timeout (its heartbeat) after which it reads anyway: news during its read wakes it at
    once, and a lost notification delays an event, never loses it.

    Parameters
    ----------
    url : str
        The database, as a libpq URI.
    poll_s : float
        How long the thread waits on the socket at most: how soon :meth:`stop` takes effect (a wake-up of
        the thread alone, no query).
    held_poll_s : float
        How often it looks while events are held back.
    max_backoff_s : float
        The longest wait between two attempts to connect.
    """

    def __init__(self, url, *, poll_s=0.25, held_poll_s=0.1, max_backoff_s=30.0):
        self.url = url
        self._poll_s = poll_s
        self._held_poll_s = held_poll_s
        self._max_backoff_s = max_backoff_s
        self._changed = threading.Condition()
        self._generation = 0
        self._stopping = threading.Event()
        self._thread = None

    def start(self):
        """Start the thread (once); returns the listener."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="gridmap-live-listener", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout=5.0):
        """Stop the thread and close its connection; waiting streams wake."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._wake()

    @property
    def generation(self):
        return self._generation

    def wait(self, seen, timeout):
        """Block until the generation is past ``seen`` or ``timeout`` seconds pass; return the generation."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, timeout)
            return self._generation

    def _wake(self):
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _run(self):
        backoff = 0.5
        while not self._stopping.is_set():
            conn = None
            try:
                conn = psycopg2.connect(self.url, connect_timeout=5, application_name="gridmap live",
                                        keepalives=1, keepalives_idle=30, keepalives_interval=10,
                                        keepalives_count=3)  # (TCP only: a dead peer is noticed)
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(f"listen {CHANNEL}")
                backoff = 0.5
                self._follow(conn)
            except (psycopg2.Error, OSError) as exc:
                log.warning("live feed: %s; listening again in %.1f s", str(exc).strip(), backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
            finally:
                if conn is not None:
                    conn.close()

    def _follow(self, conn):
        # Each look for held-back events comes before the wake-up it goes with: an event that a woken stream
        # finds held back was seen held back here too, and is watched until it comes free.
        held, _ = self._held_back(conn, None)
        self._wake()  # anything may have happened while nobody listened
        while not self._stopping.is_set():
            if not conn.notifies:  # (any that came during the last query are read off the socket already)
                timeout = self._poll_s if held is None else self._held_poll_s
                if select.select([conn], [], [], timeout)[0]:
                    conn.poll()  # raises when the server has gone
            news = bool(conn.notifies)
            conn.notifies.clear()
            if news or held is not None:
                held, freed = self._held_back(conn, held)
                if news or freed:
                    self._wake()

    def _held_back(self, conn, held):
        """The xact of the oldest event committed but held back now (None: none), and whether the oldest
        open transaction has moved past ``held``."""
        with conn.cursor() as cur:
            cur.execute("""select pg_snapshot_xmin(s)::text,
                                  (select e.xact::text from live_event e where e.xact >= pg_snapshot_xmin(s)
                                    order by e.xact limit 1)
                             from pg_current_snapshot() s""")
            horizon, oldest = cur.fetchone()
        return (None if oldest is None else int(oldest)), held is not None and int(horizon) > held
