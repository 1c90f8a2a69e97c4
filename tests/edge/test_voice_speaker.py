"""Speaker outputs: ALSA through the real aplay (its null device, and a device that does not exist), the
browser-only output that only keeps time, the emulated speaker's physics."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass

import pytest

from civiq.edge.sim.speaker import SpeakerEmulator
from civiq.edge.voice import audio
from civiq.edge.voice.speaker import AlsaOutput, NoOutput, SpeakerError, make_output

needs_aplay = pytest.mark.skipif(shutil.which("aplay") is None, reason="alsa-utils missing: "
                                 "run scripts/install-test-deps.sh")


@dataclass
class Sound:
    wav: bytes
    duration_s: float
    id: str = "x"
    ticket: str = "A001"
    counter: str = "c1"
    text: str = "chime"
    clips: tuple = ("chime",)


def sound(seconds: float = 0.3) -> Sound:
    wav = audio.wav_bytes(audio.chime_frames()[: 2 * round(seconds * audio.RATE)])
    return Sound(wav, audio.wav_duration_s(wav))


@needs_aplay
def test_alsa_plays_through_aplay() -> None:
    out = AlsaOutput("null")  # ALSA's null device: aplay opens it and writes the whole file
    assert out.check() is None
    out.play(sound())


@needs_aplay
def test_alsa_device_that_does_not_exist_is_reported() -> None:
    with pytest.raises(SpeakerError, match=r"ALSA device 'nosuch' cannot play: .*Unknown PCM nosuch|"
                                           r"ALSA device 'nosuch' cannot play: .*audio open error"):
        AlsaOutput("nosuch").play(sound())


def test_missing_aplay_is_reported() -> None:
    out = AlsaOutput("default", aplay="aplay-not-installed")
    assert out.check() == "aplay is not installed: apt install alsa-utils"
    with pytest.raises(SpeakerError, match="apt install alsa-utils"):
        out.play(sound())


def test_browser_only_output_keeps_the_sound_s_time() -> None:
    out = make_output("none")
    assert isinstance(out, NoOutput)
    t0 = time.monotonic()
    out.play(sound(0.4))
    assert time.monotonic() - t0 >= 0.39
    with pytest.raises(ValueError, match="unknown speaker output 'hdmi'"):
        make_output("hdmi")


def test_emulated_speaker_takes_the_sound_s_time_and_records_it() -> None:
    spk = SpeakerEmulator()
    s = sound(0.5)
    spk.play(s)
    heard = spk.wait_heard(1, timeout=1)[0]
    assert heard.ended - heard.started >= s.duration_s - 0.005 and heard.wav == s.wav
    spk.fault = "sound card gone"
    with pytest.raises(SpeakerError, match="sound card gone"):
        spk.play(s)
    assert spk.check() == "sound card gone"
