"""The clip pack: the recordings an announcement is made of, on disk, and the WAV they make together.

A pack is a directory of ``<name>.wav`` files (WAV PCM 16-bit mono 22,050 Hz) and a ``manifest.json``
saying what each clip says and where it came from (``espeak-ng:<voice>`` or ``recorded``). The clips every
pack has (:func:`base_catalog`): digits ``digit-0`` .. ``digit-9``, the other number words (``num-*``),
the letters ``letter-a`` .. ``letter-z``; a config adds its phrase clips (template text, counter and service
names: ``phrase-<slug>``). An optional ``chime.wav`` replaces the synthesised chime.

:func:`build_pack` makes the default pack offline with Debian's espeak-ng. It never overwrites a human
recording: a file the manifest does not list as espeak-made is kept (docs/technician.md, "Recording kit").
:class:`ClipPack` loads clips (converting other PCM formats, refusing others with the file named) and
renders an announcement; a clip that is missing or unusable is said by espeak-ng instead (counted).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from civiq.edge.voice import audio
from civiq.edge.voice.numbers import DIGITS
from civiq.edge.voice.phrase import LETTERS, NUMBER_WORDS, Segment

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
KIT = "recording-kit.csv"
CHIME = "chime"
VOICES = ("vi", "vi-vn-x-south", "vi-vn-x-central")
WORD_GAP_S = 0.0  # clips carry their own short pauses (trimmed to 30 ms before, 80 ms after)
REPEAT_GAP_S = 0.8  # between two sayings of the sentence
CHIME_GAP_S = 0.3  # between the chime and the words


def base_catalog() -> list[Segment]:
    """Clips every pack has: digits, number words, letters."""
    out = [Segment(f"digit-{i}", w) for i, w in enumerate(DIGITS)]
    out += [Segment(name, word) for word, name in NUMBER_WORDS.items()]
    out += [Segment(f"letter-{ch.lower()}", text) for ch, text in LETTERS.items()]
    return out


def catalog(phrases: list[Segment] | None = None) -> list[Segment]:
    """Every clip of a pack for a config whose phrase clips are ``phrases`` (unique names, in order)."""
    out: dict[str, Segment] = {}
    for s in base_catalog() + list(phrases or []):
        out.setdefault(s.name, s)
    return list(out.values())


def read_manifest(pack_dir: Path) -> dict:
    try:
        data = json.loads((Path(pack_dir) / MANIFEST).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and isinstance(data.get("clips"), dict) else {"clips": {}}
    except (OSError, ValueError):
        return {"clips": {}}


@dataclass
class BuildResult:
    generated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # already there (espeak-made, same text and voice)
    recorded: list[str] = field(default_factory=list)  # human recordings left alone


def build_pack(pack_dir: str | Path, voice: str = "vi", phrases: list[Segment] | None = None) -> BuildResult:
    """Generate the default clip pack in ``pack_dir`` with the local espeak-ng ``voice`` (offline).

    Clips already there are kept when espeak made them from the same text and voice, and always when a
    person recorded them (a file whose checksum is not the one written in the manifest). Writes ``manifest.json`` and ``recording-kit.csv`` (name, text: the list to record).
    """
    if voice not in VOICES:
        raise ValueError(f"unknown voice {voice!r}: use one of {', '.join(VOICES)}")
    if not audio.espeak_available():
        raise audio.AudioError("espeak-ng is not installed: `apt install espeak-ng`, or record the clips "
                               "(docs/technician.md, Recording kit)")
    d = Path(pack_dir)
    d.mkdir(parents=True, exist_ok=True)
    old = read_manifest(d)["clips"]
    source = f"espeak-ng:{voice}"
    clips: dict[str, dict[str, str]] = {}
    result = BuildResult()
    for seg in catalog(phrases):
        path = d / f"{seg.name}.wav"
        entry = old.get(seg.name) or {}
        if path.exists():
            digest = _sha256(path)
            if entry.get("source") == "recorded" or entry.get("sha256") != digest:
                # not the file espeak-ng made here: a person recorded it
                clips[seg.name] = {"text": seg.text, "source": "recorded", "sha256": digest}
                result.recorded.append(seg.name)
                continue
            if entry.get("text") == seg.text and entry.get("source") == source:
                clips[seg.name] = entry
                result.kept.append(seg.name)
                continue
        wav = audio.wav_bytes(audio.espeak_frames(seg.text, voice))
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(wav)
        tmp.replace(path)
        clips[seg.name] = {"text": seg.text, "source": source, "sha256": hashlib.sha256(wav).hexdigest()}
        result.generated.append(seg.name)
    for name, entry in old.items():  # clips of an older config stay listed (still usable)
        if name not in clips and (d / f"{name}.wav").exists():
            clips[name] = entry
    manifest = {"format": audio.FORMAT, "voice": voice, "clips": clips}
    (d / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    kit = ["name,file,text,source"] + [f'{n},{n}.wav,"{e["text"]}",{e["source"]}' for n, e in clips.items()]
    (d / KIT).write_text("\n".join(kit) + "\n", encoding="utf-8")
    return result


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Rendered:
    """An announcement's audio: the WAV, the clip names in order (``chime`` first when it sounds), each
    piece's seconds, and the clips espeak-ng had to say because the pack lacked them."""

    wav: bytes
    clips: list[str]
    seconds: list[float]
    fallback: list[str]

    @property
    def duration_s(self) -> float:
        return audio.wav_duration_s(self.wav)


