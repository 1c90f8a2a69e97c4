"""The fast decoder (msgspec) and the contract (pydantic) accept and reject the same payloads."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.ingest import build_traffic
from civiq.contract import LEAF_MODELS, ContractError, parse_payload
from civiq.gateway.ingest.decode import FAST_MODELS, decode

TS = "2026-01-05T01:00:00Z"
EVENT = {"seq": 3, "ts": TS, "type": "ticket.called", "clock": "synced",
         "data": {"ticket": "A001", "service": "a", "counter": "c1", "wait_s": 61.5}}
QUEUE = {"ts": TS, "day": "2026-01-05", "last_seq": 3,
         "services": {"a": {"waiting": 2, "oldest_wait_s": 60, "eta_s": None, "priority_by_class": {"old": 1}}},
         "counters": {"c1": {"state": "open", "ticket": "A001", "services": ["a"], "held": ["A000"],
                             "rules": [{"service": "a", "over_minutes": 15}]}}}
HEALTH = {"ts": TS, "host": {"cpu_temp_c": 51.2, "clock": "synced"},
          "devices": [{"id": "printer-1", "kind": "printer", "state": "degraded", "detail": "paper low"}],
          "outbox": {"pending": 4, "oldest_s": 1.5}}
VALID = {"event": EVENT, "queue": QUEUE, "health": HEALTH}


def both(leaf: str, payload: bytes) -> tuple[object, object]:
    """(pydantic result or its error, fast result or its error)."""
    try:
        slow: object = parse_payload(LEAF_MODELS[leaf], payload)
    except ContractError as e:
        slow = e
    try:
        fast: object = decode(leaf, payload)
    except ContractError as e:
        fast = e
    return slow, fast


def agree(leaf: str, payload: bytes) -> None:
    slow, fast = both(leaf, payload)
    assert isinstance(slow, ContractError) == isinstance(fast, ContractError), (leaf, payload[:300], slow, fast)
    if isinstance(slow, ContractError):
        return
    # same content: the struct's plain data equals the model's
    assert type(fast) is FAST_MODELS[leaf]
    assert fast.model_dump(mode="json") == json.loads(slow.model_dump_json()), (leaf, payload[:300])  # type: ignore[union-attr]


def mutate(doc: dict, path: tuple, value: object) -> bytes:
    d = json.loads(json.dumps(doc))
    cur = d
    for p in path[:-1]:
        cur = cur[p]
    if value is KeyError:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return json.dumps(d).encode()


BROKEN = [
    # (leaf, path, value): each makes a valid payload invalid, or tests a lax coercion both must share
    ("event", ("seq",), 0), ("event", ("seq",), -1), ("event", ("seq",), "3"), ("event", ("seq",), 3.0),
    ("event", ("seq",), 3.5), ("event", ("seq",), True), ("event", ("seq",), 2**63), ("event", ("seq",), 2**63 - 1),
    ("event", ("seq",), None), ("event", ("seq",), KeyError), ("event", ("ts",), KeyError),
    ("event", ("ts",), "yesterday"), ("event", ("ts",), "2026-01-05"), ("event", ("ts",), 1767574800),
    ("event", ("ts",), "2026-01-05T01:00:00"), ("event", ("ts",), "2026-01-05T01:00:00+07:00"),
    ("event", ("ts",), "2026-01-05 01:00:00Z"), ("event", ("ts",), "2026-01-05T01:00:00.123456789Z"),
    ("event", ("type",), "ticket.eaten"), ("event", ("type",), 1), ("event", ("clock",), "maybe"),
    ("event", ("data",), []), ("event", ("data",), None), ("event", ("data",), {"n": 2**64}),
    ("event", ("data",), {"n": [1, {"m": -2**63 - 1}]}), ("event", ("extra",), {"x": 1}),
    ("queue", ("day",), 5), ("queue", ("last_seq",), -1), ("queue", ("services", "a", "waiting"), -1),
    ("queue", ("services", "a", "waiting"), KeyError), ("queue", ("services", "a", "oldest_wait_s"), -0.5),
    ("queue", ("services", "a", "oldest_wait_s"), "1"), ("queue", ("services", "a", "eta_s"), "soon"),
    ("queue", ("services", "a", "priority_by_class"), {"old": "x"}), ("queue", ("services",), []),
    ("queue", ("counters", "c1", "state"), "lunch"), ("queue", ("counters", "c1", "state"), "break"),
    ("queue", ("counters", "c1", "services"), "a"), ("queue", ("counters", "c1", "ticket"), 7),
    ("queue", ("counters", "c1", "held"), [1]), ("queue", ("services", "a", "held"), 2.0),
    ("queue", ("counters", "c1", "rules"), [{"service": "a", "over_minutes": 0}]),
    ("queue", ("counters", "c1", "rules"), [{"service": "a"}]), ("queue", ("counters", "c1", "rules"), {}),
    ("health", ("devices", 0, "id"), "Printer 1"), ("health", ("devices", 0, "id"), "printer-1\n"),
    ("health", ("devices", 0, "id"), ""), ("health", ("devices", 0, "id"), "p" * 64),
    ("health", ("devices", 0, "state"), "on fire"), ("health", ("devices", 0, "kind"), KeyError),
    ("health", ("outbox", "pending"), -1), ("health", ("outbox",), {}), ("health", ("host",), None),
    ("health", ("host", "cpu_temp_c"), "hot"), ("health", ("host", "clock"), "late"), ("health", ("devices",), {}),
]


@pytest.mark.parametrize(("leaf", "path", "value"), BROKEN)
def test_a_changed_field_is_judged_alike(leaf: str, path: tuple, value: object) -> None:
    agree(leaf, mutate(VALID[leaf], path, value))


@pytest.mark.parametrize("raw", [
    b"", b"null", b"[]", b"[1, 2]", b'"text"', b"7", b"{", b"{}", b'{"seq": 1}x', b"not json",
    b'{"seq": 1, "ts": "' + TS.encode() + b'", "type": "ticket.issued", "data": {"x": NaN}}',
    b'{"seq": 1, "ts": "' + TS.encode() + b'", "type": "ticket.issued", "data": {"x": Infinity}}',
    b'{"seq": 1, "ts": "' + TS.encode() + b'", "type": "ticket.issued", "data": {"x": 1e400}}',
    b'{"seq": 1, "ts": "' + TS.encode() + b'", "type": "ticket.issued", "ignored": 1e400}',
    b'{"seq": 1, "ts": "' + TS.encode() + b'", "type": "ticket.issued", "ignored": 123456789012345678901234}',
    b'{"seq": 1, "ts": "' + TS.encode() + b'", "type": "ticket.issued", "ignored": "\xff\xfe"}',
    b'{"seq": 1, "ts": "' + TS.encode() + b'", "type": "ticket.issued", "ignored": "\\ud800"}',
    b'{"seq": 1, "ts": "' + TS.encode() + b'", "type": "ticket.issued", "data": {"x": "\\ud83d\\ude00"}}',
    b'{"seq": 1, "ts": "' + TS.encode() + b'", "type": "ticket.issued", "data": {"x": 1e-400}}',
    b'{"seq": 1, "seq": 2, "ts": "' + TS.encode() + b'", "type": "ticket.issued"}',
    b'  {"seq": 1, "ts": "' + TS.encode() + b'", "type": "ticket.issued"}\n',
    b'{"seq": 1, "ts": "' + TS.encode() + b'", "type": "ticket.issued", "data": {"a": "\x01"}}',
    b"\xef\xbb\xbf{}",
    b'{"ts": "' + TS.encode() + b'", "day": "d", "services": {"a": {"waiting": 1, "eta_s": 1e308}}}',
    b'{"ts": "' + TS.encode() + b'", "day": "d", "services": {"a": {"waiting": 1, "eta_s": -1e309}}}',
])
@pytest.mark.parametrize("leaf", ["event", "queue", "health"])
def test_broken_json_is_judged_alike(leaf: str, raw: bytes) -> None:
    agree(leaf, raw)


def test_the_bench_traffic_decodes_to_the_same_content() -> None:
    traffic, counts = build_traffic(30, 300)
    assert all(counts.values())
    for t, p in traffic:
        agree(t.rsplit("/", 1)[1], p)


REQUIRED = {"seq": 1, "ts": TS, "type": "ticket.issued", "waiting": 0, "state": "open", "day": "d", "id": "x",
            "kind": "k", "pending": 0, "service": "a", "over_minutes": 1.0}


def test_every_contract_field_has_its_fast_twin() -> None:
    """A field added to a contract model must be added to its struct too, with the same default (else every
    such payload would take the slow path, or a struct would read a missing field differently)."""
    import msgspec

    import civiq.contract as c
    import civiq.gateway.ingest.decode as d

    for name in ("Event", "ServiceQueue", "PriorityRule", "CounterState", "QueueSnapshot", "HostHealth",
                 "DeviceHealth", "OutboxHealth", "Health"):
        fast, model = getattr(d, name), getattr(c, name)
        assert set(fast.__struct_fields__) == set(model.model_fields), name
        minimal = {k: v for k, v in REQUIRED.items() if k in model.model_fields and model.model_fields[k].is_required()}
        if name == "DeviceHealth":
            minimal["state"] = "ok"
        want = json.loads(model.model_validate(minimal).model_dump_json())
        assert msgspec.convert(minimal, fast).model_dump(mode="json") == want, name


def test_a_rejection_names_the_field_as_the_contract_does() -> None:
    bad = mutate(EVENT, ("seq",), 0)
    slow, fast = both("event", bad)
    assert str(fast) == str(slow) and "field 'seq'" in str(fast)
    fast = both("queue", b'{"day": "d"}')[1]
    assert isinstance(fast, ContractError) and "field 'ts'" in str(fast)


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                       max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(leaf=st.sampled_from(["event", "queue", "health"]), data=st.data())
def test_random_changes_are_judged_alike(leaf: str, data: st.DataObject) -> None:
    doc = json.loads(json.dumps(VALID[leaf]))
    # replace or add one field somewhere in the document with arbitrary JSON
    cur = doc
    while isinstance(cur, dict) and cur and data.draw(st.booleans()):
        k = data.draw(st.sampled_from(sorted(cur)))
        if not isinstance(cur[k], dict | list) or not cur[k]:
            break
        cur = cur[k] if isinstance(cur[k], dict) else cur[k][0]
        if not isinstance(cur, dict):
            break
    if isinstance(cur, dict):
        key = data.draw(st.sampled_from(sorted(cur)) | st.text(max_size=6)) if cur else "x"
        cur[key] = data.draw(JSONISH)
    agree(leaf, json.dumps(doc).encode())
