"""The centers of ``civiq demo``: who comes, how long each procedure takes, and the edge config of each center.

Three kinds, one per default center:

* ``commune`` — a small commune center (xã): 3 services, 2 counters, GPIO staff keypads and Modbus LED
  displays, a Nextion QR board;
* ``ward`` — a busy ward center (phường): 6 services, 8 counters, RS-485 call pads and text displays, one
  MAX7219 display, an HDMI QR screen;
* ``printer`` — a ward center whose ticket printer runs low on paper, then out, twice a day; a technician
  refills it half an hour later.

``demo_centers(5)`` gives those three and then more of the same kinds under other names. Each center renders
to a center YAML file (:meth:`DemoCenter.config_yaml`) exactly as a technician writes one, which
``civiq.edge.config.load_config`` checks like any other::

    >>> c = demo_centers(3)[1]
    >>> c.id, c.kind, len(c.counters), [s.prefix for s in c.services][:3]
    ('hcm-saigon', 'ward', 8, ['A', 'B', 'C'])
    >>> "debounce_ms: 50" in c.config_yaml(broker_port=1883, state_dir="/tmp/x")
    True

Demand figures are per hour at peak (8-10h, 14-16h); the time-of-day curve is in :mod:`civiq.dev.demo_people`.
Peak demand is about what the staff can serve (work arriving per hour ~ counters x 60 minutes), so lines
build up at the peaks and drain at lunch and by closing time, as they do in a well-staffed center.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

PORTAL = "https://dichvucong.gov.vn/p/home/dvc-tthc-thu-tuc-hanh-chinh.html?ma_thu_tuc="
DEBOUNCE_MS = 50  # the demo's citizens press fast: at speed 60 a busy center issues a ticket every second


@dataclass(frozen=True)
class ServiceDemand:
    """One service: its ticket prefix and names, and how citizens use it."""

    prefix: str
    name_vi: str
    name_en: str
    procedure: str  # ma_thu_tuc on the National Public Service Portal
    peak_per_h: float  # arrivals per hour at peak
    service_min: float  # mean minutes at the counter (lognormal around it)


@dataclass(frozen=True)
class CounterPlan:
    """A counter, the services it takes (in order) and when its clerk goes to lunch (local "HH:MM")."""

    id: str
    name: str
    services: tuple[str, ...]
    rules: tuple[tuple[str, float], ...] = ()  # (service, over_minutes)
    lunch: tuple[str, str] | None = None


@dataclass(frozen=True)
class PrinterFault:
    """Paper near end at ``near_end``, out at ``out``; a technician refills it ``refill_after_min`` later."""

    near_end: str
    out: str
    refill_after_min: float = 30.0


@dataclass(frozen=True)
class DemoCenter:
    id: str
    name: str  # as tickets print it and the province's dashboard lists it: "Phường Sài Gòn"
    kind: str  # commune, ward, printer
    services: tuple[ServiceDemand, ...]
    counters: tuple[CounterPlan, ...]
    printer_faults: tuple[PrinterFault, ...] = ()
    no_show_rate: float = 0.05  # share of called citizens who have left
    seed: int = 0

    def keypad_of(self, counter: str) -> str:
        return f"k{counter[1:]}"

    def clerk_of(self, counter: str) -> tuple[str, str, str]:
        """(id, name, sign-in code) of the clerk who works at ``counter`` (invented names, staff only)."""
        i = [c.id for c in self.counters].index(counter)
        cid, name = CLERK_NAMES[(self.seed + i) % len(CLERK_NAMES)]
        return cid, name, f"{(self.seed * 13 + 1111 * (i + 1)) % 10000:04d}"

    def config(self, broker_port: int, state_dir: str, debounce_ms: int = DEBOUNCE_MS,
               public_url: str | None = None, ticket_key_file: str | None = None,
               rating_window_s: float = 30, reasons_wait_s: float = 8) -> dict:
        """The center config as a dict (what :meth:`config_yaml` writes). With ``public_url`` (the demo
        gateway's address) and ``ticket_key_file`` (this center's key), the ticket's QR opens ``/t/<token>``.
        ``rating_window_s`` / ``reasons_wait_s``: the rating section's times (the demo stretches them with
        its clock's speed, so a polled rating pad still answers within the window)."""
        services = [{"prefix": s.prefix, "name_vi": s.name_vi, "name_en": s.name_en,
                     "portal_url": PORTAL + s.procedure} for s in self.services]
        counters = [{"id": c.id, "name": c.name,
                     "profile": {"services": list(c.services),
                                 "rules": [{"service": s, "over_minutes": m} for s, m in c.rules]}}
                    for c in self.counters]
        cfg: dict = {
            "center": {"id": self.id, "name": self.name, "timezone": "Asia/Ho_Chi_Minh",
                       **({"public_url": public_url, "ticket_key_file": ticket_key_file}
                          if public_url and ticket_key_file else {})},
            "node": {"id": "pi-1"},
            "mqtt": {"host": "127.0.0.1", "port": broker_port, "keepalive": 10},
            "state_dir": state_dir,
            "http": {"host": "127.0.0.1", "port": 0},
            "queue": {"max_recalls": 2, "estimate_window_min": 60, "recall_cooldown_s": 10},
            "services": services,
            "counters": counters,
            "clerks": {k: {"name": n, "code": code} for k, n, code in map(self.clerk_of, (c.id for c in self.counters))},
        }
        cfg.update(_HARDWARE[self.kind](self, debounce_ms))
        cfg["rating"] = {"scale": 5, "window_s": rating_window_s, "reasons_wait_s": reasons_wait_s}
        cfg["ratingpads"] = _RATINGPADS[self.kind](self, debounce_ms)
        return cfg

    def config_yaml(self, broker_port: int, state_dir: str, debounce_ms: int = DEBOUNCE_MS,
                    public_url: str | None = None, ticket_key_file: str | None = None,
                    rating_window_s: float = 30, reasons_wait_s: float = 8) -> str:
        head = (f"# civiq demo: {self.name} ({self.kind} center), written by `civiq demo`.\n"
                f"# Check it with: civiq config check FILE\n")
        cfg = self.config(broker_port, state_dir, debounce_ms, public_url, ticket_key_file, rating_window_s,
                          reasons_wait_s)
        return head + yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False, width=120, default_flow_style=None)


