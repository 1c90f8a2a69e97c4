"""The clip pack: generated offline by espeak-ng, concatenated into one WAV, human recordings converted or
refused with the file named, a missing clip said by espeak-ng."""

from __future__ import annotations

import io
import json
import wave
from array import array
from pathlib import Path

import pytest

from civiq.edge.voice import audio
from civiq.edge.voice.clips import CHIME, ClipPack, base_catalog, build_pack, catalog, check_pack
from tests.edge.voicepack import book, copy_pack, needs_espeak, shared_pack

pytestmark = needs_espeak


@pytest.fixture
def pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_pack(tmp_path_factory)


def frames_of(path: Path) -> int:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getcomptype()) == (1, 2, 22050, "NONE")
        return w.getnframes()


def test_pack_has_every_clip_in_the_pack_format(pack_dir: Path) -> None:
    wanted = catalog(book().phrase_segments())
    for seg in wanted:
        assert frames_of(pack_dir / f"{seg.name}.wav") > 0.1 * audio.RATE, seg.name
    manifest = json.loads((pack_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "WAV PCM 16-bit mono 22050 Hz"
    assert manifest["clips"]["num-lam"]["text"] == "lăm"
    assert manifest["clips"]["letter-b"] == {**manifest["clips"]["letter-b"], "text": "bê",
                                             "source": "espeak-ng:vi"}
    kit = (pack_dir / "recording-kit.csv").read_text(encoding="utf-8").splitlines()
    assert kit[0] == "name,file,text,source" and 'phrase-den,phrase-den.wav,"đến",espeak-ng:vi' in kit
    assert {c.level for c in check_pack(pack_dir, wanted)} == {"ok"}
    assert len(base_catalog()) == 10 + 12 + 26


def test_announcement_is_the_clips_end_to_end(pack_dir: Path) -> None:
    text, segs = book().sentence("A015", "c3")
    r = ClipPack(pack_dir).render(segs, chime=True, repeat=2)
    assert r.clips == [CHIME] + [s.name for s in segs] * 2 and not r.fallback
    words = sum(frames_of(pack_dir / f"{s.name}.wav") for s in segs)
    chime = len(audio.chime_frames()) // 2
    gaps = round(0.3 * audio.RATE) + round(0.8 * audio.RATE)
    with wave.open(io.BytesIO(r.wav), "rb") as w:
        assert w.getnframes() == chime + gaps + 2 * words
    assert r.duration_s == pytest.approx(sum(r.seconds) + 1.1, abs=1e-3)


def test_missing_clip_is_said_by_espeak(pack_dir: Path, tmp_path: Path, caplog) -> None:  # noqa: ANN001
    d = copy_pack(pack_dir, tmp_path / "pack")
    (d / "digit-5.wav").unlink()
    pack = ClipPack(d)
    _text, segs = book().sentence("A015", "c3")
    r = pack.render(segs, chime=False)
    assert r.clips == [s.name for s in segs]  # the announcement is still complete
    assert r.fallback == ["digit-5"] and pack.fallbacks == 1
    i = r.clips.index("digit-5")
    assert r.seconds[i] == pytest.approx(audio.duration_s(audio.espeak_frames("năm")), abs=1e-6)
    assert r.seconds[i] > 0.2
    assert "digit-5 missing" in caplog.text
    assert [c.name for c in check_pack(d, catalog()) if c.level == "missing"] == ["digit-5"]


def _write_wav(path: Path, samples: list[int], rate: int, channels: int, width: int = 2) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(array("h", samples).tobytes())


def test_a_human_recording_in_another_format_is_converted(pack_dir: Path, tmp_path: Path) -> None:
    d = copy_pack(pack_dir, tmp_path / "pack")
    n = 44100  # one second of 44.1 kHz stereo, loud
    _write_wav(d / "digit-1.wav", [8000 if (i // 50) % 2 else -8000 for i in range(2 * n)], 44100, 2)
    pack = ClipPack(d)
    frames = pack.load("digit-1")
    assert frames is not None and audio.duration_s(frames) == pytest.approx(1.0, abs=0.001)
    assert max(array("h", frames)) == 8000
    checks = {c.name: c for c in check_pack(d, catalog())}
    assert checks["digit-1"].level == "warning" and "44100 Hz resampled" in checks["digit-1"].detail


def test_an_unusable_recording_is_refused_naming_the_file(pack_dir: Path, tmp_path: Path) -> None:
    d = copy_pack(pack_dir, tmp_path / "pack")
    (d / "digit-2.wav").write_bytes(b"ID3\x04\x00" + bytes(2000))  # an MP3 renamed .wav
    pack = ClipPack(d)
    r = pack.render(book().sentence("A002", "c1")[1], chime=False)
    assert "digit-2" in r.fallback  # said by espeak-ng instead
    assert str(d / "digit-2.wav") in pack.problems["digit-2"] and "not a PCM WAV" in pack.problems["digit-2"]
    with pytest.raises(audio.AudioError, match="digit-2.wav: not a PCM WAV"):
        audio.read_wav(d / "digit-2.wav")
    assert {c.name: c.level for c in check_pack(d, catalog())}["digit-2"] == "unusable"


def test_rebuilding_keeps_human_recordings(pack_dir: Path, tmp_path: Path) -> None:
    d = copy_pack(pack_dir, tmp_path / "pack")
    _write_wav(d / "digit-7.wav", [3000, -3000] * 5000, 22050, 1)
    human = (d / "digit-7.wav").read_bytes()
    espeak_made = (d / "digit-8.wav").read_bytes()
    r = build_pack(d, "vi-vn-x-south", book().phrase_segments())  # another voice: espeak clips are remade
    assert (d / "digit-7.wav").read_bytes() == human and "digit-7" in r.recorded
    assert "digit-8" in r.generated and (d / "digit-8.wav").read_bytes() != espeak_made
    manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["clips"]["digit-7"]["source"] == "recorded"
    assert manifest["clips"]["digit-8"]["source"] == "espeak-ng:vi-vn-x-south"
    assert build_pack(d, "vi-vn-x-south").generated == []  # nothing to do the second time


def test_chime_is_synthesised_or_taken_from_the_pack(pack_dir: Path, tmp_path: Path) -> None:
    assert ClipPack(pack_dir).chime() == audio.chime_frames()
    d = copy_pack(pack_dir, tmp_path / "pack")
    _write_wav(d / "chime.wav", [5000, -5000] * 11025, 22050, 1)
    assert audio.duration_s(ClipPack(d).chime()) == pytest.approx(1.0)


def test_unknown_voice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown voice 'en'"):
        build_pack(tmp_path, "en")
