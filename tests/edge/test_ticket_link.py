"""Every example center config that reports to a gateway prints tickets whose QR opens that gateway's
/t/<token> page (public_url = the gateway's public_base_url, and a ticket key file); doctor checks the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from civiq.edge.config import load_config
from civiq.edge.doctor import FAIL, OK, WARN, check_ticket_link
from civiq.tickettoken import center_key, token_with_key, verify_ticket_token

EXAMPLES = Path(__file__).resolve().parents[2] / "firmware-config"
GATEWAY = yaml.safe_load((EXAMPLES / "gateway.example.yaml").read_text(encoding="utf-8"))
CENTERS = sorted(p for p in EXAMPLES.glob("*.yaml") if p.name != "gateway.example.yaml")


@pytest.mark.parametrize("path", CENTERS, ids=lambda p: p.name)
def test_examples_with_a_gateway_print_a_ticket_page_link(path: Path, tmp_path: Path) -> None:
    cfg = load_config(path, {})
    if cfg.mqtt.host in ("127.0.0.1", "localhost"):  # the simulator's config: no gateway to point at
        assert cfg.center.public_url is None
        return
    assert cfg.center.public_url == GATEWAY["http"]["public_base_url"], path.name
    assert cfg.center.ticket_key_file is not None, path.name
    # what the technician does: the gateway's key for this center into the key file
    secret = b"g" * 32
    key_file = tmp_path / "ticket-key"
    key_file.write_text(center_key(secret, cfg.center.id).hex() + "\n")
    cfg.center.ticket_key_file = key_file
    assert [f.level for f in check_ticket_link(cfg)] == [OK]
    token = token_with_key(cfg.center.ticket_key(), cfg.center.id, "2026-01-05", "A001")
    assert verify_ticket_token(secret, token) == (cfg.center.id, "2026-01-05", "A001")
    key_file.unlink()
    [f] = check_ticket_link(cfg)
    assert f.level == FAIL and f"civiq gateway ticket-key {cfg.center.id}" in f.detail
    cfg.center.ticket_key_file = None
    assert [f.level for f in check_ticket_link(cfg)] == [WARN]