# the clerks of the demo centers (invented): one per counter, signed in at opening by demo_people
CLERK_NAMES: list[tuple[str, str]] = [
    ("lan", "Nguyễn Thị Lan"), ("minh", "Trần Văn Minh"), ("hoa", "Lê Thị Hoa"), ("tuan", "Phạm Minh Tuấn"),
    ("huong", "Võ Thị Hương"), ("dung", "Đặng Văn Dũng"), ("mai", "Huỳnh Thị Mai"), ("khoa", "Bùi Đăng Khoa"),
    ("thao", "Ngô Phương Thảo"), ("hieu", "Dương Trung Hiếu"), ("ngoc", "Trương Bảo Ngọc"), ("phuc", "Lý Hồng Phúc"),
]

# ------------------------------------------------------------------------------------------ hardware
PRIORITY_CLASSES = ("elderly", "disabled", "pregnant", "merit")  # the standard four (config.py)
PRIORITY = {"rule": "first", "max_in_row": 3}


def _dispenser(center: DemoCenter, debounce_ms: int, pins: list[int], led: int, buzzer: int,
               priority_pins: list[int]) -> dict:
    return {"buttons": {s.prefix: pins[i] for i, s in enumerate(center.services)}, "led_pin": led,
            "buzzer_pin": buzzer, "printer": "p1", "debounce_ms": debounce_ms,
            "priority_buttons": dict(zip(PRIORITY_CLASSES, priority_pins, strict=True))}


PRINTER = {"id": "p1", "port": "/dev/civiq-printer", "baudrate": 19200, "codepage": "none", "width_dots": 576}
BUS = "/dev/civiq-rs485"
# GPIO keypads of the commune: every key a clerk uses in a day, on free BCM pins (no SPI device there)
GPIO_KEYS = [
    {"next": 5, "recall": 6, "no_show": 13, "done": 26, "break": 19, "open": 16, "close": 20},
    {"next": 12, "recall": 25, "no_show": 4, "done": 21, "break": 18, "open": 8, "close": 9},
]


def _commune_hw(c: DemoCenter, debounce_ms: int) -> dict:
    return {
        "dispenser": _dispenser(c, debounce_ms, [17, 27, 22], 23, 24, [2, 3, 7, 10]),
        "priority": PRIORITY,
        "printers": [PRINTER],
        "displays": [{"id": f"d{i + 1}", "counter": k.id, "protocol": "modbus", "port": BUS, "baudrate": 9600,
                      "address": i + 1, "digits": 4} for i, k in enumerate(c.counters)],
        "keypads": [{"id": c.keypad_of(k.id), "counter": k.id, "kind": "gpio", "pins": GPIO_KEYS[i]}
                    for i, k in enumerate(c.counters)],
        "qrboards": [{"id": "q1", "kind": "nextion", "port": "/dev/civiq-qr", "baudrate": 9600,
                      "cycle_seconds": 8}],
    }


