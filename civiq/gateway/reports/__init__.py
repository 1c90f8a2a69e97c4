"""Reports a center is scored on (docs/reports.md): numbers from the stored event log, ratings rows, files.

* :mod:`.periods` — day / ISO week / month in local time;
* :mod:`.compute` — the report of one center and period (issued, served, waits, service times, satisfaction);
* :mod:`.ratings` — every rating as a row (JSON API, "Đánh giá" sheet, daily CSV drop);
* :mod:`.export` — .xlsx (openpyxl) and CSV (UTF-8 with BOM).
"""

from civiq.gateway.reports.compute import compute, percentile, report_from_store
from civiq.gateway.reports.periods import PERIODS, Period, PeriodError, period_of
from civiq.gateway.reports.ratings import rating_rows, ratings_from_store, write_drop

__all__ = ["PERIODS", "Period", "PeriodError", "compute", "percentile", "period_of", "rating_rows",
           "ratings_from_store", "report_from_store", "write_drop"]
