"""One way to subscribe a callback to a list of listeners under a lock (engine events, hall feed, rating
windows, announcements, the gateway's live state).

>>> import threading
>>> lock, listeners = threading.Lock(), []
>>> off = subscribe(lock, listeners, print)
>>> len(listeners)
1
>>> off(); off()  # unsubscribing twice is harmless
>>> listeners
[]
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def subscribe(lock: threading.Lock | threading.RLock | threading.Condition, listeners: list[F],
              cb: F) -> Callable[[], None]:
    """Add ``cb`` to ``listeners`` under ``lock``; return the function that removes it again."""
    with lock:
        listeners.append(cb)

    def unsubscribe() -> None:
        with lock:
            if cb in listeners:
                listeners.remove(cb)

    return unsubscribe
