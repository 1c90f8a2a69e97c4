"""The call sentence and the clips that say it.

A template (default ``"Mời công dân có số thứ tự {ticket} đến {counter}"``) is cut into its fixed text and
its placeholders. Fixed text becomes *phrase clips*; a number inside text is read as a number; the ticket
is its letters then its digits, read one by one (``digits``: "A không một năm") or as a number
(``number``: "A mười lăm"); the counter is said by its spoken name (by default its configured ``name``).

Every piece is a :class:`Segment`: the clip's file name in the pack and the words it says (what espeak-ng
says when the clip is missing).

>>> book = Phrasebook(counter_names={"c3": "quầy số 3"})
>>> text, segs = book.sentence("A015", "c3")
>>> text
'Mời công dân có số thứ tự A không một năm đến quầy số ba'
>>> [s.name for s in segs]  # doctest: +NORMALIZE_WHITESPACE
['phrase-moi-cong-dan-co-so-thu-tu', 'letter-a', 'digit-0', 'digit-1', 'digit-5', 'phrase-den',
 'phrase-quay-so', 'digit-3']
>>> Phrasebook(numbers="number").sentence("A015", "Quầy 1")[0]
'Mời công dân có số thứ tự A mười lăm đến Quầy một'
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass
from typing import Literal

from civiq.edge.voice.numbers import DIGITS, number_word_list

DEFAULT_TEMPLATE = "Mời công dân có số thứ tự {ticket} đến {counter}"
PLACEHOLDERS = ("ticket", "counter", "service")
NumberMode = Literal["digits", "number"]

# how a Vietnamese speaker names the Latin letters of a ticket prefix
LETTERS = {"A": "a", "B": "bê", "C": "xê", "D": "dê", "E": "e", "F": "ép", "G": "giê", "H": "hát", "I": "i",
           "J": "gi", "K": "ca", "L": "e lờ", "M": "em mờ", "N": "en nờ", "O": "o", "P": "pê", "Q": "quy",
           "R": "e rờ", "S": "ét xì", "T": "tê", "U": "u", "V": "vê", "W": "vê kép", "X": "ích xì",
           "Y": "i dài", "Z": "dét"}
# number words other than the digits, with their clip names
NUMBER_WORDS = {"mốt": "num-mot", "tư": "num-tu", "lăm": "num-lam", "mười": "num-muoi-10",
                "mươi": "num-muoi", "trăm": "num-tram", "linh": "num-linh", "lẻ": "num-le",
                "nghìn": "num-nghin", "ngàn": "num-ngan", "triệu": "num-trieu", "tỷ": "num-ty"}


@dataclass(frozen=True)
class Segment:
    """One clip of an announcement: ``name`` is the file stem in the pack, ``text`` what it says."""

    name: str
    text: str
    shown: str | None = None  # how the sentence text writes it, when not as said (a letter: "B", said "bê")


def slug(text: str) -> str:
    """ASCII file-name form of Vietnamese text: ``"quầy số"`` -> ``"quay-so"``."""
    s = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", "-", s).strip("-") or "x"


def word_segment(word: str) -> Segment:
    """The clip of one number word (``"lăm"`` -> ``num-lam``)."""
    if word in DIGITS:
        return Segment(f"digit-{DIGITS.index(word)}", word)
    return Segment(NUMBER_WORDS[word], word)


def number_segments(n: int, linh: str = "linh", thousand: str = "nghìn") -> list[Segment]:
    return [word_segment(w) for w in number_word_list(n, linh=linh, thousand=thousand)]  # type: ignore[arg-type]


def text_segments(text: str, linh: str = "linh", thousand: str = "nghìn") -> list[Segment]:
    """Free text as clips: each run of words is one phrase clip, each number is read as a number."""
    out: list[Segment] = []
    for part in re.split(r"(\d+)", text):
        if part.isdigit():
            out += number_segments(int(part), linh, thousand)
            continue
        words = " ".join(re.sub(r"[^\w]+", " ", part).split())
        if words:
            out.append(Segment(f"phrase-{slug(words)}", words))
    return out


def ticket_segments(label: str, mode: NumberMode = "digits", linh: str = "linh",
                    thousand: str = "nghìn") -> list[Segment]:
    """``"A015"`` -> letter-a + digits (``digits``) or + the number's words (``number``)."""
    m = re.fullmatch(r"([A-Za-z]*)(\d*)", label)
    if m is None:  # not a civiq label: say it as text
        return text_segments(label, linh, thousand)
    letters, digits = m.groups()
    out = [Segment(f"letter-{ch.lower()}", LETTERS[ch.upper()], ch.upper()) for ch in letters]
    if digits:
        if mode == "digits":
            out += [Segment(f"digit-{d}", DIGITS[int(d)]) for d in digits]
        else:
            out += number_segments(int(digits), linh, thousand)
    return out


