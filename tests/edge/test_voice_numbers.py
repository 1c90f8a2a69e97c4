"""Vietnamese number reading: a table of the cases a listener checks first (mốt, tư, lăm, linh/lẻ,
không trăm, mười/mươi, nghìn/ngàn)."""

from __future__ import annotations

import doctest

import pytest

from civiq.edge.voice import numbers
from civiq.edge.voice.numbers import digit_words, number_word_list, number_words

TABLE = [
    (0, "không"),
    (1, "một"),
    (4, "bốn"),
    (5, "năm"),
    (10, "mười"),
    (11, "mười một"),
    (14, "mười bốn"),
    (15, "mười lăm"),
    (20, "hai mươi"),
    (21, "hai mươi mốt"),
    (24, "hai mươi tư"),
    (25, "hai mươi lăm"),
    (31, "ba mươi mốt"),
    (44, "bốn mươi tư"),
    (55, "năm mươi lăm"),
    (99, "chín mươi chín"),
    (100, "một trăm"),
    (101, "một trăm linh một"),
    (104, "một trăm linh bốn"),
    (105, "một trăm linh năm"),
    (110, "một trăm mười"),
    (111, "một trăm mười một"),
    (115, "một trăm mười lăm"),
    (121, "một trăm hai mươi mốt"),
    (205, "hai trăm linh năm"),
    (999, "chín trăm chín mươi chín"),
    (1000, "một nghìn"),
    (1001, "một nghìn không trăm linh một"),
    (1005, "một nghìn không trăm linh năm"),
    (1010, "một nghìn không trăm mười"),
    (1015, "một nghìn không trăm mười lăm"),
    (1025, "một nghìn không trăm hai mươi lăm"),
    (1100, "một nghìn một trăm"),
    (1105, "một nghìn một trăm linh năm"),
    (2014, "hai nghìn không trăm mười bốn"),
    (10000, "mười nghìn"),
    (15000, "mười lăm nghìn"),
    (21000, "hai mươi mốt nghìn"),
    (100000, "một trăm nghìn"),
    (1000000, "một triệu"),
    (1000005, "một triệu không trăm linh năm"),
    (2500000, "hai triệu năm trăm nghìn"),
    (1000000000, "một tỷ"),
]


@pytest.mark.parametrize(("n", "words"), TABLE, ids=[str(n) for n, _ in TABLE])
def test_number_table(n: int, words: str) -> None:
    assert number_words(n) == words


def test_southern_words() -> None:
    assert number_words(105, linh="lẻ") == "một trăm lẻ năm"
    assert number_words(1005, linh="lẻ", thousand="ngàn") == "một ngàn không trăm lẻ năm"
    assert number_words(2014, thousand="ngàn") == "hai ngàn không trăm mười bốn"


def test_one_word_per_clip() -> None:
    assert number_word_list(1025) == ["một", "nghìn", "không", "trăm", "hai", "mươi", "lăm"]


def test_digits_one_by_one() -> None:
    assert digit_words("015") == "không một năm"
    assert digit_words("1000") == "một không không không"


@pytest.mark.parametrize("bad", [-1, 1.5, True, "12", 10**12])
def test_refuses_what_is_not_a_readable_number(bad: object) -> None:
    with pytest.raises(ValueError):
        number_words(bad)  # type: ignore[arg-type]


def test_doctests() -> None:
    assert doctest.testmod(numbers).failed == 0
