"""The center configuration of an edge agent: one YAML file per Raspberry Pi, checked before it runs.

The models below are the schema (docs/config.md is generated from them: ``python -m civiq.edge.configdoc``). :func:`load_config` reads the YAML, lays ``CIVIQ_*`` environment variables over it and
validates everything, raising :class:`ConfigError` with every problem located in the file::

    >>> cfg = load_config("firmware-config/small-commune.yaml")      # doctest: +SKIP
    >>> cfg.center.id, [s.prefix for s in cfg.services]               # doctest: +SKIP
    ('hcm-xuanthoi', ['A', 'B', 'C'])

    $ civiq config check broken.yaml
    broken.yaml:23:7: counters[1].profile.services[0]: service 'X' is not defined (defined: A, B, C)

Conventions: service keys everywhere are the service *prefix* ("A", "LD"); counter and device ids are
lower-case idents; GPIO pins are BCM numbers (``"GPIO17"`` and physical ``"BOARD11"`` are accepted and
normalised to 17). Several serial devices may share one port (an RS-485 bus) if they agree on the baud
rate and have distinct addresses; a printer or a Nextion board needs a port of its own.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import stat
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from civiq.contract import ID_RE, PriorityRule, WorkProfile
from civiq.yamlconf import (
    ConfigError,
    ConfigProblem,
    Loc,
    did_you_mean,
    load_settings,
    problems_error,
)

__all__ = [
    "CenterConfig", "ConfigError", "ConfigProblem", "EdgeSettings", "load_config", "config_hash",
    "check_main", "config_warnings", "bcm_pin",
]

log = logging.getLogger(__name__)
ENV_PREFIX = "CIVIQ_"

# ------------------------------------------------------------------------------------------ value types
_ID = __import__("re").compile(ID_RE)
_PREFIX = __import__("re").compile(r"^[A-Z]{1,2}$")


def _ident(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"an id must be text like 'c1' or 'pi-1', got {v!r}")
    if not _ID.match(v):
        fixed = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in v.lower().strip()).strip("-_")
        fixed = fixed.encode("ascii", "ignore").decode()
        hint = f" (e.g. '{fixed}')" if fixed and _ID.match(fixed) else ""
        raise ValueError(f"'{v}' is not a valid id: use lower-case letters, digits, '-' or '_', "
                         f"starting with a letter or digit{hint}")
    return v


def _prefix(v: Any) -> str:
    if not isinstance(v, str) or not _PREFIX.match(v):
        hint = f" (e.g. '{v.upper()}')" if isinstance(v, str) and _PREFIX.match(v.upper()) else ""
        raise ValueError(f"{v!r} is not a service prefix: use 1 or 2 capital letters like 'A' or 'LD'{hint}")
    return v


Ident = Annotated[str, BeforeValidator(_ident),
                  Field(description="lower-case id: letters, digits, '-' and '_'", examples=["c1"])]
Prefix = Annotated[str, BeforeValidator(_prefix),
                   Field(description="service prefix: 1 or 2 capital letters", examples=["A", "LD"])]

# physical header pin (BOARD numbering) -> BCM GPIO, Raspberry Pi 40-pin header
BOARD_TO_BCM = {3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24, 19: 10,
                21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5, 31: 6, 32: 12, 33: 13, 35: 19,
                36: 16, 37: 26, 38: 20, 40: 21}
_POWER_PINS = {1: "3.3 V", 17: "3.3 V", 2: "5 V", 4: "5 V"}


def bcm_pin(v: Any) -> int:
    """A BCM GPIO number from ``17``, ``"17"``, ``"GPIO17"``, ``"BCM17"`` or ``"BOARD11"`` (physical pin).

    >>> bcm_pin("GPIO17"), bcm_pin("BOARD11"), bcm_pin(4)
    (17, 17, 4)
    """
    if isinstance(v, bool):
        raise ValueError(f"a pin must be a BCM number 0-27 or 'GPIO17'/'BOARD11', got {v!r}")
    n: int | None = None
    if isinstance(v, int):
        n = v
    elif isinstance(v, str):
        s = v.strip().upper().replace(" ", "")
        for head in ("GPIO", "BCM", "BOARD"):
            if s.startswith(head) and s[len(head):].isdigit():
                num = int(s[len(head):])
                if head == "BOARD":
                    if num in BOARD_TO_BCM:
                        return BOARD_TO_BCM[num]
                    if 1 <= num <= 40:
                        what = _POWER_PINS.get(num, "ground")
                        raise ValueError(f"BOARD{num} is a {what} pin, not a GPIO")
                    raise ValueError(f"BOARD{num} does not exist: the header has pins 1-40")
                n = num
                break
        else:
            if s.isdigit():
                n = int(s)
    if n is None:
        raise ValueError(f"{v!r} is not a pin: use a BCM number 0-27, 'GPIO17' or 'BOARD11'")
    if not 0 <= n <= 27:
        raise ValueError(f"GPIO{n} does not exist: BCM pins are 0-27 (physical pins are written 'BOARD{n}')")
    return n


Pin = Annotated[int, BeforeValidator(bcm_pin),
                Field(description="BCM GPIO number 0-27 (or 'GPIO17', 'BOARD11')", examples=[17, "GPIO17"])]

BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def _baud(v: int) -> int:
    if v not in BAUDRATES:
        near = min(BAUDRATES, key=lambda b: abs(b - v))
        raise ValueError(f"{v} is not a standard baud rate (did you mean {near}? "
                         f"use one of {', '.join(map(str, BAUDRATES))})")
    return v


Baud = Annotated[int, AfterValidator(_baud)]


def _port(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"a serial port is a device path like '/dev/ttyUSB0' or a pyserial URL, got {v!r}")
    v = v.strip()
    if not (v.startswith("/") or "://" in v or v.upper().startswith("COM")):
        raise ValueError(f"'{v}' is not a serial port: use a device path like '/dev/civiq-rs485' "
                         "(a udev symlink) or a pyserial URL like 'socket://host:port'")
    return v


Port = Annotated[str, BeforeValidator(_port)]
KeyName = Literal["next", "recall", "no_show", "transfer", "done", "open", "close", "break", "hold", "call_held",
                  "sign_out"]
KEY_NAMES: tuple[str, ...] = get_args(KeyName)


def _url(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"a portal URL must be text, got {v!r}")
    u = urlparse(v.strip())
    if u.scheme not in ("http", "https") or not u.netloc:
        raise ValueError(f"'{v}' is not a web address: it must start with https:// (or http://)")
    return v.strip()


def _timezone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        hint = did_you_mean(v, available_timezones()) if isinstance(v, str) else ""
        if not hint and isinstance(v, str) and any(w in v.lower() for w in ("chi", "saigon", "hanoi", "vietnam")):
            hint = " — did you mean 'Asia/Ho_Chi_Minh'?"
        raise ValueError(f"unknown time zone '{v}'{hint} (use an IANA name like 'Asia/Ho_Chi_Minh')") from None
    return v


class Section(BaseModel):
    """Base of every config section: unknown keys are errors (a typo must never be silently ignored)."""

    model_config = ConfigDict(extra="forbid", validate_default=False)
    unknown_field_hints: ClassVar[dict[str, str]] = {}


# ------------------------------------------------------------------------------------------ sections
class CenterInfo(Section):
    """Which Public Administration Service Center this Pi serves."""

    id: Ident = Field(description="Center id, used in MQTT topics (`civiq/v1/<center>/...`).",
                      examples=["hcm-bennghe"])
    name: str = Field(min_length=1, description="Name printed on tickets and shown on boards.",
                      examples=["Trung tâm Phục vụ hành chính công phường Bến Nghé"])
    timezone: Annotated[str, AfterValidator(_timezone)] = Field(
        default="Asia/Ho_Chi_Minh", description="IANA time zone; ticket numbers restart at local midnight.",
        examples=["Asia/Ho_Chi_Minh"])
    public_url: Annotated[str, BeforeValidator(_url)] | None = Field(
        default=None, description="Address of the gateway's public pages. With `ticket_key_file`, each "
        "ticket's QR code opens `<public_url>/t/<token>`: the citizen follows their turn on the phone. "
        "Without it the QR shows the procedure's portal page.", examples=["https://hangdoi.hcm.gov.vn"])
    ticket_key_file: Path | None = Field(
        default=None, description="File holding this center's ticket key (hex, from `civiq gateway "
        "ticket-key <center>` on the gateway); mode 0600. Signs the public ticket links.",
        examples=["/etc/civiq/ticket-key"])

    def ticket_key(self) -> bytes | None:
        """The center's ticket key, or None when public ticket links are not set up."""
        if self.ticket_key_file is None or self.public_url is None:
            return None
        try:
            return bytes.fromhex(Path(self.ticket_key_file).read_text().strip())
        except (OSError, ValueError) as e:
            raise ConfigError([ConfigProblem(str(self.ticket_key_file), None, None, "center.ticket_key_file",
                                             f"cannot read the ticket key: {e}")]) from None


class NodeConfig(Section):
    """This Raspberry Pi."""

    id: Ident = Field(description="Node id, unique within the center; used in MQTT topics.", examples=["pi-1"])


