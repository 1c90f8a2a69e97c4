"""The counter router (civiq/edge/counter_router.py) without a broker: counter operations from a keypad, the
API or the gateway go to the real queue engine, and what the counter's boards and call pad LCD show is read
back from the emulators at the wire (Modbus board on c1; a text board and an RS-485 call pad on c2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from civiq.edge.counter_router import WrongCode
from civiq.edge.queue.engine import QueueError
from tests.conftest import wait_for
from tests.edge.agent_parts import CLERKS, PAD_AND_TEXT_BOARD, agent_parts


def test_a_call_shows_on_the_counters_board_and_pad_and_a_hold_says_so(tmp_path: Path) -> None:
    with agent_parts(tmp_path, edits=PAD_AND_TEXT_BOARD) as p:
        lcd = p.sim.emulators["/dev/civiq-rs485"].pads[11]
        p.desk.press("B")
        assert p.router.action("c2", "next").label == "B001"
        wait_for(lambda: p.sim.shown("d2") == "B001" and lcd.lcd == "B001", timeout=5, what="B001 at c2")
        assert p.sim.shown("d1") == ""  # the other counter's board is untouched

        p.router.action("c2", "hold", by="api")
        wait_for(lambda: p.sim.shown("d2") == "" and lcd.lcd == "GIU B001", timeout=5, what="held at c2")
        assert p.of("ticket.held")[0]["by"] == "api"


def test_a_refused_key_is_shown_on_the_pad_never_raised(tmp_path: Path) -> None:
    with agent_parts(tmp_path, edits=PAD_AND_TEXT_BOARD) as p:
        lcd = p.sim.emulators["/dev/civiq-rs485"].pads[11]
        p.router.on_key("c2", "recall", keypad="k3")  # nothing to recall: refused
        wait_for(lambda: lcd.lcd == "LOI", timeout=5, what="LOI on the pad")

        p.desk.press("A")
        p.router.on_key("c2", "next", keypad="k3")
        p.clock.advance(10)  # recall_cooldown_s 10 after the call
        p.router.on_key("c2", "recall", keypad="k3")
        p.clock.advance(2)
        p.router.on_key("c2", "recall", keypad="k3")  # inside the cooldown: the pad says how long to wait
        wait_for(lambda: lcd.lcd == "CHO 8S", timeout=5, what="the cooldown on the pad")
        assert [e["by"] for e in p.of("ticket.recalled")] == ["keypad:k3"]

        with pytest.raises(QueueError, match="unknown counter action"):  # from the API: raised to report
            p.router.action("c2", "dance")


def test_sign_in_by_code_flashes_the_name_or_sai_ma_then_the_ticket_comes_back(tmp_path: Path) -> None:
    with agent_parts(tmp_path, extra=CLERKS, edits=PAD_AND_TEXT_BOARD) as p:
        lcd = p.sim.emulators["/dev/civiq-rs485"].pads[11]
        with pytest.raises(WrongCode):
            p.router.sign_in_code("c2", "1111", by="api")
        wait_for(lambda: lcd.lcd == "Sai ma" and p.sim.shown("d2") == "Sai ma", timeout=5, what="Sai ma")
        assert p.router.wrong_codes == 1 and p.of("clerk.signed_in") == []

        p.clock.advance(p.router.flash_s)  # the flash has had its time: the counter's ticket (none) is back
        p.router.tick()
        wait_for(lambda: lcd.lcd == "" and p.sim.shown("d2") == "", timeout=5, what="c2 blank again")

        p.router.on_key("c2", "sign_in:05093", keypad="k3")
        assert p.of("clerk.signed_in")[-1]["clerk"] == "minh"
        wait_for(lambda: lcd.lcd == "A.MINH", timeout=5, what="the clerk's short name")
        p.router.tick()  # too early: the name stays
        assert lcd.lcd == "A.MINH"


def test_a_keypads_transfer_goes_to_the_next_service_of_the_counter(tmp_path: Path) -> None:
    with agent_parts(tmp_path) as p:
        p.desk.press("A")
        p.router.on_key("c1", "next", keypad="k1")  # c1 serves [A, B]
        p.router.on_key("c1", "transfer", keypad="k1")
        assert [(e["ticket"], e.get("to_service")) for e in p.of("ticket.transferred")] == [("A001", "B")]
        with pytest.raises(QueueError, match="no ticket to transfer"):
            p.router.action("c1", "transfer")


def test_a_reception_key_issues_a_ticket_through_the_desk(tmp_path: Path) -> None:
    with agent_parts(tmp_path) as p:
        p.router.on_key("c1", "issue:A:elderly", keypad="k9")
        assert p.issued == [("A", "elderly", "keypad:k9")]


def test_a_message_goes_to_one_display_or_all(tmp_path: Path) -> None:
    with agent_parts(tmp_path) as p:
        assert p.router.message("1234", "d2") == ["d2"]
        wait_for(lambda: p.sim.shown("d2") == "1234", timeout=5, what="the message on d2")
        assert sorted(p.router.message("")) == ["d1", "d2"]
        with pytest.raises(KeyError):
            p.router.message("x", "d9")
