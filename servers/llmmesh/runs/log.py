"""The run store as the services use it: runs are handed over in a bounded queue and written in
batches by one background task, so storing never slows or breaks a run.

- `submit` never waits: a full queue (the database slower than the runs, or down) loses the run,
  counted in `llmmesh_runs_lost_total{reason="queue_full"}`.
- The writer takes what is queued (up to a batch) and inserts it in one transaction; a failed write
  loses that batch (`reason="write_failed"`), and the store is reopened after a pause.
- Opening the store (and migrating its schema) happens in the background too: a database that is
  down at start delays nothing; runs finished meanwhile wait in the queue.
- Retention (by age and by count, settings) is applied periodically by the same task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge

from llmmesh.framework.errors import Unavailable
from llmmesh.runs.capture import RunCapture
from llmmesh.runs.database import create_engine, database_url
from llmmesh.runs.migrate import upgrade
from llmmesh.runs.store import RunStore
from llmmesh.settings import RunStoreSettings

log = logging.getLogger("llmmesh.runs")

BATCH = 64
# After a failure to open or write, the next attempt waits this long (doubling, up to the cap).
RETRY_S, MAX_RETRY_S = 0.5, 30.0


class RunLogMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.written = Counter("llmmesh_runs_written_total", "Runs written to the run store", registry=registry)
        self.lost = Counter("llmmesh_runs_lost_total", "Finished runs that could not be stored", ["reason"],
                            registry=registry)
        self.queued = Gauge("llmmesh_runs_queued", "Finished runs waiting to be written", registry=registry)


class RunLog:
    def __init__(self, settings: RunStoreSettings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        # Checked now: a malformed LLMMESH_DATABASE_URL fails the start, not the first run.
        self.url = database_url(settings)
        self.metrics = RunLogMetrics(registry if registry is not None else CollectorRegistry())
        self._queue: asyncio.Queue[RunCapture] = asyncio.Queue(settings.queue_size)
        self._store: RunStore | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Runs submitted and runs done with (written or lost), for `flush`.
        self._submitted = self._settled = 0
        self._progress = asyncio.Condition()

    # ---- the services' side -------------------------------------------------------------------

    def capture(self, pattern: str, method: str, request: object, principal: str, *, keep: bool) -> RunCapture:
        s = self.settings
        return RunCapture(pattern, method, request, principal, keep=keep,  # type: ignore[arg-type]
                          max_events=s.max_events, max_event_bytes=s.max_event_bytes)

    def submit(self, run: RunCapture) -> None:
        """Queue a finished run for writing; never waits (a full queue loses it, counted)."""
        if not run.keep:
            return
        try:
            self._queue.put_nowait(run)
        except asyncio.QueueFull:
            self.metrics.lost.labels("queue_full").inc()
            return
        self._submitted += 1
        self.metrics.queued.set(self._queue.qsize())

    async def store(self, wait_s: float = 5.0) -> RunStore:
        """The open store, for reading; UNAVAILABLE if it cannot be opened in time."""
        await self.start()
        try:
            await asyncio.wait_for(self._ready.wait(), wait_s)
        except TimeoutError:
            raise Unavailable("the run store is unavailable; see the service's log") from None
        assert self._store is not None
        return self._store

    async def flush(self, timeout_s: float = 5.0) -> None:
        """Wait (at most `timeout_s`) until every run submitted so far is written or lost: a read
        right after a run then finds it."""
        target = self._submitted
        async with self._progress:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait_for(lambda: self._settled >= target), timeout_s)

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background writer (once; later calls do nothing)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="llmmesh-run-writer")

    async def close(self, drain_s: float = 5.0) -> None:
        """Write what is queued (for at most `drain_s`), then stop and close the store."""
        if self._task is None:
            return
        if self._store is not None:
            await self.flush(drain_s)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        if self._store is not None:
            await self._store.close()
            self._store = None
        lost = self._queue.qsize()
        if lost:
            self.metrics.lost.labels("shutdown").inc(lost)
            log.warning("stopped with %d runs not written", lost)

    # ---- the writer ---------------------------------------------------------------------------

    async def _run(self) -> None:
        await self._open()
        next_prune = time.monotonic()
        while True:
            timeout = max(0.0, next_prune - time.monotonic())
            try:
                first = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                await self._prune()
                next_prune = time.monotonic() + self.settings.prune_interval_s
                continue
            batch = [first]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write(batch)

    async def _open(self) -> None:
        delay = RETRY_S
        while True:
            engine = create_engine(self.url)
            try:
                await upgrade(engine)
            except Exception as exc:  # the database is down or unreachable: runs wait in the queue
                await engine.dispose()
                log.warning("cannot open the run store (%s); retrying in %.1fs", _describe(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_S)
                continue
            self._store = RunStore(engine)
            self._ready.set()
            log.info("run store open", extra={"database": engine.url.render_as_string(hide_password=True)})
            return

    async def _write(self, batch: list[RunCapture]) -> None:
        assert self._store is not None
        try:
            await self._store.insert([run.record() for run in batch])
        except Exception as exc:
            self.metrics.lost.labels("write_failed").inc(len(batch))
            log.warning("could not store %d runs: %s", len(batch), _describe(exc))
            await asyncio.sleep(RETRY_S)
        else:
            self.metrics.written.inc(len(batch))
        async with self._progress:
            self._settled += len(batch)
            self.metrics.queued.set(self._queue.qsize())
            self._progress.notify_all()

    async def _prune(self) -> None:
        s = self.settings
        if self._store is None or (s.retention_days <= 0 and s.retention_count <= 0):
            return
        try:
            deleted = await self._store.prune(max_age_days=s.retention_days, keep=s.retention_count)
        except Exception as exc:
            log.warning("could not apply the run store's retention: %s", _describe(exc))
            return
        if deleted:
            log.info("pruned %d runs", deleted)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
