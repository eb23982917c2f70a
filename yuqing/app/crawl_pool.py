"""The daemon's side of the long-lived crawl worker (crawler/worker.py), and what runs after a crawl.

CrawlPool starts the worker once, sends it each source whose interval has come, at most
`in_flight` polls at a time (the rest wait in a queue, each source once), and reads each poll's
result. A worker that dies is restarted; its death is logged and recorded against the sources
it was polling (their health shows it), and the queue goes on in the new one. stop() drops
the queue and gives the polls in flight a few seconds to close before the worker is killed.

FollowUp runs analysis then dispatch in its own thread as soon as a poll stores new mentions,
so a crisis is not left waiting for the next scheduled analysis; polls that report while a
run is going trigger one more run, not one each.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import IO, Any

from yuqing.app import jobs
from yuqing.app.jobs import Runtime, run_guarded
from yuqing.clock import SystemClock
from yuqing.crawler.extensions import mark_failed
from yuqing.models import SourceState

log = logging.getLogger(__name__)

#: Polls the worker runs at once; the rest wait their turn in the daemon's queue.
IN_FLIGHT = 16
#: Seconds the worker gets after "stop" (it gives its polls STOP_GRACE of them) before it is killed.
STOP_SECONDS = 7.0
#: Seconds between restarts of a worker that keeps dying: doubled each time, up to the last.
RESTART_BACKOFF = (1.0, 2.0, 5.0, 15.0, 30.0)
#: A worker that lived this long before dying starts its backoff afresh.
HEALTHY_SECONDS = 60.0


def worker_command(rt: Runtime) -> list[str]:
    """The worker's command line; a test's or the demo's fixed clock goes with it."""
    cmd = [sys.executable, "-m", "yuqing.crawler.worker", str(rt.cfg.config_dir)]
    if not isinstance(rt.clock, SystemClock):
        cmd += ["--now", rt.clock.now().isoformat()]
    return cmd