def _bus_hw(c: DemoCenter, debounce_ms: int, max7219_first: bool, qr: dict) -> dict:
    displays = []
    for i, k in enumerate(c.counters):
        if max7219_first and i == 0:  # GPIO 8-11 carry SPI0 here; its services' letters fit 7 segments
            displays.append({"id": f"d{i + 1}", "counter": k.id, "protocol": "max7219", "spi_port": 0,
                             "spi_device": 0, "digits": 8})
        else:
            displays.append({"id": f"d{i + 1}", "counter": k.id, "protocol": "ascii", "port": BUS,
                             "baudrate": 9600, "address": i + 1, "width": 8})
    return {
        "dispenser": _dispenser(c, debounce_ms, [17, 27, 22, 23, 24, 25], 12, 13, [5, 6, 16, 19]),
        "priority": PRIORITY,
        "printers": [PRINTER],
        "displays": displays,
        "keypads": [{"id": c.keypad_of(k.id), "counter": k.id, "kind": "serial", "port": BUS, "baudrate": 9600,
                     "address": 11 + i} for i, k in enumerate(c.counters)],
        "qrboards": [qr],
    }


_HARDWARE = {
    "commune": _commune_hw,
    "ward": lambda c, d: _bus_hw(c, d, True, {"id": "q1", "kind": "hdmi", "cycle_seconds": 10}),
    "printer": lambda c, d: _bus_hw(c, d, False, {"id": "q1", "kind": "nextion", "port": "/dev/civiq-qr",
                                                  "baudrate": 9600, "cycle_seconds": 8}),
}


# rating devices: the commune has a tablet at each counter (the page /rate/<counter>); the ward an RS-485
# rating pad with five reason keys at each counter, on the display bus; the printer center one of each kind
REASON_KEYS = {"wait": "a", "attitude": "b", "guidance": "c", "appointments": "d", "facilities": "e"}


def _rating_page(counter: str) -> dict:
    return {"id": f"rp{counter[1:]}", "counter": counter, "kind": "page"}


def _rating_pad(counter: str, address: int) -> dict:
    return {"id": f"r{counter[1:]}", "counter": counter, "kind": "serial", "port": BUS, "baudrate": 9600,
            "address": address, "reason_keys": dict(REASON_KEYS)}


def _printer_ratingpads(c: DemoCenter, debounce_ms: int) -> list[dict]:
    first, second, *rest = [k.id for k in c.counters]
    return [{"id": f"r{first[1:]}", "counter": first, "kind": "gpio", "keys": {1: 7, 2: 8, 3: 9, 4: 10, 5: 11},
             "led_pin": 18, "debounce_ms": debounce_ms},  # SPI0 is free here: no MAX7219 display
            _rating_pad(second, 22), *(_rating_page(k) for k in rest)]


_RATINGPADS = {
    "commune": lambda c, d: [_rating_page(k.id) for k in c.counters],
    "ward": lambda c, d: [_rating_pad(k.id, 21 + i) for i, k in enumerate(c.counters)],
    "printer": _printer_ratingpads,
}


# ------------------------------------------------------------------------------------------ templates
def _commune(cid: str, name: str, seed: int, variant: int = 0) -> DemoCenter:
    return DemoCenter(
        id=cid, name=name, kind="commune", seed=seed, no_show_rate=0.04,
        services=(
            ServiceDemand("A", "Chứng thực", "Certification", "2.000815", 6, 6),
            ServiceDemand("B", "Hộ tịch", "Civil status", "1.001193", 4, 10),
            ServiceDemand("C", "Đất đai", "Land", "1.004227", 3, 15),
        ),
        counters=(
            CounterPlan("c1", "Quầy 1", ("A", "B"), (("B", 20),), lunch=("12:15", "13:00")),
            CounterPlan("c2", "Quầy 2", ("C", "A"), (("A", 30),), lunch=("11:30", "12:15")),
        ),
    )


