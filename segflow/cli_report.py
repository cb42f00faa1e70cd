"""``segflow report``: write (or find) a week's HTML report, print its path and open it in a browser."""

from __future__ import annotations

import sys


def cmd_report(args) -> None:
    from segflow.cli import _as_of
    from segflow.errors import NotReady, WarehouseLocked
    from segflow.report import find_report, write_report
    from segflow.settings import get_settings

    settings = get_settings()
    as_of = _as_of(args.as_of)
    if args.path:
        path = find_report(settings, as_of)
    else:
        try:
            report = write_report(settings, as_of=as_of)
        except (WarehouseLocked, NotReady) as exc:
            try:  # the warehouse is busy or lacks the week: an existing report is still worth showing
                path = find_report(settings, as_of)
            except NotReady:
                raise exc from None
            print(f"segflow: could not write the report ({exc}); showing the one written before.", file=sys.stderr)
        else:
            path = report.path
            missing = [k for k, ok in report.sections.items() if not ok]
            print(f"segflow: report as of {report.as_of:%Y-%m-%d %H:%M}: {len(report.sections) - len(missing)} of "
                  f"{len(report.sections)} sections with content"
                  + (f"; not available: {', '.join(missing)}" if missing else ""), file=sys.stderr)
    print(path)
    if not args.no_open and not args.path:
        import webbrowser

        if not webbrowser.open(path.resolve().as_uri()):
            print(f"segflow: no browser found; open {path.resolve().as_uri()}", file=sys.stderr)


def report_args(p) -> None:
    import argparse

    from segflow.cli_types import as_of

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = ("Render the weekly report of a segmented week into "
                     "$SEGFLOW_HOME/reports/weekly/segments_<date>.html (latest.html follows the newest week), print its "
                     "path and open it in the default browser. Static and offline: one HTML file, no script, no "
                     "external resource. See docs/report.md.")
    p.add_argument("--as-of", type=as_of, help="the week (ISO date or date/time); default: the latest segmented week")
    p.add_argument("--no-open", action="store_true", help="do not open a browser")
    p.add_argument("--path", action="store_true",
                   help="only print the path of the report already written (the week's, or latest.html); "
                        "write and open nothing")
    p.set_defaults(func=cmd_report)
