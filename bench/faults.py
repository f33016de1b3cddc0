"""The parts a fault test breaks on purpose: a PostgreSQL cluster of its own, which it may restart, and
gunicorn, whose workers it may kill. Used by tests/test_load_faults.py (small scale) and
bench/bench_load.py (full scale).
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

DEVDB = Path(__file__).resolve().parent.parent / "scripts" / "devdb.sh"


class PrivateCluster:
    """A throwaway PostgreSQL+PostGIS cluster made by ``scripts/devdb.sh`` in a temporary directory, so that
    restarting it disturbs no other database (the project's own cluster holds the tests' and the demo's)."""

    def __init__(self):
        self.state_dir = Path(tempfile.mkdtemp(prefix="gridmap-cluster-"))
        # the socket lives in the cluster's own directory: any port number is free there
        self._env = dict(os.environ, GRIDMAP_STATE_DIR=str(self.state_dir),
                         GRIDMAP_PG_PORT=str(random.randint(40000, 59999)))
        self.url = None

    def _devdb(self, command):
        out = subprocess.run([str(DEVDB), command], env=self._env, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"devdb.sh {command} failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def start(self):
        self._devdb("start")
        self.url = self._devdb("url")
        return self

    def restart(self):
        """A fast restart: every session is cut off, new connections are refused until it is back."""
        self._devdb("restart")

    def stop(self):
        """Shut the server down (its data stays; :meth:`start` brings it back)."""
        self._devdb("stop")

    def destroy(self):
        self.stop()
        # devdb.sh may have put the data where PostgreSQL's user can reach it, linked from the state directory
        elsewhere = self.state_dir / "pg"
        if elsewhere.is_symlink():
            shutil.rmtree(elsewhere.resolve().parent, ignore_errors=True)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.destroy()


class Gunicorn:
    """``webmap:create_app(config)`` under gunicorn on a free loopback port, as ``make run`` serves it (gthread
    workers), started when ``ready_path`` answers 200 (asked with ``headers``)."""

    def __init__(self, database_url, *, secret_key, workers=2, threads=16, config=None, ready_path="/health",
                 headers=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DATABASE_URL=database_url, GRIDMAP_SECRET_KEY=secret_key)  # one key for all workers
        app = f"webmap:create_app({config!r})" if config else "webmap:create_app()"
        self.process = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(workers), "--threads", str(threads), "--log-level", "warning", app], env=env)
        for _ in range(300):
            try:
                if requests.get(self.base + ready_path, headers=headers, timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not start")

    def workers(self):
        return psutil.Process(self.process.pid).children()

    def kill_worker(self, client_port=None):
        """SIGKILL one worker — the one holding the connection from ``client_port`` when there is one — as the
        kernel's OOM killer would; the master starts another. Returns the pid killed."""
        workers = self.workers()
        chosen = next((w for w in workers for c in w.net_connections(kind="tcp")
                       if client_port and c.raddr and c.raddr.port == client_port), workers[0])
        os.kill(chosen.pid, signal.SIGKILL)
        return chosen.pid

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