def _ward(cid: str, name: str, seed: int, variant: int = 0) -> DemoCenter:
    return DemoCenter(
        id=cid, name=name, kind="ward", seed=seed, no_show_rate=0.06,
        services=(
            ServiceDemand("A", "Đất đai", "Land", "1.004227", 7, 14),
            ServiceDemand("B", "Hộ tịch", "Civil status", "1.001193", 12, 8),
            ServiceDemand("C", "Chứng thực", "Certification", "2.000815", 18, 5),
            ServiceDemand("D", "Đăng ký kinh doanh", "Business registration", "2.000720", 5, 12),
            ServiceDemand("E", "BHXH, BHYT", "Social and health insurance", "1.011873", 9, 10),
            ServiceDemand("TK", "Trả kết quả", "Collect results", "1.001776", 18, 3),
        ),
        counters=(
            CounterPlan("c1", "Quầy 1 - Đất đai", ("A",)),
            CounterPlan("c2", "Quầy 2 - Đất đai, Kinh doanh", ("A", "D"), (("D", 25),), ("11:30", "12:30")),
            CounterPlan("c3", "Quầy 3 - Hộ tịch", ("B", "C"), (("C", 15),), ("12:00", "13:00")),
            CounterPlan("c4", "Quầy 4 - Chứng thực", ("C", "B"), (("B", 20),), ("11:30", "12:30")),
            CounterPlan("c5", "Quầy 5 - Kinh doanh", ("D", "A"), (("A", 30),), ("12:00", "13:00")),
            CounterPlan("c6", "Quầy 6 - BHXH", ("E", "B"), (("B", 25),), ("11:30", "12:30")),
            CounterPlan("c7", "Quầy 7 - Chứng thực", ("C", "E"), (("E", 20),)),
            CounterPlan("c8", "Quầy 8 - Trả kết quả", ("TK", "C"), (("C", 30),), ("12:00", "13:00")),
        ),
    )


def _printer(cid: str, name: str, seed: int, variant: int = 0) -> DemoCenter:
    """``variant`` shifts the paper incidents so two such centers do not run out at the same minute."""
    shift = 35 * variant

    def at(hhmm: str) -> str:
        h, m = map(int, hhmm.split(":"))
        t = h * 60 + m + shift
        return f"{t // 60:02d}:{t % 60:02d}"

    return DemoCenter(
        id=cid, name=name, kind="printer", seed=seed, no_show_rate=0.05,
        services=(
            ServiceDemand("A", "Đất đai", "Land", "1.004227", 5, 14),
            ServiceDemand("B", "Hộ tịch", "Civil status", "1.001193", 8, 8),
            ServiceDemand("C", "Chứng thực", "Certification", "2.000815", 10, 5),
        ),
        counters=(
            CounterPlan("c1", "Quầy 1", ("A", "B"), (("B", 20),)),
            CounterPlan("c2", "Quầy 2", ("B", "C"), (("C", 15),), ("11:30", "12:30")),
            CounterPlan("c3", "Quầy 3", ("C", "A"), (("A", 30),), ("12:00", "13:00")),
        ),
        printer_faults=(PrinterFault(at("07:50"), at("08:10")), PrinterFault(at("14:15"), at("14:45"))),
    )


TEMPLATES = {"commune": _commune, "ward": _ward, "printer": _printer}
# (kind, id, short name): Ho Chi Minh City units after the 2025 reorganisation; the first three are the defaults
NAMES: list[tuple[str, str, str]] = [
    ("commune", "hcm-xuanthoison", "Xã Xuân Thới Sơn"),
    ("ward", "hcm-saigon", "Phường Sài Gòn"),
    ("printer", "hcm-cholon", "Phường Chợ Lớn"),
    ("commune", "hcm-binhchanh", "Xã Bình Chánh"),
    ("ward", "hcm-benthanh", "Phường Bến Thành"),
    ("printer", "hcm-tandinh", "Phường Tân Định"),
    ("commune", "hcm-cuchi", "Xã Củ Chi"),
    ("ward", "hcm-govap", "Phường Gò Vấp"),
    ("printer", "hcm-phunhuan", "Phường Phú Nhuận"),
    ("commune", "hcm-nhabe", "Xã Nhà Bè"),
    ("ward", "hcm-thuduc", "Phường Thủ Đức"),
    ("printer", "hcm-binhthanh", "Phường Bình Thạnh"),
]
MAX_CENTERS = 60


def demo_centers(n: int = 3) -> list[DemoCenter]:
    """``n`` centers (1..60): the three defaults first, then more of the same kinds under other names."""
    if not 1 <= n <= MAX_CENTERS:
        raise ValueError(f"--centers must be between 1 and {MAX_CENTERS}, got {n}")
    out = []
    for i in range(n):
        kind, cid, name = NAMES[i % len(NAMES)]
        if i >= len(NAMES):
            cid, name = f"{cid}-{i // len(NAMES) + 1}", f"{name} {i // len(NAMES) + 1}"
        out.append(TEMPLATES[kind](cid, name, seed=1000 + i, variant=i // len(TEMPLATES)))
    return out
