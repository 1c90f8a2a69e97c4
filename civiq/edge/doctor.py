"""``civiq edge doctor CONFIG``: what is wrong with this agent, in plain words. Exit 1 on any fault.

Checks, in the order a technician would: the config, the state directory and disk, the clock, the GPIO pins,
every serial device (port present, device answering, printer paper and cover), the speaker (clip pack,
espeak-ng, aplay, the ALSA device), the MQTT broker.

When the agent is running it owns the serial ports (a second process talking on an RS-485 bus garbles
both), so doctor asks the running agent's local API for each device's health instead of opening the ports.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from civiq.clock import plausible
from civiq.contract import DeviceState
from civiq.edge.config import CenterConfig, ConfigError, load_config
from civiq.edge.runfile import running_agent

OK, WARN, FAIL = "ok", "warning", "FAULT"
MARK = {OK: "✔", WARN: "!", FAIL: "✘"}


@dataclass
class Finding:
    level: str
    what: str
    detail: str

    def line(self) -> str:
        return f"{MARK[self.level]} {self.what}: {self.detail}"


def check_disk(cfg: CenterConfig) -> list[Finding]:
    out = []
    state = Path(cfg.state_dir)
    try:
        state.mkdir(parents=True, exist_ok=True)
        probe = state / ".doctor-write-test"
        probe.write_text("ok")
        probe.unlink()
        out.append(Finding(OK, "state directory", f"{state} is writable"))
    except OSError as e:
        out.append(Finding(FAIL, "state directory", f"cannot write to {state}: {e.strerror}. Check that the "
                           "directory exists and belongs to the civiq user"))
        return out
    du = shutil.disk_usage(state)
    free_mb, used_pct = du.free / 2**20, 100 * du.used / du.total
    if free_mb < 50:
        out.append(Finding(FAIL, "disk", f"only {free_mb:.0f} MB free on {state}: the event log cannot grow"))
    elif used_pct > 90:
        out.append(Finding(WARN, "disk", f"{used_pct:.0f}% used ({free_mb:.0f} MB free): clean up soon"))
    else:
        out.append(Finding(OK, "disk", f"{free_mb:.0f} MB free ({used_pct:.0f}% used)"))
    return out


def check_clock() -> list[Finding]:
    from civiq.edge.hostinfo import ntp_synchronized

    now = datetime.now(UTC)
    if not plausible(now):
        return [Finding(FAIL, "clock", f"the clock says {now:%Y-%m-%d}: this Pi has no real-time clock and no "
                        "network time yet. Connect the network (NTP) before issuing tickets")]
    synced = ntp_synchronized()
    if synced is None:
        return [Finding(OK, "clock", f"{now:%Y-%m-%d %H:%M} UTC (NTP status unavailable on this system)")]
    if not synced:
        return [Finding(WARN, "clock", "not synchronised with NTP: tickets work, but times may drift. "
                        "Check `timedatectl` and the network")]
    return [Finding(OK, "clock", "synchronised with NTP")]


def check_broker(cfg: CenterConfig, timeout: float = 5.0) -> list[Finding]:
    from civiq.mqttclient import make_client

    m = cfg.mqtt
    where = f"{m.host}:{m.port}"
    try:
        with socket.create_connection((m.host, m.port), timeout=timeout):
            pass
    except OSError as e:
        return [Finding(FAIL, "MQTT broker", f"cannot reach {where} ({e.strerror or e}). The center keeps "
                        "working offline; events are kept and sent when the link returns. Check the network "
                        "cable/4G router and the broker address in the config")]
    result: dict[str, object] = {}
    done = threading.Event()
    client = make_client(f"doctor-{cfg.center.id}-{os.getpid()}", username=m.username or None,
                         password=m.password() if m.username else None, tls=m.tls, ca_file=m.ca_file)

    def on_connect(c, u, flags, rc, props=None):  # noqa: ANN001
        result["rc"] = rc
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(m.host, m.port, keepalive=10)
        client.loop_start()
        done.wait(timeout)
    except Exception as e:  # noqa: BLE001
        return [Finding(FAIL, "MQTT broker", f"{where}: {e}")]
    finally:
        client.loop_stop()
        client.disconnect()
    rc = result.get("rc")
    if rc is None:
        return [Finding(FAIL, "MQTT broker", f"{where} accepts TCP but did not answer the MQTT handshake")]
    if getattr(rc, "is_failure", False):
        return [Finding(FAIL, "MQTT broker", f"{where} refused the connection: {rc}. Check username, password "
                        "file and certificates")]
    return [Finding(OK, "MQTT broker", f"{where} accepted the connection")]


def check_ticket_link(cfg: CenterConfig) -> list[Finding]:
    """Can the agent sign the /t/ links its tickets' QR codes open?"""
    c = cfg.center
    if c.public_url is None and c.ticket_key_file is None:
        return []
    if c.public_url is None or c.ticket_key_file is None:
        missing = "public_url" if c.public_url is None else "ticket_key_file"
        return [Finding(WARN, "ticket QR", f"center.{missing} is not set: the ticket's QR shows the procedure's "
                        "portal page, not the citizen's live ticket page")]
    try:
        c.ticket_key()
    except ConfigError:
        return [Finding(FAIL, "ticket QR", f"cannot read the ticket key {c.ticket_key_file}: on the gateway run "
                        f"`civiq gateway ticket-key {c.id}` and put its output in that file (chmod 600, owner "
                        "civiq); the agent does not start without it")]
    return [Finding(OK, "ticket QR", f"tickets open {c.public_url.rstrip('/')}/t/<token>")]


