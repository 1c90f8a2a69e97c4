"""The speaker's part of ``civiq edge doctor``: the clip pack, espeak-ng, aplay and the ALSA device.

Returns ``(level, what, detail)`` with the levels of civiq/edge/doctor.py (``ok``, ``warning``, ``FAULT``).
Opening the device plays 50 ms of silence (nothing audible in the hall); it is skipped while the agent runs
(the device may be held by it: its health, shown by doctor, tells instead).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from civiq.edge.config import CenterConfig

OK, WARN, FAIL = "ok", "warning", "FAULT"


@dataclass
class _Sound:
    wav: bytes
    duration_s: float


def check_speaker(cfg: CenterConfig, agent_running: bool) -> list[tuple[str, str, str]]:
    sp = cfg.speaker
    if sp is None:
        return []
    from civiq.edge.voice import audio
    from civiq.edge.voice.announcer import phrasebook_from_config
    from civiq.edge.voice.clips import catalog, check_pack

    out: list[tuple[str, str, str]] = []
    espeak = audio.espeak_available()
    what = "speaker" if sp.id == "speaker" else f"speaker {sp.id}"
    if sp.speech:
        pack = sp.pack_path(Path(cfg.state_dir))
        if not pack.is_dir():
            out.append((FAIL, f"{what} clip pack", f"{pack} does not exist: run `civiq edge voice-pack build "
                        "--config CONFIG` (or copy a recorded pack there)" + ("; espeak-ng says every call "
                                                                           "meanwhile" if espeak else "")))
        else:
            checks = check_pack(pack, catalog(phrasebook_from_config(cfg).phrase_segments()))
            bad = [c for c in checks if c.level in ("missing", "unusable")]
            warns = [c for c in checks if c.level == "warning"]
            if bad:
                level = WARN if espeak else FAIL
                out.append((level, f"{what} clip pack", f"{len(bad)} of {len(checks)} clips missing or unusable "
                            f"({', '.join(c.name for c in bad[:6])}): " + ("espeak-ng says them; "
                                                                          if espeak else "they are not said; ")
                            + "`civiq edge voice-pack check --config CONFIG` lists why"))
            elif warns:
                out.append((WARN, f"{what} clip pack", f"complete ({len(checks)} clips), {len(warns)} warning(s): "
                            + warns[0].detail))
            else:
                out.append((OK, f"{what} clip pack", f"{pack}: complete ({len(checks)} clips)"))
        out.append((OK, "espeak-ng", "installed (offline fallback for missing clips and free text)") if espeak
                   else (WARN, "espeak-ng", "not installed: a missing clip cannot be said; apt install espeak-ng"))
    if sp.output == "none":
        out.append((OK, f"{what} output", "none: no local sound (the hall board can play the call in the browser)"))
        return out
    if shutil.which("aplay") is None:
        out.append((FAIL, f"{what} output", "aplay is not installed: apt install alsa-utils"))
        return out
    if agent_running:
        return out
    from civiq.edge.voice.speaker import AlsaOutput, SpeakerError

    try:
        AlsaOutput(sp.device).play(_Sound(audio.wav_bytes(audio.silence(0.05)), 0.05))
        out.append((OK, f"{what} output", f"ALSA device {sp.device!r} opens (test with `civiq edge say-test`)"))
    except SpeakerError as e:
        out.append((FAIL, f"{what} output", f"{e}. Is the speaker's sound card plugged in? Is the civiq user "
                    "in the audio group?"))
    return out
