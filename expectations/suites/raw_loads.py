"""Suite for the loads of the run (``meta.load_manifest``: one row per delivered file loaded since the
previous gate run): keys, allowed streams, counts that are never negative and that balance (every record
the loader counted in the file, independently of the parser, was loaded or rejected at load; a file whose
records could not be counted has no count and is not judged on the balance).
"""

import great_expectations as gx
import great_expectations.expectations as gxe

NAME = "raw_loads"
TABLE = None  # a query over meta.load_manifest: see segflow.jobs.dq_frames
COLUMNS = ("load_id", "source", "stream", "file_name", "rows_in_file", "rows_loaded", "rows_rejected",
           "unaccounted_rows")
KEY = "load_id"
RANGED = ("rows_in_file", "rows_loaded", "rows_rejected", "unaccounted_rows")
IN_SET = ("stream",)
NOT_NULL = ("load_id", "stream", "file_name", "rows_loaded", "rows_rejected")  # rows_in_file: null when uncounted
FLAGGED: tuple[str, ...] = ()
MASKED: tuple[str, ...] = ()


def build_suite(provided: set[str] | None = None, streams: list[str] | None = None) -> gx.ExpectationSuite:
    from segflow.sources.canonical import STREAMS

    suite = gx.ExpectationSuite(name=NAME)
    for column in NOT_NULL:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="load_id"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="stream", value_set=list(streams or STREAMS)))
    for column in ("rows_in_file", "rows_loaded", "rows_rejected"):
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
        column="unaccounted_rows", min_value=0, max_value=0,
        notes="Records in the file minus rows loaded minus rows rejected at load: nothing may go missing."))
    return suite
