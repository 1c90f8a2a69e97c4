"""Run a local VictoriaMetrics: the line-protocol time-series server that the tests, the benchmarks and a
development gateway export to (it accepts influxdb-client's ``/api/v2/write``; MEASURED.md).

    vm = VictoriaMetrics(Path("/tmp/vm")).start()
    ... InfluxExport(vm.url, ...) ...
    vm.count('{__name__=~"queue_.*"}')
    vm.stop()                      # keeps the data: start() again resumes on the same port and storage
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import weakref
from pathlib import Path

from civiq.dev.broker import free_port, wait_port


class VictoriaMetrics:
    """``victoria-metrics`` on a free port with its own storage dir; queries see fresh samples at once
    (``-search.latencyOffset=0s``)."""

    def __init__(self, data: Path | None = None, port: int | None = None, retention: str = "30d") -> None:
        self.port = port or free_port()
        self.data = data or Path(tempfile.mkdtemp(prefix="civiq-vm-"))
        if data is None:  # our own temporary folder: gone when this object is, or at exit
            weakref.finalize(self, shutil.rmtree, self.data, ignore_errors=True)
        self.retention = retention
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    @staticmethod
    def binary() -> str | None:
        return shutil.which("victoria-metrics")

    @classmethod
    def available(cls) -> bool:
        return cls.binary() is not None

    def start(self, timeout: float = 20.0) -> VictoriaMetrics:
        self.data.mkdir(parents=True, exist_ok=True)
        with open(self.data.parent / f"{self.data.name}.log", "ab") as log:  # the child keeps its own fd
            self.proc = subprocess.Popen(
                [self.binary() or "victoria-metrics", f"-httpListenAddr=127.0.0.1:{self.port}",
                 f"-storageDataPath={self.data}", "-search.latencyOffset=0s",
                 f"-retentionPeriod={self.retention}"], stdout=log, stderr=log, start_new_session=True)
        wait_port("127.0.0.1", self.port, timeout)
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                raise TimeoutError(f"VictoriaMetrics on {self.url} not healthy after {timeout}s")
            time.sleep(0.05)
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server; its data stays (``start()`` resumes on the same port and storage)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        wait_port("127.0.0.1", self.port, 10, up=False)

    def remove(self) -> None:
        """Stop and delete the storage."""
        VictoriaMetrics.stop(self)
        shutil.rmtree(self.data, ignore_errors=True)

    def flush(self) -> None:
        """Make freshly written samples searchable now (otherwise within ~10 s)."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).close()

    def export(self, match: str) -> list[dict]:
        """Every series matching ``match`` with its samples (``/api/v1/export``)."""
        q = urllib.parse.urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{q}", timeout=60) as r:
            return [json.loads(ln) for ln in r.read().decode().splitlines() if ln.strip()]

    def count(self, match: str) -> int:
        """Samples held for ``match``, after a flush."""
        self.flush()
        return sum(len(s["timestamps"]) for s in self.export(match))