class ClipPack:
    """A clip pack directory, loaded lazily and cached; thread-safe."""

    def __init__(self, pack_dir: str | Path, voice: str = "vi") -> None:
        self.dir = Path(pack_dir)
        self.voice = voice
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.fallbacks = 0  # clips said by espeak-ng because the pack lacked them
        self.problems: dict[str, str] = {}  # clip name -> why its file could not be used

    def exists(self) -> bool:
        return self.dir.is_dir()

    def missing(self, wanted: list[Segment]) -> list[str]:
        return [s.name for s in wanted if not (self.dir / f"{s.name}.wav").is_file()]

    def load(self, name: str) -> bytes | None:
        """The clip's frames, or None when the pack has no usable file for it (the reason is logged)."""
        with self._lock:
            if name in self._cache:
                return self._cache[name]
        path = self.dir / f"{name}.wav"
        if not path.is_file():
            return None
        try:
            frames, notes = audio.read_wav(path)
        except audio.AudioError as e:
            if self.problems.get(name) != str(e):
                log.error("voice clip rejected: %s", e)
            self.problems[name] = str(e)
            return None
        if notes:
            log.info("voice clip %s converted: %s", path, ", ".join(notes))
        with self._lock:
            self._cache[name] = frames
        return frames

    def chime(self) -> bytes:
        return self.load(CHIME) or _synth_chime()

    def speak(self, seg: Segment, fallback: list[str]) -> bytes:
        frames = self.load(seg.name)
        if frames is not None:
            return frames
        fallback.append(seg.name)
        self.fallbacks += 1
        log.warning("voice clip %s missing from %s: espeak-ng says %r", seg.name, self.dir, seg.text)
        try:
            return audio.espeak_frames(seg.text, self.voice)
        except audio.AudioError as e:
            log.error("cannot say %r: %s", seg.text, e)
            return b""

    def render(self, segments: list[Segment], *, chime: bool = True, repeat: int = 1,
               prefix: list[Segment] | None = None) -> Rendered:
        """Chime (once), then ``segments`` said ``repeat`` times; ``prefix`` is said before each repeat."""
        parts: list[bytes] = []
        clips: list[str] = []
        seconds: list[float] = []
        fallback: list[str] = []

        def add(name: str, frames: bytes) -> None:
            parts.append(frames)
            clips.append(name)
            seconds.append(audio.duration_s(frames))

        if chime:
            add(CHIME, self.chime())
        sentence = list(prefix or []) + list(segments)
        for i in range(repeat if sentence else 0):
            if parts:
                parts.append(audio.silence(REPEAT_GAP_S if i else CHIME_GAP_S))
            for seg in sentence:
                add(seg.name, self.speak(seg, fallback))
        return Rendered(wav=audio.wav_bytes(b"".join(parts)), clips=clips, seconds=seconds, fallback=fallback)

    def say_text(self, text: str, *, chime: bool = True) -> Rendered:
        """Free text, said whole by espeak-ng (no clip can hold arbitrary words)."""
        parts, clips, seconds = [], [], []
        if chime:
            c = self.chime()
            parts += [c, audio.silence(CHIME_GAP_S)]
            clips.append(CHIME)
            seconds.append(audio.duration_s(c))
        frames = audio.espeak_frames(text, self.voice)
        parts.append(frames)
        clips.append("espeak-ng")
        seconds.append(audio.duration_s(frames))
        return Rendered(wav=audio.wav_bytes(b"".join(parts)), clips=clips, seconds=seconds, fallback=["espeak-ng"])


_CHIME: bytes | None = None


def _synth_chime() -> bytes:
    global _CHIME
    if _CHIME is None:
        _CHIME = audio.chime_frames()
    return _CHIME


@dataclass
class ClipCheck:
    name: str
    level: str  # "ok", "warning", "missing", "unusable"
    detail: str


def check_pack(pack_dir: str | Path, wanted: list[Segment]) -> list[ClipCheck]:
    """Each wanted clip of a pack: present and usable, in another format (converted when loaded), with
    long silences around the words, missing, or unusable (the reason names the file)."""
    d = Path(pack_dir)
    out = []
    for seg in wanted:
        path = d / f"{seg.name}.wav"
        if not path.is_file():
            out.append(ClipCheck(seg.name, "missing", f"{path} is missing (says {seg.text!r}): espeak-ng "
                                 "says it instead"))
            continue
        try:
            frames, notes = audio.read_wav(path)
        except audio.AudioError as e:
            out.append(ClipCheck(seg.name, "unusable", str(e)))
            continue
        lead, tail = audio.edge_silence_s(frames)
        warn = ([f"not {audio.FORMAT} ({', '.join(notes)} when loaded)"] if notes else [])
        if lead > 0.3 or tail > 0.3:
            warn.append(f"{lead:.1f} s of silence before and {tail:.1f} s after the words: trim it "
                        f"(`sox {path.name} out.wav silence 1 0.02 1% reverse silence 1 0.02 1% reverse`)")
        if warn:
            out.append(ClipCheck(seg.name, "warning", f"{path}: " + "; ".join(warn)))
        else:
            out.append(ClipCheck(seg.name, "ok", f"{audio.duration_s(frames):.2f} s"))
    return out
