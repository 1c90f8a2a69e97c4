"""Center configs for whole-system tests: the simulated example center (civiq/edge/sim/example.py)."""

from __future__ import annotations

from pathlib import Path

from civiq.edge.sim.example import write_sim_center


def write_center(dir: Path, port: int, *, center: str = "test-xa", node: str = "pi-1",
                 http_port: int = 0) -> Path:
    return write_sim_center(dir, port, center=center, node=node, http_port=http_port or 8080)
