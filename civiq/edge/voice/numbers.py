"""Vietnamese numbers read aloud: ``1025`` -> ``"một nghìn không trăm hai mươi lăm"``.

Written here because num2words' Vietnamese is wrong (measured: it says "một nghìn lẻ hai mươi lăm").
The rules a Vietnamese listener expects:

* units after ``mươi`` (20-99): 1 is ``mốt``, 4 is ``tư``, 5 is ``lăm`` (21 hai mươi mốt, 24 hai mươi tư,
  25 hai mươi lăm); after ``mười`` (10-19) only 5 changes: 11 mười một, 14 mười bốn, 15 mười lăm;
* a zero tens digit before a unit is ``linh`` (northern) or ``lẻ`` (southern): 105 một trăm linh năm;
* inside a larger number an empty hundreds place is said: 1005 một nghìn không trăm linh năm;
* 1000 is ``nghìn`` (northern) or ``ngàn`` (southern); then ``triệu``, ``tỷ``.

>>> number_words(15), number_words(21), number_words(24), number_words(105)
('mười lăm', 'hai mươi mốt', 'hai mươi tư', 'một trăm linh năm')
>>> number_words(1025)
'một nghìn không trăm hai mươi lăm'
>>> number_words(105, linh="lẻ"), number_words(2014, thousand="ngàn")
('một trăm lẻ năm', 'hai ngàn không trăm mười bốn')
>>> digit_words("015")
'không một năm'
"""

from __future__ import annotations

from typing import Literal

DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
Linh = Literal["linh", "lẻ"]
Thousand = Literal["nghìn", "ngàn"]
# scale words for groups of three digits, from the right
_SCALES = ("", "{thousand}", "triệu", "tỷ")


def _below_thousand(n: int, *, full: bool, linh: str) -> list[str]:
    """Words of 0 < n < 1000. ``full``: a group after a larger one says its empty hundreds ("không trăm")."""
    hundreds, tens, units = n // 100, n // 10 % 10, n % 10
    out: list[str] = []
    if hundreds or full:
        out += [DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            if out:
                out.append(linh)
            out.append(DIGITS[units])
        return out
    if tens == 1:
        out.append("mười")
        if units:
            out.append("lăm" if units == 5 else DIGITS[units])
        return out
    out += [DIGITS[tens], "mươi"]
    if units:
        out.append({1: "mốt", 4: "tư", 5: "lăm"}.get(units, DIGITS[units]))
    return out


def number_word_list(n: int, *, linh: Linh = "linh", thousand: Thousand = "nghìn") -> list[str]:
    """The words of ``n`` (0 <= n < 10^12) as a list (each word is one clip of the clip pack)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"not a non-negative whole number: {n!r}")
    if n >= 10**12:
        raise ValueError(f"{n} is too large to read (up to 999 999 999 999)")
    if n == 0:
        return [DIGITS[0]]
    groups = []
    while n:
        groups.append(n % 1000)
        n //= 1000
    out: list[str] = []
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            continue
        out += _below_thousand(g, full=bool(out), linh=linh)
        if _SCALES[i]:
            out.append(_SCALES[i].format(thousand=thousand))
    return out


def number_words(n: int, *, linh: Linh = "linh", thousand: Thousand = "nghìn") -> str:
    """``n`` read as a Vietnamese number (see the module doc for the rules)."""
    return " ".join(number_word_list(n, linh=linh, thousand=thousand))


def digit_words(digits: str) -> str:
    """Each digit of ``digits`` read on its own ("015" -> "không một năm")."""
    if not digits.isdigit() or not digits.isascii():
        raise ValueError(f"not a string of digits: {digits!r}")
    return " ".join(DIGITS[int(d)] for d in digits)
