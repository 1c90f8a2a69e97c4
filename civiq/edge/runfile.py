"""The running agent's run file (``agent.json`` in the state dir: its pid and local API port), and how the
other commands (``civiq edge test-print``, ``display-test``, ``say-test``, ``doctor``) find and ask it: the
running agent owns the ports, so they go through its local API rather than open them a second time.

    >>> import tempfile
    >>> from types import SimpleNamespace
    >>> with tempfile.TemporaryDirectory() as d:
    ...     running_agent(SimpleNamespace(state_dir=d)) is None    # no agent running there
    True
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

RUNFILE = "agent.json"  # in the state dir: pid and local API port of the running agent


def running_agent(cfg: Any) -> dict | None:
    """The run file of the agent running with ``cfg.state_dir``, if its process is alive; else None."""
    path = Path(cfg.state_dir) / RUNFILE
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
        return info
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ask_running_agent(cfg: Any, path: str) -> dict | None:
    """POST to the running agent's local API (it owns the ports); None when no agent runs."""
    info = running_agent(cfg)
    if info is None:
        return None
    req = urllib.request.Request(f"http://127.0.0.1:{info['api_port']}{path}", method="POST", data=b"")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read() or b"{}") or {"ok": False, "error": str(e)}
    except OSError as e:
        return {"ok": False, "error": f"the running agent does not answer: {e}"}
