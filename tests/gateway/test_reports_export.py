"""Report files: the .xlsx opened with openpyxl, the CSVs read back as Excel would (UTF-8 BOM), the daily
ratings drop (atomic, re-written when a late event arrives) and the ``civiq gateway report`` /
``ratings-drop`` commands on a real store."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from civiq.cli import main as civiq_main
from civiq.contract import Event
from civiq.gateway.reports import period_of, report_from_store, sample
from civiq.gateway.reports.drop import RatingsDrop
from civiq.gateway.reports.export import COLUMNS, Scope, ratings_csv, report_csv, report_xlsx
from civiq.gateway.reports.ratings import ratings_from_store
from civiq.gateway.state import LiveState
from civiq.gateway.store.series import SeriesStore

CENTER = "hcm-q1"
DAYS = [date(2026, 12, 4), date(2026, 12, 5)]


@pytest.fixture
def store(tmp_path: Path) -> SeriesStore:
    st = SeriesStore(tmp_path / "data" / "series.db")
    st.add_events([(CENTER, n, e) for n, e in sample.sample_events(DAYS, per_day=80, seed=5)])
    state = LiveState()
    state.apply_status(CENTER, "pi-1", sample.birth(CENTER), datetime(2026, 12, 5, 1, tzinfo=UTC))
    st.save_state(state.to_json())
    return st


def _report(store: SeriesStore) -> tuple[dict, list[dict]]:
    p = period_of("day", "2026-12-05")
    since, until = p.bounds(store.tz)
    return (report_from_store(store, CENTER, p, sample.names()),
            ratings_from_store(store, CENTER, since, until, sample.names()))


def _csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "Excel needs the UTF-8 BOM to show Vietnamese"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_xlsx_has_the_sheets_headers_numbers_and_totals(store: SeriesStore) -> None:
    rep, ratings = _report(store)
    wb = load_workbook(io.BytesIO(report_xlsx(rep, ratings)))
    assert wb.sheetnames == ["Tổng hợp", "Theo dịch vụ", "Theo quầy", "Theo cán bộ", "Đánh giá"]
    svc = wb["Theo dịch vụ"]
    head = [c.value for c in svc[1]]
    assert head[:4] == ["Mã", "Dịch vụ", "Số phiếu đã cấp", "Đã phục vụ"]
    assert "Chờ trung bình (giây)" in head and "Tỷ lệ hài lòng (%)" in head and "Lý do: Chờ lâu" in head
    rows = [[c.value for c in r] for r in svc.iter_rows(min_row=2)]
    assert [r[1] for r in rows] == ["Đất đai", "Hộ tịch", "Kinh doanh", "Tổng cộng"]
    total = dict(zip(head, rows[-1], strict=True))
    t = rep["total"]
    assert total["Đã phục vụ"] == t["served"] == sum(r[3] for r in rows[:-1])
    assert total["Số phiếu đã cấp"] == t["issued"]
    assert total["Chờ trung bình (giây)"] == round(t["wait_mean_s"], 1)
    assert total["Tỷ lệ hài lòng (%)"] == round(100 * t["satisfied_share"], 1)
    assert isinstance(total["Chờ P90 (giây)"], int | float) and isinstance(total["Đã phục vụ"], int)  # numbers, not text
    clerks = [[c.value for c in r] for r in wb["Theo cán bộ"].iter_rows(min_row=2)]
    assert [r[1] for r in clerks] == ["Nguyễn Thị Lan", "Trần Văn Minh", "Lê Thu Hà", "(chưa đăng nhập)", "Tổng cộng"]
    assert clerks[0][2] is None  # nobody issues at a counter: "issued" has no value per clerk
    summary = {r[0].value: r[1].value for r in wb["Tổng hợp"].iter_rows(min_row=2) if r[0].value}
    assert summary["Kỳ báo cáo"] == "Ngày 2026-12-05" and summary["Đã phục vụ"] == t["served"]
    rated = [[c.value for c in r] for r in wb["Đánh giá"].iter_rows()]
    assert rated[0][:4] == ["Thời điểm", "Mã trung tâm", "Trung tâm", "Số phiếu"]
    assert len(rated) - 1 == len(ratings) == t["ratings"]
    assert rated[1][0].endswith("+07:00") and rated[1][2] == "Phường Bến Thành"


def test_text_that_looks_like_a_formula_stays_text(store: SeriesStore) -> None:
    rep, ratings = _report(store)
    ratings = [dict(ratings[0], dossier="=HYPERLINK(\"http://x\")", clerk_name="=1+1")]
    ws = load_workbook(io.BytesIO(report_xlsx(rep, ratings)))["Đánh giá"]
    assert ws["Q2"].value == '=HYPERLINK("http://x")' and ws["Q2"].data_type == "s"
    assert ws["K2"].data_type == "s"
    assert load_workbook(io.BytesIO(report_xlsx(rep, ratings)))["Theo dịch vụ"]["I2"].number_format == "0.0"


def test_xlsx_for_a_technician_has_no_satisfaction(store: SeriesStore) -> None:
    rep, _ = _report(store)
    wb = load_workbook(io.BytesIO(report_xlsx(rep, None, Scope(satisfaction=False, clerks=False, ratings=False))))
    assert wb.sheetnames == ["Tổng hợp", "Theo dịch vụ", "Theo quầy"]
    head = [c.value for c in wb["Theo quầy"][1]]
    assert not any("hài lòng" in h or "đánh giá" in h.lower() or h.startswith("Lý do") for h in head)


def test_csv_opens_with_the_bom_and_vietnamese_headers(store: SeriesStore) -> None:
    rep, ratings = _report(store)
    rows = _csv_rows(report_csv(rep))
    head = rows[0]
    assert head[:7] == ["Trung tâm", "Kỳ", "Từ ngày", "Đến ngày", "Nhóm", "Mã", "Tên"]
    assert head[7:7 + len(COLUMNS)] == [h for _, h, _, _ in COLUMNS]  # the same headers as the workbook
    by = {(r[4], r[5]): dict(zip(head, r, strict=True)) for r in rows[1:]}
    assert int(by[("Tổng cộng", "")]["Đã phục vụ"]) == rep["total"]["served"]
    assert by[("Cán bộ", "c01")]["Tên"] == "Nguyễn Thị Lan"
    assert by[("Cán bộ", "")]["Tên"] == "(chưa đăng nhập)"
    assert float(by[("Dịch vụ", "A")]["Chờ P50 (giây)"]) == rep["services"][0]["wait_p50_s"]
    rr = _csv_rows(ratings_csv(ratings))
    assert rr[0] == ["Thời điểm", "Mã trung tâm", "Trung tâm", "Số phiếu", "Ngày của phiếu", "Mã dịch vụ", "Dịch vụ",
                     "Mã quầy", "Quầy", "Mã cán bộ", "Cán bộ", "Điểm", "Thang điểm", "Hài lòng (1/0)", "Mã lý do",
                     "Lý do", "Mã hồ sơ"]
    assert len(rr) - 1 == rep["total"]["ratings"]
    assert any(r[16].startswith("H29.22-") for r in rr[1:]), "dossier codes are in the file"
    assert any(r[15] == "Chờ lâu" or "Chờ lâu" in r[15] for r in rr[1:])


def test_ratings_drop_is_atomic_and_rewritten_for_late_events(store: SeriesStore, tmp_path: Path) -> None:
    out = tmp_path / "drop"
    state_file = tmp_path / "data" / "ratings-drop.json"
    drop = RatingsDrop(store, out, lambda c: sample.names(), state_file=state_file, days=3, every_s=60)
    now = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)  # 08:00 on 6 December: 4 and 5 December have ended
    written = drop.tick(now, mono=1000.0)
    assert sorted(p.name for p in written) == ["ratings-hcm-q1-2026-12-03.csv", "ratings-hcm-q1-2026-12-04.csv",
                                               "ratings-hcm-q1-2026-12-05.csv"]
    f = out / "ratings-hcm-q1-2026-12-05.csv"
    before = _csv_rows(f.read_bytes())
    assert len(before) > 1 and len(_csv_rows((out / "ratings-hcm-q1-2026-12-03.csv").read_bytes())) == 1
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [], "no temporary file is left"
    assert drop.tick(now, mono=1010.0) == []  # not before every_s
    assert drop.tick(now, mono=1061.0) == []  # nothing changed: nothing re-written
    # a node that was offline sends its outbox: a late rating of the 5th
    late = Event(seq=9000, ts=datetime(2026, 12, 5, 9, 30, tzinfo=UTC), type="ticket.rated",
                 data={"ticket": "Z001", "day": "2026-12-05", "service": "A", "counter": "1", "score": 5, "scale": 5,
                       "reasons": [], "clerk": "c01", "by": "pad:r1", "dossier": "H29.22-241205-9999"})
    store.add_event(CENTER, "pi-1", late)
    assert [p.name for p in drop.tick(now, mono=1130.0)] == ["ratings-hcm-q1-2026-12-05.csv"]
    after = _csv_rows(f.read_bytes())
    assert len(after) == len(before) + 1 and after[-1][3] == "Z001" and after[-1][16] == "H29.22-241205-9999"
    # a restarted gateway remembers what it wrote
    again = RatingsDrop(store, out, lambda c: sample.names(), state_file=state_file, days=3)
    assert again.tick(now, mono=0.0) == []


def test_cli_report_and_ratings_drop(store: SeriesStore, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setenv("CIVIQ_GW_DATA_DIR", str(tmp_path / "data"))
    xlsx = tmp_path / "out" / "bao-cao.xlsx"
    assert civiq_main(["gateway", "report", "--center", CENTER, "--period", "week", "--date", "2026-12-05",
                       "--format", "xlsx", "--out", str(xlsx)]) == 0
    wb = load_workbook(xlsx)
    assert wb.sheetnames[0] == "Tổng hợp" and "Đánh giá" in wb.sheetnames
    names = [r[1].value for r in wb["Theo cán bộ"].iter_rows(min_row=2)]
    assert names[0] == "Nguyễn Thị Lan", "clerk names come from the saved births"
    week = report_from_store(store, CENTER, period_of("week", "2026-12-05"), sample.names())
    assert wb["Theo quầy"].cell(wb["Theo quầy"].max_row, 4).value == week["total"]["served"]
    assert f"{week['total']['served']} served" in capsys.readouterr().err
    out_csv = tmp_path / "out" / "bao-cao.csv"
    assert civiq_main(["gateway", "report", "--center", CENTER, "--date", "2026-12-05", "--format", "csv",
                       "--out", str(out_csv)]) == 0
    assert _csv_rows(out_csv.read_bytes())[1][4] == "Tổng cộng"
    assert civiq_main(["gateway", "ratings-drop", "--date", "2026-12-04", "--out-dir", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "ratings-hcm-q1-2026-12-04.csv").exists()
    assert civiq_main(["gateway", "ratings-drop", "--date", "2026-12-04"]) == 2
    assert "--out-dir" in capsys.readouterr().err
    assert civiq_main(["gateway", "report", "--center", CENTER, "--date", "5/12", "--out", "-"]) == 2
    assert "2026-12-05" in capsys.readouterr().err


def test_cli_without_a_store_says_where_it_looked(tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setenv("CIVIQ_GW_DATA_DIR", str(tmp_path / "nowhere"))
    assert civiq_main(["gateway", "report", "--center", CENTER, "--out", str(tmp_path / "x.xlsx")]) == 2
    assert str(tmp_path / "nowhere" / "series.db") in capsys.readouterr().err

