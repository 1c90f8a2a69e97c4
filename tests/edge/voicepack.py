"""One clip pack for the voice tests, generated once per session with the local espeak-ng (~0.5 s)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from civiq.edge.voice.clips import build_pack
from civiq.edge.voice.phrase import DEFAULT_TEMPLATE, Phrasebook

SHORT_TEMPLATE = "Số {ticket} đến {counter}"
COUNTERS = {"c1": "Quầy 1", "c2": "Quầy 2", "c3": "quầy số 3"}
SERVICES = {"A": "Đất đai", "B": "Hộ tịch"}
_built: dict[str, Path] = {}

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng missing: run scripts/install-test-deps.sh")


def book(template: str = DEFAULT_TEMPLATE, **kw) -> Phrasebook:  # noqa: ANN003
    return Phrasebook(template, counter_names=COUNTERS, service_names=SERVICES, **kw)


def shared_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pack for the default and the short template, counters c1-c3 and services A, B (read-only:
    a test that changes a pack copies it first)."""
    if "pack" not in _built:
        d = tmp_path_factory.mktemp("voice-pack")
        segs = book().phrase_segments() + book(SHORT_TEMPLATE).phrase_segments()
        build_pack(d, "vi", segs)
        _built["pack"] = d
    return _built["pack"]


def copy_pack(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
