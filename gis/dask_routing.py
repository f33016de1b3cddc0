"""Batch routing on a Dask cluster: ``gridmap incidents reroute --dask-scheduler tcp://HOST:PORT``.

The database stays the single reader and writer. The coordinator (the process that runs the command) reads
the incidents' points in chunks and hands each chunk to the cluster as soon as it is read; the workers only
route. The coordinator builds no index (``GridRouter(build_index=False)`` knows the cells, all that writing
needs); each worker builds the :class:`~gis.batch_routing.GridRouter` once, not per chunk: the router's
inputs (cells, codes, parents and the pieces as WKB: 5 MB on the demo's 29,000 cells, against 190 MB for a
built index) are scattered to every worker once per run, and a worker keeps the routers it built in a small
cache keyed by the version and a digest of those inputs, so a long-lived worker builds a version's index once
and a draft whose cells were edited gets a new one. The answers come back in the order read, are put
together (:meth:`~gis.batch_routing.Routed.concat`: every point is routed on its own, so chunking changes
nothing) and are written by :func:`~gis.batch_routing.record_routing`, the code a local run writes with,
from the same rows.

Workers need GridMap installed (the same version as the coordinator: they import this module). The numba
kernels hold the GIL and take turns within a process, so the cluster's parallelism is its worker processes:
start them with one thread each (``dask worker ADDR --nworkers N --nthreads 1``); a task uses as many numba
threads as its worker has threads.
"""
import hashlib
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np
import shapely

from gis.batch_routing import GridRouter, Routed
from gis.errors import BadInput, ClusterUnavailable

DEFAULT_CHUNK_SIZE = 100_000  # points per task: 2.4 MB of coordinates, well under Dask's 10 MB graph warning
DEFAULT_TIMEOUT_S = 10.0
CACHED_ROUTERS = 2  # per worker: the active version's and one other (a draft being previewed); 200 MB each on the demo


