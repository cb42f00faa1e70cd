"""The weekly HTML report (static, offline, self-contained): :func:`write_report` renders a week's sections
(docs/report.md) into ``<home>/reports/weekly/segments_<as_of date>.html`` and ``latest.html``."""

from segflow.report.job import Report, find_report, report_path, report_url, write_report

__all__ = ["Report", "find_report", "report_path", "report_url", "write_report"]
