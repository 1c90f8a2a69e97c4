"""A thread that runs device jobs one after another, so slow hardware never blocks the queue.

Each serial bus (and each printer) gets its own worker: a dead printer that takes its full timeout to fail
delays only its own jobs. Jobs submitted with a ``key`` replace a not-yet-started job with the same key
(latest wins: a display only needs the newest number).

>>> w = Worker("demo"); done = []
>>> w.submit(lambda: done.append(1)); w.join_idle(1.0)
True
>>> done
[1]
>>> w.stop()
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: OrderedDict[object, Callable[[], object]] = OrderedDict()
        self._cond = threading.Condition()
        self._busy = False
        self._stopped = False
        self._n = 0
        self._thread = threading.Thread(target=self._run, name=f"worker-{name}", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], object], key: object | None = None) -> None:
        with self._cond:
            if key is None:
                self._n += 1
                key = ("_", self._n)
            self._jobs.pop(key, None)
            self._jobs[key] = job
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopped:
                    self._cond.wait()
                if self._stopped and not self._jobs:
                    return
                _, job = self._jobs.popitem(last=False)
                self._busy = True
            try:
                job()
            except Exception:  # noqa: BLE001 - a failing device job must not kill the worker
                log.exception("device job failed on %s", self.name)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def join_idle(self, timeout: float) -> bool:
        """Wait until no job is queued or running."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._jobs and not self._busy, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout)