class MqttConfig(Section):
    """The MQTT broker the agent publishes to. The password is never written in this file: put it in
    `password_file`, owned by the civiq user with permissions 0600 (`chmod 600 FILE`)."""

    unknown_field_hints: ClassVar[dict[str, str]] = {
        "password": "passwords are never written in the YAML: put the password alone in a file readable "
                    "only by the civiq user (chmod 600) and set 'password_file' to its path",
    }

    host: str = Field(default="127.0.0.1", min_length=1, description="Broker host name or IP address.",
                      examples=["127.0.0.1", "mqtt.hcm.civiq.vn"])
    port: int = Field(default=1883, ge=1, le=65535, description="Broker TCP port (8883 is usual with TLS).",
                      examples=[1883, 8883])
    username: str | None = Field(default=None, description="MQTT user name, or null for anonymous.",
                                 examples=["edge-hcm-bennghe"])
    password_file: Path | None = Field(
        default=None, description="File holding the MQTT password (one line). Must be mode 0600: the "
        "agent warns when it is group- or world-readable.", examples=["/etc/civiq/mqtt-password"])
    tls: bool = Field(default=False, description="Connect with TLS.", examples=[True])
    ca_file: Path | None = Field(default=None, description="CA certificate (PEM) for TLS; null = system CAs.",
                                 examples=["/etc/civiq/ca.pem"])
    keepalive: int = Field(default=10, ge=5, le=600, description="MQTT keepalive in seconds (5-600). The agent "
                           "also publishes something at least every keepalive / 2 s, so a hung agent or a cut "
                           "link is offline at the gateway within 1.5 × keepalive + 2 s.", examples=[10])

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
        problems: list[tuple[Loc, str]] = []
        if self.password_file is not None and not self.username:
            problems.append((("password_file",), "a password needs a 'username' as well"))
        if self.ca_file is not None and not self.tls:
            problems.append((("ca_file",), "'ca_file' is set but 'tls' is false: set tls: true"))
        if problems:
            raise problems_error(problems)
        return self

    def password(self) -> str | None:
        """The password read from ``password_file`` (None without one). Warns when the file is readable
        by group or others; raises :class:`ConfigError` when it cannot be read."""
        if self.password_file is None:
            return None
        path = Path(self.password_file)
        for warning in password_file_warnings(path):
            log.warning("%s", warning)
        try:
            return path.read_text(encoding="utf-8").strip("\r\n")
        except OSError as e:
            raise ConfigError([ConfigProblem(str(path), None, None, "mqtt.password_file",
                                             f"cannot read the MQTT password file: {e.strerror or e}")]) from None


def password_file_warnings(path: Path) -> list[str]:
    """Why a password file is not safe (group/world-readable) or missing; empty when fine."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return [f"MQTT password file {path} does not exist (yet)"]
    except OSError as e:
        return [f"MQTT password file {path}: {e.strerror or e}"]
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return [f"MQTT password file {path} has mode {stat.S_IMODE(mode):04o}: others can read it; "
                f"run: chmod 600 {path}"]
    return []


class QueueConfig(Section):
    """Queue behaviour."""

    max_recalls: int = Field(default=3, ge=0, le=10, description="Recalls before a ticket may be marked "
                             "no-show.", examples=[3])
    estimate_window_min: int = Field(default=60, ge=5, le=1440, description="Minutes of recent history used "
                                     "for the wait estimate printed on tickets.", examples=[60])
    recall_cooldown_s: float = Field(default=0, ge=0, le=600, description="Seconds after a call or recall "
                                     "before the same ticket may be recalled (a recall inside it is refused "
                                     "with the time left: the announcement is still going on); 0 (the default): "
                                     "no cooldown. 10-15 s suits a hall with a voice call.", examples=[10])


class PriorityClass(Section):
    """A kind of citizen served before the normal line (người được ưu tiên)."""

    id: Ident = Field(description="Class id, used in events, keys and buttons.", examples=["elderly"])
    name_vi: str = Field(min_length=1, max_length=40, description="Vietnamese name (printed on the ticket, shown "
                         "on the board).", examples=["Người cao tuổi"])
    name_en: str = Field(min_length=1, max_length=40, description="English name.", examples=["Elderly"])
    enabled: bool = Field(default=True, description="`false` keeps the class in the file but issues no ticket "
                          "of it (its buttons and keys do nothing but log).", examples=[True])


STANDARD_PRIORITY_CLASSES = [
    {"id": "elderly", "name_vi": "Người cao tuổi", "name_en": "Elderly"},
    {"id": "disabled", "name_vi": "Người khuyết tật", "name_en": "Person with disability"},
    {"id": "pregnant", "name_vi": "Phụ nữ mang thai", "name_en": "Pregnant woman"},
    {"id": "merit", "name_vi": "Người có công", "name_en": "Person with meritorious service"},
]


class PriorityConfig(Section):
    """Priority tickets (vé ưu tiên) and the rule by which they go ahead. See docs/manager.md."""

    rule: Literal["first", "boost"] = Field(
        default="first", description="`first`: a priority ticket is called before every normal ticket of the "
        "services a counter serves (oldest priority first); `boost`: a priority ticket counts as if it had "
        "waited `boost_minutes` more, so it jumps ahead of normal tickets younger than that.",
        examples=["first"])
    max_in_row: int = Field(default=0, ge=0, le=50, description="With `first`: after this many priority "
                            "calls in a row at one counter, its next call takes the oldest normal ticket if "
                            "one waits (the normal line never starves); 0: no limit.", examples=[3])
    boost_minutes: float = Field(default=15, gt=0, le=480, description="With `boost`: minutes of wait a "
                                 "priority ticket is credited with.", examples=[15])
    classes: list[PriorityClass] = Field(
        default_factory=lambda: [PriorityClass(**c) for c in STANDARD_PRIORITY_CLASSES],
        description="Priority classes. Omitted: the four standard ones (elderly, disabled, pregnant, merit); "
        "an empty list: no priority tickets.", examples=[STANDARD_PRIORITY_CLASSES[:2]])

    def enabled(self) -> dict[str, PriorityClass]:
        """Enabled classes by id."""
        return {c.id: c for c in self.classes if c.enabled}

    def label(self, class_id: str | None) -> str | None:
        """The ticket line of a class: ``"ƯU TIÊN · Người cao tuổi"``; None for no (or an unknown) class."""
        c = next((c for c in self.classes if c.id == class_id), None)
        return f"ƯU TIÊN · {c.name_vi}" if c else None


class HttpConfig(Section):
    """The agent's local HTTP server (the HDMI QR board page and the local control API)."""

    host: str = Field(default="127.0.0.1", description="Address to listen on; 0.0.0.0 for the whole LAN.",
                      examples=["127.0.0.1"])
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port; 0 picks a free port (tests).",
                      examples=[8080])


def _ip_address(v: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(str(v).strip()))
    except ValueError:
        raise ValueError(f"'{v}' is not an IP address (e.g. 192.168.1.50)") from None


class HallConfig(Section):
    """The hall TV page (`/board`) and the touch kiosk page (`/kiosk`) on the local HTTP server."""

    recent_calls: int = Field(default=8, ge=1, le=30, description="Recent calls listed on the hall board.",
                              examples=[8])
    highlight_s: float = Field(default=6, ge=1, le=60, description="Seconds a new call stays highlighted on "
                               "the board (it then stays in the list).", examples=[6])
    kiosk: bool = Field(default=True, description="Serve the touch kiosk page `/kiosk` (it issues tickets "
                        "through the dispenser's path and printer).", examples=[True])
    kiosk_allow: list[Annotated[str, AfterValidator(_ip_address)]] = Field(
        default=[], description="LAN addresses of kiosk screens allowed to issue tickets besides this Pi "
        "(needs `http.host: 0.0.0.0`); every other action still answers only to this Pi.",
        examples=[["192.168.1.50"]])


class ServiceConfig(Section):
    """One administrative service with its own ticket series (A001, A002, ...)."""

    prefix: Prefix = Field(description="Ticket prefix and the service's key everywhere in this file.",
                           examples=["A", "LD"])
    name_vi: str = Field(min_length=1, description="Vietnamese name (printed on the ticket).",
                         examples=["Đất đai"])
    name_en: str = Field(min_length=1, description="English name.", examples=["Land"])
    portal_url: Annotated[str, BeforeValidator(_url)] | None = Field(
        default=None, description="Page of the procedure on the National Public Service Portal, shown as a "
        "QR code on QR boards; http(s) only.",
        examples=["https://dichvucong.gov.vn/p/home/dvc-tthc-thu-tuc-hanh-chinh.html?ma_thu_tuc=1.000001"])


class ProfileRule(PriorityRule):
    """"If the oldest ticket of `service` has waited more than `over_minutes`, take it first"."""

    model_config = ConfigDict(extra="forbid")
    service: Prefix = Field(description="Service prefix (one of this counter's services).", examples=["B"])
    over_minutes: float = Field(gt=0, le=1440, description="Wait in minutes beyond which it goes first.",
                                examples=[20])


class CounterProfile(WorkProfile):
    """The services a counter serves, in order of preference, and its priority rules (a
    :class:`civiq.contract.WorkProfile`). Falls back to the longest-waiting ticket among them."""

    model_config = ConfigDict(extra="forbid")
    services: list[Prefix] = Field(min_length=1, description="Service prefixes, most preferred first.",
                                   examples=[["A", "B"]])
    rules: list[ProfileRule] = Field(default=[], description="Priority rules, checked in order.",
                                     examples=[[{"service": "B", "over_minutes": 20}]])


