"""The call sentence and its clip sequence, from the template, the number mode and the spoken names."""

from __future__ import annotations

import doctest

import pytest

from civiq.edge.voice import phrase
from civiq.edge.voice.phrase import Phrasebook, parse_template, slug, text_segments, ticket_segments


def names(segs) -> list[str]:  # noqa: ANN001
    return [s.name for s in segs]


def test_default_call_digit_by_digit() -> None:
    text, segs = Phrasebook(counter_names={"c3": "quầy số 3"}).sentence("A015", "c3")
    assert text == "Mời công dân có số thứ tự A không một năm đến quầy số ba"
    assert names(segs) == ["phrase-moi-cong-dan-co-so-thu-tu", "letter-a", "digit-0", "digit-1", "digit-5",
                           "phrase-den", "phrase-quay-so", "digit-3"]


def test_ticket_as_a_number() -> None:
    book = Phrasebook(numbers="number", counter_names={"c1": "Quầy 12"})
    text, segs = book.sentence("B015", "c1")
    assert text == "Mời công dân có số thứ tự B mười lăm đến Quầy mười hai"
    assert names(segs)[1:4] == ["letter-b", "num-muoi-10", "num-lam"]
    assert segs[1].text == "bê"  # said as a Vietnamese speaker names the letter, written "B"
    assert Phrasebook(numbers="number", linh="lẻ").sentence("A105", "c")[0].endswith("A một trăm lẻ năm đến c")


def test_two_letter_prefix_and_long_number() -> None:
    segs = ticket_segments("LD1025", "number", thousand="ngàn")
    assert names(segs) == ["letter-l", "letter-d", "digit-1", "num-ngan", "digit-0", "num-tram", "digit-2",
                           "num-muoi", "num-lam"]


def test_counter_named_by_config_or_by_its_name() -> None:
    book = Phrasebook("Số {ticket} đến {counter}", counter_names={"c1": "Quầy 1"})
    assert book.sentence("A001", "c1")[0] == "Số A không không một đến Quầy một"
    assert book.sentence("A001", "quầy lễ tân")[0].endswith("đến quầy lễ tân")  # no spoken name: as given


def test_service_placeholder_and_recall_template() -> None:
    book = Phrasebook("Mời số {ticket}, {service}, đến {counter}", service_names={"A": "Đất đai"},
                      recall_template="Xin mời lại số {ticket} đến {counter}", counter_names={"c1": "Quầy 1"})
    assert book.sentence("A007", "c1")[0] == "Mời số A không không bảy Đất đai đến Quầy một"
    assert book.sentence("A007", "c1", recall=True)[0] == "Xin mời lại số A không không bảy đến Quầy một"


def test_priority_prefix_only_when_configured() -> None:
    book = Phrasebook(priority_prefix="Ưu tiên", counter_names={"c1": "Quầy 1"})
    text, segs = book.sentence("A001", "c1", priority=True)
    assert text.startswith("Ưu tiên Mời công dân") and segs[0].name == "phrase-uu-tien"
    assert not Phrasebook().sentence("A001", "c1", priority=True)[0].startswith("Ưu tiên")
    named = Phrasebook(priority_prefix="Ưu tiên {priority}", priority_names={"elderly": "Người cao tuổi",
                                                                              "pregnant": "Phụ nữ mang thai"})
    assert named.sentence("A001", "c1", priority="elderly")[0].startswith("Ưu tiên Người cao tuổi Mời công dân")
    assert [s.text for s in named.phrase_segments()][-2:] == ["Ưu tiên Người cao tuổi", "Ưu tiên Phụ nữ mang thai"]


def test_phrase_clips_a_config_needs() -> None:
    book = Phrasebook(counter_names={"c1": "Quầy 1", "c3": "quầy số 3"}, priority_prefix="Ưu tiên")
    assert names(book.phrase_segments()) == ["phrase-moi-cong-dan-co-so-thu-tu", "phrase-den", "phrase-quay",
                                             "phrase-quay-so", "phrase-uu-tien"]


def test_text_and_slugs() -> None:
    assert slug("Đến quầy số") == "den-quay-so"
    assert names(text_segments("quầy 21")) == ["phrase-quay", "digit-2", "num-muoi", "num-mot"]


@pytest.mark.parametrize(("template", "message"), [
    ("Mời {ticket} đến {quay}", "unknown placeholder {quay}"),
    ("Mời {ticket!r}", "unknown placeholder"),
    ("Mời {ticket", "malformed"),
])
def test_bad_templates(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_template(template)


def test_doctests() -> None:
    assert doctest.testmod(phrase).failed == 0
