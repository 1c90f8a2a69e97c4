"""Page texts (civiq/gateway/web/i18n.py): numbers with their unit in one language, device details in words
of the page's language, no key missing in either language."""

from __future__ import annotations

import re

import pytest

from civiq.gateway.web.i18n import DETAIL_PHRASES_VI, STRINGS, detail_text, duration_text, t


@pytest.mark.parametrize(("seconds", "vi", "en"), [
    (0, "0 giây", "0 s"),
    (45.4, "45 giây", "45 s"),
    (59.4, "59 giây", "59 s"),
    (59.6, "1 phút", "1 min"),  # never "60 giây"
    (720, "12 phút", "12 min"),
    (3569, "59 phút", "59 min"),
    (3600, "1 giờ 00 phút", "1 h 00 min"),
    (4500, "1 giờ 15 phút", "1 h 15 min"),
    (-5, "0 giây", "0 s"),  # a clock skew never shows a negative wait
    (None, "chưa rõ", "unknown"),
    (float("inf"), "chưa rõ", "unknown"),
    (float("nan"), "chưa rõ", "unknown"),
])
def test_a_duration_has_its_unit_in_the_pages_language(seconds: float | None, vi: str, en: str) -> None:
    assert duration_text("vi", seconds) == vi
    assert duration_text("en", seconds) == en


def test_no_vietnamese_text_carries_an_english_unit_and_the_reverse() -> None:
    en_unit = re.compile(r"(\d|\()\s*(s|min|h)\b|/h\b")
    vi_unit = re.compile(r"\b(giây|phút|giờ)\b")
    assert [k for k, v in STRINGS["vi"].items() if en_unit.search(v)] == []
    assert [k for k, v in STRINGS["en"].items() if vi_unit.search(v)] == []
    for key in ("unit_s", "unit_min", "minutes_short", "hours_short", "per_hour"):
        assert t("vi", key) != t("en", key), key


def test_both_languages_have_every_key() -> None:
    assert set(STRINGS["vi"]) == set(STRINGS["en"])
    kinds = ("printer", "display", "keypad", "dispenser", "qrboard", "speaker", "ratingpad", "storage")
    assert all(t("vi", f"kind_{k}") != t("en", f"kind_{k}") for k in kinds)


def test_device_details_read_in_vietnamese_and_stay_as_they_came_in_english() -> None:
    assert detail_text("vi", "printer cover is open") == "nắp máy in đang mở"
    assert detail_text("vi", "paper near end") == "sắp hết giấy"
    assert detail_text("vi", "buttons A, B stuck") == "các nút A, B bị kẹt"
    text = "disk full: events cannot be saved, no ticket is issued (database or disk is full)"
    assert detail_text("vi", text) == "đầy ổ đĩa: không lưu được dữ liệu, không cấp số (database or disk is full)"
    assert detail_text("vi", "something new") == "something new"  # unknown wording: shown as it came
    assert detail_text("vi", "display display-1 does not answer") == "bảng số display-1 không trả lời"  # ids stay
    assert detail_text("en", "printer cover is open") == "printer cover is open"
    # longer phrases first: a short one never cuts a longer one in two
    ens = [en for en, _ in DETAIL_PHRASES_VI]
    for i, en in enumerate(ens):
        assert not any(en in later and en != later for later in ens[i + 1:]), en