class CounterConfig(Section):
    """A counter (quầy) where a civil servant calls tickets."""

    id: Ident = Field(description="Counter id.", examples=["c1"])
    name: str = Field(min_length=1, description="Name shown on boards and announced.", examples=["Quầy 1"])
    profile: CounterProfile = Field(description="Work profile: which services, in which order.",
                                    examples=[{"services": ["A", "B"], "rules": [{"service": "B", "over_minutes": 20}]}])
    clerks: list[Ident] | None = Field(
        default=None, description="Clerk ids (from `clerks:`) who may sign in at this counter; absent: any "
        "clerk of the center.", examples=[["lan", "minh"]])
    skills: list[Prefix] = Field(
        default=[], description="More services this counter's staff can serve (not in its profile): the "
        "gateway's load-balancing advisor may give them to the counter when it helps (docs/load-balancing.md).",
        examples=[["C"]])


PIN_MIN, PIN_MAX = 4, 8


def _pin(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise ValueError(f"a sign-in code is {PIN_MIN}-{PIN_MAX} digits in quotes, like \"4821\", not {v!r}")
    if isinstance(v, int):
        raise ValueError(f"write the code in quotes (code: \"{v}\"): as a number YAML would drop its leading "
                         "zeros")
    if not (v.isascii() and v.isdigit() and PIN_MIN <= len(v) <= PIN_MAX):
        raise ValueError(f"a sign-in code is {PIN_MIN} to {PIN_MAX} digits (0-9), typed on the counter's keypad; "
                         f"got {len(v)} character(s)" + ("" if v.isascii() and v.isdigit() else " that are not all "
                                                         "digits"))
    return v


Pin4to8 = Annotated[str, BeforeValidator(_pin)]


class ClerkConfig(Section):
    """A clerk (công chức, viên chức) who signs in at a counter, so events and ratings say who served.
    Staff only: no data of citizens is kept anywhere. The code is a light identification typed on the
    counter's keypad, **not a security control** (anyone who sees it typed can use it): it says who sits at
    the counter, it grants nothing else. Keep codes out of the file with `CIVIQ_CLERKS__<ID>__CODE=4821` in
    the agent's environment (e.g. a systemd drop-in, mode 0600) if you prefer."""

    name: str = Field(min_length=1, max_length=60, description="Full name, shown on the dashboard and in "
                      "reports.", examples=["Nguyễn Thị Lan"])
    code: Pin4to8 | None = Field(
        default=None, description=f"Sign-in code typed on the counter's keypad: {PIN_MIN}-{PIN_MAX} digits, in "
        "quotes, unique in the center. Absent: this clerk signs in only from the counter API or the dashboard.",
        examples=["4821"])
    short_name: str | None = Field(
        default=None, min_length=1, max_length=8, description="What the counter's keypad and text display "
        "show for a few seconds after the sign-in (at most 8 characters); default: the last word of `name` "
        "without diacritics.", examples=["LAN"])

    def display_name(self) -> str:
        """The few characters a keypad LCD shows: ``short_name``, else the given name ("LAN")."""
        if self.short_name:
            return self.short_name
        from civiq.edge.devices.display.base import strip_diacritics

        return strip_diacritics(self.name.split()[-1]).upper()[:8]


class DispenserConfig(Section):
    """The number dispenser: one button per service on GPIO, a ticket printer."""

    id: Ident = Field(default="dispenser", description="Device id in health reports.", examples=["dispenser"])
    buttons: dict[Prefix, Pin] = Field(min_length=1, description="Service prefix -> BCM pin of its button "
                                       "(wired to ground; internal pull-up).", examples=[{"A": 17, "B": 27}])
    led_pin: Pin | None = Field(default=None, description="Pin of the 'printing' LED.", examples=[22])
    buzzer_pin: Pin | None = Field(default=None, description="Pin of the buzzer.", examples=[23])
    printer: Ident = Field(description="Id of the printer in `printers` that prints the tickets.",
                           examples=["p1"])
    debounce_ms: int = Field(default=300, ge=20, le=5000, description="Presses closer than this are one "
                             "press (milliseconds).", examples=[300])
    priority_buttons: dict[Ident, Pin] = Field(
        default={}, description="Priority class id -> BCM pin of its 'Ưu tiên' button. A citizen presses it, "
        "then the button of their service within `priority_window_s`: the ticket is a priority ticket of that "
        "class (one button per class, whatever the number of services).", examples=[{"elderly": 24}])
    priority_window_s: float = Field(default=10, ge=2, le=60, description="Seconds a priority button stays "
                                     "armed waiting for the service button.", examples=[10])


class PrinterConfig(Section):
    """An ESC/POS thermal ticket printer: on a serial or USB-serial port, a USB printer (`/dev/usb/lp0`) or a
    network printer (raw TCP port 9100)."""

    id: Ident = Field(description="Device id.", examples=["p1"])
    port: Port = Field(description="Where the printer is: a serial port (a udev symlink is best, "
                       "`/dev/civiq-printer`), a USB printer's device file (`/dev/usb/lp0`, or the udev link "
                       "`/dev/civiq-printer-usb` with `transport: usb`), or a network printer "
                       "`tcp://<printer IP>:9100` (give the printer a static IP).",
                       examples=["/dev/civiq-printer", "/dev/usb/lp0", "tcp://192.168.1.50:9100"])
    transport: Literal["serial", "usb", "tcp"] | None = Field(
        default=None, description="How the printer is connected: `serial` (RS-232 or USB-serial adapter, "
        "`/dev/ttyUSB*`), `usb` (a USB printer class device, `/dev/usb/lp*`), `tcp` (network, port 9100). "
        "Absent: `tcp` for a `tcp://` port, `usb` for `/dev/usb/lp*`, else `serial`.", examples=["usb"])
    baudrate: Baud = Field(default=19200, description="Baud rate set on the printer (serial printers only: "
                           "a USB or network printer has none).", examples=[19200])
    codepage: Literal["none", "cp1258"] = Field(
        default="none", description="`cp1258` if the printer prints Vietnamese with code page 1258; `none` "
        "prints text as a raster image (always correct, slower).", examples=["none"])
    width_dots: Literal[384, 576] = Field(default=576, description="Print width in dots: 384 (58 mm paper) "
                                          "or 576 (80 mm).", examples=[576])
    graphics: Literal["nv", "download", "raster"] = Field(
        default="nv", description="How the Vietnamese parts of a ticket reach the paper. `nv`: the static "
        "images (center name, service names, labels) are stored once in the printer's NV graphics memory "
        "(GS ( L) and printed by key: ~300 bytes a ticket. `download`: the same in the printer's RAM "
        "(re-sent after every start and reconnect). `raster`: every ticket carries its pictures (~24 KB on "
        "80 mm; for printers without GS ( L graphics). Ignored with `codepage: cp1258` (text already).",
        examples=["nv"])

    @model_validator(mode="after")
    def _link(self) -> PrinterConfig:
        from civiq.edge.printer_links import check_printer_link

        problems, kind = check_printer_link(self.port, self.transport, "baudrate" in self.model_fields_set)
        if problems:
            raise problems_error(problems)
        self.transport = kind
        return self


class _SerialBusDevice(Section):
    port: Port = Field(description="Serial port of the RS-485 bus; devices on one bus share it.",
                       examples=["/dev/civiq-rs485"])
    baudrate: Baud = Field(default=9600, description="Baud rate; the same for every device on the port.",
                           examples=[9600])
    address: int = Field(ge=1, le=247, description="Bus address 1-247, unique on the port.", examples=[1])


class ModbusDisplay(_SerialBusDevice):
    """A 7-segment LED counter display driven over Modbus RTU (RS-485)."""

    id: Ident = Field(description="Device id.", examples=["d1"])
    counter: Ident = Field(description="Counter whose called ticket it shows.", examples=["c1"])
    protocol: Literal["modbus"] = Field(description="`modbus`.", examples=["modbus"])
    digits: int = Field(default=4, ge=1, le=8, description="Number of digits.", examples=[4])


class AsciiDisplay(_SerialBusDevice):
    """A text LED display speaking the ASCII frame protocol on RS-485."""

    id: Ident = Field(description="Device id.", examples=["d2"])
    counter: Ident = Field(description="Counter whose called ticket it shows.", examples=["c2"])
    protocol: Literal["ascii"] = Field(description="`ascii`.", examples=["ascii"])
    width: int = Field(default=8, ge=1, le=32, description="Characters per line.", examples=[8])


class Max7219Display(Section):
    """A MAX7219 7-segment module on the Pi's SPI bus."""

    id: Ident = Field(description="Device id.", examples=["d3"])
    counter: Ident = Field(description="Counter whose called ticket it shows.", examples=["c3"])
    protocol: Literal["max7219"] = Field(description="`max7219`.", examples=["max7219"])
    spi_port: int = Field(ge=0, le=1, description="SPI bus: 0 (GPIO 9-11) or 1 (GPIO 19-21).", examples=[0])
    spi_device: int = Field(ge=0, le=2, description="Chip select: 0 (CE0) or 1 (CE1); 2 only on SPI1.",
                            examples=[0])
    digits: int = Field(default=8, ge=1, le=8, description="Number of digits.", examples=[8])


DisplayConfig = Annotated[Union[ModbusDisplay, AsciiDisplay, Max7219Display],  # noqa: UP007
                          Field(discriminator="protocol")]


class GpioIssueKey(Section):
    """A keypad key that issues a ticket of `service` (with a priority class, or a normal one)."""

    pin: Pin = Field(description="BCM pin of the key.", examples=[20])
    service: Prefix = Field(description="Service of the ticket.", examples=["A"])
    priority: Ident | None = Field(default=None, description="Priority class id; absent: a normal ticket.",
                                   examples=["elderly"])


class SerialIssueKey(Section):
    """A call pad key that issues a ticket: the pad reports its one-character code."""

    code: Annotated[str, Field(pattern=r"^[1-9a-z]$")] = Field(
        description="Key code the pad sends: a digit 1-9 or a lower-case letter (upper-case letters are the "
        "staff keys).", examples=["1"])
    service: Prefix = Field(description="Service of the ticket.", examples=["A"])
    priority: Ident | None = Field(default=None, description="Priority class id; absent: a normal ticket.",
                                   examples=["elderly"])


class GpioKeypad(Section):
    """A staff keypad with buttons wired to GPIO pins."""

    id: Ident = Field(description="Device id.", examples=["k1"])
    counter: Ident = Field(description="Counter it controls.", examples=["c1"])
    kind: Literal["gpio"] = Field(description="`gpio`.", examples=["gpio"])
    pins: dict[KeyName, Pin] = Field(
        description="Key -> BCM pin. Keys: " + ", ".join(KEY_NAMES) + "; `next` is required. `hold` parks the "
        "ticket in hand, `call_held` calls back the oldest ticket parked at this counter, `sign_out` signs the clerk "
        "out (a GPIO keypad has no digit keys: clerks sign in on a serial call pad or through the counter API).",
        examples=[{"next": 5, "recall": 6, "no_show": 13, "transfer": 19, "done": 26}])
    issue: list[GpioIssueKey] = Field(default=[], description="Keys that issue a ticket (a reception desk "
                                      "giving priority tickets); printed on the dispenser's printer.",
                                      examples=[[{"pin": 20, "service": "A", "priority": "elderly"}]])

    @model_validator(mode="after")
    def _needs_next(self) -> GpioKeypad:
        if "next" not in self.pins and not self.issue:
            raise problems_error([(("pins",), "a keypad needs a 'next' key (or `issue` keys at a reception desk)")])
        return self


class SerialKeypad(_SerialBusDevice):
    """A serial call pad on the RS-485 bus."""

    id: Ident = Field(description="Device id.", examples=["k2"])
    counter: Ident = Field(description="Counter it controls.", examples=["c2"])
    kind: Literal["serial"] = Field(description="`serial`.", examples=["serial"])
    issue: list[SerialIssueKey] = Field(default=[], description="Pad keys that issue a ticket (reception desk).",
                                        examples=[[{"code": "1", "service": "A", "priority": "elderly"}]])


KeypadConfig = Annotated[Union[GpioKeypad, SerialKeypad], Field(discriminator="kind")]  # noqa: UP007


class NextionBoard(Section):
    """A Nextion serial HMI showing procedure QR codes and live waits."""

    id: Ident = Field(description="Device id.", examples=["q1"])
    kind: Literal["nextion"] = Field(description="`nextion`.", examples=["nextion"])
    port: Port = Field(description="Serial port (its own; not shared).", examples=["/dev/ttyAMA0"])
    baudrate: Baud = Field(default=9600, description="Baud rate.", examples=[9600])
    cycle_seconds: float = Field(default=8, ge=2, le=300, description="Seconds per service page.",
                                 examples=[8])


class HdmiBoard(Section):
    """A screen on the Pi's HDMI showing a page served by the agent's local HTTP server."""

    id: Ident = Field(description="Device id.", examples=["q2"])
    kind: Literal["hdmi"] = Field(description="`hdmi`.", examples=["hdmi"])
    cycle_seconds: float = Field(default=8, ge=2, le=300, description="Seconds per service page.",
                                 examples=[8])


QrBoardConfig = Annotated[Union[NextionBoard, HdmiBoard], Field(discriminator="kind")]  # noqa: UP007


# ------------------------------------------------------------------------------------------ rating
class RatingText(Section):
    """A text a citizen reads on a rating device: Vietnamese first, English second."""

    vi: str = Field(min_length=1, max_length=60, description="Vietnamese text.", examples=["Chờ đợi lâu"])
    en: str = Field(min_length=1, max_length=60, description="English text.", examples=["Long wait"])


STANDARD_RATING_REASONS: dict[str, dict[str, str]] = {
    "wait": {"vi": "Chờ đợi lâu", "en": "Long wait"},
    "attitude": {"vi": "Thái độ chưa tốt", "en": "Staff attitude"},
    "guidance": {"vi": "Hướng dẫn chưa rõ", "en": "Unclear guidance"},
    "appointments": {"vi": "Hẹn trả nhiều lần", "en": "Asked to come back many times"},
    "facilities": {"vi": "Cơ sở vật chất", "en": "Facilities"},
}
STANDARD_RATING_LEVELS: dict[int, list[dict[str, str]]] = {
    5: [{"vi": "Rất không hài lòng", "en": "Very dissatisfied"}, {"vi": "Không hài lòng", "en": "Dissatisfied"},
        {"vi": "Bình thường", "en": "Neutral"}, {"vi": "Hài lòng", "en": "Satisfied"},
        {"vi": "Rất hài lòng", "en": "Very satisfied"}],
    4: [{"vi": "Rất không hài lòng", "en": "Very dissatisfied"}, {"vi": "Không hài lòng", "en": "Dissatisfied"},
        {"vi": "Hài lòng", "en": "Satisfied"}, {"vi": "Rất hài lòng", "en": "Very satisfied"}],
}


class RatingConfig(Section):
    """Citizen satisfaction rating at the counters (đánh giá mức độ hài lòng). When the clerk ends a ticket
    (`ticket.completed`), the rating devices of that counter accept ONE rating for `window_s` seconds; a low
    score then offers reasons. Each rating is a `ticket.rated` event. Absent: no rating at this center.
    See docs/technician.md, "Rating pads"."""

    scale: Literal[4, 5] = Field(default=5, description="Number of levels: 5 (Rất không hài lòng … Rất hài "
                                 "lòng) or 4 (no middle level).", examples=[5])
    window_s: float = Field(default=30, ge=5, le=600, description="Seconds after the clerk ends a ticket during "
                            "which a rating is accepted; a new completion at the same counter ends the window "
                            "at once.", examples=[30])
    reasons_max_score: int | None = Field(
        default=None, ge=1, le=4, description="A score at or below this offers the reasons; default: 3 on a "
        "5-level scale, 2 on a 4-level one (the levels that are not 'satisfied').", examples=[3])
    reasons_wait_s: float = Field(default=8, ge=2, le=60, description="After a low score, seconds a page or a "
                                  "pad with reason keys waits for reasons (each reason key restarts it) before "
                                  "the rating is recorded with the reasons chosen so far.", examples=[8])
    reasons: dict[Ident, RatingText] = Field(
        default_factory=lambda: {k: RatingText(**v) for k, v in STANDARD_RATING_REASONS.items()},
        description="Reason id -> its texts, offered after a low score, in this order. Omitted: the five "
        "standard ones (wait, attitude, guidance, appointments, facilities); `{}`: no reasons.",
        examples=[{"wait": {"vi": "Chờ đợi lâu", "en": "Long wait"}}])
    levels: list[RatingText] | None = Field(
        default=None, description="The texts of the levels, worst first (`scale` items); default: the "
        "standard Vietnamese labels.", examples=[STANDARD_RATING_LEVELS[5]])
    allow: list[Annotated[str, AfterValidator(_ip_address)]] = Field(
        default=[], description="LAN addresses of the rating tablets allowed to send a rating to `/rate/...` "
        "besides this Pi (needs `http.host: 0.0.0.0`); nobody else can.", examples=[["192.168.1.61"]])

    @model_validator(mode="after")
    def _check(self) -> RatingConfig:
        problems: list[tuple[Loc, str]] = []
        if self.levels is not None and len(self.levels) != self.scale:
            problems.append((("levels",), f"a {self.scale}-level scale needs {self.scale} level texts, worst "
                             f"first (got {len(self.levels)})"))
        if self.reasons_max_score is not None and self.reasons_max_score >= self.scale:
            problems.append((("reasons_max_score",), f"must be below the top score {self.scale} (the best "
                             "score never asks for reasons)"))
        if problems:
            raise problems_error(problems)
        return self

    def low_max(self) -> int:
        """The highest score that offers reasons."""
        return self.reasons_max_score if self.reasons_max_score is not None else self.scale - 2

    def level_texts(self) -> list[RatingText]:
        return list(self.levels) if self.levels is not None else [
            RatingText(**t) for t in STANDARD_RATING_LEVELS[self.scale]]


class GpioRatingPad(Section):
    """A rating keypad at a counter with one key per score on GPIO pins (wired to ground, internal pull-up),
    optional reason keys and an optional lamp lit while a rating is accepted."""

    id: Ident = Field(description="Device id.", examples=["r1"])
    counter: Ident = Field(description="Counter whose tickets it rates.", examples=["c1"])
    kind: Literal["gpio"] = Field(description="`gpio`.", examples=["gpio"])
    keys: dict[int, Pin] = Field(description="Score -> BCM pin of its key; one key per score 1..`rating.scale` "
                                 "(1 = worst).", examples=[{1: 5, 2: 6, 3: 13, 4: 19, 5: 26}])
    reason_keys: dict[Ident, Pin] = Field(default={}, description="Reason id (of `rating.reasons`) -> BCM pin of "
                                          "its key. Without reason keys a low score is recorded without "
                                          "reasons.", examples=[{"wait": 20}])
    led_pin: Pin | None = Field(default=None, description="Pin of a lamp lit while this counter accepts a "
                                "rating (blinking while it waits for reasons).", examples=[21])
    debounce_ms: int = Field(default=200, ge=20, le=5000, description="Presses of one key closer than this are "
                             "one press (milliseconds).", examples=[200])


def _reason_code(v: Any) -> str:
    if not isinstance(v, str) or len(v) != 1 or v not in "abcdefgh":
        raise ValueError(f"a reason key sends one of the codes a-h, not {v!r}")
    return v


class SerialRatingPad(_SerialBusDevice):
    """An RS-485 rating pad (4 or 5 score keys, optional reason keys, key lamps), polled by the agent with
    the framed-ASCII protocol of the call pads (docs/technician.md, "Rating pads"): it may share the bus
    of the text displays and call pads."""

    id: Ident = Field(description="Device id.", examples=["r2"])
    counter: Ident = Field(description="Counter whose tickets it rates.", examples=["c2"])
    kind: Literal["serial"] = Field(description="`serial`.", examples=["serial"])
    address: int = Field(ge=1, le=99, description="Bus address 1-99 (two ASCII digits in the frames), unique on "
                         "the port.", examples=[21])
    reason_keys: dict[Ident, Annotated[str, BeforeValidator(_reason_code)]] = Field(
        default={}, description="Reason id (of `rating.reasons`) -> the code its key sends (`a`-`h`). Without "
        "reason keys a low score is recorded without reasons.", examples=[{"wait": "a", "attitude": "b"}])


class PageRatingPad(Section):
    """The rating page `/rate/<counter>` on a small tablet or touch screen at the counter (a browser on the
    LAN, listed in `rating.allow`, or a screen on this Pi)."""

    id: Ident = Field(description="Device id.", examples=["rp1"])
    counter: Ident = Field(description="Counter whose tickets it rates; the page is `/rate/<counter>`.",
                           examples=["c1"])
    kind: Literal["page"] = Field(description="`page`.", examples=["page"])
    allow: list[Annotated[str, AfterValidator(_ip_address)]] = Field(
        default=[], description="LAN addresses of this counter's tablet: they may rate at this counter only "
        "(`rating.allow` may rate at any counter); needs `http.host: 0.0.0.0`.", examples=[["192.168.1.61"]])


RatingPadConfig = Annotated[Union[GpioRatingPad, SerialRatingPad, PageRatingPad],  # noqa: UP007
                            Field(discriminator="kind")]


def _template(v: Any) -> str:
    from civiq.edge.voice.phrase import parse_template

    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"a call template is text like 'Mời công dân có số thứ tự {{ticket}} đến "
                         f"{{counter}}', got {v!r}")
    parse_template(v)  # ValueError names the unknown placeholder
    if "{ticket}" not in v:
        raise ValueError("the template must say the ticket: put {ticket} in it")
    return v


