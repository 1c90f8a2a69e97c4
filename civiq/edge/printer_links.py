"""How a printer is connected (serial, USB printer class, network port 9100): config checks and transports.

    kind = printer_link("tcp://192.168.1.50:9100", None)        # "tcp"
    transport = open_printer_transport(printer_cfg, resolve_port)  # TcpTransport / UsbLpTransport / None
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

USB_PREFIX = "/dev/usb/lp"
Loc = tuple[Any, ...]


def printer_link(port: str, transport: str | None) -> str:
    """The transport kind: the one configured, else guessed from the port."""
    if transport:
        return transport
    if port.startswith("tcp://"):
        return "tcp"
    if port.startswith(USB_PREFIX):
        return "usb"
    return "serial"


def check_printer_link(port: str, transport: str | None, baud_set: bool) -> tuple[list[tuple[Loc, str]], str]:
    """Problems of a printer's port/transport/baudrate (field, message), and its transport kind."""
    from civiq.edge.devices.tcpraw import parse_tcp_url

    kind = printer_link(port, transport)
    out: list[tuple[Loc, str]] = []
    if kind == "tcp":
        if not port.startswith("tcp://"):
            out.append((("port",), f"a network printer's port is written tcp://<printer IP>:9100, not '{port}'"))
        else:
            try:
                parse_tcp_url(port)
            except ValueError as e:
                out.append((("port",), str(e)))
    elif port.startswith("tcp://"):
        out.append((("transport",), f"port {port} is a network address: use transport: tcp (or leave "
                    "transport out)"))
    elif "://" in port and kind != "serial":
        out.append((("port",), f"'{port}' is a pyserial URL: only a serial printer can use one (transport: "
                    "serial), a USB printer is a device file like /dev/usb/lp0"))
    if kind == "serial" and port.startswith(USB_PREFIX):
        out.append((("transport",), f"{port} is a USB printer device, not a serial port: use transport: usb "
                    "(or leave transport out)"))
    if kind != "serial" and baud_set:
        what = "network" if kind == "tcp" else "USB"
        out.append((("baudrate",), f"a {what} printer has no baud rate: remove 'baudrate' (it applies to "
                    "serial printers only)"))
    return out, kind


def open_printer_transport(p: Any, resolve_port: Callable[[str], str]) -> Any:
    """A transport for a USB or network printer config; None for a serial printer (the caller shares
    serial transports between devices on one port)."""
    kind = printer_link(p.port, p.transport)
    if kind == "tcp":
        from civiq.edge.devices.tcpraw import TcpTransport

        return TcpTransport(resolve_port(p.port))
    if kind == "usb":
        from civiq.edge.devices.usblp import UsbLpTransport

        return UsbLpTransport(resolve_port(p.port))
    return None


# ------------------------------------------------------------------------------------------ doctor
UDEV_HINT = "udev rule firmware-config/udev/99-civiq.rules (group lp), and the civiq user in group lp"


def check_printer_links(cfg: Any, agent_running: bool, timeout: float = 2.0) -> list[tuple[str, str, str]]:
    """``civiq edge doctor`` lines (level, what, detail) for USB and network printers: the device file is
    there and writable / the printer accepts a TCP connection. The status (paper, cover) comes from the
    device poll. While the agent runs it holds the network printer's only connection: not tried then."""
    import os
    import socket
    import time

    from civiq.edge.devices.tcpraw import parse_tcp_url

    out = []
    for p in cfg.printers:
        kind = printer_link(p.port, p.transport)
        if kind == "usb":
            what = f"USB printer {p.id}"
            if not os.path.exists(p.port):
                out.append(("FAULT", what, f"{p.port} does not exist: is the printer plugged in and switched on? "
                            "`ls -l /dev/usb/` should list lp0; `dmesg | grep usblp` shows the kernel saw it "
                            "(a printer that shows up as /dev/ttyUSB* is a serial printer: transport: serial)"))
            elif not os.access(p.port, os.R_OK | os.W_OK):
                out.append(("FAULT", what, f"{p.port} exists but this user may not open it: {UDEV_HINT}"))
            else:
                out.append(("ok", what, f"{p.port} is present and writable"))
        elif kind == "tcp" and not agent_running:
            host, port = parse_tcp_url(p.port)
            what = f"network printer {p.id}"
            t0 = time.monotonic()
            try:
                with socket.create_connection((host, port), timeout=timeout):
                    pass
            except OSError as e:
                why = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e))
                out.append(("FAULT", what, f"cannot connect to {host}:{port} ({why}): is the printer on, "
                            "on this network, and is its static IP still this one? Print its self-test page "
                            "(hold FEED while switching on) to read its IP"))
            else:
                out.append(("ok", what, f"{host}:{port} accepts connections "
                            f"({(time.monotonic() - t0) * 1000:.0f} ms)"))
    return out
