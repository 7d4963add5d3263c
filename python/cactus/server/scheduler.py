"""The scheduler: the only code that calls the engine.

Each model has a bounded, fair queue and one or more worker threads, each owning one engine handle
(a model plus its own conversation cache). A request becomes a :class:`Job`; the worker runs it and
streams events back to the job's asyncio queue with ``loop.call_soon_threadsafe``, so the event loop
never calls C and never blocks on the engine. Cancelling a job (a client that went away) removes it from
the queue, or stops the running completion on its handle within one token.

Fairness: within a model, jobs are taken round-robin across tenants (API keys), first come first served
within a tenant, so one client flooding the queue cannot starve the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import Cactus
from .._native import CactusError, ffi, lib

# Events a job emits, in order:
#   ("start", i)            choice i starts (its prompt is being prefilled)
#   ("piece", i, text)      streamed text of choice i (the first may be empty: it marks the first token)
#   ("choice", i, result)   choice i is done; result is the engine's response dict
#   ("embedding", i, vec, n_tokens)
#   ("error", message, status)
#   ("end",)
Event = tuple[Any, ...]


class QueueFull(Exception):
    """The model's queue holds as many jobs as it may."""


class EngineError(Exception):
    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


class _Cancelled(BaseException):
    """Raised from the token callback to end a completion whose client went away."""


@dataclass(eq=False)
class Job:
    """One request's work: ``kind`` is "chat", "text" or "embed"; ``calls`` the engine calls to make.

    For chat and text, each call is ``(input, options, choice_index)``: the messages or the prompt, the
    engine options. For embed, each call is ``(text, None, index)``.
    """

    kind: str
    calls: list[tuple[Any, dict | None, int]]
    loop: asyncio.AbstractEventLoop
    tools: list | None = None
    tenant: str = ""
    stream: bool = False
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    first_token: float | None = None
    finished: float | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    worker: _Worker | None = None

    def emit(self, event: Event) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the event loop is closed: the server is shutting down
            self.cancelled.set()


class FairQueue:
    """A bounded queue of jobs, round-robin across tenants; thread-safe, never blocks a producer."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._cv = threading.Condition()
        self._tenants: OrderedDict[str, deque[Job]] = OrderedDict()
        self._size = 0
        self._closed = False

    def __len__(self) -> int:
        return self._size

    def put(self, job: Job) -> None:
        with self._cv:
            if self._closed:
                raise EngineError("the server is shutting down", 503)
            if self._size >= self.maxsize:
                raise QueueFull()
            self._tenants.setdefault(job.tenant, deque()).append(job)
            self._size += 1
            self._cv.notify()

    def remove(self, job: Job) -> bool:
        with self._cv:
            q = self._tenants.get(job.tenant)
            if q is None or job not in q:
                return False
            q.remove(job)
            self._size -= 1
            if not q:
                del self._tenants[job.tenant]
            return True

    def get(self) -> Job | None:
        """The next job (None once closed); blocks while the queue is empty."""
        with self._cv:
            while not self._size and not self._closed:
                self._cv.wait()
            if self._closed:
                return None
            tenant, q = next(iter(self._tenants.items()))
            job = q.popleft()
            self._size -= 1
            del self._tenants[tenant]
            if q:  # the tenant goes to the back of the line
                self._tenants[tenant] = q
            return job

    def close(self) -> list[Job]:
        with self._cv:
            self._closed = True
            left = [job for q in self._tenants.values() for job in q]
            self._tenants.clear()
            self._size = 0
            self._cv.notify_all()
            return left


class Stats:
    """Counters the scheduler keeps for /metrics, written by workers under a lock."""

    FIELDS = (
        "prompt_tokens",
        "prefill_tokens",
        "completion_tokens",
        "embedded_tokens",
        "cancelled",
        "running",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.prompt_tokens = 0
        self.prefill_tokens = 0
        self.completion_tokens = 0
        self.embedded_tokens = 0
        self.cancelled = 0
        self.running = 0

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, value in deltas.items():
                setattr(self, name, getattr(self, name) + value)


class _Worker:
    def __init__(self, model: ModelEntry, index: int, handle: Cactus) -> None:
        self.model = model
        self.handle = handle
        self._lock = threading.Lock()
        self._current: Job | None = None
        self.thread = threading.Thread(target=self._run, name=f"cactus-{model.id}-{index}", daemon=True)

    def cancel(self, job: Job) -> None:
        """Stops ``job`` if this worker is running it (callable from any thread)."""
        with self._lock:
            if self._current is job:
                self.handle.stop()

    def _run(self) -> None:
        while True:
            job = self.model.queue.get()
            if job is None:
                return
            if job.cancelled.is_set():
                self.model.stats.add(cancelled=1)
                continue
            with self._lock:
                self._current = job
                job.worker = self
            self.model.stats.add(running=1)
            job.started = time.monotonic()
            try:
                self._execute(job)
            except _Cancelled:
                self.model.stats.add(cancelled=1)
            except EngineError as exc:
                job.emit(("error", str(exc), exc.status))
            except CactusError as exc:  # the engine's message goes back; its code says whose fault it is
                job.emit(("error", str(exc), 400 if exc.is_caller_fault else 500))
            except Exception as exc:  # noqa: BLE001 - the engine's own message goes back to the client
                job.emit(("error", str(exc) or type(exc).__name__, _status_of(str(exc))))
            finally:
                with self._lock:
                    self._current = None
                self.model.stats.add(running=-1)
                job.finished = time.monotonic()
                job.emit(("end",))

    def _execute(self, job: Job) -> None:
        if job.kind == "embed":
            for text, _, index in job.calls:
                if job.cancelled.is_set():
                    raise _Cancelled()
                vec = self.handle.embed(text)
                n_tokens = len(self.handle.tokenize(text))
                self.model.stats.add(embedded_tokens=n_tokens)
                if job.first_token is None:
                    job.first_token = time.monotonic()
                job.emit(("embedding", index, vec, n_tokens))
            return
        for data, options, index in job.calls:
            if job.cancelled.is_set():
                raise _Cancelled()
            job.emit(("start", index))
            callback = self._callback(job, index)
            if job.kind == "chat":
                result = self.handle.complete(data, tools=job.tools, callback=callback, **(options or {}))
            else:
                result = self.handle.complete_text(data, callback=callback, **(options or {}))
            if job.cancelled.is_set():
                raise _Cancelled()
            if not result.get("success", True):
                message = result.get("error") or "the engine failed"
                raise EngineError(message, _status_of(message))
            self.model.stats.add(
                prompt_tokens=int(result.get("prompt_tokens", result.get("prefill_tokens", 0))),
                prefill_tokens=int(result.get("prefill_tokens", 0)),
                completion_tokens=int(result.get("decode_tokens", 0)),
            )
            job.emit(("choice", index, result))

    def _callback(self, job: Job, index: int) -> Callable[[str, int], None]:
        first = [True]

        def on_token(piece: str, _token_id: int) -> None:
            if job.cancelled.is_set():
                raise _Cancelled()
            if first[0]:
                first[0] = False
                if job.first_token is None:
                    job.first_token = time.monotonic()
                if job.stream:
                    job.emit(("piece", index, piece))
            elif job.stream and piece:
                job.emit(("piece", index, piece))

        return on_token


def _embedding_size(handle: Cactus) -> int:
    """The width of the model's embeddings: cactus_embed with no room for them says it, computing nothing."""
    dim = ffi.new("size_t *")
    lib.cactus_embed(handle.handle, b"", ffi.NULL, 0, dim)
    return int(dim[0])