Template = Annotated[str, BeforeValidator(_template)]


def _priority_prefix(v: Any) -> Any:
    if isinstance(v, str) and v.replace("{priority}", "").count("{") + v.replace("{priority}", "").count("}"):
        raise ValueError(f"{v!r}: the only placeholder of a priority prefix is {{priority}} (the class's name)")
    return v


class SpeakerConfig(Section):
    """The hall speaker: a chime, then the call in Vietnamese ("Mời công dân có số thứ tự A 0 1 5 đến quầy
    số 3"), made of pre-recorded clips (the clip pack; espeak-ng says any clip the pack lacks). Offline:
    nothing needs the internet. See docs/technician.md, "Speakers" and "Recording kit"."""

    id: Ident = Field(default="speaker", description="Device id in health reports.", examples=["speaker"])
    speech: bool = Field(default=True, description="Say the call. With `false` only the chime sounds.",
                         examples=[True])
    chime: bool = Field(default=True, description="Sound a chime before each call (also when speech is off).",
                        examples=[True])
    output: Literal["alsa", "none"] = Field(
        default="alsa", description="`alsa`: play on this Pi's sound card with `aplay`; `none`: no local "
        "sound (the hall board page plays the call in the browser, or nothing).", examples=["alsa"])
    device: str = Field(default="default", min_length=1, description="ALSA device for `aplay -D` (list them "
                        "with `aplay -L`; e.g. `plughw:CARD=Headphones` for the Pi's jack, "
                        "`plughw:CARD=Device` for a USB sound card).", examples=["default", "plughw:1,0"])
    voice: Literal["vi", "vi-vn-x-south", "vi-vn-x-central"] = Field(
        default="vi", description="espeak-ng voice of the generated pack and of the fallback: `vi` "
        "(northern), `vi-vn-x-south`, `vi-vn-x-central`.", examples=["vi-vn-x-south"])
    pack_dir: Path | None = Field(
        default=None, description="Directory of the clip pack (WAV files + manifest.json); default "
        "`<state_dir>/voice`. `civiq edge install` generates it; `civiq edge voice-pack build` remakes it.",
        examples=["/var/lib/civiq/voice"])
    template: Template = Field(
        default="Mời công dân có số thứ tự {ticket} đến {counter}", description="The sentence said; "
        "placeholders `{ticket}`, `{counter}` (its spoken name), `{service}` (the service's Vietnamese "
        "name). Numbers in the text are read as numbers.",
        examples=["Mời công dân có số thứ tự {ticket} đến {counter}"])
    recall_template: Template | None = Field(
        default=None, description="The sentence for a recall; default: the same as `template`.",
        examples=["Xin mời lại công dân có số thứ tự {ticket} đến {counter}"])
    priority_prefix: Annotated[str, BeforeValidator(_priority_prefix)] | None = Field(
        default=None, description="Said before the sentence when the ticket is a priority ticket; "
        "`{priority}` is the class's Vietnamese name (`priority.classes[].name_vi`).",
        examples=["Ưu tiên {priority}."])
    numbers: Literal["digits", "number"] = Field(
        default="digits", description="How the ticket number is read: `digits` (A015: \"A không một năm\") "
        "or `number` (\"A mười lăm\").", examples=["digits"])
    linh: Literal["linh", "lẻ"] = Field(default="linh", description="The word for an empty tens place: "
                                        "`linh` (northern) or `lẻ` (southern): 105 một trăm linh năm.",
                                        examples=["lẻ"])
    thousand: Literal["nghìn", "ngàn"] = Field(default="nghìn", description="`nghìn` (northern) or `ngàn` "
                                               "(southern).", examples=["ngàn"])
    repeat: int = Field(default=2, ge=1, le=5, description="How many times the sentence is said per call.",
                        examples=[2])
    cooldown_s: float = Field(default=10, ge=0, le=600, description="A call of the same ticket to the same "
                              "counter within this many seconds of the last announcement is not said "
                              "again (a recall always is).", examples=[10])
    counter_names: dict[Ident, str] = Field(
        default={}, description="Counter id -> the name said for it; default: the counter's `name`.",
        examples=[{"c3": "quầy số 3"}])

    def pack_path(self, state_dir: Path) -> Path:
        return Path(self.pack_dir) if self.pack_dir is not None else Path(state_dir) / "voice"


