"""Gateway settings: defaults < YAML file < environment (``CIVIQ_GW_``, nested with ``__``).

>>> s = GatewaySettings(gateway_id="gw-hcm", mqtt={"host": "10.0.0.5"})
>>> s.mqtt.host, s.mqtt.port, s.retention_days, s.influx is None
('10.0.0.5', 1883, 90, True)

From the environment (what a systemd unit sets)::

    CIVIQ_GW_GATEWAY_ID=gw-hcm CIVIQ_GW_MQTT__HOST=broker.lan CIVIQ_GW_INFLUX__URL=http://tsdb:8086

From a file, with the environment still winning over it::

    s = GatewaySettings.from_file("/etc/civiq/gateway.yaml")

Errors are :class:`SettingsError` with the file (when there is one) and the dotted field name, in words.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from civiq.contract import ID_RE
from civiq.errors import GatewayError
from civiq.gateway.alerts.conditions import Thresholds
from civiq.yamlconf import ConfigError, ConfigProblem, load_settings

ENV_PREFIX = "CIVIQ_GW_"


class SettingsError(GatewayError, ValueError):
    """Settings that cannot be used; the message names the file, line and field (``problems``: each one)."""

    def __init__(self, message: str, problems: list[ConfigProblem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password_file: Path | None = None  # a file holding the password (never the password itself in YAML/env)
    tls: bool = False
    ca_file: Path | None = None
    keepalive: int = Field(30, ge=5, le=3600)
    # None: plain subscriptions (one gateway process). A name: MQTT v5 shared subscriptions
    # ``$share/<group>/...`` for the high-volume, non-retained leaves (see docs/timeseries.md, "Workers").
    shared_group: str | None = Field(None, pattern=ID_RE)
    # The broker keeps our session (and queues QoS1 events for us) this long while we are away.
    session_expiry_s: int = Field(24 * 3600, ge=0)
    client_id: str | None = None  # default: civiq-gw-<gateway_id>
    # "5" (default) or "3.1.1" for brokers without MQTT 5, such as the embedded demo broker (amqtt):
    # no shared subscriptions, and the session lasts as long as the broker keeps it.
    protocol: Literal["5", "3.1.1"] = "5"

    @model_validator(mode="after")
    def _v5_features(self) -> MqttSettings:
        if self.protocol == "3.1.1" and self.shared_group:
            raise ValueError("shared_group needs MQTT 5 (protocol: '5'): shared subscriptions do not exist in 3.1.1")
        return self

    def password(self) -> str | None:
        """The password read from ``password_file`` (stripped), or None."""
        if self.password_file is None:
            return None
        try:
            return self.password_file.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise SettingsError(f"mqtt.password_file {self.password_file}: cannot read it ({e.strerror})") from None


class InfluxSettings(_Section):
    url: str
    token: str = ""
    org: str = "civiq"
    bucket: str = "civiq"
    batch_size: int = Field(5000, ge=1, le=50_000)  # InfluxDB's advice; fewer requests than 500 (bench.ingest)
    flush_interval_s: float = Field(1.0, gt=0, le=300)
    spool_dir: Path | None = None  # default: <data_dir>/influx-spool


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_base_url: str = "http://127.0.0.1:8080"  # printed in ticket QR codes: /t/<token>


class AlertSettings(_Section):
    """Where alerts go and how patient the engine is (docs/alerts.md)."""

    webhooks: list[str] = []
    telegram_token_file: Path | None = None  # the bot token alone in a 0600 file
    telegram_chat_id: str | None = None
    telegram_api_base: str = "https://api.telegram.org"
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password_file: Path | None = None
    smtp_starttls: bool = True
    email_from: str = "civiq@localhost"
    email_to: list[str] = []
    alertmanager_url: str | None = None  # e.g. http://127.0.0.1:9093
    mqtt: bool = True  # publish every alert transition on civiq/v1/alerts/<center>
    raise_after_s: float = Field(0, ge=0)
    clear_after_s: float = Field(30, ge=0)
    flap_window_s: float = Field(600, ge=0)
    flap_max: int = Field(3, ge=2)
    thresholds: Thresholds = Thresholds()


class BalanceSettings(_Section):
    """The load-balancing advisor (docs/load-balancing.md)."""

    interval_s: float = Field(60, ge=1)  # how often advice is recomputed
    horizon_min: float = Field(60, gt=0)
    history_days: int = Field(28, ge=1, le=365)
    auto_centers: list[str] = []  # centers whose edges get the advised policy pushed automatically


def shard_of(center: str, workers: int) -> int:
    """The worker (0 .. workers-1) that owns ``center`` when centers are split by hash: CRC-32 of the id,
    the same in every process and release (Python's ``hash()`` is salted per process).

    >>> shard_of("hcm-q1", 4), shard_of("hcm-q1", 1)
    (1, 0)
    """
    return zlib.crc32(center.encode()) % workers


class ShardSettings(_Section):
    """Scale-out by center (docs/scale.md): which centers this gateway worker owns and subscribes to.

    Default: one worker owns every center (``+`` wildcard subscriptions). ``own``: exactly these centers.
    ``workers`` > 1: this worker (``index``) owns the centers of ``centers`` (the province's list) whose
    :func:`shard_of` is its index. Either way it subscribes only to its centers' topics.

    >>> ids = [f"hcm-q{i}" for i in range(1, 7)]
    >>> ShardSettings(centers=ids, workers=2, index=0).owned(), ShardSettings(centers=ids, workers=2, index=1).owned()
    (['hcm-q4', 'hcm-q5', 'hcm-q6'], ['hcm-q1', 'hcm-q2', 'hcm-q3'])
    >>> ShardSettings().owned() is None
    True
    """

    centers: list[Annotated[str, Field(pattern=ID_RE)]] = []
    own: list[Annotated[str, Field(pattern=ID_RE)]] = []
    workers: int = Field(1, ge=1, le=1024)
    index: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> ShardSettings:
        if self.index >= self.workers:
            raise ValueError(f"index {self.index} is not below workers {self.workers}")
        if self.workers > 1 and not self.own and not self.centers:
            raise ValueError("workers > 1 needs the list of centers to split (or 'own')")
        return self

    def owned(self) -> list[str] | None:
        """The centers this worker subscribes to; None: every center."""
        if self.own:
            return sorted(set(self.own))
        if self.workers > 1:
            return sorted({c for c in self.centers if shard_of(c, self.workers) == self.index})
        return None


class GatewaySettings(BaseSettings):
    """Everything a gateway process needs. ``influx=None`` turns the InfluxDB export off."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")

    gateway_id: str = Field("gw-1", pattern=ID_RE)
    mqtt: MqttSettings = MqttSettings()
    data_dir: Path = Path("/var/lib/civiq-gateway")
    retention_days: int = Field(90, ge=1)
    heartbeat_timeout_s: float = Field(45.0, gt=0)  # health comes every 15 s: three missed = offline
    influx: InfluxSettings | None = None
    http: HttpSettings = HttpSettings()
    alerts: AlertSettings = AlertSettings()
    balance: BalanceSettings = BalanceSettings()
    shard: ShardSettings = ShardSettings()  # scale-out: the centers this worker owns (docs/scale.md)
    # the daily CSV drop of ratings for the one-stop system (docs/reports.md): None = off
    ratings_drop_dir: Path | None = None
    ratings_drop_days: int = Field(7, ge=1, le=92)  # ended days kept up to date (late events re-write them)

    @field_validator("influx", mode="before")
    @classmethod
    def _influx_off(cls, v: Any) -> Any:
        # ``influx: null`` / ``CIVIQ_GW_INFLUX=`` (empty) both mean "export off"
        return None if v in ("", "none", "null", "off") else v

    # ------------------------------------------------------------------------------------- derived paths
    @property
    def db_path(self) -> Path:
        """The embedded series store (SQLite)."""
        return self.data_dir / "series.db"

    @property
    def spool_path(self) -> Path | None:
        """The InfluxDB export spool (SQLite), or None when the export is off."""
        if self.influx is None:
            return None
        return (self.influx.spool_dir or self.data_dir / "influx-spool") / "spool.db"

    # ------------------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, **values: Any) -> GatewaySettings:
        """Like the constructor, but raises :class:`SettingsError` (readable) instead of ValidationError."""
        try:
            return cls(**values)
        except ValidationError as e:
            raise SettingsError(_explain(e, None)) from None

    @classmethod
    def from_file(cls, path: str | Path, env: Mapping[str, str] | None = None) -> GatewaySettings:
        """Read a YAML file; environment variables (``env``, default ``os.environ``) override what it says.
        Problems come as the center config's do (one loader, :func:`civiq.yamlconf.load_settings`): every
        one at once, ``file:line:col: field: message``, or naming the environment variable."""
        try:
            return load_settings(path, cls, prefix=ENV_PREFIX, env=env)
        except ConfigError as e:
            raise SettingsError(str(e), e.problems) from None


def _explain(e: ValidationError, path: Path | None) -> str:
    lines = []
    for err in e.errors():
        where = ".".join(str(x) for x in err["loc"]) or "(root)"
        lines.append(f"{where}: {err['msg']}")
    prefix = f"{path}: " if path else ""
    return prefix + "; ".join(lines)


# top-level keys only gateway settings have (a center config has ``center:``)
GATEWAY_KEYS = frozenset(GatewaySettings.model_fields) - {"mqtt", "http"}


def looks_like_gateway_settings(data: object) -> bool:
    """True for the mapping of a gateway settings file (no ``center``, some gateway-only key).

    >>> looks_like_gateway_settings({"gateway_id": "gw-1", "mqtt": {}})
    True
    >>> looks_like_gateway_settings({"center": {"id": "x"}, "mqtt": {}})
    False
    """
    return isinstance(data, dict) and "center" not in data and bool(GATEWAY_KEYS & set(data))


def check_file(path: str | Path, env: Mapping[str, str] | None = None, out: Any = None) -> int:
    """``civiq config check`` on a gateway settings file: ``OK`` and a summary, or every problem. 0 or 1."""
    import sys

    out = out or sys.stdout
    try:
        s = GatewaySettings.from_file(path, env)
    except SettingsError as e:
        n = max(1, len(e.problems))
        print(str(e), file=out)
        print(f"FAILED {path}: {n} problem{'s' if n != 1 else ''} (gateway settings)", file=out)
        return 1
    influx = f"InfluxDB export to {s.influx.url}" if s.influx else "no InfluxDB export"
    print(f"OK {path}: gateway settings, gateway {s.gateway_id}, broker {s.mqtt.host}:{s.mqtt.port}, "
          f"data in {s.data_dir}, {influx}", file=out)
    return 0
