"""Printers besides serial: a network printer on raw TCP (port 9100) and a USB printer (/dev/usb/lp0).

The wire is real: a TCP server on 127.0.0.1 and a pty behind a device-file path, both decoding the bytes
with the one ESC/POS parser (EscPosEmulator). The agent test runs the whole edge agent in simulation with a
network printer, unplugs it and plugs it back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from civiq.contract import DeviceState, Event, EventType, parse_payload
from civiq.edge.cli import make_agent
from civiq.edge.config import ConfigError, load_config
from civiq.edge.devices.printer import PrinterError, ThermalPrinter
from civiq.edge.devices.tcpraw import TcpTransport
from civiq.edge.devices.usblp import LP_PERRORP, LP_POUTPA, UsbLpTransport
from civiq.edge.sim.printer_links import NetworkPrinterEmulator, UsbPrinterStandIn
from tests.conftest import wait_for
from tests.edge.test_printer import TICKET


@pytest.fixture
def net() -> Iterator[NetworkPrinterEmulator]:
    e = NetworkPrinterEmulator().start()
    yield e
    e.stop()


@pytest.fixture
def usb(tmp_path: Path) -> Iterator[UsbPrinterStandIn]:
    e = UsbPrinterStandIn(tmp_path / "dev" / "usb" / "lp0").start()
    yield e
    e.stop()


def tcp_printer(url: str) -> ThermalPrinter:
    return ThermalPrinter("p1", TcpTransport(url, timeout=0.3, connect_timeout=0.5), status_timeout=0.3)


def test_ticket_over_tcp_is_decoded_by_the_printer(net: NetworkPrinterEmulator) -> None:
    printer = tcp_printer(net.url)
    printer.print_ticket(TICKET)
    [t] = net.wait_tickets(1)
    assert "B014" in t.text and t.qr == [TICKET.qr_url] and t.cut
    assert net.status_queries >= 3  # the status was asked over the same socket before the job
    assert printer.health().state is DeviceState.ok


def test_the_network_link_speed_is_physical() -> None:
    net = NetworkPrinterEmulator(link_bps=2_000_000).start()  # a 2 Mbit/s link: ~24 KB take ~0.1 s
    try:
        printer = tcp_printer(net.url)
        printer.poll()
        before = len(net.received)
        t0 = time.monotonic()
        printer.print_ticket(TICKET)
        net.wait_tickets(1)
        took = time.monotonic() - t0
        sent = len(net.received) - before
        assert took >= 0.95 * sent * 8 / 2_000_000, (took, sent)
    finally:
        net.stop()


def test_a_printer_closing_an_idle_connection_costs_no_ticket(net: NetworkPrinterEmulator) -> None:
    printer = tcp_printer(net.url)
    printer.print_ticket(TICKET)
    net.wait_tickets(1)
    net.drop_connection()  # the printer's idle timeout
    wait_for(lambda: net._client is None, 2, what="printer side closed")
    printer.print_ticket(TICKET)
    assert len(net.wait_tickets(2)) == 2
    assert printer.transport.connects == 2


def test_network_printer_switched_off_then_on(net: NetworkPrinterEmulator) -> None:
    printer = tcp_printer(net.url)
    assert printer.poll().state is DeviceState.ok
    net.unplug()
    h = printer.poll()
    assert h.state is DeviceState.offline
    assert f"printer does not answer on {net.url}" in h.detail and "cannot connect" in h.detail
    with pytest.raises(PrinterError):
        printer.print_ticket(TICKET)
    net.start()  # same address
    assert printer.poll().state is DeviceState.ok
    printer.print_ticket(TICKET)
    assert net.wait_tickets(1)[0].qr == [TICKET.qr_url]


def test_network_printer_out_of_paper_prints_nothing(net: NetworkPrinterEmulator) -> None:
    printer = tcp_printer(net.url)
    net.paper_out = True
    with pytest.raises(PrinterError, match="out of paper"):
        printer.print_ticket(TICKET)
    assert net.tickets == [] and net.spoiled == []


def test_ticket_over_usb_device_file(usb: UsbPrinterStandIn) -> None:
    printer = ThermalPrinter("p2", UsbLpTransport(usb.port, timeout=0.3), status_timeout=0.3)
    printer.print_ticket(TICKET)
    [t] = usb.wait_tickets(1)
    assert "B014" in t.text and t.qr == [TICKET.qr_url]
    assert printer.poll().state is DeviceState.ok
    usb.unplug()
    h = printer.poll()
    assert h.state is DeviceState.offline and usb.port in h.detail
    usb.start()
    assert printer.poll().state is DeviceState.ok


def test_usb_printer_without_the_device_file(tmp_path: Path) -> None:
    printer = ThermalPrinter("p2", UsbLpTransport(str(tmp_path / "lp9")), status_timeout=0.2)
    h = printer.poll()
    assert h.state is DeviceState.offline and "no such device" in h.detail


class _LpStatusLines(UsbLpTransport):
    """A unidirectional USB printer: nothing comes back on the device file; the usblp LPGETSTATUS ioctl
    (which a pty has not) gives the IEEE-1284 status lines, here set by the test."""

    bits = LP_PERRORP | 0x10

    def port_status(self) -> int | None:
        self._open()
        return self.bits


def test_unidirectional_usb_printer_uses_the_status_lines(usb: UsbPrinterStandIn) -> None:
    usb.emu.muted = True  # never answers DLE EOT
    t = _LpStatusLines(usb.port, timeout=0.1)
    printer = ThermalPrinter("p2", t, status_timeout=0.1)
    assert printer.poll().state is DeviceState.ok
    t.bits = LP_PERRORP | LP_POUTPA
    assert (printer.poll().state, printer.health().detail) == (DeviceState.failed, "printer is out of paper")


# ----------------------------------------------------------------------------------------------- config
BASE = """\
center: {id: xa-in, name: "Trung tâm xã In Thử"}
node: {id: pi-1}
mqtt: {host: 127.0.0.1, port: 1883}
state_dir: /tmp/x
services:
  - {prefix: A, name_vi: "Đất đai", name_en: "Land", portal_url: "https://dichvucong.gov.vn/a"}