# ------------------------------------------------------------------------------------------ cross-checks
UART_PORTS = ("/dev/ttyAMA0", "/dev/serial0", "/dev/ttyS0")
UART_PINS = {14: "UART TXD", 15: "UART RXD"}
SPI_PINS = {0: {9: "SPI0 MISO", 10: "SPI0 MOSI", 11: "SPI0 SCLK"}, 1: {19: "SPI1 MISO", 20: "SPI1 MOSI",
                                                                       21: "SPI1 SCLK"}}
SPI_CE = {0: {0: 8, 1: 7}, 1: {0: 18, 1: 17, 2: 16}}


class _View:
    """What the cross-checks see: validated items with their index, and the ids declared in the raw
    data (so one broken service does not make every reference to it an error too)."""

    def __init__(self) -> None:
        self.services: list[tuple[int, ServiceConfig]] = []
        self.counters: list[tuple[int, CounterConfig]] = []
        self.printers: list[tuple[int, PrinterConfig]] = []
        self.displays: list[tuple[int, Any]] = []
        self.keypads: list[tuple[int, Any]] = []
        self.qrboards: list[tuple[int, Any]] = []
        self.ratingpads: list[tuple[int, Any]] = []
        self.dispenser: DispenserConfig | None = None
        self.priority: PriorityConfig | None = None
        self.clerks: dict[str, ClerkConfig] = {}
        self.declared: dict[str, list[str]] = {"services": [], "counters": [], "printers": [], "clerks": []}
        self.rating: RatingConfig | None = None
        self.has_rating = False  # a `rating:` section is present (valid or not)

    @classmethod
    def of(cls, cfg: CenterConfig) -> _View:
        v = cls()
        for name in ("services", "counters", "printers", "displays", "keypads", "qrboards", "ratingpads"):
            setattr(v, name, list(enumerate(getattr(cfg, name))))
        v.dispenser = cfg.dispenser
        v.priority = cfg.priority
        v.clerks = dict(cfg.clerks)
        v.rating = cfg.rating
        v.has_rating = cfg.rating is not None
        v.declared = {"services": [s.prefix for s in cfg.services], "counters": [c.id for c in cfg.counters],
                      "printers": [p.id for p in cfg.printers], "clerks": list(cfg.clerks)}
        return v

    @classmethod
    def partial(cls, data: Mapping[str, Any]) -> _View:
        v = cls()
        adapters = {"services": ServiceConfig, "counters": CounterConfig, "printers": PrinterConfig,
                    "displays": DisplayConfig, "keypads": KeypadConfig, "qrboards": QrBoardConfig,
                    "ratingpads": RatingPadConfig}
        for name, tp in adapters.items():
            raw = data.get(name)
            if not isinstance(raw, list):
                continue
            ta = TypeAdapter(tp)
            for i, item in enumerate(raw):
                ok = _lenient(ta, item)
                if ok is not None:
                    getattr(v, name).append((i, ok))
        for name, key, check in (("services", "prefix", _prefix), ("counters", "id", _ident),
                                 ("printers", "id", _ident)):
            raw = data.get(name)
            if isinstance(raw, list):
                v.declared[name] = list(dict.fromkeys(
                    it[key] for it in raw if isinstance(it, dict) and _valid(check, it.get(key))))
        v.dispenser = _lenient(TypeAdapter(DispenserConfig), data.get("dispenser"))
        if "priority" in data:
            v.priority = _lenient(TypeAdapter(PriorityConfig), data.get("priority"))
        raw_clerks = data.get("clerks")
        if isinstance(raw_clerks, dict):
            ta_clerk = TypeAdapter(ClerkConfig)
            v.declared["clerks"] = [k for k in raw_clerks if _valid(_ident, k)]
            for k in v.declared["clerks"]:
                ok = _lenient(ta_clerk, raw_clerks[k])
                if ok is not None:
                    v.clerks[k] = ok
        v.has_rating = data.get("rating") is not None
        if v.has_rating:
            v.rating = _lenient(TypeAdapter(RatingConfig), data.get("rating"))
        return v


