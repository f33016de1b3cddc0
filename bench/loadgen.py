"""Report intake under load, as careful field apps send it, and a live-map client following the feed.

:func:`report_load` sends reports open loop — report *i* is due at ``start + i / rate`` whatever the server
answers, and its latency runs from that moment, so a slow server cannot slow the clock down — each with its
own ``client_request_id``. A report answered 503, or whose connection broke or timed out, is sent again with
the same id and body after a short, jittered back-off, as the API asks of clients; a 4xx other than 429 is
not retried. A report counts as acknowledged when a 200 or 201 came back.

:class:`LiveFollower` reads ``/api/v1/live`` as a browser's EventSource does: when the stream breaks it waits
the ``retry`` the server gave and reconnects with ``Last-Event-ID``.

:func:`verify` compares what the clients saw with the database: every acknowledged report stored exactly
once, nothing stored that was never acknowledged, each one's report event logged once and received once.
"""
import asyncio
import contextlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import numpy as np
import psycopg2
from psycopg2.extras import RealDictCursor

JSON = {"Content-Type": "application/json"}


@dataclass
class LoadResult:
    due: int = 0                                        # reports scheduled
    acknowledged: dict = field(default_factory=dict)    # client_request_id -> the incident's public id
    latencies: list = field(default_factory=list)       # s, from when it was due to its acknowledgement
    unavailable: list = field(default_factory=list)     # s each 503 answer took
    unavailable_why: Counter = field(default_factory=Counter)  # the 503 answers' messages
    failures: Counter = field(default_factory=Counter)  # attempts that failed, by why ('503', 'timeout', ...)
    rejected: dict = field(default_factory=dict)        # client_request_id -> (status, body): not retried
    gave_up: list = field(default_factory=list)         # still failing when the client's patience ran out
    attempts: int = 0
    seconds: float = 0.0                                # from the first report due to the last answer
    faults: list = field(default_factory=list)          # (s after start, what happened)

    def percentile(self, p):
        return float(np.percentile(self.latencies, p)) * 1000 if self.latencies else float("nan")

    def summary(self):
        s = (f"{self.due:,} reports due, {len(self.acknowledged):,} acknowledged in {self.seconds:.1f} s "
             f"({len(self.acknowledged) / max(self.seconds, 1e-9):,.0f}/s), p50 {self.percentile(50):.1f} ms, "
             f"p99 {self.percentile(99):.1f} ms; {self.attempts - self.due:,} retries")
        if self.failures:
            s += " after " + ", ".join(f"{n:,} × {why}" for why, n in self.failures.most_common())
        if self.unavailable:
            s += f"; 503 answers took p50 {np.percentile(self.unavailable, 50) * 1000:.1f} ms, max " \
                 f"{max(self.unavailable) * 1000:.1f} ms (" \
                 + ", ".join(f"{n:,} × {why!r}" for why, n in self.unavailable_why.most_common()) + ")"
        if self.rejected or self.gave_up:
            s += f"; {len(self.rejected)} rejected, {len(self.gave_up)} given up"
        return s


async def report_load(base, key, points, *, rate, seconds, tag, faults=(), timeout_s=10.0, patience_s=600.0,
                      connections=128, category="0102"):
    """Send ``rate`` reports a second for ``seconds`` to ``base`` with API key ``key`` (role device), at
    ``points`` (lon, lat) in turn, with ids ``<tag>-<i>``.

    ``faults`` are ``(after_s, name, function)``: each function runs in a thread that many seconds into the
    load (a database restart, a worker killed). At most ``connections`` requests are out at once; the others
    wait their turn, as in a device's outbox. ``timeout_s`` is how long a request sent may wait for its
    answer before the client retries it; ``patience_s`` how long after it was due a report is retried at most.
    """
    result = LoadResult(due=int(rate * seconds))
    loop = asyncio.get_running_loop()
    session = aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=connections),
                                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout_s,
                                                                  sock_read=timeout_s),
                                    headers={"Authorization": f"Bearer {key}"})
    start = loop.time() + 0.1

    async def fault(after_s, name, function):
        await asyncio.sleep(max(0.0, start + after_s - loop.time()))
        result.faults.append((round(loop.time() - start, 2), f"{name} began"))
        await asyncio.to_thread(function)
        result.faults.append((round(loop.time() - start, 2), f"{name} ended"))

    async def send(i, due):
        rid = f"{tag}-{i}"
        lon, lat = points[i % len(points)]
        body = json.dumps({"lon": lon, "lat": lat, "category": category, "accuracy_m": 8,
                           "description": "load test", "client_request_id": rid})
        attempt = 0
        while True:
            attempt += 1
            result.attempts += 1
            began = loop.time()
            try:
                async with session.post("/api/v1/reports", data=body, headers=JSON) as answer:
                    status, payload = answer.status, await answer.read()
            except asyncio.TimeoutError:
                why = "timeout"
            except aiohttp.ClientError as exc:
                why = type(exc).__name__
            else:
                if status in (200, 201):
                    result.acknowledged[rid] = json.loads(payload)["id"]
                    result.latencies.append(loop.time() - due)
                    return
                if status == 503:
                    result.unavailable.append(loop.time() - began)
                    result.unavailable_why[_message(payload)[:60]] += 1
                elif status != 429:
                    result.rejected[rid] = (status, payload[:300].decode(errors="replace"))
                    return
                why = str(status)
            result.failures[why] += 1
            if loop.time() - due > patience_s:
                result.gave_up.append(rid)
                return
            await asyncio.sleep(min(2.0, 0.05 * 2 ** attempt) * random.uniform(0.5, 1.0))

    try:
        fault_tasks = [asyncio.create_task(fault(*f)) for f in faults]
        sends = []
        for i in range(result.due):
            due = start + i / rate
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            sends.append(asyncio.create_task(send(i, due)))
        await asyncio.gather(*sends)
        result.seconds = loop.time() - start
        await asyncio.gather(*fault_tasks)
    finally:
        await session.close()
    return result