counters:
  - {id: c1, name: "Quầy 1", profile: {services: [A]}}
printers:
"""


def load(tmp_path: Path, printer: str):  # noqa: ANN201
    p = tmp_path / "center.yaml"
    p.write_text(BASE + printer + "\n", encoding="utf-8")
    return load_config(p, {})


def problems(tmp_path: Path, printer: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, printer)
    return [f"{pr.line}:{pr.field_path}: {pr.message}" for pr in exc.value.problems]


def test_config_printer_transports(tmp_path: Path) -> None:
    assert load(tmp_path, "  - {id: p1, port: 'tcp://192.168.1.50:9100'}").printers[0].transport == "tcp"
    assert load(tmp_path, "  - {id: p1, port: 'tcp://printer.local'}").printers[0].transport == "tcp"
    assert load(tmp_path, "  - {id: p1, port: /dev/usb/lp0}").printers[0].transport == "usb"
    assert load(tmp_path, "  - {id: p1, port: /dev/civiq-printer-usb, transport: usb}").printers[0].transport == "usb"
    cfg = load(tmp_path, "  - {id: p1, port: /dev/civiq-printer, baudrate: 9600}")
    assert (cfg.printers[0].transport, cfg.printers[0].baudrate) == ("serial", 9600)
    assert cfg.serial_ports() == {"/dev/civiq-printer": 9600}
    assert load(tmp_path, "  - {id: p1, port: 'tcp://10.0.0.9:9100'}").serial_ports() == {}


def test_config_printer_transport_errors(tmp_path: Path) -> None:
    [e] = problems(tmp_path, "  - {id: p1, port: 'tcp://192.168.1.50:9100', baudrate: 19200}")
    assert e.startswith("10:printers[0].baudrate:") and "network printer has no baud rate" in e
    [e] = problems(tmp_path, "  - {id: p1, port: /dev/usb/lp0,\n     baudrate: 9600}")
    assert e.startswith("11:printers[0].baudrate:") and "USB printer has no baud rate" in e
    [e] = problems(tmp_path, "  - {id: p1, port: 'tcp://192.168.1.50:99999'}")
    assert ":printers[0].port:" in e and "1-65535" in e
    [e] = problems(tmp_path, "  - {id: p1, port: /dev/usb/lp0, transport: serial}")
    assert ":printers[0].transport:" in e and "transport: usb" in e
    [e] = problems(tmp_path, "  - {id: p1, port: /dev/civiq-printer, transport: tcp}")
    assert ":printers[0].port:" in e and "tcp://" in e


# ----------------------------------------------------------------------------------------------- agent
CENTER = """\
center: {{id: xa-mang, name: "Trung tâm Phục vụ hành chính công xã Mạng"}}
node: {{id: pi-1}}
mqtt: {{host: 127.0.0.1, port: {mqtt_port}, keepalive: 5}}
state_dir: {state}
http: {{host: 127.0.0.1, port: 0}}
services:
  - {{prefix: A, name_vi: "Đất đai", name_en: "Land", portal_url: "https://dichvucong.gov.vn/a"}}