def _valid(check: Any, value: Any) -> bool:
    try:
        check(value)
    except ValueError:
        return False
    return True


def _lenient(ta: TypeAdapter[Any], item: Any, tries: int = 8) -> Any:
    """Validate ``item``, dropping the mapping keys that hold errors (a bad pin, a typo'd key) so the
    rest can still be cross-checked; None when a required part is broken."""
    if not isinstance(item, dict):
        return None
    item = copy.deepcopy(item)
    for _ in range(tries):
        try:
            return ta.validate_python(item)
        except ValidationError as e:
            if not any(_drop(item, err["loc"]) for err in e.errors()):
                return None
    return None


def _drop(data: Any, loc: tuple[Any, ...]) -> bool:
    """Delete the deepest mapping entry along ``loc`` present in ``data`` (tags not in the data are
    skipped); False when nothing could be removed."""
    parent, key = None, None
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            parent, key, node = node, part, node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(node, dict):
            continue  # a discriminator tag in the location
        else:
            break
    if parent is None or key is None:
        return False
    del parent[key]
    return True


def _undefined(kind: str, name: str, defined: list[str]) -> str:
    listing = ", ".join(defined) if defined else "none"
    return f"{kind} '{name}' is not defined (defined: {listing}){did_you_mean(name, defined)}"


def _cross_check(v: _View) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    services = v.declared["services"]
    counters = v.declared["counters"]
    printers = v.declared["printers"]

    def unique(section: str, items: list[tuple[int, Any]], attr: str, what: str) -> None:
        first: dict[str, int] = {}
        for i, item in items:
            key = getattr(item, attr)
            if key in first:
                out.append(((section, i, attr), f"{what} '{key}' is already used by {section}[{first[key]}]"))
            else:
                first[key] = i

    unique("services", v.services, "prefix", "service prefix")
    unique("counters", v.counters, "id", "counter id")
    classes = [c.id for c in v.priority.classes] if v.priority is not None else []
    if v.priority is not None:
        first_cls: dict[str, int] = {}
        for i, c in enumerate(v.priority.classes):
            if c.id in first_cls:
                out.append((("priority", "classes", i, "id"), f"priority class '{c.id}' is already used by "
                            f"priority.classes[{first_cls[c.id]}]"))
            first_cls.setdefault(c.id, i)

    # device ids, unique across every device section
    seen_dev: dict[str, str] = {}
    if v.dispenser is not None:
        seen_dev[v.dispenser.id] = "dispenser"
    for section in ("printers", "displays", "keypads", "qrboards", "ratingpads"):
        for i, dev in getattr(v, section):
            if dev.id in seen_dev:
                out.append(((section, i, "id"), f"device id '{dev.id}' is already used by {seen_dev[dev.id]}"))
            else:
                seen_dev[dev.id] = f"{section}[{i}]"

    for i, c in v.counters:
        seen: set[str] = set()
        for j, s in enumerate(c.profile.services):
            loc: Loc = ("counters", i, "profile", "services", j)
            if s not in services:
                out.append((loc, _undefined("service", s, services)))
            elif s in seen:
                out.append((loc, f"service '{s}' is listed twice"))
            seen.add(s)
        for j, s in enumerate(c.skills):
            if s not in services:
                out.append((("counters", i, "skills", j), _undefined("service", s, services)))
        for j, r in enumerate(c.profile.rules):
            loc = ("counters", i, "profile", "rules", j, "service")
            if r.service not in services:
                out.append((loc, _undefined("service", r.service, services)))
            elif r.service not in c.profile.services:
                out.append((loc, f"rule for service '{r.service}', which this counter does not serve "
                                 f"(it serves: {', '.join(c.profile.services)})"))

    # clerks: codes unique in the center; a counter's list names defined clerks
    codes: dict[str, str] = {}
    for cid, clerk in v.clerks.items():
        if clerk.code is None:
            continue
        if clerk.code in codes:
            out.append((("clerks", cid, "code"), f"clerk {cid} has the same sign-in code as clerk {codes[clerk.code]}: "
                        "each clerk needs a code of their own"))
        else:
            codes[clerk.code] = cid
    clerk_ids = v.declared["clerks"]
    for i, c in v.counters:
        for j, k in enumerate(c.clerks or []):
            if k not in clerk_ids:
                out.append((("counters", i, "clerks", j), _undefined("clerk", k, clerk_ids)))

    for section in ("displays", "keypads", "ratingpads"):
        for i, dev in getattr(v, section):
            if dev.counter not in counters:
                out.append(((section, i, "counter"), _undefined("counter", dev.counter, counters)))
    out += _rating_check(v)

    # pins: dispenser + gpio keypads + buses in use
    pins: dict[int, str] = {}
    pin_uses: list[tuple[int, Loc, str]] = []
    d = v.dispenser
    if d is not None:
        for prefix, pin in d.buttons.items():
            pin_uses.append((pin, ("dispenser", "buttons", prefix), f"dispenser button {prefix}"))
            if prefix not in services:
                out.append((("dispenser", "buttons", prefix, "[key]"), _undefined("service", prefix, services)))
        if d.led_pin is not None:
            pin_uses.append((d.led_pin, ("dispenser", "led_pin"), "the dispenser LED"))
        if d.buzzer_pin is not None:
            pin_uses.append((d.buzzer_pin, ("dispenser", "buzzer_pin"), "the dispenser buzzer"))
        if d.printer not in printers:
            out.append((("dispenser", "printer"), _undefined("printer", d.printer, printers)))
        for cls_id, pin in d.priority_buttons.items():
            pin_uses.append((pin, ("dispenser", "priority_buttons", cls_id), f"dispenser priority button {cls_id}"))
            if cls_id not in classes:
                out.append((("dispenser", "priority_buttons", cls_id, "[key]"),
                            _undefined("priority class", cls_id, classes)))
    for i, k in v.keypads:
        if isinstance(k, GpioKeypad):
            for key, pin in k.pins.items():
                pin_uses.append((pin, ("keypads", i, "pins", key), f"keypad {k.id} key '{key}'"))
        codes: dict[str, int] = {}
        for j, ik in enumerate(k.issue):
            if isinstance(ik, GpioIssueKey):
                pin_uses.append((ik.pin, ("keypads", i, "issue", j, "pin"), f"keypad {k.id} issue key {j}"))
            elif ik.code in codes:
                out.append((("keypads", i, "issue", j, "code"), f"code '{ik.code}' is already used by "
                            f"issue[{codes[ik.code]}]"))
            else:
                codes[ik.code] = j
            if ik.service not in services:
                out.append((("keypads", i, "issue", j, "service"), _undefined("service", ik.service, services)))
            if ik.priority is not None and ik.priority not in classes:
                out.append((("keypads", i, "issue", j, "priority"),
                            _undefined("priority class", ik.priority, classes)))
    for i, r in v.ratingpads:
        if isinstance(r, GpioRatingPad):
            for score, pin in r.keys.items():
                pin_uses.append((pin, ("ratingpads", i, "keys", score), f"rating pad {r.id} key {score}"))
            for reason, pin in r.reason_keys.items():
                pin_uses.append((pin, ("ratingpads", i, "reason_keys", reason), f"rating pad {r.id} reason key "
                                 f"'{reason}'"))
            if r.led_pin is not None:
                pin_uses.append((r.led_pin, ("ratingpads", i, "led_pin"), f"the lamp of rating pad {r.id}"))
    bus_pins: dict[int, str] = {}
    spi_used: dict[tuple[int, int], int] = {}
    for i, disp in v.displays:
        if isinstance(disp, Max7219Display):
            ce = SPI_CE[disp.spi_port].get(disp.spi_device)
            if ce is None:
                out.append((("displays", i, "spi_device"), f"SPI{disp.spi_port} has no chip select "
                            f"{disp.spi_device} (use {', '.join(map(str, SPI_CE[disp.spi_port]))})"))
                continue
            if (disp.spi_port, disp.spi_device) in spi_used:
                out.append((("displays", i, "spi_device"), f"SPI{disp.spi_port}.{disp.spi_device} is already "
                            f"used by displays[{spi_used[(disp.spi_port, disp.spi_device)]}]"))
            spi_used[(disp.spi_port, disp.spi_device)] = i
            for pin, name in SPI_PINS[disp.spi_port].items():
                bus_pins.setdefault(pin, f"{name}, used by display {disp.id}")
            bus_pins.setdefault(ce, f"SPI{disp.spi_port} CE{disp.spi_device}, used by display {disp.id}")
    for _port_name, users in _serial_users(v).items():
        if _port_name in UART_PORTS:
            for pin, name in UART_PINS.items():
                bus_pins.setdefault(pin, f"{name}, used by {users[0][2]} on {_port_name}")
    for pin, loc, who in pin_uses:
        if pin in bus_pins:
            out.append((loc, f"GPIO{pin} is {bus_pins[pin]}"))
        elif pin in pins:
            out.append((loc, f"GPIO{pin} is already used by {pins[pin]}"))
        else:
            pins[pin] = who

    # a 7-segment display must be able to draw every ticket prefix its counter calls
    from civiq.edge.devices.display.max7219 import FONT

    counters = {c.id: c for _i, c in v.counters}
    for i, disp in v.displays:
        if isinstance(disp, Max7219Display) and disp.counter in counters:
            for prefix in counters[disp.counter].profile.services:
                bad = [ch for ch in prefix if ch not in FONT]
                if bad:
                    out.append((("displays", i, "counter"), f"display {disp.id} is a 7-segment MAX7219 and cannot "
                                f"draw '{bad[0]}' of service {prefix}, which counter {disp.counter} calls: use a "
                                "text display there or a prefix made of A-J, L, N-P, R-U, Y"))

    # serial ports: one baud rate per port; distinct addresses on a bus; printers/nextion alone
    for port, users in _serial_users(v).items():
        first_loc, first_baud, first_who, _addr, _alone = users[0]
        for loc, baud, _who, _a, _al in users[1:]:
            if baud != first_baud:
                out.append(((*loc, "baudrate"), f"port {port} runs at {first_baud} baud for {first_who}; "
                            f"every device on one port must use the same baud rate (this one says {baud})"))
        alone = [u for u in users if u[4]]
        if alone and len(users) > 1:
            loc, _b, who, _a, _al = alone[0]
            others = ", ".join(u[2] for u in users if u is not alone[0])
            out.append(((*loc, "port"), f"{who} needs port {port} for itself, but {others} also use it"))
        modbus = [u for u in users if u[2].startswith("display ") and _is_modbus(v, u[0])]
        if modbus and len(modbus) < len(users):
            loc, _b, who, _a, _al = next(u for u in users if u not in modbus)
            out.append(((*loc, "port"), f"{who} speaks the ASCII frame protocol but {modbus[0][2]} on {port} "
                        "speaks Modbus RTU: one RS-485 bus carries one protocol; put them on separate ports"))
        addrs: dict[int, str] = {}
        for loc, _b, who, addr, _al in users:
            if addr is None:
                continue
            if addr in addrs:
                out.append(((*loc, "address"), f"address {addr} on {port} is already used by {addrs[addr]}"))
            else:
                addrs[addr] = who
    return out


