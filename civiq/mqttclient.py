"""The one place a paho MQTT client is made: the edge link, the gateway's ingest link, ``civiq edge doctor``,
the bench and the tests all call :func:`make_client`, so the callback API version, the protocol and session
choice, credentials, TLS and the Last Will are set the same way everywhere.

MQTT 3.1.1 sessions are chosen with ``clean_start`` in the constructor (``clean_session``); MQTT 5 takes it at
``connect()`` (``clean_start=``, with a session expiry property), which the caller passes there.

    >>> c = make_client("pi-1", will=("civiq/v1/c/pi-1/status", '{"online":false}', 1, True))
    >>> c.protocol == mqtt.MQTTv311, c._clean_session, c._client_id
    (True, True, b'pi-1')
    >>> make_client("gw", v5=True, manual_ack=True).protocol == mqtt.MQTTv5
    True
"""

from __future__ import annotations

import logging
from pathlib import Path

import paho.mqtt.client as mqtt

__all__ = ["make_client", "mqtt"]


def make_client(client_id: str = "", *, v5: bool = False, clean_start: bool = True,
                username: str | None = None, password: str | None = None,
                tls: bool = False, ca_file: str | Path | None = None,
                will: tuple[str, str | bytes, int, bool] | None = None,
                manual_ack: bool = False, reconnect_on_failure: bool = True,
                max_inflight: int | None = None, logger: logging.Logger | None = None) -> mqtt.Client:
    """A paho client (callback API v2), not yet connected.

    ``v5``: MQTT 5 (``clean_start`` then goes to ``connect()``), else 3.1.1 with ``clean_session=clean_start``;
    ``will``: (topic, payload, qos, retain); ``manual_ack``: the caller acks each QoS 1 message after it
    stored it; ``reconnect_on_failure=False``: the caller runs its own reconnect loop (the edge link does)."""
    if v5:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                             manual_ack=manual_ack, reconnect_on_failure=reconnect_on_failure)
    else:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                             clean_session=clean_start, manual_ack=manual_ack,
                             reconnect_on_failure=reconnect_on_failure)
    if username is not None:
        client.username_pw_set(username, password)
    if tls:
        client.tls_set(ca_certs=str(ca_file) if ca_file else None)
    if will is not None:
        topic, payload, qos, retain = will
        client.will_set(topic, payload, qos=qos, retain=retain)
    if max_inflight is not None:
        client.max_inflight_messages_set(max_inflight)
    if logger is not None:
        client.enable_logger(logger)
    return client