def _device_findings(health: list[dict], names: dict[str, str]) -> list[Finding]:
    out = []
    for h in health:
        state = h["state"]
        what = f"{h['kind']} {h['id']}" + (f" ({names[h['id']]})" if h["id"] in names else "")
        detail = h.get("detail") or state
        if state == DeviceState.ok:
            out.append(Finding(OK, what, detail if detail != "ok" else "answers"))
        elif state == DeviceState.degraded:
            out.append(Finding(WARN, what, detail))
        else:
            out.append(Finding(FAIL, what, detail))
    return out


def _describe(cfg: CenterConfig) -> dict[str, str]:
    names = {}
    for p in cfg.printers:
        names[p.id] = f"on {p.port}" if p.transport in (None, "serial") else f"{p.transport}, {p.port}"
    for d in cfg.displays:
        names[d.id] = f"counter {d.counter}, {d.protocol}" + (f" address {d.address} on {d.port}"
                                                                if d.protocol != "max7219" else "")
    for k in cfg.keypads:
        names[k.id] = f"counter {k.counter}, {k.kind}"
    for r in cfg.ratingpads:
        names[r.id] = f"rating at counter {r.counter}, " + {
            "gpio": "GPIO keys", "serial": f"RS-485 address {getattr(r, 'address', '')} on {getattr(r, 'port', '')}",
            "page": f"the page /rate/{r.counter}"}[r.kind]
    return names


