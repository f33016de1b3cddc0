"""Routing inside a long-running process (a web worker): the active version's :class:`GridRouter`, kept.

Routing one report with the index in memory takes 0.1–0.3 ms of the worker's time against about 2 ms of
the database's for ``route_report()``, and the database is what every worker shares. The index is built
in a background thread (about 2 s for the demo's 29,000 cells); until it is ready, and whenever the
database's active version is no longer the one it was built from, ``intake_report()`` routes in SQL and
says which version is active, and :meth:`WorkerRouter.saw_active` starts a rebuild.
"""
import logging
import threading
import time
from typing import NamedTuple

import numpy as np

from gis import point_index
from gis.batch_routing import STATUSES, GridRouter

log = logging.getLogger(__name__)

# PointIndex's default bucket grid: a single point gains little from the finer one batch routing uses,
# and each worker holds its own copy (65 MB instead of 130 MB on the demo).
BUCKETS_PER_SEGMENT = point_index.BUCKETS_PER_SEGMENT
RETRY_S = 10.0  # after a failed build (no active version, database down), wait this long before the next


class Answer(NamedTuple):
    """One report's routing, in the order ``intake_report()`` takes it."""

    version_id: int
    status: str
    cell_ids: list  # per level, district first; None where there is none
    candidates: list
    snap_distance_m: float | None


class WorkerRouter:
    """The active version's router for this process, or None while it is being built."""

    def __init__(self, db):
        self._db = db
        self._router = None
        self._building = None  # the thread building one, while it runs
        self._failed_at = -RETRY_S
        self._lock = threading.Lock()

    def route(self, lon, lat, accuracy_m, snap_m):
        """The routing of one WGS84 point, or None when no router is ready (one is then started)."""
        router = self._router
        if router is None:
            self._start_build()
            return None
        # as float32: SQL gets accuracy_m as a real, and the two must compare it with the same number
        accuracy = None if accuracy_m is None else np.array([accuracy_m], dtype=np.float32)
        routed = router.route(np.array([lon]), np.array([lat]), accuracy, snap_m)
        cells = routed.cells[0]
        snap = routed.snap_distance_m[0]
        return Answer(
            version_id=router.version_id,
            status=STATUSES[routed.status[0]],
            cell_ids=[int(router.ids[c]) if c >= 0 else None for c in cells],
            candidates=router.candidate_codes(routed)[0],
            snap_distance_m=None if np.isnan(snap) else float(snap),
        )

    def saw_active(self, version_id):
        """The database's active version is ``version_id``: rebuild if ours is another."""
        router = self._router
        if router is not None and router.version_id != version_id:
            self._router = None
            self._start_build()

    def wait_ready(self, timeout=None):
        """Build now if needed and wait for it; True when a router is ready (for tests and warm-up)."""
        self._start_build()
        thread = self._building
        if thread is not None:
            thread.join(timeout)
        return self._router is not None

    def _start_build(self):
        with self._lock:
            if self._router is not None or self._building is not None:
                return
            if time.monotonic() - self._failed_at < RETRY_S:
                return
            self._building = threading.Thread(target=self._build, name="gridmap-router", daemon=True)
            self._building.start()

    def _build(self):
        try:
            with self._db.cursor() as cur:
                self._router = GridRouter.from_database(cur, buckets_per_segment=BUCKETS_PER_SEGMENT)
            log.info("routing in the worker against grid version %s", self._router.version_id)
        except Exception:  # no active version yet, database down: SQL routes meanwhile; try again later
            self._failed_at = time.monotonic()
            log.warning("could not build the worker's router; routing in SQL", exc_info=True)
        finally:
            with self._lock:
                self._building = None
