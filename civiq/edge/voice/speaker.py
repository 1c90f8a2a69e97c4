"""Where an announcement's WAV goes: one interface, three outputs.

* :class:`AlsaOutput`: the Pi's sound card (3.5 mm jack, USB sound card, HDMI) through ``aplay -D DEVICE``;
  ``aplay`` failing (no card, device busy, bad name) raises :class:`SpeakerError`, which the announcer
  reports as the speaker's health.
* :class:`NoOutput` (``output: none``): nothing is played here; the hall board page plays the WAV in the
  browser (``/api/voice/<id>.wav``). The queue still waits the announcement's length, so calls come one
  after another there too.
* the emulated speaker (civiq/edge/sim/speaker.py) records what was said, in simulation.

An output's :meth:`Output.play` blocks for as long as the sound lasts: announcements never overlap.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from typing import Protocol

from civiq.errors import EdgeError


class SpeakerError(EdgeError):
    """The sound could not be played; the message is what a technician needs."""


class Playable(Protocol):
    wav: bytes
    duration_s: float


class Output:
    kind = "none"

    def __init__(self) -> None:
        self._stop = threading.Event()

    def play(self, item: Playable) -> None:
        raise NotImplementedError

    def check(self) -> str | None:
        """What stops this output from playing (None when nothing is known to be wrong). Cheap."""
        return None

    def close(self) -> None:
        self._stop.set()


class NoOutput(Output):
    """No local sound (browser-only or no speaker): waits the announcement's length, plays nothing."""

    kind = "none"

    def play(self, item: Playable) -> None:
        self._stop.wait(item.duration_s)


class AlsaOutput(Output):
    """``aplay -q -D <device> -t wav -`` fed the WAV on standard input."""

    kind = "alsa"

    def __init__(self, device: str = "default", aplay: str = "aplay") -> None:
        super().__init__()
        self.device = device
        self.aplay = aplay
        self._proc: subprocess.Popen | None = None

    def check(self) -> str | None:
        if shutil.which(self.aplay) is None:
            return "aplay is not installed: apt install alsa-utils"
        return None

    def play(self, item: Playable) -> None:
        exe = shutil.which(self.aplay)
        if exe is None:
            raise SpeakerError("aplay is not installed: apt install alsa-utils")
        try:
            self._proc = subprocess.Popen([exe, "-q", "-D", self.device, "-t", "wav", "-"],
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE)
            _out, err = self._proc.communicate(item.wav, timeout=item.duration_s + 10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            raise SpeakerError(f"aplay on {self.device} hung (still playing {item.duration_s + 10:.0f} s "
                               "later): check the sound card") from None
        except OSError as e:
            raise SpeakerError(f"aplay could not run: {e.strerror or e}") from None
        finally:
            proc, self._proc = self._proc, None
        if proc is not None and proc.returncode != 0 and not self._stop.is_set():
            lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
            reason = lines[-1] if lines else f"exit status {proc.returncode}"
            raise SpeakerError(f"ALSA device {self.device!r} cannot play: {reason} (list devices with "
                               "`aplay -L`, cards with `aplay -l`)")

    def close(self) -> None:
        super().close()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()


def make_output(kind: str, device: str = "default") -> Output:
    if kind == "alsa":
        return AlsaOutput(device)
    if kind == "none":
        return NoOutput()
    raise ValueError(f"unknown speaker output {kind!r} (alsa, none)")
