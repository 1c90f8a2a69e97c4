"""QR boards: a Nextion-style serial HMI (:mod:`.nextion`, emulator in :mod:`civiq.edge.sim.qrboard`) or a web page for an
HDMI screen (:mod:`.page`); :mod:`.cycler` decides which procedure's QR code is shown now."""

from civiq.edge.devices.qrboard.cycler import QrCycler, QrItem
from civiq.edge.devices.qrboard.nextion import NextionQrBoard
from civiq.edge.devices.qrboard.page import render_qr_page

__all__ = ["NextionQrBoard", "QrCycler", "QrItem", "render_qr_page"]
