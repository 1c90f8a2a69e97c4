"""The center page in Chromium shows, live, who is signed in at each counter (the clerk's name from the edge's
birth), "no clerk signed in" elsewhere, and offers a manager the clerk's sign-out."""

from __future__ import annotations

from pathlib import Path

from civiq.contract import Event, Status
from tests.conftest import wait_for
from tests.gateway.test_web_browser import Site, browser, login, page, shot, site  # noqa: F401 - fixtures


def test_center_page_shows_the_clerk_at_each_counter(page, site: Site, tmp_path: Path) -> None:  # noqa: ANN001, F811
    login(page, site, "lan", "lan-pass-123", then="/centers/hcm-q1")
    page.wait_for_selector('[data-counter="1"] [data-field="ticket"]')
    assert page.locator('[data-field="clerk"]').count() == 0  # a center without clerks: nothing about them
    now = site.clock.now()
    st = site.view.state
    st.apply_status("hcm-q1", "pi-1", Status(online=True, bdseq=2, ts=now, clerks={
        "lan": "Nguyễn Thị Lan", "minh": "Trần Văn Minh"}), now)
    st.apply_event("hcm-q1", "pi-1", Event(seq=1, ts=now, type="clerk.signed_in",
                                           data={"counter": "1", "clerk": "lan", "by": "keypad:k1"}), now)
    page.wait_for_selector('[data-counter="1"] [data-field="clerk"][data-clerk="lan"]', timeout=3000)
    assert page.text_content('[data-counter="1"] [data-field="clerk"]') == "Cán bộ: Nguyễn Thị Lan"
    assert page.text_content('[data-counter="2"] [data-field="clerk"]') == "Chưa có cán bộ đăng nhập"
    assert page.locator('[data-counter="2"] button[data-action="sign_out"]').count() == 0
    st.apply_event("hcm-q1", "pi-1", Event(seq=2, ts=now, type="ticket.called", data={
        "ticket": "A045", "service": "A", "counter": "1", "wait_s": 60, "recalls": 0, "clerk": "lan"}), now)
    page.wait_for_selector('#recent tr[data-ticket="A045"] [data-field="clerk"]', timeout=3000)
    assert page.text_content('#recent tr[data-ticket="A045"] [data-field="clerk"]') == " · Nguyễn Thị Lan"
    shot(page, tmp_path, "center-clerks")
    page.click('[data-counter="1"] button[data-action="sign_out"]')
    wait_for(lambda: site.view.commands, timeout=5, what="the sign-out command to reach the view")
    _center, cmd, user = site.view.commands[0]
    assert (cmd.counter, cmd.action, user) == ("1", "sign_out", "lan")