counters:
  - {{id: c1, name: "Quầy 1", profile: {{services: [A]}}}}
dispenser: {{buttons: {{A: 17}}, printer: p1, debounce_ms: 20}}
printers:
  - {{id: p1, port: "tcp://192.168.1.50:9100"}}
  - {{id: p2, port: /dev/usb/lp0}}
keypads:
  - {{id: k1, counter: c1, kind: gpio, pins: {{next: 5}}}}
"""


def device_events(rec) -> list[tuple[str, str, str]]:  # noqa: ANN001
    out = []
    for p in rec.on("/event"):
        e = parse_payload(Event, p)
        if e.type in (EventType.device_fault, EventType.device_recovered):
            out.append((str(e.type), e.data.get("device"), e.data.get("detail", "")))
    return out


def test_agent_with_a_network_printer_unplugged_and_back(tmp_path: Path, broker, recorder) -> None:  # noqa: ANN001
    rec = recorder()
    path = tmp_path / "center.yaml"
    path.write_text(CENTER.format(mqtt_port=broker.port, state=tmp_path / "state"), encoding="utf-8")
    agent = make_agent(load_config(path, {}), simulate=True)
    sim = agent.sim
    try:
        agent.start()
        net = sim.emulator_of("p1")
        assert isinstance(net, NetworkPrinterEmulator)
        sim.press_button("A")
        [t] = net.wait_tickets(1)
        assert "A001" in t.all_text() or any("A001" in line for line in t.text)

        sim.unplug("p1")  # the network printer loses power
        agent.poll_devices()
        p1 = agent.hw.printers["p1"]
        wait_for(lambda: p1.health().state is DeviceState.offline, 5, what="p1 offline")
        assert "does not answer on tcp://127.0.0.1:" in p1.health().detail
        assert "cannot connect" in p1.health().detail
        health = {d.id: d for d in agent.health().devices}
        assert health["p1"].state is DeviceState.offline
        assert health["p2"].state is DeviceState.ok  # the USB printer is not affected

        sim.press_key("k1", "next")  # the queue goes on: the ticket already issued is called
        wait_for(lambda: agent.engine.counter("c1").ticket == "A001", 5, what="A001 called")

        sim.plug("p1")
        agent.poll_devices()
        wait_for(lambda: p1.health().state is DeviceState.ok, 5, what="p1 recovered")
        wait_for(lambda: [e for e in device_events(rec) if e[0] == EventType.device_recovered], 10,
                 what="recovery event at the broker")
        fault = next(e for e in device_events(rec) if e[0] == EventType.device_fault)
        assert fault[1] == "p1" and "cannot connect" in fault[2]
        sim.press_button("A")
        assert any("A002" in line for line in net.wait_tickets(2)[-1].text)
        sim.set_printer("p1", paper_out=True)  # the simulator's paper flags reach the network printer
        agent.poll_devices()
        wait_for(lambda: p1.health().detail == "printer is out of paper", 5, what="p1 out of paper")
    finally:
        agent.stop()
        sim.stop()


def test_doctor_reports_usb_and_network_printers(tmp_path: Path, net: NetworkPrinterEmulator,
                                                 usb: UsbPrinterStandIn) -> None:
    from civiq.edge.printer_links import check_printer_links

    cfg = load(tmp_path, f"  - {{id: p1, port: '{net.url}'}}\n  - {{id: p2, port: {usb.port}, transport: usb}}\n"
               f"  - {{id: p3, port: {tmp_path / 'lp7'}, transport: usb}}")
    found = {what: (level, detail) for level, what, detail in check_printer_links(cfg, agent_running=False)}
    assert found["network printer p1"][0] == "ok" and "accepts connections" in found["network printer p1"][1]
    assert found["USB printer p2"] == ("ok", f"{usb.port} is present and writable")
    assert found["USB printer p3"][0] == "FAULT" and "does not exist" in found["USB printer p3"][1]
    net.unplug()
    found = {what: (level, detail) for level, what, detail in check_printer_links(cfg, agent_running=False)}
    assert found["network printer p1"][0] == "FAULT" and "cannot connect" in found["network printer p1"][1]
    assert "network printer p1" not in {w for _l, w, _d in check_printer_links(cfg, agent_running=True)}