def _status_of(message: str) -> int:
    """The HTTP status for an engine error: the caller's fault (400) or ours (500)."""
    text = message.lower()
    if "context" in text and ("holds" in text or "exceed" in text):
        return 400
    if text.startswith("option ") or "must be" in text:
        return 400
    return 500


class ModelEntry:
    """A served model: its id, its queue, its workers (each with an engine handle)."""

    def __init__(self, model_id: str, path: str, workers: int, max_queue: int) -> None:
        self.id = model_id
        self.path = path
        self.created = int(Path(path).stat().st_mtime) if Path(path).exists() else int(time.time())
        self.queue = FairQueue(max_queue)
        self.stats = Stats()
        self.workers: list[_Worker] = []
        try:
            for i in range(workers):
                self.workers.append(_Worker(self, i, Cactus(path)))
        except BaseException:
            self.close()
            raise
        self.dimensions = _embedding_size(self.workers[0].handle)

    def start(self) -> None:
        for w in self.workers:
            w.thread.start()

    def close(self) -> None:
        for job in self.queue.close():
            job.cancelled.set()
            job.emit(("error", "the server is shutting down", 503))
            job.emit(("end",))
        for w in self.workers:
            w.handle.stop()
        for w in self.workers:
            if w.thread.is_alive():
                w.thread.join(timeout=10)
            if not w.thread.is_alive():
                w.handle.close()


class Scheduler:
    """Owns the models. ``submit`` enqueues a job (raising :class:`QueueFull` when the model's queue is
    full); ``cancel`` withdraws or stops it."""

    def __init__(self, models: dict[str, str], workers: int = 1, max_queue: int = 64) -> None:
        self.models: dict[str, ModelEntry] = {}
        try:
            for model_id, path in models.items():
                self.models[model_id] = ModelEntry(model_id, path, workers, max_queue)
        except BaseException:
            self.close()
            raise
        for entry in self.models.values():
            entry.start()

    def submit(self, model_id: str, job: Job) -> None:
        self.models[model_id].queue.put(job)

    def cancel(self, model_id: str, job: Job) -> None:
        if job.finished is not None or job.cancelled.is_set():
            return
        job.cancelled.set()
        entry = self.models[model_id]
        if entry.queue.remove(job):
            job.emit(("end",))
            entry.stats.add(cancelled=1)
            return
        worker = job.worker
        if worker is not None:
            # The worker's token callback sees the flag at the next token anyway; cactus_stop also ends
            # it, and runs on an executor thread since the event loop never calls C.
            with contextlib.suppress(RuntimeError):  # no executor: the loop is shutting down
                job.loop.run_in_executor(None, worker.cancel, job)

    def queue_depth(self, model_id: str) -> int:
        return len(self.models[model_id].queue)

    def close(self) -> None:
        for entry in self.models.values():
            entry.close()


def choice_seeds(seed: int | None, n: int) -> list[int | None]:
    """The engine seed of each of n choices: distinct, reproducible when the request gives a seed."""
    limit = 1 << 53
    if seed is None:
        if n == 1:
            return [None]
        base = random.randrange(limit)
    else:
        base = seed % limit
    return [(base + i) % limit for i in range(n)]
