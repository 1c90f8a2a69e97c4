"""A small simulated center config (two services, two counters with GPIO keypads and Modbus displays, a
printer, a Nextion QR board), written as a technician would write it: for tests, benchmarks and trying the
simulator. Every serial port is emulated under ``--simulate``.

>>> from pathlib import Path; import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     write_sim_center(Path(d), 1883, center="xa-a", http_port=8090).name
'xa-a-pi-1.yaml'
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_NAME = "Trung tâm Phục vụ hành chính công xã Thử Nghiệm"

SIM_CENTER = """\
center: {{id: {center}, name: "{name}", timezone: Asia/Ho_Chi_Minh}}
node: {{id: {node}}}
mqtt: {{host: {host}, port: {port}, keepalive: {keepalive}}}
state_dir: {state_dir}
http: {{host: 127.0.0.1, port: {http_port}}}
queue: {{max_recalls: 2, estimate_window_min: 60, recall_cooldown_s: 10}}
services:
  - {{prefix: A, name_vi: "Đất đai", name_en: "Land", portal_url: "https://dichvucong.gov.vn/p/home/dvc-tthc-thu-tuc-hanh-chinh.html?ma_thu_tuc=1.000001"}}
  - {{prefix: B, name_vi: "Hộ tịch", name_en: "Civil status", portal_url: "https://dichvucong.gov.vn/p/home/dvc-tthc-thu-tuc-hanh-chinh.html?ma_thu_tuc=1.000002"}}
counters:
  - {{id: c1, name: "Quầy 1", profile: {{services: [A, B]}}}}
  - {{id: c2, name: "Quầy 2", profile: {{services: [B, A], rules: [{{service: A, over_minutes: 30}}]}}}}
dispenser: {{buttons: {{A: 17, B: 27}}, led_pin: 22, buzzer_pin: 23, printer: p1, debounce_ms: 20, priority_buttons: {{elderly: 24, disabled: 25}}}}
printers:
  - {{id: p1, port: /dev/civiq-printer, baudrate: 19200, codepage: none, width_dots: 576}}
displays:
  - {{id: d1, counter: c1, protocol: modbus, port: /dev/civiq-rs485, baudrate: 9600, address: 1, digits: 4}}
  - {{id: d2, counter: c2, protocol: modbus, port: /dev/civiq-rs485, baudrate: 9600, address: 2, digits: 4}}
keypads:
  - {{id: k1, counter: c1, kind: gpio, pins: {{next: 5, recall: 6, no_show: 13, transfer: 19, done: 26, hold: 21, call_held: 4}}}}
  - {{id: k2, counter: c2, kind: gpio, pins: {{next: 12, recall: 16, done: 20}}}}
qrboards:
  - {{id: q1, kind: nextion, port: /dev/civiq-qr, baudrate: 9600, cycle_seconds: 8}}
priority: {{rule: first, max_in_row: 3}}
"""


def sim_center_yaml(port: int = 1883, *, center: str = "test-xa", node: str = "pi-1", http_port: int = 8080,
                    host: str = "127.0.0.1", keepalive: int = 5, name: str = DEFAULT_NAME,
                    state_dir: str | Path = "/tmp/civiq-sim-state") -> str:
    """The config text itself."""
    return SIM_CENTER.format(center=center, node=node, host=host, port=port, keepalive=keepalive,
                             state_dir=state_dir, http_port=http_port, name=name)


def write_sim_center(dir: Path, port: int, *, center: str = "test-xa", node: str = "pi-1", http_port: int = 8080,
                     host: str = "127.0.0.1", keepalive: int = 5, name: str = DEFAULT_NAME) -> Path:
    """Write ``<dir>/<center>-<node>.yaml`` (state under ``<dir>/state-<center>-<node>``) and return its path."""
    dir.mkdir(parents=True, exist_ok=True)
    path = dir / f"{center}-{node}.yaml"
    path.write_text(sim_center_yaml(port, center=center, node=node, http_port=http_port, host=host,
                                    keepalive=keepalive, name=name, state_dir=dir / f"state-{center}-{node}"),
                    encoding="utf-8")
    return path
