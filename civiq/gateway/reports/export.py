"""Reports and ratings as files: Excel (.xlsx, openpyxl) and CSV (UTF-8 with a BOM, so Excel shows Vietnamese).

Headers are Vietnamese; numbers are numbers: times in seconds (one decimal), shares in percent (one
decimal), the mean score on the 5-level scale (two decimals). An empty cell means "nothing to measure"
(e.g. no wait in the period), never zero. docs/reports.md lists every column.

Sheets of the workbook: "Tổng hợp" (the period, the center's totals, the timeline), "Theo dịch vụ",
"Theo quầy", "Theo cán bộ" (one row per group and a last "Tổng cộng" row: the center's total), "Đánh giá"
(every rating). :class:`Scope` leaves out what a role may not see (satisfaction, per-clerk rows, ratings).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

BOM = "\ufeff"
TOTAL_LABEL = "Tổng cộng"


@dataclass(frozen=True)
class Scope:
    """What the file may hold: ``satisfaction`` (rating numbers), ``clerks`` (per-clerk rows), ``ratings``
    (the rating rows)."""

    satisfaction: bool = True
    clerks: bool = True
    ratings: bool = True


FULL = Scope()

# (key in a report row, Vietnamese header, kind): kind s = seconds, pct = share as percent, n = count,
# score = mean score; sat = only with satisfaction
COLUMNS: list[tuple[str, str, str, bool]] = [
    ("issued", "Số phiếu đã cấp", "n", False),
    ("served", "Đã phục vụ", "n", False),
    ("no_show", "Vắng mặt", "n", False),
    ("transferred", "Chuyển tiếp", "n", False),
    ("priority_served", "Ưu tiên đã phục vụ", "n", False),
    ("waits", "Số lượt chờ", "n", False),
    ("wait_mean_s", "Chờ trung bình (giây)", "s", False),
    ("wait_p50_s", "Chờ P50 (giây)", "s", False),
    ("wait_p90_s", "Chờ P90 (giây)", "s", False),
    ("wait_over_15m_share", "Chờ trên 15 phút (%)", "pct", False),
    ("wait_over_30m_share", "Chờ trên 30 phút (%)", "pct", False),
    ("service_mean_s", "Phục vụ trung bình (giây)", "s", False),
    ("service_p50_s", "Phục vụ P50 (giây)", "s", False),
    ("service_p90_s", "Phục vụ P90 (giây)", "s", False),
    ("ratings", "Số lượt đánh giá", "n", True),
    ("satisfied", "Số lượt hài lòng", "n", True),
    ("satisfied_share", "Tỷ lệ hài lòng (%)", "pct", True),
    ("score_mean_5", "Điểm trung bình (thang 5)", "score", True),
    ("coverage", "Tỷ lệ được đánh giá (%)", "pct", True),
]
GROUPS = (("services", "Dịch vụ", "Theo dịch vụ"), ("counters", "Quầy", "Theo quầy"),
          ("clerks", "Cán bộ", "Theo cán bộ"))
PERIOD_VI = {"day": "Ngày", "week": "Tuần", "month": "Tháng"}
RATING_COLUMNS: list[tuple[str, str]] = [
    ("ts", "Thời điểm"), ("center", "Mã trung tâm"), ("center_name", "Trung tâm"), ("ticket", "Số phiếu"),
    ("day", "Ngày của phiếu"), ("service", "Mã dịch vụ"), ("service_name", "Dịch vụ"), ("counter", "Mã quầy"),
    ("counter_name", "Quầy"), ("clerk", "Mã cán bộ"), ("clerk_name", "Cán bộ"), ("score", "Điểm"),
    ("scale", "Thang điểm"), ("satisfied", "Hài lòng (1/0)"), ("reasons", "Mã lý do"),
    ("reason_names", "Lý do"), ("dossier", "Mã hồ sơ"),
]


def value(v: Any, kind: str) -> float | int | None:
    """A report number as it goes into a file: rounded as the module docstring says, None stays None."""
    if v is None:
        return None
    if kind == "n":
        return int(v)
    if kind == "s":
        return round(float(v), 1)
    if kind == "pct":
        return round(100 * float(v), 1)
    return round(float(v), 2)


def columns(report: Mapping[str, Any], scope: Scope = FULL) -> list[tuple[str, str, str]]:
    """The metric columns (key, header, kind) for this report and scope, then one per rating reason."""
    cols = [(k, h, kind) for k, h, kind, sat in COLUMNS if scope.satisfaction or not sat]
    if scope.satisfaction:
        cols += [(f"reason:{r}", f"Lý do: {name}", "n") for r, name in (report.get("reasons") or {}).items()]
    return cols


def cell(row: Mapping[str, Any], key: str, kind: str) -> float | int | None:
    if key.startswith("reason:"):
        return int((row.get("reasons") or {}).get(key[7:], 0)) if row.get("ratings") is not None else None
    return value(row.get(key), kind)


def _groups(scope: Scope) -> list[tuple[str, str, str]]:
    return [g for g in GROUPS if scope.clerks or g[0] != "clerks"]


# ------------------------------------------------------------------------------------------ CSV
def _csv(rows: Sequence[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return (BOM + buf.getvalue()).encode("utf-8")


def report_csv(report: Mapping[str, Any], scope: Scope = FULL) -> bytes:
    """One table: a row for the center's total, then one per service, counter and clerk; column "Nhóm" says
    which (Tổng cộng / Dịch vụ / Quầy / Cán bộ)."""
    cols = columns(report, scope)
    p = report["period"]
    head = ["Trung tâm", "Kỳ", "Từ ngày", "Đến ngày", "Nhóm", "Mã", "Tên"] + [h for _, h, _ in cols]
    pre = [report["center"], p["label"], p["first"], p["last"]]
    rows: list[list[Any]] = [head, pre + [TOTAL_LABEL, "", report["total"]["name"]]
                             + [cell(report["total"], k, kind) for k, _, kind in cols]]
    for gkey, gname, _ in _groups(scope):
        for r in report[gkey]:
            rows.append(pre + [gname, r["key"] or "", r["name"]] + [cell(r, k, kind) for k, _, kind in cols])
    return _csv(rows)


def _rating_cell(r: Mapping[str, Any], key: str, tz: str) -> Any:
    v = r.get(key)
    if key == "ts":
        return datetime.fromisoformat(v).astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")
    if key == "satisfied":
        return 1 if v else 0
    if key in ("reasons", "reason_names"):
        return "; ".join(v or [])
    return v


def ratings_csv(rows: Sequence[Mapping[str, Any]], tz: str = "Asia/Ho_Chi_Minh") -> bytes:
    """Every rating, one per line (times in local time with their offset, e.g. 2026-12-05T09:12:03+07:00)."""
    return _csv([[h for _, h in RATING_COLUMNS]]
                + [[_rating_cell(r, k, tz) for k, _ in RATING_COLUMNS] for r in rows])


def province_csv(prov: Mapping[str, Any], scope: Scope = FULL) -> bytes:
    """The province's table: one row per center (its total), the same metric columns (reasons left out)."""
    cols = [c for c in columns({}, scope)]
    p = prov["period"]
    rows: list[list[Any]] = [["Kỳ", "Từ ngày", "Đến ngày", "Mã trung tâm", "Trung tâm"] + [h for _, h, _ in cols]]
    for r in prov["centers"]:
        rows.append([p["label"], p["first"], p["last"], r["key"], r["name"]] + [cell(r, k, kind) for k, _, kind in cols])
    return _csv(rows)


