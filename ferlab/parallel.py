"""Work on photos and videos in several processes, one CPU each.

ONNX Runtime's own threads gain little on ferlab's small networks: on 2 cores one process
analyzed 134 photos/s of 640x480 with one thread and 140 with two, while two processes of one
thread each gave 241, their start included (benchmarks/predict_workers.py; videos:
benchmarks/video_workers.py). Each worker process builds its own `ferlab.predict.Analyzer`
once and keeps it. A long item (a video, a video's segment) may tell the parent how far it
is (`advance`) and end early when the parent stops (`stopping`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from typing import Any

_analyzer = None  # the worker process's own, built by `_start`
_worker_cpu: int | None = None  # the one CPU a worker process keeps to
_stop = None  # the parent's event, set when it no longer wants the results of items begun
_done = None  # the parent's count of the work its workers have done (`WorkerPool.done`)


def available_cpus() -> list[int]:
    """The CPUs this process may run on: one in a worker process, so that ONNX Runtime starts
    one thread there (`ferlab.classifier`, `ferlab.detect`)."""
    if _worker_cpu is not None:
        return [_worker_cpu]
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def usable_cpus() -> int:
    """How many CPUs this process may run on (its affinity where the OS tells it, else all)."""
    return len(available_cpus())


def stopping() -> bool:
    """In a worker process: whether the parent has stopped early (Ctrl-C, or it stopped reading
    the results), so that a long item may end at once; its result is not used."""
    return _stop is not None and _stop.is_set()


def advance(amount: int = 1) -> None:
    """In a worker process: count ``amount`` more of the work done, for the parent's progress
    (a long item, such as a video's segment, that returns only at its end)."""
    if _done is not None:
        with _done.get_lock():
            _done.value += amount


def _start(build: Callable[[], Any], cpus, stop, done) -> None:
    global _analyzer, _worker_cpu, _stop, _done
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops handing out work
    _worker_cpu, _stop, _done = cpus.get(), stop, done
    if hasattr(os, "sched_setaffinity"):  # Linux: held to it
        os.sched_setaffinity(0, {_worker_cpu})
    _analyzer = build()
    if "torch" in sys.modules:  # a PyTorch model (--backend torch): one thread too
        sys.modules["torch"].set_num_threads(1)


def _call(function: Callable[[Any, Any], Any], item: Any) -> Any:
    return function(_analyzer, item)


class WorkerPool:
    """``workers`` processes, one CPU each, that each call ``build()`` once for their analyzer
    and then run ``function(analyzer, item)`` for the items submitted. ``build``, ``function``
    and the items must be picklable (module-level functions or `functools.partial` of them).
    Closed, it cancels the items not begun and waits for those begun, which end early where
    ``function`` checks `stopping`. ``done`` counts what the workers report with `advance`."""

    def __init__(self, build: Callable[[], Any], workers: int) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: ONNX Runtime's threads do not survive fork
        cpus = context.Queue()
        available = available_cpus()
        for i in range(workers):
            cpus.put(available[i % len(available)])
        self.stop = context.Event()
        self.done = context.Value("q", 0)
        self.executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_start,
                                            initargs=(build, cpus, self.stop, self.done))

    def submit(self, function: Callable[[Any, Any], Any], item: Any) -> Future:
        return self.executor.submit(_call, function, item)

    def close(self) -> None:
        self.stop.set()
        self.executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def map_in_workers(build: Callable[[], Any], function: Callable[[Any, Any], Any], items: Iterable,
                   workers: int) -> Iterator:
    """``function(analyzer, item)`` for each item, in order, in a `WorkerPool` of ``workers``.
    Stopped early (Ctrl-C), the items begun are finished first."""
    with WorkerPool(build, workers) as pool:
        yield from pool.executor.map(partial(_call, function), items)