def connect(address, *, chunk_size=DEFAULT_CHUNK_SIZE, timeout=DEFAULT_TIMEOUT_S):
    """A :class:`DaskRouting` on the scheduler at ``address``, with at least one worker, within ``timeout``
    seconds; :class:`~gis.errors.ClusterUnavailable` if there is none. Close it when done (``with``)."""
    try:
        from distributed import Client
        from distributed.comm.addressing import get_address_host_port
    except ImportError as exc:
        raise BadInput("--dask-scheduler needs dask.distributed: pip install 'gridmap[dask]'") from exc
    try:
        get_address_host_port(address)  # before a Client, which a bad address leaves half made
    except ValueError as exc:
        raise BadInput(f"{address!r} is not a Dask scheduler's address (tcp://HOST:PORT): {exc}") from exc
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:  # refused, timed out, unknown host
        raise ClusterUnavailable(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        client.close()
        raise ClusterUnavailable(f"the Dask scheduler at {address} has no workers (waited {timeout:g} s)") from exc
    return DaskRouting(client, chunk_size=chunk_size, owns_client=True)


class DaskRouting:
    """Routes batches of points on a Dask cluster through ``client`` (a ``distributed.Client``)."""

    def __init__(self, client, *, chunk_size=DEFAULT_CHUNK_SIZE, owns_client=False):
        if chunk_size < 1:
            raise BadInput(f"the chunk size must be at least 1, not {chunk_size}")
        self.client = client
        self.chunk_size = int(chunk_size)
        self.owns_client = owns_client
        self.last_run = {"chunks": 0, "workers": 0}

    @property
    def address(self):
        return self.client.scheduler.address

    def route(self, router, lon, lat, accuracy_m=None, snap_m=30.0):
        """:meth:`GridRouter.route` on the cluster, in chunks of ``chunk_size`` points."""
        lon = np.ascontiguousarray(lon, dtype=np.float64)
        lat = np.ascontiguousarray(lat, dtype=np.float64)
        accuracy = None if accuracy_m is None else np.ascontiguousarray(accuracy_m, dtype=np.float64)
        starts = range(0, max(len(lon), 1), self.chunk_size)  # no point: one empty chunk
        chunks = ((lon[s:s + self.chunk_size], lat[s:s + self.chunk_size],
                   None if accuracy is None else accuracy[s:s + self.chunk_size]) for s in starts)
        return self.route_chunks(router, chunks, snap_m)

    def route_chunks(self, router, chunks, snap_m=30.0):
        """Route ``(lon, lat, accuracy_m)`` batches, each sent to the cluster as ``chunks`` yields it (so the
        next one can be read meanwhile); their answers, in order, as one :class:`Routed` (None if no batch)."""
        from distributed import KilledWorker

        recipe = None
        futures = []
        try:
            for lon, lat, accuracy in chunks:
                if recipe is None:  # once per run, to every worker
                    recipe = self.client.scatter(RouterRecipe.of(router), broadcast=True, hash=False)
                futures.append(self.client.submit(_route_chunk, recipe, lon, lat, accuracy, snap_m, pure=False))
            answers = self.client.gather(futures)
        except (KilledWorker, OSError) as exc:  # CommClosedError is an OSError
            raise ClusterUnavailable(f"the Dask cluster at {self.address} failed while routing: {exc}") from exc
        finally:
            del futures, recipe  # releases them on the cluster
        self.last_run = {"chunks": len(answers), "workers": len({worker for _, worker in answers})}
        return Routed.concat(routed for routed, _ in answers) if answers else None

    def close(self):
        if self.owns_client:
            self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass(frozen=True, eq=False)
class RouterRecipe:
    """What a worker builds a :class:`GridRouter` from: its constructor's arguments, the pieces as WKB (exact:
    WKB keeps the float64 coordinates as they are), and ``key``, the version and a digest of the rest."""

    key: tuple
    arguments: dict

    @classmethod
    def of(cls, router):
        arguments = router.inputs()
        arguments["part_geoms"] = shapely.to_wkb(arguments["part_geoms"])
        digest = hashlib.blake2b(digest_size=16)
        for name in ("ids", "levels", "parents", "part_cells"):
            digest.update(np.ascontiguousarray(arguments[name]).tobytes())
        digest.update("\x1f".join(arguments["codes"].astype(str)).encode())
        for wkb in arguments["part_geoms"]:
            digest.update(wkb)
        digest.update(repr((arguments["version_id"], arguments["buckets_per_segment"])).encode())
        return cls((arguments["version_id"], digest.hexdigest()), arguments)

    def build(self):
        arguments = dict(self.arguments, part_geoms=shapely.from_wkb(self.arguments["part_geoms"]))
        return GridRouter(**arguments)


# --- on the workers --------------------------------------------------------------------------------------

_routers = OrderedDict()  # recipe key → GridRouter, the most recently used last
_routers_lock = threading.Lock()
_counts = {"built": 0, "chunks": 0}


def _router_for(recipe):
    with _routers_lock:  # one build per key, however many threads ask for it
        router = _routers.get(recipe.key)
        if router is None:
            router = _routers[recipe.key] = recipe.build()
            _counts["built"] += 1
            while len(_routers) > CACHED_ROUTERS:
                _routers.popitem(last=False)
        _routers.move_to_end(recipe.key)
        _counts["chunks"] += 1
    return router


@contextmanager
def _worker_threads():
    """Numba threads for this task's kernels: as many as the worker has threads (one with ``--nthreads 1``),
    not every core of the machine, which the worker's siblings use."""
    from distributed import get_worker

    try:
        threads = get_worker().state.nthreads
    except ValueError:  # not on a worker
        threads = numba.get_num_threads()
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))  # this thread's launches only
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _route_chunk(recipe, lon, lat, accuracy_m, snap_m):
    from distributed import get_worker

    with _worker_threads():
        routed = _router_for(recipe).route(lon, lat, accuracy_m, snap_m)
    return routed, get_worker().address


def worker_counts():
    """On a worker (``client.run(worker_counts)``): routers built and chunks routed since it started, and the
    keys of the routers it keeps."""
    with _routers_lock:
        return {**_counts, "cached": list(_routers)}