def check_devices(cfg: CenterConfig, simulate: bool) -> list[Finding]:
    names = _describe(cfg)
    agent = running_agent(cfg)
    if agent is not None:
        url = f"http://127.0.0.1:{agent['api_port']}/api/health"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                health = json.loads(r.read())
        except OSError as e:
            return [Finding(FAIL, "agent", f"the agent (pid {agent['pid']}) runs but its local API {url} does "
                            f"not answer: {e}. Restart it: systemctl restart civiq-edge")]
        out = [Finding(OK, "agent", f"running (pid {agent['pid']}); device states as the agent sees them")]
        if not simulate:
            from civiq.edge.printer_links import check_printer_links

            out += [Finding(*f) for f in check_printer_links(cfg, agent_running=True)]
        return out + _device_findings(health["devices"], names)

    if simulate:
        return [Finding(FAIL, "simulation", "no simulated agent is running for this config: start it with "
                        "`civiq edge run CONFIG --simulate`")]
    # The agent is stopped: open the hardware ourselves.
    from civiq.clock import SystemClock
    from civiq.edge.hardware import NO_PIN_LIBRARY_HINT, build_hardware, pin_libraries
    from civiq.edge.printer_links import check_printer_links

    out = [Finding(*f) for f in check_printer_links(cfg, agent_running=False)]
    serial_printers = [p for p in cfg.printers if p.transport in (None, "serial")]
    ports = [getattr(dev, "port", None) for dev in (*serial_printers, *cfg.displays, *cfg.keypads, *cfg.qrboards,
                                                    *cfg.ratingpads)]
    for port in sorted({p for p in ports if p}):
        if not os.path.exists(port):
            out.append(Finding(FAIL, f"serial port {port}", "does not exist: is the device plugged in and "
                               "powered? `ls -l /dev/civiq-*` should list it (udev rule "
                               "firmware-config/udev/99-civiq.rules)"))
    hw, error = None, None
    with pin_libraries() as pins:  # gpiozero's fallbacks: one doctor line, not Python warnings
        try:
            hw = build_hardware(cfg, clock=SystemClock(), pin_factory=None, on_press=lambda s: None,
                                on_key=lambda *a: None)
        except Exception as e:  # noqa: BLE001
            error = e
    if hw is None:
        if pins.none_loaded(error):  # type: ignore[arg-type]
            return out + [Finding(FAIL, "GPIO pins", f"no pin library could load ({pins.text() or error}): "
                                  f"{NO_PIN_LIBRARY_HINT.replace('--simulate', '`civiq edge run CONFIG --simulate`')}")]
        return out + [Finding(FAIL, "GPIO pins", f"cannot set up the pins: {error}. On a Pi: is the lgpio package "
                              "installed and the civiq user in the gpio group?")]
    if pins.tried:
        out.append(Finding(WARN, "GPIO library", f"{pins.in_use()} in use; could not load: {pins.text()}. "
                           "On a Pi, `sudo apt install python3-lgpio` gives the usual one"))
    out.append(Finding(OK, "GPIO pins", "all configured pins could be claimed"))
    try:
        health = [dev.poll().model_dump(mode="json") for dev in hw.devices.values()]
    finally:
        hw.close()
    return out + _device_findings(health, names)


def diagnose(config_path: str, simulate: bool = False) -> list[Finding]:
    try:
        cfg = load_config(config_path)
    except ConfigError as e:
        return [Finding(FAIL, "config", f"{config_path} has problems:\n{e}")]
    except OSError as e:
        return [Finding(FAIL, "config", f"cannot read {config_path}: {e.strerror}")]
    findings = [Finding(OK, "config", f"{config_path}: center {cfg.center.id} ({cfg.center.name}), node "
                        f"{cfg.node.id}, {len(cfg.services)} services, {len(cfg.counters)} counters")]
    findings += check_disk(cfg)
    findings += check_ticket_link(cfg)
    findings += check_clock()
    findings += check_devices(cfg, simulate)
    from civiq.edge.voice.doctor import check_speaker

    findings += [Finding(*f) for f in check_speaker(cfg, agent_running=running_agent(cfg) is not None or simulate)]
    findings += check_broker(cfg)
    return findings


def main(config_path: str, simulate: bool = False) -> int:
    findings = diagnose(config_path, simulate)
    for f in findings:
        print(f.line())
    faults = [f for f in findings if f.level == FAIL]
    warns = [f for f in findings if f.level == WARN]
    if faults:
        print(f"\n{len(faults)} fault(s), {len(warns)} warning(s): fix the ✘ lines above.")
        return 1
    print(f"\nAll checks passed ({len(warns)} warning(s)).")
    return 0
