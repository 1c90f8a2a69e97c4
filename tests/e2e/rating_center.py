"""The simulated example center with ratings: a GPIO rating pad at counter c1 (with a lamp), an RS-485 rating
pad with reason keys at c2 on its own bus, and a rating page at each counter."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.centers import write_center

RATING = """\
clerks: {lan: {name: "Nguyễn Thị Lan", code: "4821"}}
rating: {scale: 5, window_s: 30, reasons_wait_s: 2}
ratingpads:
  - {id: r1, counter: c1, kind: gpio, keys: {1: 7, 2: 8, 3: 9, 4: 10, 5: 11}, led_pin: 18, debounce_ms: 50}
  - {id: r2, counter: c2, kind: serial, port: /dev/civiq-rating, baudrate: 9600, address: 21, reason_keys: {wait: a, attitude: b}}
  - {id: rp1, counter: c1, kind: page}
  - {id: rp2, counter: c2, kind: page}
"""


def write_rating_center(dir: Path, port: int, *, http_port: int = 0, extra: str = "",
                        allow: tuple[str, ...] = (), c2_tablet: tuple[str, ...] = ()) -> Path:
    """The center file; ``allow``: the addresses of ``rating.allow`` (tablets on the LAN that may rate at any
    counter); ``c2_tablet``: the ``allow`` of counter c2's page (its own tablet)."""
    p = write_center(dir, port, http_port=http_port)
    rating = RATING.replace("reasons_wait_s: 2}", f"reasons_wait_s: 2, allow: {list(allow)}}}") if allow else RATING
    if c2_tablet:
        rating = rating.replace("{id: rp2, counter: c2, kind: page}",
                                f"{{id: rp2, counter: c2, kind: page, allow: {list(c2_tablet)}}}")
    p.write_text(p.read_text("utf-8") + rating + extra, encoding="utf-8")
    return p
