"""The QR board as a web page for an HDMI screen: procedure QR codes and live waits, Vietnamese + English.

The page is self-contained (inline CSS, QR codes as inline SVG drawn by the ``qrcode`` package, no script, no
external file) and reloads itself every ``refresh_s`` seconds. Every piece of text that comes from a config
or the queue goes through :func:`html.escape`: a service named ``<script>`` is shown, never run.

    >>> html = render_qr_page("Bến Nghé", [QrItem("Đất đai", "Land", "https://dvc.example/a")],
    ...                       {"A": ("Đất đai", "Land", 4, 600.0)}, refresh_s=10)
    >>> '<meta http-equiv="refresh" content="10">' in html and html.count("<svg") == 1
    True
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import qrcode
import qrcode.image.svg
from qrcode.exceptions import DataOverflowError

from civiq.edge.devices.qrboard.cycler import QrItem

WaitLine = tuple[str, str, int, float | None]  # name_vi, name_en, waiting, eta_s (None = unknown)

_CSS = """
*{box-sizing:border-box}
body{margin:0;font-family:"DejaVu Sans",Arial,sans-serif;background:#f4f6f8;color:#111}
header{background:#b71c1c;color:#fff;padding:1.2vh 2vw}
header h1{margin:0;font-size:3.2vh}
header p{margin:.3vh 0 0;font-size:1.9vh;opacity:.9}
main{display:flex;gap:2vw;padding:2vh 2vw}
.qrs{flex:3;display:grid;grid-template-columns:repeat(auto-fill,minmax(22vh,1fr));gap:1.5vw}
.card{background:#fff;border-radius:1vh;padding:1.2vh;text-align:center;box-shadow:0 .2vh .6vh #0002}
.qr svg{width:100%;height:auto;display:block}
.vi{font-weight:bold;font-size:2.2vh;margin-top:.8vh}
.en{font-size:1.7vh;color:#444}
.url{font-size:1.2vh;color:#666;word-break:break-all}
.waits{flex:2}
table{width:100%;border-collapse:collapse;background:#fff;font-size:2.3vh}
th,td{padding:1vh;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-weight:bold}
.none{color:#666;font-size:2vh}
"""


def qr_svg(data: str) -> str:
    """An inline ``<svg>`` QR code for ``data`` (paths only: no text from ``data`` ends up in the markup)."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2,
                       image_factory=qrcode.image.svg.SvgPathImage)
    qr.add_data(data)
    qr.make(fit=True)
    svg = qr.make_image().to_string(encoding="unicode").strip()
    if svg.startswith("<?xml"):
        svg = svg[svg.index("?>") + 2:].strip()
    return svg


def format_eta(eta_s: float | None) -> tuple[str, str]:
    """(Vietnamese, English) wording of a wait estimate; honest "unknown" when there is none.

    >>> format_eta(None), format_eta(30), format_eta(5400)
    (('chưa rõ', 'unknown'), ('dưới 1 phút', 'under 1 min'), ('khoảng 1 giờ 30 phút', 'about 1 h 30 min'))
    """
    if eta_s is None or eta_s < 0:
        return "chưa rõ", "unknown"
    minutes = round(eta_s / 60)
    if minutes < 1:
        return "dưới 1 phút", "under 1 min"
    if minutes < 60:
        return f"khoảng {minutes} phút", f"about {minutes} min"
    h, m = divmod(minutes, 60)
    return (f"khoảng {h} giờ {m} phút" if m else f"khoảng {h} giờ",
            f"about {h} h {m} min" if m else f"about {h} h")


def _card(item: QrItem) -> str:
    e = html.escape
    try:
        code = qr_svg(item.url)
    except (DataOverflowError, ValueError):
        code = '<p class="none">URL quá dài cho mã QR / URL too long for a QR code</p>'
    return (f'<div class="card"><div class="qr" role="img" aria-label="QR {e(item.title_en or item.title_vi)}">'
            f'{code}</div><div class="vi">{e(item.title_vi)}</div><div class="en">{e(item.title_en)}</div>'
            f'<div class="url">{e(item.url)}</div></div>')


def _wait_row(prefix: str, line: WaitLine) -> str:
    e = html.escape
    name_vi, name_en, waiting, eta_s = line
    eta_vi, eta_en = format_eta(eta_s)
    return (f'<tr><td>{e(str(prefix))}</td><td>{e(str(name_vi))}<br><span class="en">{e(str(name_en))}</span>'
            f'</td><td class="n">{int(waiting)}</td><td>{e(eta_vi)}<br><span class="en">{e(eta_en)}</span></td>'
            f'</tr>')


def render_qr_page(center_name: str, items: Sequence[QrItem], waits: Mapping[str, WaitLine],
                   refresh_s: int) -> str:
    """The whole HTML page. ``waits`` maps a service prefix to (name_vi, name_en, waiting, eta_s | None)."""
    refresh = int(refresh_s)
    if refresh < 1:
        raise ValueError(f"refresh_s must be at least 1 second, not {refresh_s!r}")
    e = html.escape
    cards = "".join(_card(i) for i in items) or '<p class="none">Chưa có thủ tục / No procedures configured</p>'
    rows = "".join(_wait_row(p, w) for p, w in sorted(waits.items()))
    table = ('<table><thead><tr><th>Quầy dịch vụ<br><span class="en">Service</span></th><th>Tên<br>'
             '<span class="en">Name</span></th><th>Đang chờ<br><span class="en">Waiting</span></th>'
             f'<th>Thời gian chờ<br><span class="en">Estimated wait</span></th></tr></thead><tbody>{rows}'
             '</tbody></table>') if rows else '<p class="none">Không có số đang chờ / Nobody is waiting</p>'
    return (
        '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{refresh}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(center_name)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{e(center_name)}</h1><p>Quét mã QR để nộp hồ sơ trực tuyến trên Cổng Dịch vụ công "
        "quốc gia · Scan a QR code to apply online on the National Public Service Portal</p></header>"
        f'<main><section class="qrs">{cards}</section><section class="waits"><h2>Số đang chờ · '
        f"Waiting now</h2>{table}</section></main></body></html>"
    )