class CrawlPool:
    """One long-lived crawl worker process, fed source ids; restarted when it dies."""

    def __init__(self, rt: Runtime, on_done: Callable[[dict[str, Any]], None] | None = None, in_flight: int = IN_FLIGHT):
        self.rt = rt
        self.on_done = on_done
        self.limit = in_flight
        self.lock = threading.Lock()
        self.queue: deque[str] = deque()
        self.in_flight: dict[str, float] = {}
        self.proc: subprocess.Popen[str] | None = None
        self.stopping = threading.Event()
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The running worker's process id."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self) -> None:
        """Start the worker process and the thread that reads its results."""
        env = {**os.environ, "YUQING_DATABASE_URL": self.rt.store.url}
        proc = subprocess.Popen(worker_command(self.rt), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                text=True, encoding="utf-8", bufsize=1)
        with self.lock:
            self.proc = proc
            self.started_at = time.monotonic()
            log.info("crawl worker started (pid %d)", proc.pid)
            while self.queue and len(self.in_flight) < self.limit:
                self._send(self.queue.popleft())
        assert proc.stdout is not None
        threading.Thread(target=self._read, args=(proc, proc.stdout), name="crawl-results", daemon=True).start()

    def submit(self, source_id: str) -> bool:
        """Poll a source as soon as the worker has room; False when it is already queued or polling."""
        with self.lock:
            if self.stopping.is_set() or source_id in self.in_flight or source_id in self.queue:
                log.debug("source %s: still polling or queued; this turn skipped", source_id)
                return False
            if self.pid is not None and len(self.in_flight) < self.limit:
                self._send(source_id)
            else:
                self.queue.append(source_id)
            return True

    def _send(self, source_id: str) -> None:
        """Hand one source to the worker (lock held)."""
        self.in_flight[source_id] = time.monotonic()
        try:
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"crawl": source_id}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            log.debug("crawl worker pipe closed while sending %s; the restart deals with it", source_id)

    def _read(self, proc: subprocess.Popen[str], out: IO[str]) -> None:
        """Each poll's result as the worker reports it; the worker's end when its stdout closes."""
        for line in out:
            try:
                msg = json.loads(line)
            except ValueError:
                log.warning("crawl worker said something unreadable: %r", line[:200])
                continue
            if "done" in msg:
                self._done(msg["done"])
            elif "stopped" in msg and msg["stopped"]:
                log.info("crawl worker stopped; polls cut short: %s", ", ".join(msg["stopped"]))
        self._gone(proc)

    def _done(self, run: dict[str, Any]) -> None:
        with self.lock:
            self.in_flight.pop(run.get("source_id", ""), None)
            while self.queue and len(self.in_flight) < self.limit and not self.stopping.is_set():
                self._send(self.queue.popleft())
        if self.on_done is not None:
            try:
                self.on_done(run)
            except Exception:
                log.exception("after-poll step failed for %s", run.get("source_id"))

    def _gone(self, proc: subprocess.Popen[str]) -> None:
        """The worker's stdout closed: a stop we asked for, or a death to log, record and restart."""
        code = proc.wait()
        if self.stopping.is_set():
            return
        with self.lock:
            lost = sorted(self.in_flight)
            self.in_flight.clear()
            lived = time.monotonic() - self.started_at
        log.error("crawl worker (pid %d) died with exit code %s while polling %s; restarting it", proc.pid, code,
                  ", ".join(lost) or "nothing")
        record_crash(self.rt, lost, f"crawl worker died (exit code {code}) while polling this source")
        self.restarts = 0 if lived > HEALTHY_SECONDS else self.restarts + 1
        while not self.stopping.wait(RESTART_BACKOFF[min(self.restarts, len(RESTART_BACKOFF) - 1)]):
            try:
                self.start()
                return
            except OSError:
                self.restarts += 1
                log.exception("crawl worker could not be restarted; trying again")

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Drop the queue, ask the worker to close its polls, and kill it if it has not gone by `timeout`."""
        with self.lock:
            self.stopping.set()
            dropped = len(self.queue)
            self.queue.clear()
            proc = self.proc
        if dropped:
            log.info("stopping: %d queued poll(s) dropped; they run at the next start", dropped)
        if proc is None or proc.poll() is not None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps({"stop": True}) + "\n")
            proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("crawl worker (pid %d) did not stop within %.0f s; killed", proc.pid, timeout)
            proc.kill()
            proc.wait()


def record_crash(rt: Runtime, source_ids: list[str], message: str) -> None:
    """A poll that died with its worker counts as a failed poll of its source, with the reason."""
    if not source_ids:
        return
    now = rt.clock.now()
    try:
        with rt.store.session() as sess:
            for sid in source_ids:
                state = sess.get(SourceState, sid)
                if state is None:
                    continue
                mark_failed(state, now, message)
    except Exception:
        log.exception("could not record the crawl worker's death against %s", ", ".join(source_ids))


class FollowUp:
    """Analysis, then dispatch, right after polls store new mentions; coalesced, in its own thread."""

    def __init__(self, rt: Runtime, lease_wait: float = 120.0):
        self.rt = rt
        self.lease_wait = lease_wait
        self.wanted = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="follow-up", daemon=True)

    def start(self) -> None:
        """Build the senders before any thread needs them (one set, one rate limit per robot), then wait for polls."""
        run_guarded("build senders", self.rt.channel_senders)
        self.thread.start()

    def after_poll(self, run: dict[str, Any]) -> None:
        """A poll's result: new mentions ask for a run (one run answers every ask made before it starts)."""
        if run.get("stored"):
            log.info("source %s stored %d new mention(s): analysing now", run.get("source_id"), run["stored"])
            self.wanted.set()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.wanted.wait()
            if self.stopping.is_set():
                return
            self.wanted.clear()
            run_guarded("analyze (after a poll)", lambda: jobs.analyze(self.rt, wait=self.lease_wait))
            if not self.stopping.is_set():
                run_guarded("dispatch (after a poll)", lambda: jobs.dispatch(self.rt))

    def stop(self, timeout: float = 5.0) -> None:
        """No new runs; a run in progress finishes its transaction (waited for up to `timeout`)."""
        self.stopping.set()
        self.wanted.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
