"""``/api/v1/live``: new reports, case actions and re-routings as server-sent events, as they commit.

A stream starts after the event named by the ``Last-Event-ID`` header (which a browser's EventSource sends
when it reconnects) or the ``after`` parameter, and otherwise with the last ``backlog`` events (default 50).
Each event is ``id: <xact>-<id>``, ``event: report|case|routing`` and ``data: <JSON>``; a comment every
``LIVE_HEARTBEAT_S`` seconds keeps proxies from closing a quiet stream. A stream ends after
``LIVE_LIFETIME_S`` seconds, so that the worker thread it holds comes free: the browser reconnects after
``retry`` milliseconds and resumes where it was (``gis.live`` says why nothing is missed).
"""
import json
import threading
import time

from flask import Blueprint, Response, current_app, request

from gis import live
from gis.errors import DatabaseUnavailable
from webmap import get_db, scope
from webmap.api import int_arg

bp = Blueprint("live", __name__, url_prefix="/api/v1")

DEFAULT_BACKLOG, MAX_BACKLOG = 50, 500
BATCH = 200  # events per read while catching up
DEFAULTS = {"LIVE_LIFETIME_S": 300.0, "LIVE_HEARTBEAT_S": 15.0, "LIVE_RETRY_MS": 2000}

# Every stream of a process wakes on the same notification and reads the feed: at most this many read at
# once, so that they never take all of the pool's connections from the other requests.
_readers = threading.BoundedSemaphore(2)
_starting = threading.Lock()


@bp.get("/live")
def events():
    """The feed as ``text/event-stream``; 400 for a malformed ``Last-Event-ID``, ``after`` or ``backlog``."""
    backlog = int_arg("backlog", 0, MAX_BACKLOG)
    db, past = get_db(), []
    # the header wins: an EventSource that opened ?after=… sends the URL again, with the header, on reconnecting
    if request.headers.get("Last-Event-ID"):
        cursor = live.parse_event_id(request.headers["Last-Event-ID"])
    elif request.args.get("after"):
        cursor = live.parse_event_id(request.args["after"], "after")
    else:
        with db.cursor(autocommit=True) as cur:  # read here, so that a database that is down answers 503
            past, cursor = live.tail(cur, DEFAULT_BACKLOG if backlog is None else backlog, scope())
    config = {key: current_app.config.get(key, default) for key, default in DEFAULTS.items()}
    body = _stream(db, _listener(), past, cursor, scope(), lifetime_s=config["LIVE_LIFETIME_S"],
                   heartbeat_s=config["LIVE_HEARTBEAT_S"], retry_ms=config["LIVE_RETRY_MS"])
    # no-cache: never replayed from a cache; X-Accel-Buffering: nginx passes each event on at once
    return Response(body, mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _listener():
    """This process's listener, started by the first stream (after gunicorn has forked its workers)."""
    extensions = current_app.extensions
    if "gridmap_live" not in extensions:
        with _starting:
            if "gridmap_live" not in extensions:
                extensions["gridmap_live"] = live.Listener(current_app.config["DATABASE_URL"]).start()
    return extensions["gridmap_live"]


def _stream(db, listener, past, cursor, within, *, lifetime_s, heartbeat_s, retry_ms):
    ends = time.monotonic() + lifetime_s
    yield f"retry: {int(retry_ms)}\n\n"
    yield from map(_message, past)
    while True:
        seen = listener.generation  # taken before reading: news during the read cuts the wait below short
        try:
            with _readers, db.cursor(autocommit=True) as cur:  # given back before sending: no connection
                news, cursor, scanned = live.read_visible(cur, cursor, BATCH, within)  # waits on a slow client
        except DatabaseUnavailable:
            return  # the browser comes back after `retry` with its Last-Event-ID
        for event in news:
            yield _message(event)
        left = ends - time.monotonic()
        if left <= 0:
            return
        if scanned < BATCH and listener.wait(seen, min(heartbeat_s, left)) == seen:
            yield ": still here\n\n"  # a comment: also how a closed connection is noticed


def _message(event):
    data = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.cursor}\nevent: {event.kind}\ndata: {data}\n\n"