def province_xlsx(prov: Mapping[str, Any], scope: Scope = FULL) -> bytes:
    """One sheet "Theo trung tâm": a row per center."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    cols = columns({}, scope)
    p = prov["period"]
    wb = Workbook()
    ws = wb.active
    ws.title = "Theo trung tâm"
    ws.append([f"Báo cáo chất lượng phục vụ — {PERIOD_VI[p['kind']]} {p['label']} ({p['first']} → {p['last']})"])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(["Mã trung tâm", "Trung tâm"] + [h for _, h, _ in cols])
    for c in ws[2]:
        c.font = Font(bold=True)
    for r in prov["centers"]:
        ws.append([r["key"], r["name"]] + [cell(r, k, kind) for k, _, kind in cols])
    _finish_sheet(ws, 3, 3, [kind for _, _, kind in cols])
    ws.freeze_panes = "C3"
    ws.column_dimensions["B"].width = 30
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ Excel
FORMATS = {"s": "0.0", "pct": "0.0", "score": "0.00", "n": "0"}


def _finish_sheet(ws: Any, first_row: int, first_col: int, kinds: Sequence[str]) -> None:
    """Number formats per column kind, and text that starts with "=" kept as text (openpyxl would otherwise
    write a formula: a dossier code or a name is never one)."""
    for row in ws.iter_rows(min_row=first_row):
        for c in row:
            if isinstance(c.value, str) and c.value.startswith("="):
                c.data_type = "s"
            i = c.column - first_col
            if 0 <= i < len(kinds) and isinstance(c.value, int | float):
                c.number_format = FORMATS.get(kinds[i], "General")


def report_xlsx(report: Mapping[str, Any], ratings: Sequence[Mapping[str, Any]] | None = None,
                scope: Scope = FULL) -> bytes:
    """The workbook (see the module docstring) as bytes."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    bold = Font(bold=True)
    cols = columns(report, scope)
    p = report["period"]
    wb = Workbook()
    ws = wb.active
    ws.title = "Tổng hợp"
    ws.append(["Báo cáo chất lượng phục vụ"])
    ws["A1"].font = Font(bold=True, size=14)
    info = [("Trung tâm", f"{report['center_name']} ({report['center']})"),
            ("Kỳ báo cáo", f"{PERIOD_VI[p['kind']]} {p['label']}"), ("Từ ngày", p["first"]),
            ("Đến ngày", p["last"]), ("Múi giờ", p["tz"])]
    if report.get("clerk"):
        info.append(("Cán bộ", f"{report.get('clerk_name') or report['clerk']} ({report['clerk']})"))
    info.append(("Lập lúc", report["generated_at"]))
    for k, v in info:
        ws.append([k, v])
    ws.append([])
    ws.append(["Chỉ số", "Giá trị"])
    for c in ws[ws.max_row]:
        c.font = bold
    for k, h, kind in cols:
        ws.append([h, cell(report["total"], k, kind)])
    ws.append([])
    ws.append(["Theo giờ" if p["kind"] == "day" else "Theo ngày"])
    ws[f"A{ws.max_row}"].font = bold
    tl_cols = [c for c in cols if not c[0].startswith("reason:")]
    ws.append(["Giờ" if p["kind"] == "day" else "Ngày"] + [h for _, h, _ in tl_cols])
    for c in ws[ws.max_row]:
        c.font = bold
    for r in report.get("timeline") or []:
        ws.append([r["bucket"]] + [cell(r, k, kind) for k, _, kind in tl_cols])
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 28

    for gkey, gname, title in _groups(scope):
        gs = wb.create_sheet(title)
        gs.append(["Mã", gname] + [h for _, h, _ in cols])
        for r in report[gkey]:
            gs.append([r["key"] or "", r["name"]] + [cell(r, k, kind) for k, _, kind in cols])
        gs.append(["", TOTAL_LABEL] + [cell(report["total"], k, kind) for k, _, kind in cols])
        for c in gs[1] + gs[gs.max_row]:
            c.font = bold
        _finish_sheet(gs, 2, 3, [kind for _, _, kind in cols])
        gs.freeze_panes = "C2"
        gs.column_dimensions["B"].width = 28
        for i in range(3, len(cols) + 3):
            gs.column_dimensions[get_column_letter(i)].width = 14

    if scope.ratings and ratings is not None:
        rs = wb.create_sheet("Đánh giá")
        rs.append([h for _, h in RATING_COLUMNS])
        for c in rs[1]:
            c.font = bold
        for r in ratings:
            rs.append([_rating_cell(r, k, p["tz"]) for k, _ in RATING_COLUMNS])
        _finish_sheet(rs, 2, 1, [])
        rs.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