def _message(payload):
    """An error answer's message (GridMap's JSON errors carry one), else its first bytes."""
    try:
        return json.loads(payload)["message"]
    except (ValueError, KeyError, TypeError):
        return payload[:60].decode(errors="replace")


class LiveFollower:
    """A live-map client: follows ``/api/v1/live`` from now on, reconnecting as EventSource does.

    ``reports`` counts the report events received per incident public id; ``port`` is the local port of the
    connection open now (to find the worker serving it)."""

    def __init__(self, base, key):
        self.base, self.key = base, key
        self.reports = Counter()
        self.last_event_id = None
        self.connections = 0
        self.port = None
        self._retry_s = 2.0
        self._task = None

    def start(self):
        self._task = asyncio.create_task(self._follow())
        return self

    async def stop(self):
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def wait_for(self, public_ids, timeout_s):
        """Wait until a report event of each of ``public_ids`` has come; False if that took too long."""
        loop = asyncio.get_running_loop()
        ends = loop.time() + timeout_s
        while loop.time() < ends:
            if all(p in self.reports for p in public_ids):
                return True
            await asyncio.sleep(0.2)
        return False

    async def _follow(self):
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
        async with aiohttp.ClientSession(self.base, timeout=timeout,
                                         headers={"Authorization": f"Bearer {self.key}"}) as session:
            while True:
                headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
                try:
                    async with session.get("/api/v1/live?backlog=0", headers=headers) as stream:
                        if stream.status == 200:
                            self.connections += 1
                            self.port = stream.connection.transport.get_extra_info("sockname")[1]
                            await self._read(stream)
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                self.port = None
                await asyncio.sleep(self._retry_s)

    async def _read(self, stream):
        event_id, kind, data = None, None, []
        async for raw in stream.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("retry:"):
                self._retry_s = int(line[6:]) / 1000
            elif line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line:  # the end of an event (or of a comment)
                if data:
                    if kind == "report":
                        self.reports[json.loads("\n".join(data))["id"]] += 1
                    self.last_event_id = event_id
                event_id, kind, data = None, None, []


def verify(url, tag, result, follower=None):
    """What the database at ``url`` holds of the load tagged ``tag``, against what the clients saw: a dict
    of counts that are all 0 when nothing was lost or doubled. (A connection of its own: a pooled one may
    predate a restart.)"""
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute("""select i.client_request_id as rid, i.public_id, count(e.id) as events
                         from incident i left join live_event e on e.incident_id = i.id and e.kind = 'report'
                        where i.client_request_id like %s
                        group by i.id""", (f"{tag}-%",))
        stored = cur.fetchall()
    by_rid = Counter(r["rid"] for r in stored)
    acknowledged = result.acknowledged
    counts = {
        "acknowledged but not stored": sum(1 for rid in acknowledged if rid not in by_rid),
        "stored more than once": sum(1 for n in by_rid.values() if n > 1),
        "stored but never acknowledged": sum(1 for rid in by_rid if rid not in acknowledged),
        "acknowledged as another incident": sum(1 for r in stored if acknowledged.get(r["rid"], r["public_id"])
                                                != r["public_id"]),
        "report events not logged once": sum(1 for r in stored if r["events"] != 1),
    }
    if follower is not None:
        counts["report events the live client missed"] = sum(1 for p in acknowledged.values()
                                                             if p not in follower.reports)
        counts["report events the live client got twice"] = sum(1 for n in follower.reports.values() if n > 1)
    return counts