def _is_modbus(v: _View, loc: Loc) -> bool:
    if loc[0] != "displays":
        return False
    return any(i == loc[1] and isinstance(d, ModbusDisplay) for i, d in v.displays)


def _serial_users(v: _View) -> dict[str, list[tuple[Loc, int, str, int | None, bool]]]:
    """port -> [(loc, baudrate, description, address or None, needs the port alone)] in file order."""
    users: dict[str, list[tuple[Loc, int, str, int | None, bool]]] = {}
    for i, p in v.printers:
        users.setdefault(p.port, []).append((("printers", i), p.baudrate, f"printer {p.id}", None, True))
    for section in ("displays", "keypads", "ratingpads"):
        for i, dev in getattr(v, section):
            if isinstance(dev, _SerialBusDevice):
                users.setdefault(dev.port, []).append(((section, i), dev.baudrate,
                                                       f"{section[:-1]} {dev.id}", dev.address, False))
    for i, q in v.qrboards:
        if isinstance(q, NextionBoard):
            users.setdefault(q.port, []).append((("qrboards", i), q.baudrate, f"QR board {q.id}", None, True))
    return users


def _rating_check(v: _View) -> list[tuple[Loc, str]]:
    """Rating pads need a `rating:` section; their keys match its scale and reasons; one page per counter."""
    out: list[tuple[Loc, str]] = []
    if v.ratingpads and not v.has_rating:
        out.append((("ratingpads",), "rating pads need a `rating:` section (write `rating: {}` for the "
                    "defaults: 5 levels, a 30 s window, the standard reasons)"))
    r = v.rating
    pages: dict[str, str] = {}
    for i, pad in v.ratingpads:
        if isinstance(pad, PageRatingPad):
            if pad.counter in pages:
                out.append((("ratingpads", i, "counter"), f"counter {pad.counter} already has the rating page "
                            f"{pages[pad.counter]} (one page device per counter: /rate/{pad.counter})"))
            pages.setdefault(pad.counter, pad.id)
        if r is None:
            continue
        if isinstance(pad, GpioRatingPad):
            want = list(range(1, r.scale + 1))
            have = sorted(pad.keys)
            if have != want:
                missing = [s for s in want if s not in pad.keys]
                extra = [s for s in have if s not in want]
                what = (f"missing key(s) for score {', '.join(map(str, missing))}" if missing else "") + \
                       ("; " if missing and extra else "") + \
                       (f"no score {', '.join(map(str, extra))} on this scale" if extra else "")
                out.append((("ratingpads", i, "keys"), f"a {r.scale}-level rating needs one key per score "
                            f"1-{r.scale}: {what}"))
        reasons = list(r.reasons)
        for rid in getattr(pad, "reason_keys", {}):
            if rid not in reasons:
                out.append((("ratingpads", i, "reason_keys", rid, "[key]"), _undefined("reason", rid, reasons)))
        if isinstance(pad, SerialRatingPad):
            codes: dict[str, str] = {}
            for rid, code in pad.reason_keys.items():
                if code in codes:
                    out.append((("ratingpads", i, "reason_keys", rid), f"code '{code}' is already used by "
                                f"reason '{codes[code]}'"))
                codes.setdefault(code, rid)
    return out


def _speaker_check(cfg: Any) -> list[tuple[Loc, str]]:
    """Counter names of the speaker refer to counters; a pack or espeak-ng must exist to say anything."""
    sp = cfg.speaker
    if sp is None:
        return []
    out: list[tuple[Loc, str]] = []
    others = [d.id for section in ("printers", "displays", "keypads", "qrboards", "ratingpads")
              for d in getattr(cfg, section)]
    if sp.id in others + ([cfg.dispenser.id] if cfg.dispenser else []):
        out.append((("speaker", "id"), f"device id '{sp.id}' is already used by another device"))
    counters = [c.id for c in cfg.counters]
    for cid in sp.counter_names:
        if cid not in counters:
            out.append((("speaker", "counter_names", cid, "[key]"), _undefined("counter", cid, counters)))
    if sp.speech and sp.pack_dir is not None and not Path(sp.pack_dir).is_dir():
        from civiq.edge.voice.audio import espeak_available

        if not espeak_available():
            out.append((("speaker", "pack_dir"), f"the clip pack {sp.pack_dir} does not exist and espeak-ng is "
                        "not installed, so nothing could be said: copy a pack there, or `apt install "
                        "espeak-ng` and run `civiq edge voice-pack build`"))
    return out


def _partial_checks(data: Any) -> list[tuple[Loc, str]]:
    return _cross_check(_View.partial(data)) if isinstance(data, Mapping) else []


