"""A ticket on paper: bytes per ticket and time to paper, raster (the old way) vs stored images, per link.

``python -m bench.printer`` prints the markdown section (``bench.run`` puts it in docs/benchmarks.md).

The printer is the ESC/POS emulator, paced like the real link: a serial line moves baud/10 bytes per second in
both directions (the pty back-pressures the driver as a UART would), USB full speed ~1 MB/s, a network card
10 Mbit/s; its mechanism feeds 200 mm of paper per second (8 dots per mm). Time to paper = from
``print_ticket()`` (status check included) to the moment the cut ticket has been fed out, on the emulator's
clock. The stored images are sent once (``poll()`` at start); their one-time cost is its own column.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from civiq.edge.devices.printer import ThermalPrinter, TicketPrint
from civiq.edge.devices.printer.stored import statics_for
from civiq.edge.devices.tcpraw import TcpTransport
from civiq.edge.devices.transport import SerialTransport
from civiq.edge.devices.usblp import UsbLpTransport
from civiq.edge.sim.printer import EscPosEmulator
from civiq.edge.sim.printer_links import NetworkPrinterEmulator, UsbPrinterStandIn

TICKET = TicketPrint(
    center_name="Trung tâm Phục vụ hành chính công phường Bến Nghé",
    label="A015",
    service_name_vi="Đăng ký kinh doanh hộ cá thể",
    service_name_en="Household business registration",
    issued_local="08:15 05/12/2026",
    ahead=7,
    eta_text="~15 phút / min",
    qr_url="https://hcm.dichvucong.example/t/eyJjIjoiaGNtLWJlbm5naGUiLCJ0IjoiQTAxNSJ9.Qm9n5fXq2c",
    priority_label=None,
)
SERVICES = [(TICKET.service_name_vi, TICKET.service_name_en), ("Hộ tịch", "Civil status"),
            ("Đất đai", "Land"), ("Xây dựng", "Construction")]
PRIORITY = ["ƯU TIÊN · Người cao tuổi", "ƯU TIÊN · Người khuyết tật", "ƯU TIÊN · Phụ nữ mang thai",
            "ƯU TIÊN · Người có công"]
LINKS = ("serial 9600", "serial 19200", "serial 115200", "USB", "network")


def _link(name: str, width: int, tmp: Path) -> tuple[Any, EscPosEmulator, Callable[[], Any]]:
    """(stand-in to stop, its emulator, a transport factory) for one link."""
    if name.startswith("serial"):
        baud = int(name.split()[1])
        emu = EscPosEmulator(baud, width_dots=width).start()
        return emu, emu, lambda: SerialTransport(emu.port, baud, timeout=0.5)
    if name == "USB":
        emu = EscPosEmulator(width_dots=width, byte_seconds=1 / 1_000_000)  # USB 2.0 full speed, bulk ~1 MB/s
        usb = UsbPrinterStandIn(tmp / f"lp-{width}", emu).start()
        return usb, emu, lambda: UsbLpTransport(str(usb.path), timeout=0.5)
    emu = EscPosEmulator(width_dots=width)
    emu.byte_seconds = 8 / 10_000_000  # for its wire_time(); the network stand-in paces the socket itself
    net = NetworkPrinterEmulator(link_bps=10_000_000, emu=emu).start()
    return net, emu, lambda: TcpTransport(net.url, timeout=0.5)


def _one(name: str, width: int, graphics: str, tmp: Path) -> dict[str, Any]:
    stand_in, emu, make = _link(name, width, tmp)
    try:
        statics = statics_for(TICKET.center_name, SERVICES, PRIORITY) if graphics != "raster" else None
        p = ThermalPrinter("p1", make(), width_dots=width, graphics=graphics, statics=statics,
                           state_path=tmp / f"g-{name}-{width}.json", status_timeout=0.5)
        t0 = time.monotonic()
        p.poll()  # at start: stores the images (nv/download)
        store_s = time.monotonic() - t0
        store_bytes = len(p.catalog.store_job()) if p.catalog is not None else 0
        rows = []
        for i in range(1 if graphics == "raster" else 2):  # stored: the second ticket (the first may store)
            time.sleep(max(0.0, emu._paper_at - time.monotonic()))  # noqa: SLF001 - the mechanism is idle
            t0 = time.monotonic()
            p.print_ticket(TICKET)
            t = emu.wait_tickets(i + 1, timeout=120)[-1]
            rows.append({"bytes": t.wire_bytes, "paper_s": t.done_at - t0, "wire_s": t.wire_s,
                         "mech_s": t.mechanism_s, "mm": t.paper_dots / 8})
        p.close()
        return {"link": name, "width": width, "graphics": graphics, "store_bytes": store_bytes,
                "store_s": store_s if store_bytes else 0.0, "ticket": rows[-1]}
    finally:
        stand_in.stop()


def run(log: Callable[[str], None] = print, quick: bool = False) -> dict[str, Any]:
    out = []
    links = LINKS if not quick else ("serial 115200", "network")
    with tempfile.TemporaryDirectory() as d:
        for width in (576, 384):
            for name in links:
                for graphics in ("raster", "nv"):
                    r = _one(name, width, graphics, Path(d))
                    log(f"printer {width} {name} {graphics}: {r['ticket']['bytes']} B, "
                        f"{r['ticket']['paper_s']:.2f} s to paper")
                    out.append(r)
    return {"rows": out}


def report(res: dict[str, Any]) -> str:
    rows = res["rows"]
    lines = ["| paper | link | bytes / ticket: raster → stored | time to paper: raster → stored | "
             "wire time of the stored ticket | images stored once (bytes, seconds) |",
             "|---|---|---|---|---|---|"]
    for width in (576, 384):
        for link in dict.fromkeys(r["link"] for r in rows):
            old = next((r for r in rows if r["width"] == width and r["link"] == link and r["graphics"] == "raster"),
                       None)
            new = next((r for r in rows if r["width"] == width and r["link"] == link and r["graphics"] == "nv"),
                       None)
            if old is None or new is None:
                continue
            paper = "80 mm" if width == 576 else "58 mm"
            o, n = old["ticket"], new["ticket"]
            lines.append(f"| {paper} | {link} | {o['bytes']:,} → **{n['bytes']:,}** | {o['paper_s']:.2f} s → "
                         f"**{n['paper_s']:.2f} s** | {n['wire_s'] * 1000:.1f} ms | {new['store_bytes']:,} B, "
                         f"{new['store_s']:.2f} s |")
    target = next((r for r in rows if r["width"] == 576 and r["link"] == "serial 19200" and r["graphics"] == "nv"),
                  None)
    notes = ["", "A Vietnamese 80 mm ticket (center name, a long service name in Vietnamese and English, people "
             "ahead, the wait, the time, a `/t/` QR link). Raster: `graphics: raster`, every Vietnamese line a "
             "picture on every ticket (the behaviour before stored images). Stored: `graphics: nv`, the center's "
             f"{len(SERVICES)} services and {len(PRIORITY)} priority labels stored at start; the ticket prints "
             "them by key (11 bytes each) and sends the number, people ahead, minutes and time as the printer's "
             "own text. Paper: ~10 cm of ticket at 200 mm/s is ~0.5-0.7 s of mechanism time, which is the floor "
             "on every fast link."]
    if target is not None:
        t = target["ticket"]
        ok = t["bytes"] <= 2048 and t["paper_s"] < 1.0
        notes.append("")
        notes.append(f"Target (80 mm, Vietnamese, 19200 baud: ≤ 2 KB and < 1 s): {t['bytes']:,} bytes, "
                     f"{t['paper_s']:.2f} s to paper — **{'met' if ok else 'MISSED'}**. The emulator's wire time "
                     f"is bytes / (baud / 10): {t['bytes']:,} / 1,920 = {t['bytes'] / 1920:.3f} s "
                     f"(measured on its clock: {t['wire_s']:.3f} s).")
    return "\n".join(lines + notes)


if __name__ == "__main__":
    print(report(run(log=lambda s: print(s, file=sys.stderr), quick="--quick" in sys.argv)))
