"""Run a local MQTT broker: Mosquitto when it is installed, else the embedded pure-Python amqtt.

Used by ``civiq demo``, the tests and the benchmarks. Tests always use :class:`Mosquitto` (a real broker they
can kill and restart on the same port).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 10.0, up: bool = True) -> None:
    """Wait until a TCP port accepts (``up``) or refuses connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.02)
    raise TimeoutError(f"port {host}:{port} not {'up' if up else 'down'} after {timeout}s")


# Queues sized so a subscriber that falls behind for a while loses nothing (MEASURED.md: the default of
# 1000 queued messages silently drops QoS0 traffic).
DEV_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
max_queued_messages 1000000
max_inflight_messages 100
max_packet_size 1048576
sys_interval 1
"""


class Mosquitto:
    """A Mosquitto process on a port of its own. ``stop()`` / ``start()`` keep the same port."""

    def __init__(self, port: int | None = None, extra_config: str = "", workdir: Path | None = None,
                 persistent: bool = False) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._dir = workdir or Path(tempfile.mkdtemp(prefix="civiq-mosq-"))
        if workdir is None:  # our own temporary folder: gone when this object is, or at exit
            weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        self.extra_config = extra_config
        self.persistent = persistent  # keep sessions and retained messages across stop()/start()
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()

    @property
    def binary(self) -> str:
        return shutil.which("mosquitto") or "/usr/sbin/mosquitto"

    def start(self, timeout: float = 20.0) -> Mosquitto:
        conf = self._dir / "mosquitto.conf"
        persistence = (f"persistence true\npersistence_location {self._dir}/\n" if self.persistent
                       else "persistence false\n")
        # Run as root, mosquitto drops to the "mosquitto" user, which cannot write our temporary dir.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
        conf.write_text(DEV_CONFIG.format(port=self.port) + user + persistence + self.extra_config)
        with open(self._dir / "mosquitto.log", "ab") as log:
            # its own session: a Ctrl-C meant for the program that started it (the demo, a test run) must not
            # kill the broker before that program has stopped its clients cleanly
            self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                wait_port(self.host, self.port, 0.5)
                return self
            except TimeoutError:
                if self.proc.poll() is not None:
                    tail = (self._dir / "mosquitto.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"mosquitto exited with {self.proc.returncode}:\n{tail}") from None
                if time.monotonic() > deadline:
                    raise

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        wait_port(self.host, self.port, 5, up=False)

    def kill(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def pause(self) -> None:
        if self.proc:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc:
            os.kill(self.proc.pid, signal.SIGCONT)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedBroker:
    """amqtt in a background thread: the demo's broker when Mosquitto is not installed.

    amqtt quirks (MEASURED.md): no MQTT v5, QoS0 replayed as QoS1. civiq never relies on broker sessions, so
    this is fine for a demo; production runs Mosquitto.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._thread = None
        self._loop = None
        self._broker = None

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        import asyncio
        import threading

        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "sys_interval": 0,
            "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
            "topic-check": {"enabled": False},
        }

        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._broker = Broker(config, loop=loop)
            loop.run_until_complete(self._broker.start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="amqtt", daemon=True)
        self._thread.start()
        ready.wait(timeout)
        wait_port(self.host, self.port, timeout)
        return self

    def stop(self) -> None:
        import asyncio

        if self._loop and self._broker:
            fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                fut.result(10)
            except Exception:  # noqa: BLE001 - shutting down anyway
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)


def local_broker(prefer_mosquitto: bool = True, port: int | None = None) -> Mosquitto | EmbeddedBroker:
    if prefer_mosquitto and Mosquitto.available():
        return Mosquitto(port).start()
    return EmbeddedBroker(port).start()
