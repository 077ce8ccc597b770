"""Load generation spread over worker processes, or run inline in this one.

A scenario cuts its connections into jobs (plain dicts) and names a worker
coroutine ``async def worker(job: dict, link: Link) -> dict``. A :class:`Pool`
runs one worker per job, each in its own process (``processes=True``: the
load generator then uses more than one core) or as tasks of this process's
event loop (``processes=False``: cheaper to start, used for tiny runs).

Workers and the parent meet at named barriers: a worker calls
``await link.barrier("connected")``; the parent waits with ``await
pool.reached("connected")``, does what it must (sample the server's memory,
send the pile-up of ``resume``...), then ``pool.go("connected")`` releases them
all at once. Progress flows back as a running count (``link.add(n)``) that the
parent sums for the progress bar. Results come back pickled when a worker ends;
an exception in a worker ends the run with its traceback.

Processes are started with ``spawn``: the parent runs an event loop (and uvloop
does not survive ``fork``), and a fresh interpreter imports only the bench.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import multiprocessing
import threading
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, Self

# How often a worker reports its running count: the progress bar's refresh rate.
PROGRESS_SECONDS = 0.25
# A worker that has not ended this long after the parent expects it has hung.
FINISH_GRACE_SECONDS = 120.0

WorkerFn = Callable[[dict, "Link"], Awaitable[dict]]


class WorkerError(RuntimeError):
    """A worker raised; the message carries its traceback."""


class Link:
    """A worker's side: barriers and a progress count."""

    def __init__(self, send: Callable[[tuple], None], inbox: asyncio.Queue) -> None:
        self._send = send
        self._inbox = inbox
        self.count = 0

    def add(self, n: int = 1) -> None:
        self.count += n

    async def barrier(self, name: str, data: Any = None) -> Any:
        """Tell the parent we reached ``name`` and wait until it says go (with its data)."""
        self._send(("at", name, data, self.count))
        while True:
            message = await self._inbox.get()
            if message[0] == "go" and message[1] == name:
                return message[2]

    async def report(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            self._send(("count", self.count))


def resolve(path: str) -> WorkerFn:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


async def _run_worker(fn_path: str, job: dict, link: Link) -> dict:
    reporter = asyncio.create_task(link.report())
    try:
        return await resolve(fn_path)(job, link)
    finally:
        reporter.cancel()


def _process_main(fn_path: str, job: dict, conn) -> None:
    """Entry point of a worker process."""
    try:
        import uvloop  # shipped with uvicorn[standard]; the load generator wants the faster loop

        runner: Callable = uvloop.run
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        runner = asyncio.run

    async def main() -> None:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue = asyncio.Queue()
        def deliver(message: tuple) -> None:
            loop.call_soon_threadsafe(inbox.put_nowait, message)

        _reader_thread(conn, deliver, lambda: None)
        link = Link(conn.send, inbox)
        try:
            result = await _run_worker(fn_path, job, link)
        except BaseException:  # noqa: BLE001 - reported to the parent with its traceback
            conn.send(("error", traceback.format_exc()))
            return
        conn.send(("done", result))

    runner(main())
    conn.close()


def _reader_thread(conn, deliver: Callable[[tuple], None], on_eof: Callable[[], None]) -> None:
    """Read a pipe in a thread (blocking reads: a big result never meets a full pipe)."""

    def read() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                on_eof()
                return
            deliver(message)
            if message[0] in ("done", "error"):
                return

    threading.Thread(target=read, name="bench-pipe-reader", daemon=True).start()


class _Worker:
    """The parent's view of one worker: its messages and how to talk to it."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue = asyncio.Queue()
        self.count = 0
        self.result: dict | None = None
        self.send: Callable[[tuple], None] = lambda _m: None
        self.process: multiprocessing.process.BaseProcess | None = None
        self.task: asyncio.Task | None = None
        self.conn: Any = None  # the parent's end of the pipe (multiprocessing.connection.Connection)

    def take(self, message: tuple) -> None:
        if message[0] == "count":
            self.count = message[1]
        else:
            if message[0] == "at":
                self.count = message[3]
            self.messages.put_nowait(message)


class Pool:
    def __init__(self, fn_path: str, jobs: list[dict], *, processes: bool) -> None:
        self.fn_path = fn_path
        self.jobs = jobs
        self.processes = processes
        self.workers = [_Worker() for _ in jobs]

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        ctx = multiprocessing.get_context("spawn")
        for worker, job in zip(self.workers, self.jobs, strict=True):
            if self.processes:
                parent, child = ctx.Pipe()
                worker.conn = parent
                worker.process = ctx.Process(target=_process_main, args=(self.fn_path, job, child), daemon=True)
                worker.process.start()
                child.close()
                worker.send = parent.send

                def died(w: _Worker = worker) -> None:
                    if w.result is None:
                        loop.call_soon_threadsafe(w.messages.put_nowait, ("error", "the worker process died"))

                def deliver(message: tuple, w: _Worker = worker) -> None:
                    loop.call_soon_threadsafe(w.take, message)

                _reader_thread(parent, deliver, died)
            else:
                inbox: asyncio.Queue = asyncio.Queue()
                worker.send = inbox.put_nowait
                link = Link(worker.take, inbox)
                worker.task = asyncio.create_task(self._inline(worker, job, link))
        return self

    async def _inline(self, worker: _Worker, job: dict, link: Link) -> None:
        try:
            worker.take(("done", await _run_worker(self.fn_path, job, link)))
        except Exception:  # noqa: BLE001 - same path as a process's error
            worker.take(("error", traceback.format_exc()))

    async def __aexit__(self, *exc) -> None:
        for worker in self.workers:
            if worker.task is not None and not worker.task.done():
                worker.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.task
            if worker.process is not None:
                worker.process.join(timeout=5)
                if worker.process.is_alive():
                    worker.process.kill()
                    worker.process.join()
                worker.conn.close()

    @property
    def count(self) -> int:
        return sum(w.count for w in self.workers)

    async def _next(self, worker: _Worker, timeout: float | None) -> tuple:
        message = await asyncio.wait_for(worker.messages.get(), timeout)
        if message[0] == "error":
            raise WorkerError(message[1])
        return message

    async def reached(self, name: str, timeout: float | None = None) -> list[Any]:
        """Wait until every worker is at barrier ``name``; returns the data each sent."""
        out = []
        for worker in self.workers:
            message = await self._next(worker, timeout)
            if message[0] != "at" or message[1] != name:
                raise WorkerError(f"a worker sent {message[:2]!r} while the parent waited at {name!r}")
            out.append(message[2])
        return out

    def go(self, name: str, data: Any = None) -> None:
        for worker in self.workers:
            worker.send(("go", name, data))

    async def results(self, timeout: float = FINISH_GRACE_SECONDS) -> list[dict]:
        out = []
        for worker in self.workers:
            message = await self._next(worker, timeout)
            if message[0] != "done":
                raise WorkerError(f"a worker sent {message[:2]!r} instead of its result")
            worker.result = message[1]
            out.append(message[1])
        return out


def split(items: list, parts: int) -> list[list]:
    """``items`` cut into ``parts`` nearly equal, non-empty slices (fewer if too few items)."""
    parts = max(1, min(parts, len(items)))
    return [items[i::parts] for i in range(parts)]
