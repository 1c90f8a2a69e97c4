"""The edge's MQTT link: durable outbox publishing, birth/death status, state snapshots and commands.

The link knows nothing of GPIO or serial devices; the engine appends events to the store and calls
:meth:`EdgeLink.notify`.
"""

from civiq.edge.link.commands import CommandRunner, decode_command, recover_id, to_result
from civiq.edge.link.mqtt import EdgeLink, backoff_delay

__all__ = ["CommandRunner", "EdgeLink", "backoff_delay", "decode_command", "recover_id", "to_result"]
