"""Fuzz the wire contract: every topic and every payload model against random and mutated input.

Properties: :func:`parse_topic` and :func:`parse_payload` raise nothing but :class:`ContractError`, whatever
the bytes; an accepted topic rebuilds to itself; an accepted *clean* payload (finite numbers, 64-bit integers,
valid Unicode) re-serialises to JSON that parses back to the same model (what the gateway accepts it can
store and forward). The "contract gaps" tests pin what this fuzzing found the contract accepted and should
not (non-finite numbers, integers beyond 64 bits, lone surrogates): now refused with a ContractError.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from civiq.contract import (
    COMMAND_MODELS,
    LEAF_MODELS,
    MAX_PAYLOAD_BYTES,
    ContractError,
    Event,
    ServiceQueue,
    parse_payload,
    parse_topic,
    topic,
)
from tests.reliability.faultkit import fuzz, soak

# bounded here; `make soak` (CIVIQ_SOAK=1) runs many more examples, with the time that takes
pytestmark = [pytest.mark.slow, pytest.mark.timeout(soak(120, 1800))]

TS = "2026-01-05T01:00:00+00:00"
VALID: dict[str, dict[str, Any]] = {
    "status": {"online": True, "bdseq": 3, "ts": TS, "version": "0.1.0", "config_hash": "abc",
               "devices": [{"id": "p1", "kind": "printer"}], "center_name": "Xã Thử",
               "services": {"A": {"name_vi": "Đất đai", "name_en": "Land"}}, "alive_s": 2.5},
    "alive": {"bdseq": 3},
    "event": {"seq": 7, "ts": TS, "type": "ticket.issued", "clock": "synced",
              "data": {"ticket": "A001", "service": "A", "number": 1, "day": "2026-01-05", "ahead": 0}},
    "queue": {"ts": TS, "day": "2026-01-05", "last_seq": 7,
              "services": {"A": {"waiting": 2, "oldest_wait_s": 30.5, "eta_s": None}},
              "counters": {"c1": {"state": "open", "ticket": "A001", "services": ["A"]}}},
    "health": {"ts": TS, "host": {"cpu_temp_c": 51.2, "clock": "synced"},
               "devices": [{"id": "p1", "kind": "printer", "state": "degraded", "detail": "paper near end"}],
               "outbox": {"pending": 3, "oldest_s": 12}},
    "cmd_result": {"id": "r1", "cmd": "display", "ok": False, "error": "no display", "data": {"x": 1}},
    "cmd/policy": {"id": "p1", "policy": {"version": 2, "counters": {"c1": {
        "services": ["A", "B"], "rules": [{"service": "B", "over_minutes": 20}]}}}},
    "cmd/rebirth": {"id": "rb", "from_seq": 5},
    "cmd/display": {"id": "d1", "device": "d1", "text": "NGHỈ", "seconds": 30},
    "cmd/test_print": {"id": "t1", "printer": "p1"},
    "cmd/counter": {"id": "c1", "counter": "c1", "action": "transfer", "to_service": "B"},
}
MODELS = {**LEAF_MODELS, **{f"cmd/{k}": v for k, v in COMMAND_MODELS.items()}}
assert set(MODELS) == set(VALID), "a model was added to the contract: give it a valid example here"

INT64 = 2**63 - 1
clean_scalars = (st.none() | st.booleans() | st.integers(-INT64, INT64)
                 | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
                 | st.sampled_from(["", "A001", TS, "ticket.called", "ok", "open", "-1", "1e999", "\x00"]))
clean_json = st.recursive(clean_scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@st.composite
def mutated(draw: st.DrawFn, base: Any, values: st.SearchStrategy = clean_json) -> Any:
    """``base`` with a few random edits: a value replaced, a key removed or added, a list emptied."""
    doc = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 4))):
        path: list[Any] = []
        node = doc
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node)) if isinstance(node, dict)
                       else st.integers(0, len(node) - 1))
            path.append(key)
            node = node[key]
        if not path:
            if isinstance(doc, dict):
                doc[draw(st.text(max_size=6))] = draw(values)
            continue
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace" or isinstance(parent, list):
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        else:
            parent[draw(st.text(max_size=6))] = draw(values)
    return doc


def check(model: type, payload: bytes | str, clean: bool) -> None:
    try:
        m = parse_payload(model, payload)
    except ContractError as e:
        assert str(e)
        return
    if clean:
        again = parse_payload(model, m.to_json())
        assert again == m, f"{model.__name__} does not survive a round trip"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_valid_examples_parse(name: str) -> None:
    m = parse_payload(MODELS[name], json.dumps(VALID[name]).encode())
    assert parse_payload(MODELS[name], m.to_json()) == m


@pytest.mark.parametrize("name", sorted(MODELS))
@fuzz(80, 3000)
@given(data=st.data())
def test_mutated_payloads(name: str, data: st.DataObject) -> None:
    doc = data.draw(mutated(VALID[name]))
    check(MODELS[name], json.dumps(doc).encode(), clean=True)


@fuzz(300, 10000)
@given(name=st.sampled_from(sorted(MODELS)), doc=clean_json)
def test_random_json(name: str, doc: Any) -> None:
    check(MODELS[name], json.dumps(doc).encode(), clean=True)


@fuzz(300, 10000)
@given(name=st.sampled_from(sorted(MODELS)), raw=st.binary(max_size=300), cut=st.integers(0, 400))
def test_random_and_cut_bytes(name: str, raw: bytes, cut: int) -> None:
    valid = json.dumps(VALID[name]).encode()
    for payload in (raw, valid[:cut], valid[:cut] + raw, raw + valid):
        check(MODELS[name], payload, clean=False)


@fuzz(100, 2000)
@given(name=st.sampled_from(sorted(MODELS)), pos=st.integers(0, 10_000), junk=st.binary(min_size=1, max_size=4))
def test_invalid_utf8_inside_valid_json(name: str, pos: int, junk: bytes) -> None:
    valid = json.dumps(VALID[name], ensure_ascii=False).encode()
    pos %= len(valid)
    check(MODELS[name], valid[:pos] + b"\xff" + junk + valid[pos:], clean=False)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("depth", [10, 500, 5_000, 100_000])
def test_deep_nesting(name: str, depth: int) -> None:
    doc = dict(VALID[name])
    doc["data"] = json.loads("[" * min(depth, 900) + "]" * min(depth, 900)) if depth <= 900 else None
    check(MODELS[name], json.dumps(doc).encode(), clean=True)
    for raw in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth, b"[" * depth):
        check(MODELS[name], raw, clean=False)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_oversized_payloads(name: str) -> None:
    doc = dict(VALID[name], pad="x" * MAX_PAYLOAD_BYTES)
    with pytest.raises(ContractError, match="over the"):
        parse_payload(MODELS[name], json.dumps(doc).encode())
    check(MODELS[name], json.dumps(dict(VALID[name], pad="x" * (MAX_PAYLOAD_BYTES // 2))).encode(), clean=True)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("number", ["1" + "0" * 400, "-1" + "0" * 30, "1e400", "-1e400", "NaN", "Infinity",
                                    "1e-400", "0.0000001", "9007199254740993"])
def test_huge_and_odd_numbers_never_crash(name: str, number: str) -> None:
    for key in list(VALID[name]) + ["extra"]:
        text = json.dumps(dict(VALID[name], **{key: 0})).replace(f'"{key}": 0', f'"{key}": {number}', 1)
        check(MODELS[name], text.encode(), clean=False)


# ------------------------------------------------------------------------------------ contract gaps
@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e400"])
def test_non_finite_numbers_are_refused(number: str) -> None:
    with pytest.raises(ContractError):
        parse_payload(ServiceQueue, f'{{"waiting": 1, "eta_s": {number}}}'.encode())


def test_integers_beyond_64_bits_are_refused() -> None:
    with pytest.raises(ContractError):
        parse_payload(Event, f'{{"seq": {2**64}, "ts": "{TS}", "type": "ticket.issued"}}'.encode())


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(ContractError):
        parse_payload(Event, f'{{"seq": 1, "ts": "{TS}", "type": "ticket.issued", "data": {{"x": "\\ud800"}}}}')


# ------------------------------------------------------------------------------------ topics
segment = st.sampled_from(["civiq", "v1", "v2", "hcm-q1", "pi-1", "gateway", "alerts", "cmd", "event", "status",
                           "queue", "health", "cmd_result", "policy", "display", "rebirth", "", "+", "#",
                           "HCM", "a b", "x" * 64, "ư", "\x00"]) | st.text(max_size=10)


@fuzz(300, 20000)
@given(parts=st.lists(segment, min_size=0, max_size=8))
def test_parse_topic(parts: list[str]) -> None:
    t = "/".join(parts)
    try:
        p = parse_topic(t)
    except ContractError:
        return
    leaf = p.leaf if p.cmd is None else f"cmd/{p.cmd}"
    assert topic(p.center, p.node, leaf) == t
    assert (p.cmd is None) == (p.leaf != "cmd")


@fuzz(200, 5000)
@given(t=st.text(max_size=200))
def test_parse_topic_random_text(t: str) -> None:
    try:
        parse_topic(t)
    except ContractError:
        pass