def parse_template(template: str) -> list[str | tuple[str]]:
    """Fixed text and ``(placeholder,)`` items; raises ValueError naming an unknown or malformed placeholder.

    >>> parse_template("Số {ticket} đến {counter}")
    ['Số ', ('ticket',), ' đến ', ('counter',)]
    """
    out: list[str | tuple[str]] = []
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ValueError(f"the template {template!r} is malformed ({e}); write placeholders as "
                         "{ticket}, {counter}, {service}") from None
    for literal, field, spec, conv in parts:
        if literal:
            out.append(literal)
        if field is None:
            continue
        if field not in PLACEHOLDERS or spec or conv:
            raise ValueError(f"unknown placeholder {{{field}}} in the template: use "
                             + ", ".join("{" + p + "}" for p in PLACEHOLDERS))
        out.append((field,))
    return out


class Phrasebook:
    """Builds the sentence for a call from the configured template, number mode and spoken names."""

    def __init__(self, template: str = DEFAULT_TEMPLATE, *, counter_names: dict[str, str] | None = None,
                 service_names: dict[str, str] | None = None, numbers: NumberMode = "digits",
                 linh: str = "linh", thousand: str = "nghìn", recall_template: str | None = None,
                 priority_prefix: str | None = None, priority_names: dict[str, str] | None = None) -> None:
        self.template = parse_template(template)
        self.recall_template = parse_template(recall_template) if recall_template else self.template
        self.counter_names = dict(counter_names or {})
        self.service_names = dict(service_names or {})
        self.numbers: NumberMode = numbers
        self.linh, self.thousand = linh, thousand
        self.priority_prefix = priority_prefix  # may hold {priority}: the class's Vietnamese name
        self.priority_names = dict(priority_names or {})

    def _text(self, text: str) -> list[Segment]:
        return text_segments(text, self.linh, self.thousand)

    def counter_segments(self, counter: str) -> list[Segment]:
        return self._text(self.counter_names.get(counter, counter))

    def _priority_text(self, priority: str | bool) -> str:
        name = self.priority_names.get(priority, "") if isinstance(priority, str) else ""
        return (self.priority_prefix or "").replace("{priority}", name)

    def sentence(self, ticket: str, counter: str, *, recall: bool = False, priority: str | bool | None = None,
                 service: str | None = None) -> tuple[str, list[Segment]]:
        """The words said and their clips for ``ticket`` called to ``counter`` (a counter id or a name);
        ``priority``: the ticket's priority class id (or True), said first when a prefix is configured."""
        segs: list[Segment] = []
        if priority and self.priority_prefix:
            segs += self._text(self._priority_text(priority))
        for item in self.recall_template if recall else self.template:
            if isinstance(item, str):
                segs += self._text(item)
            elif item[0] == "ticket":
                segs += ticket_segments(ticket, self.numbers, self.linh, self.thousand)
            elif item[0] == "counter":
                segs += self.counter_segments(counter)
            else:
                service_key = service if service is not None else re.sub(r"\d+$", "", ticket)
                segs += self._text(self.service_names.get(service_key, service_key))
        return " ".join(s.shown or s.text for s in segs), segs

    def phrases(self) -> list[str]:
        """Every fixed text this book can say (the phrase clips a pack needs for this config)."""
        texts: list[str] = []
        for tmpl in (self.template, self.recall_template):
            texts += [item for item in tmpl if isinstance(item, str)]
        texts += list(self.counter_names.values()) + list(self.service_names.values())
        if self.priority_prefix:
            if "{priority}" in self.priority_prefix:
                texts += [self._priority_text(p) for p in self.priority_names] or [self._priority_text(True)]
            else:
                texts.append(self.priority_prefix)
        return texts

    def phrase_segments(self) -> list[Segment]:
        out: dict[str, Segment] = {}
        for t in self.phrases():
            for s in self._text(t):
                if s.name.startswith("phrase-"):
                    out.setdefault(s.name, s)
        return list(out.values())
