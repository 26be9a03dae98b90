"""Background reindex jobs: one at a time, each in its own thread, polled by id.

The pipeline keeps serving the old generation while a job builds the new one; the swap is
the library's atomic manifest replace, which ``Pipeline.index()`` notices on the next request.

>>> jobs = ReindexJobs()
>>> jobs.get("nope") is None
True
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, Protocol, Sequence

from rag.errors import RagError
from rag.index.build import ReindexSummary

log = logging.getLogger("api")

State = Literal["queued", "running", "done", "failed"]
KEEP_JOBS = 20


class Reindexer(Protocol):
    def reindex(self, sources: Sequence[str] = ()) -> ReindexSummary: ...


class JobRunning(Exception):
    """Another reindex is still running (its id is the message)."""


@dataclass
class Job:
    id: str
    sources: list[str]
    state: State = "queued"
    started_at: str = field(default_factory=lambda: _now())
    finished_at: str | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None
    _t0: float = field(default_factory=time.monotonic, repr=False)
    _t1: float | None = field(default=None, repr=False)

    def public(self) -> dict[str, Any]:
        """The job as GET /reindex/{id} shows it."""
        end = self._t1 if self._t1 is not None else time.monotonic()
        return {"id": self.id, "state": self.state, "sources": self.sources, "started_at": self.started_at,
                "finished_at": self.finished_at, "elapsed_s": round(end - self._t0, 2),
                "summary": self.summary, "error": self.error}


class ReindexJobs:
    """Starts reindex threads and remembers the last few jobs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._running: Job | None = None

    def start(self, pipeline: Reindexer, sources: Sequence[str]) -> Job:
        """Start a job, or raise JobRunning with the id of the one still running."""
        with self._lock:
            if self._running is not None:
                raise JobRunning(self._running.id)
            job = Job(id=secrets.token_hex(4), sources=list(sources))
            self._running = job
            self._jobs[job.id] = job
            for old in list(self._jobs)[:-KEEP_JOBS]:
                del self._jobs[old]
        threading.Thread(target=self._run, args=(job, pipeline), name=f"reindex-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def _run(self, job: Job, pipeline: Reindexer) -> None:
        job.state = "running"
        state: State = "failed"
        try:
            summary = pipeline.reindex(job.sources)
            job.summary = {**asdict(summary), "line": summary.line()}
            state = "done"
        except RagError as exc:
            job.error = str(exc)
        except Exception:  # a thread has no caller to raise to: log it, and let the poller know
            log.exception("reindex job %s failed", job.id)
            job.error = f"internal error: see the server log for reindex job {job.id}"
        finally:
            # Finished and free in one step, so a poller that sees "done" can start the next job.
            with self._lock:
                job._t1 = time.monotonic()
                job.finished_at = _now()
                job.state = state
                self._running = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Refresher:
    """``rag serve --refresh``: a reindex job every ``every`` seconds, the first at start-up, each a
    refresh round of the URL sources. A round that finds a job still running is skipped, not queued.

    >>> Refresher(ReindexJobs(), None, (), 900.0).every   # doctest: +ELLIPSIS
    900.0
    """

    def __init__(self, jobs: ReindexJobs, pipeline: Any, sources: Sequence[str], every: float) -> None:
        self.jobs = jobs
        self.pipeline = pipeline
        self.sources = sources
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """No more rounds; a job already running finishes (or dies with the process: the fetch
        state keeps what it fetched, and the index stays as of the last completed round)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        wait = 0.0
        while not self._stop.wait(wait):
            wait = self.every
            try:
                job = self.jobs.start(self.pipeline, self.sources)
                log.info("refresh round: reindex job %s", job.id)
            except JobRunning as running:
                log.info("refresh round skipped: reindex %s is still running", running)