# ------------------------------------------------------------------------------------------ the center
class CenterConfig(Section):
    """The whole configuration of one edge agent (one Raspberry Pi of a center)."""

    center: CenterInfo = Field(description="The service center.", examples=[
        {"id": "hcm-bennghe", "name": "Trung tâm Phục vụ hành chính công phường Bến Nghé",
         "timezone": "Asia/Ho_Chi_Minh"}])
    node: NodeConfig = Field(description="This Pi.", examples=[{"id": "pi-1"}])
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="MQTT broker connection.", examples=[
        {"host": "mqtt.hcm.civiq.vn", "port": 8883, "username": "edge-hcm-bennghe",
         "password_file": "/etc/civiq/mqtt-password", "tls": True}])
    state_dir: Path = Field(default=Path("/var/lib/civiq"), description="Directory of the SQLite event log "
                            "and outbox (must survive reboots).", examples=["/var/lib/civiq"])
    queue: QueueConfig = Field(default_factory=QueueConfig, description="Queue behaviour.",
                               examples=[{"max_recalls": 3, "estimate_window_min": 60}])
    http: HttpConfig = Field(default_factory=HttpConfig, description="Local HTTP server.",
                             examples=[{"host": "127.0.0.1", "port": 8080}])
    services: list[ServiceConfig] = Field(min_length=1, description="Services offered, each with its ticket "
                                          "prefix.", examples=[[{"prefix": "A", "name_vi": "Đất đai",
                                                                "name_en": "Land"}]])
    counters: list[CounterConfig] = Field(min_length=1, description="Counters and their work profiles.",
                                          examples=[[{"id": "c1", "name": "Quầy 1",
                                                      "profile": {"services": ["A", "B"]}}]])
    dispenser: DispenserConfig | None = Field(default=None, description="The number dispenser, if this Pi "
                                              "drives one.", examples=[{"buttons": {"A": 17, "B": 27},
                                                                        "printer": "p1"}])
    printers: list[PrinterConfig] = Field(default=[], description="Thermal ticket printers.",
                                         examples=[[{"id": "p1", "port": "/dev/civiq-printer"}]])
    displays: list[DisplayConfig] = Field(default=[], description="Counter displays; `protocol` selects "
                                          "the kind: modbus, ascii, max7219.", examples=[[
        {"id": "d1", "counter": "c1", "protocol": "modbus", "port": "/dev/civiq-rs485", "address": 1}]])
    keypads: list[KeypadConfig] = Field(default=[], description="Staff call keypads; `kind`: gpio, serial.",
                                        examples=[[{"id": "k1", "counter": "c1", "kind": "gpio",
                                                    "pins": {"next": 5, "recall": 6}}]])
    qrboards: list[QrBoardConfig] = Field(default=[], description="QR boards; `kind`: nextion, hdmi.",
                                          examples=[[{"id": "q1", "kind": "hdmi"}]])
    speaker: SpeakerConfig | None = Field(default=None, description="The hall speaker (voice call); "
                                          "absent: no sound.", examples=[{"output": "alsa", "device":
                                                                          "default", "repeat": 2}])
    priority: PriorityConfig = Field(default_factory=lambda: PriorityConfig(classes=[]), description="Priority "
                                     "tickets; absent: none.", examples=[{"rule": "first", "max_in_row": 3}])
    hall: HallConfig = Field(default_factory=HallConfig, description="Hall TV board and touch kiosk pages.",
                             examples=[{"recent_calls": 8, "kiosk_allow": ["192.168.1.50"]}])
    clerks: dict[Ident, ClerkConfig] = Field(
        default={}, description="Clerks who sign in at the counters (clerk id -> name and keypad code); "
        "absent: nobody signs in and events carry no `clerk`.",
        examples=[{"lan": {"name": "Nguyễn Thị Lan", "code": "4821"}, "minh": {"name": "Trần Văn Minh",
                                                                            "code": "5093"}}])
    rating: RatingConfig | None = Field(default=None, description="Citizen satisfaction rating at the "
                                        "counters; absent: no rating.", examples=[{"scale": 5, "window_s": 30}])
    ratingpads: list[RatingPadConfig] = Field(
        default=[], description="Rating devices, each bound to a counter; `kind`: gpio, serial, page.",
        examples=[[{"id": "r1", "counter": "c1", "kind": "gpio", "keys": {1: 5, 2: 6, 3: 13, 4: 19, 5: 26}}]])

    @model_validator(mode="after")
    def _cross_references(self) -> CenterConfig:
        problems = _cross_check(_View.of(self)) + _speaker_check(self)
        if problems:
            raise problems_error(problems)
        return self

    # helpers for the agent
    def service(self, prefix: str) -> ServiceConfig:
        return next(s for s in self.services if s.prefix == prefix)

    def counter(self, counter_id: str) -> CounterConfig:
        return next(c for c in self.counters if c.id == counter_id)

    def counter_skills(self) -> dict[str, list[str]]:
        """For the birth (the gateway's advisor): every service each counter's staff can serve, its profile's
        services first, then its ``skills``."""
        return {c.id: list(dict.fromkeys([*c.profile.services, *c.skills])) for c in self.counters}

    def counter_profiles(self) -> dict[str, WorkProfile]:
        """For the birth: each counter's configured work profile (services and rules), as plain contract models."""
        return {c.id: WorkProfile.model_validate(c.profile.model_dump()) for c in self.counters}

    def devices(self) -> list[tuple[str, str]]:
        """(device id, kind) of every device, for the birth message."""
        out = [(self.dispenser.id, "dispenser")] if self.dispenser else []
        out += [(p.id, "printer") for p in self.printers] + [(d.id, "display") for d in self.displays]
        out += [(k.id, "keypad") for k in self.keypads] + [(q.id, "qrboard") for q in self.qrboards]
        out += [(r.id, "ratingpad") for r in self.ratingpads]
        if self.speaker is not None:
            out.append((self.speaker.id, "speaker"))
        return out

    def serial_ports(self) -> dict[str, int]:
        """Serial port -> baud rate, one entry per port (one SerialTransport each)."""
        others = {p.port for p in self.printers if p.transport not in (None, "serial")}
        return {port: users[0][1] for port, users in _serial_users(_View.of(self)).items() if port not in others}


# ------------------------------------------------------------------------------------------ env + loading
class EdgeSettings(BaseSettings):
    """Runtime overrides from the environment, laid over the YAML file's values by :func:`load_config`.

    ``CIVIQ_MQTT__HOST=10.0.0.5``, ``CIVIQ_MQTT__PASSWORD_FILE=/run/secrets/mqtt``,
    ``CIVIQ_STATE_DIR=/tmp/x``, ``CIVIQ_NODE__ID=pi-2``. A whole section also works as JSON
    (``CIVIQ_MQTT='{"host": "h", "port": 8883}'``). Values are validated with the file's rules."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")

    center: CenterInfo | None = None
    node: NodeConfig | None = None
    mqtt: MqttConfig | None = None
    state_dir: Path | None = None
    queue: QueueConfig | None = None
    http: HttpConfig | None = None
    clerks: dict[str, dict[str, Any]] | None = None  # CIVIQ_CLERKS__LAN__CODE=4821: a code kept out of the file


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> CenterConfig:
    """Read, override from ``env`` (default ``os.environ``; ``{}`` for none) and validate a center file.

    Raises :class:`ConfigError` listing every problem (``file:line:col: field: message``)."""
    return load_settings(path, CenterConfig, prefix=ENV_PREFIX, env=env, env_model=EdgeSettings,
                         partial_checks=_partial_checks)


def config_hash(cfg: CenterConfig) -> str:
    """Short sha256 (12 hex digits) of the canonical JSON of the effective configuration."""
    canonical = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def config_warnings(cfg: CenterConfig) -> list[str]:
    """Things that are allowed but probably wrong (they do not stop the agent)."""
    out: list[str] = []
    served = {s for c in cfg.counters for s in c.profile.services}
    for s in cfg.services:
        if s.prefix not in served:
            out.append(f"service {s.prefix} ({s.name_en}) is served by no counter: its tickets would never "
                       "be called until a policy assigns it")
    if cfg.dispenser is not None:
        missing = [s.prefix for s in cfg.services if s.prefix not in cfg.dispenser.buttons]
        if missing:
            out.append(f"service(s) {', '.join(missing)} have no dispenser button")
    if cfg.mqtt.password_file is not None:
        out += password_file_warnings(Path(cfg.mqtt.password_file))
    if cfg.speaker is not None and cfg.speaker.speech:
        pack = cfg.speaker.pack_path(cfg.state_dir)
        if not pack.is_dir():
            out.append(f"speaker.pack_dir: the clip pack {pack} does not exist (yet): run `civiq edge voice-pack "
                       "build --config FILE`; until then espeak-ng says every call")
    return out


def check_main(paths: list[str], env: Mapping[str, str] | None = None, out: typing.TextIO | None = None) -> int:
    """``civiq config check FILE...``: print ``OK`` and a summary per valid file, or every problem.
    Returns 0 when every file is valid, 1 otherwise."""
    out = out or sys.stdout
    if not paths:
        print("usage: civiq config check FILE...", file=out)
        return 2
    status = 0
    for p in paths:
        try:
            cfg = load_config(p, env)
        except ConfigError as e:
            status = 1
            n = len(e.problems)
            print(str(e), file=out)
            print(f"FAILED {p}: {n} problem{'s' if n != 1 else ''}", file=out)
            continue
        for w in config_warnings(cfg):
            print(f"WARNING {p}: {w}", file=out)
        n_dev = len(cfg.devices())
        print(f"OK {p}: center {cfg.center.id}, {len(cfg.services)} services, {len(cfg.counters)} counters, "
              f"{n_dev} devices (config {config_hash(cfg)})", file=out)
    return status


def main(argv: list[str] | None = None) -> int:
    """``python -m civiq.edge.config FILE...`` (the reference page: ``python -m civiq.edge.configdoc``)."""
    return check_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
