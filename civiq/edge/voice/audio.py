"""PCM audio for the voice call: one format everywhere (16-bit signed little-endian, mono, 22,050 Hz, the
format of Debian's espeak-ng), reading WAV files into it, a synthesised chime, silence trimming, espeak-ng.

Everything here is the standard library (``wave``, ``array``) plus the local ``espeak-ng`` program: nothing
touches the network.

>>> frames = chime_frames()
>>> round(duration_s(frames), 2)
1.0
>>> wav = wav_bytes(frames); wav[:4], round(wav_duration_s(wav), 2)
(b'RIFF', 1.0)
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import sys
import wave
from array import array
from pathlib import Path

from civiq.errors import EdgeError

RATE = 22050
WIDTH = 2  # bytes per sample
FORMAT = "WAV PCM 16-bit mono 22050 Hz"
ESPEAK = "espeak-ng"
ESPEAK_SPEED = 150  # words per minute: clear in a noisy hall
SILENCE_LEVEL = 400  # |sample| below this (of 32767) is silence when trimming
MAX_CLIP_S = 15.0


class AudioError(EdgeError):
    """A recording that cannot be used, or espeak-ng failing; the message names the file."""


def duration_s(frames: bytes) -> float:
    return len(frames) / (WIDTH * RATE)


def silence(seconds: float) -> bytes:
    return bytes(WIDTH * round(seconds * RATE))


def wav_bytes(frames: bytes) -> bytes:
    """A complete WAV file (the pack's format) holding ``frames``."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(WIDTH)
        w.setframerate(RATE)
        w.writeframes(frames)
    return buf.getvalue()


def wav_duration_s(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav), "rb") as w:
        return w.getnframes() / w.getframerate()


def _samples(data: bytes, width: int) -> array:
    """Raw little-endian PCM of any width -> signed 16-bit samples."""
    if width == 2:
        a = array("h", data[: len(data) // 2 * 2])
        if sys.byteorder == "big":
            a.byteswap()
        return a
    if width == 1:  # WAV 8-bit is unsigned
        return array("h", ((b - 128) << 8 for b in data))
    if width in (3, 4):
        return array("h", (int.from_bytes(data[i + width - 2:i + width], "little", signed=True)
                           for i in range(0, len(data) - width + 1, width)))
    raise AudioError(f"unsupported sample width {width * 8} bits")


def _to_bytes(a: array) -> bytes:
    if sys.byteorder == "big":
        a = array("h", a)
        a.byteswap()
    return a.tobytes()


def _resample(a: array, src: int) -> array:
    """Linear interpolation from ``src`` Hz to :data:`RATE` (good enough for speech clips)."""
    if src == RATE or len(a) < 2:
        return a
    n = max(1, round(len(a) * RATE / src))
    step = (len(a) - 1) / max(1, n - 1)
    out = array("h", bytes(2 * n))
    last = len(a) - 1
    for i in range(n):
        x = i * step
        j = int(x)
        k = j + 1 if j < last else last
        f = x - j
        out[i] = int(a[j] + (a[k] - a[j]) * f)
    return out


def read_wav(source: str | Path | bytes, name: str | None = None) -> tuple[bytes, list[str]]:
    """Frames in the pack's format from a WAV file (or its bytes), and the conversions that were needed.

    Any PCM WAV is accepted (8/16/24/32-bit, mono or stereo, any rate): it is converted. Anything else
    (compressed WAV, MP3 renamed .wav, an empty or too-long file) raises :class:`AudioError` naming the file.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "WAV data")
    try:
        f = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except OSError as e:
        raise AudioError(f"{label}: cannot read: {e.strerror or e}") from None
    try:
        with f, wave.open(f, "rb") as w:
            ch, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            data = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise AudioError(f"{label}: not a PCM WAV file ({e}); record or export it as {FORMAT}, e.g. "
                         f"`sox IN -r {RATE} -c 1 -b 16 OUT.wav`") from None
    notes: list[str] = []
    a = _samples(data, width)
    if width != WIDTH:
        notes.append(f"{width * 8}-bit converted to 16-bit")
    if ch > 1:
        a = array("h", (sum(a[i:i + ch]) // ch for i in range(0, len(a) - ch + 1, ch)))
        notes.append(f"{ch} channels mixed to mono")
    if rate != RATE:
        a = _resample(a, rate)
        notes.append(f"{rate} Hz resampled to {RATE} Hz")
    frames = _to_bytes(a)
    if not frames:
        raise AudioError(f"{label}: the recording is empty")
    if duration_s(frames) > MAX_CLIP_S:
        raise AudioError(f"{label}: {duration_s(frames):.1f} s is too long for a clip (at most {MAX_CLIP_S:.0f} s)")
    return frames, notes


def trim(frames: bytes, lead_s: float = 0.03, tail_s: float = 0.08) -> bytes:
    """Cut the silence around speech, keeping ``lead_s`` before and ``tail_s`` after it."""
    a = _samples(frames, WIDTH)
    start = next((i for i, s in enumerate(a) if abs(s) >= SILENCE_LEVEL), None)
    if start is None:
        return frames
    end = next(i for i in range(len(a) - 1, -1, -1) if abs(a[i]) >= SILENCE_LEVEL)
    s = max(0, start - round(lead_s * RATE))
    e = min(len(a), end + 1 + round(tail_s * RATE))
    return _to_bytes(a[s:e])


def edge_silence_s(frames: bytes) -> tuple[float, float]:
    """Seconds of silence before and after the speech in a clip (the recording kit checks them)."""
    a = _samples(frames, WIDTH)
    start = next((i for i, s in enumerate(a) if abs(s) >= SILENCE_LEVEL), len(a))
    end = next((i for i in range(len(a) - 1, -1, -1) if abs(a[i]) >= SILENCE_LEVEL), -1)
    return start / RATE, (len(a) - 1 - end) / RATE


def chime_frames(volume: float = 0.45) -> bytes:
    """A two-note "ding-dong" (E5 then C5, bell-like decay), 1.0 s: synthesised, no file needed."""
    out = array("h")
    for freq, seconds in ((659.25, 0.45), (523.25, 0.55)):
        n = round(seconds * RATE)
        for i in range(n):
            t = i / RATE
            env = math.exp(-4.0 * t) * min(1.0, i / 60)
            v = math.sin(2 * math.pi * freq * t) + 0.3 * math.sin(4 * math.pi * freq * t)
            out.append(int(32767 * volume * env * v / 1.3))
    return _to_bytes(out)


def espeak_available() -> bool:
    return shutil.which(ESPEAK) is not None


def espeak_frames(text: str, voice: str = "vi", speed: int = ESPEAK_SPEED, timeout: float = 20.0) -> bytes:
    """``text`` spoken by the local espeak-ng (offline), trimmed, in the pack's format."""
    exe = shutil.which(ESPEAK)
    if exe is None:
        raise AudioError("espeak-ng is not installed (apt install espeak-ng)")
    try:
        r = subprocess.run([exe, "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True,
                           timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AudioError(f"espeak-ng failed for {text!r}: {e}") from None
    if r.returncode != 0 or not r.stdout:
        err = r.stderr.decode(errors="replace").strip() or f"exit status {r.returncode}"
        raise AudioError(f"espeak-ng failed for {text!r} (voice {voice}): {err}")
    frames, _notes = read_wav(r.stdout, name=f"espeak-ng output for {text!r}")
    return trim(frames)
