"""The ticket desk (civiq/edge/ticket_desk.py) without a broker: a press gives a ticket printed on the emulated
ESC/POS printer (what comes out of it is checked), no paper or no disk gives none, the QR boards cycle."""

from __future__ import annotations

from pathlib import Path

from civiq.edge.queue.store import StoreFull
from civiq.tickettoken import center_key, verify_ticket_token
from tests.conftest import wait_for
from tests.edge.agent_parts import agent_parts


def test_a_press_gives_a_ticket_printed_with_its_number_wait_and_portal_link(tmp_path: Path) -> None:
    with agent_parts(tmp_path) as p:
        p.sim.press_button("A")  # the real button (MockFactory pin) through the dispenser's debounce
        [t] = p.sim.emulator_of("p1").wait_tickets(1, timeout=10)
        assert "A001" in t.all_text()
        assert t.qr == [next(s.portal_url for s in p.cfg.services if s.prefix == "A")]
        assert [e["ticket"] for e in p.of("ticket.issued")] == ["A001"]

        ticket = p.desk.press("B", by="kiosk")
        assert ticket.label == "B001"
        assert p.desk.ticket_print(ticket).eta_text == "Chưa ước tính được / unknown"  # no service seen yet
        assert p.desk.refused_presses == 0


def test_no_paper_or_a_full_disk_gives_no_ticket_and_says_why(tmp_path: Path) -> None:
    with agent_parts(tmp_path) as p:
        p.sim.set_printer("p1", paper_out=True)
        p.hw.printers["p1"].poll()
        ok, detail = p.desk.printer_status()
        assert not ok and "paper" in detail.lower()
        assert p.desk.press("A") is None and p.desk.refused_presses == 1
        assert p.of("ticket.issued") == []  # no number nobody holds

        p.sim.set_printer("p1", paper_out=False)
        p.hw.printers["p1"].poll()
        assert p.desk.printer_status() == (True, "")
        p.watch.store_full(StoreFull("database or disk is full"))
        ok, detail = p.desk.printer_status()
        assert not ok and "disk full" in detail


def test_unknown_service_gives_nothing_and_is_not_a_refusal(tmp_path: Path) -> None:
    with agent_parts(tmp_path) as p:
        assert p.desk.press("Z") is None
        assert p.desk.refused_presses == 0 and p.of("ticket.issued") == []


def test_the_fault_led_blinks_while_the_printer_is_out(tmp_path: Path) -> None:
    with agent_parts(tmp_path) as p:
        led = p.sim.pin_factory.pin(p.cfg.dispenser.led_pin)
        assert led.state  # steady on
        p.sim.set_printer("p1", paper_out=True)
        p.hw.printers["p1"].poll()
        p.watch.check(p.hw.printers["p1"])  # the watch tells the desk, the desk lights the LED
        before = len(led.states)
        wait_for(lambda: len(led.states) - before >= 2, timeout=3, what="the LED blinking")
        p.sim.set_printer("p1", paper_out=False)
        p.hw.printers["p1"].poll()
        p.watch.check(p.hw.printers["p1"])
        assert led.state


def test_a_public_ticket_link_is_signed_for_this_ticket(tmp_path: Path) -> None:
    secret = b"the gateway's secret"
    key = tmp_path / "ticket.key"
    key.write_text(center_key(secret, "xa-parts").hex())  # what `civiq gateway ticket-key` hands the edge
    edits = [("timezone: Asia/Ho_Chi_Minh}",
              f'timezone: Asia/Ho_Chi_Minh, public_url: "https://hcc.example.vn/", ticket_key_file: {key}}}')]
    with agent_parts(tmp_path, edits=edits) as p:
        ticket = p.desk.press("A")
        url = p.desk.ticket_print(ticket).qr_url
        assert url.startswith("https://hcc.example.vn/t/")
        ref = verify_ticket_token(secret, url.rsplit("/", 1)[1])
        assert ref is not None and (ref.center, ref.label) == ("xa-parts", "A001")


def test_the_qr_boards_cycle_through_the_services(tmp_path: Path) -> None:
    with agent_parts(tmp_path) as p:
        p.desk.press("A")
        emu = p.sim.emulator_of("q1")
        p.desk.show_qr(0)
        wait_for(lambda: any("Đất đai" in v for v in emu.components.values()), timeout=5, what="service A shown")
        p.desk.show_qr(1)
        wait_for(lambda: any("Hộ tịch / Civil status" in v for v in emu.components.values()), timeout=5,
                 what="service B shown")
