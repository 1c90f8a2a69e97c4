"""``civiq edge say-test`` and ``civiq edge voice-pack build|check``: the speaker for technicians."""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from pathlib import Path

from civiq.edge.config import CenterConfig


def _print_announcement(a: dict, who: str) -> None:
    print(f"said ({who}): {a['text'] or '(chime only: speech is off)'}")
    print("clips: " + " ".join(a["clips"]))
    if a.get("fallback"):
        print("said by espeak-ng (missing from the clip pack): " + ", ".join(a["fallback"]))
    print(f"length: {a['duration_s']:.1f} s")


def say_test(cfg: CenterConfig, text: str | None, simulate: bool, out: str | None) -> int:
    """Chime + a sample call (or ``text``) through the configured output; via the running agent if any."""
    from civiq.edge.runfile import ask_running_agent as _ask_running_agent

    if cfg.speaker is None:
        print("no speaker configured: add a `speaker:` section to the config (docs/technician.md, Speakers)",
              file=sys.stderr)
        return 2
    path = "/api/say-test" + (f"?text={urllib.parse.quote(text)}" if text else "")
    reply = _ask_running_agent(cfg, path)
    if reply is not None:
        if "announcement" not in reply:
            print(f"say test failed: {reply.get('error')}", file=sys.stderr)
            return 1
        a = reply["announcement"]
        _print_announcement(a, "by the running agent")
        if out:
            print("(--out is ignored when the agent runs: fetch /api/voice/<id>.wav from it)", file=sys.stderr)
        if a.get("error"):
            print(f"the speaker failed: {a['error']}", file=sys.stderr)
            return 1
        return 0
    from civiq.edge.voice.announcer import announcer_from_config

    output = None
    if simulate:
        from civiq.edge.sim.speaker import SpeakerEmulator

        output = SpeakerEmulator()
    ann = announcer_from_config(cfg, output=output)
    try:
        counter = cfg.counters[0].id
        a = ann.say(f"{cfg.services[0].prefix}015", counter, text=text)
        _print_announcement(a.json(), f"{ann.output.kind} output" + (f" {cfg.speaker.device}"
                                                                     if ann.output.kind == "alsa" else ""))
        if out:
            Path(out).write_bytes(a.wav)
            print(f"WAV written to {out}")
        h = ann.poll()
        print(f"device {ann.id}: {h.state} ({h.detail})")
        if a.error:
            print(f"the speaker failed: {a.error}", file=sys.stderr)
            return 1
        return 0
    finally:
        ann.stop()


def pack_build(cfg: CenterConfig | None, out: str | None, voice: str | None) -> int:
    from civiq.edge.voice import audio
    from civiq.edge.voice.announcer import phrasebook_from_config
    from civiq.edge.voice.clips import build_pack
    from civiq.edge.voice.phrase import Phrasebook

    if out is None and (cfg is None or cfg.speaker is None):
        print("say where: --out DIR, or --config CONFIG with a speaker: section", file=sys.stderr)
        return 2
    sp = cfg.speaker if cfg is not None else None
    target = Path(out) if out else sp.pack_path(cfg.state_dir)
    book = phrasebook_from_config(cfg) if sp is not None else Phrasebook()
    try:
        r = build_pack(target, voice or (sp.voice if sp else "vi"), book.phrase_segments())
    except (audio.AudioError, ValueError, OSError) as e:
        print(f"clip pack not built: {e}", file=sys.stderr)
        return 1
    print(f"clip pack {target}: {len(r.generated)} clip(s) generated with espeak-ng, {len(r.kept)} already "
          f"there, {len(r.recorded)} human recording(s) kept")
    print(f"the list of clips to record is {target / 'recording-kit.csv'}")
    return 0


def pack_check(cfg: CenterConfig | None, pack_dir: str | None) -> int:
    from civiq.edge.voice.announcer import phrasebook_from_config
    from civiq.edge.voice.clips import catalog, check_pack
    from civiq.edge.voice.phrase import Phrasebook

    sp = cfg.speaker if cfg is not None else None
    if pack_dir is None and sp is None:
        print("say which pack: DIR, or --config CONFIG with a speaker: section", file=sys.stderr)
        return 2
    target = Path(pack_dir) if pack_dir else sp.pack_path(cfg.state_dir)
    if not target.is_dir():
        print(f"✘ clip pack {target} does not exist: `civiq edge voice-pack build`", file=sys.stderr)
        return 1
    book = phrasebook_from_config(cfg) if sp is not None else Phrasebook()
    checks = check_pack(target, catalog(book.phrase_segments()))
    mark = {"ok": "✔", "warning": "!", "missing": "✘", "unusable": "✘"}
    for c in checks:
        if c.level != "ok":
            print(f"{mark[c.level]} {c.name}: {c.detail}")
    bad = [c for c in checks if c.level in ("missing", "unusable")]
    ok = sum(c.level == "ok" for c in checks)
    print(f"{target}: {ok} of {len(checks)} clips fine, {len(bad)} missing or unusable, "
          f"{sum(c.level == 'warning' for c in checks)} warning(s)")
    return 1 if bad else 0


def main(args: argparse.Namespace, cfg: CenterConfig | None) -> int:
    if args.cmd == "say-test":
        return say_test(cfg, args.text, args.simulate, args.out)
    if args.pack_cmd == "build":
        return pack_build(cfg, args.out, args.voice)
    return pack_check(cfg, args.dir)


def add_arguments(edge: argparse._SubParsersAction) -> None:
    st = edge.add_parser("say-test", help="chime + a sample call on the speaker; prints what was said")
    st.add_argument("config", help="the center config YAML")
    st.add_argument("--text", default=None, help="say this text instead (espeak-ng)")
    st.add_argument("--out", default=None, help="also write the WAV to this file")
    st.add_argument("--simulate", action="store_true", help="the emulated speaker (no sound card)")
    vp = edge.add_parser("voice-pack", help="the clip pack of the voice call").add_subparsers(dest="pack_cmd",
                                                                                            required=True)
    b = vp.add_parser("build", help="generate the default clip pack with espeak-ng (offline)")
    b.add_argument("--out", default=None, help="pack directory (default: the config's speaker.pack_dir)")
    b.add_argument("--voice", default=None, choices=["vi", "vi-vn-x-south", "vi-vn-x-central"],
                   help="espeak-ng voice (default: the config's speaker.voice, else vi)")
    b.add_argument("--config", default=None, help="center config: its phrases, counter names and voice")
    c = vp.add_parser("check", help="check a pack: every clip present, usable, in the right format")
    c.add_argument("dir", nargs="?", default=None, help="pack directory (default: the config's speaker.pack_dir)")
    c.add_argument("--config", default=None, help="center config: its phrases and counter names")
