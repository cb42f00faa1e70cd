"""Suite for customer profile versions delivered before the run's as-of (``raw.customers`` as staged).

E-mail format is checked where the address still exists: on the raw row, before staging pseudonymizes it
(staging keeps only a keyed hash, whose format says nothing about the address). GX never sees the address:
the frame carries its *shape*, ASCII letters replaced by ``a`` and digits by ``9``
(``customer1@example.com`` -> ``aaaaaaaa9@aaaaaaa.aaa``); the format rule gives the same answer on the shape
as on the address, and results and Data Docs can show failing shapes without holding personal data.

Age: the source's age band (``25-34``, ``65+`` or a plain age) must parse and lie within
``SEGFLOW_DQ_MIN_AGE``..``SEGFLOW_DQ_MAX_AGE``. E-mail and age are judged on a share of the profiles
(``SEGFLOW_DQ_MIN_VALID_PROFILE_SHARE``): a few typos do not stop segmentation, a broken column does.
Dates are strict: a signup after the profile's update, before ``SEGFLOW_MIN_EVENT_DATE`` or after the run's
as-of is a broken profile (it would give negative tenure).
"""

import great_expectations as gx
import great_expectations.expectations as gxe

NAME = "customer_profiles"
TABLE = None  # a query: see segflow.jobs.dq_frames
COLUMNS = ("customer_id", "email_shape", "age_band", "age_min", "age_max", "signup_at", "updated_at")
KEY = "profile_version"
RANGED = ("age_min", "age_max", "signup_at", "updated_at")
IN_SET: tuple[str, ...] = ()
NOT_NULL = ("customer_id",)
FLAGGED = ("updated_at < signup_at", "age_max < age_min")
MASKED = ("customer_id",)
# the format rule on shapes: [a-z9] on a shape is [A-Za-z0-9] on the address, so both get the same verdict
EMAIL_PATTERN = r"[a-z9!#$%&'*+/=?^_`{|}~.-]+@[a-z9-]+(\.[a-z9-]+)*\.[a-z]{2,}"
AGE_PATTERN = r"\s*[0-9]{1,3}\s*(-\s*[0-9]{1,3}|\+)?\s*"


def build_suite(provided: set[str] | None = None) -> gx.ExpectationSuite:
    provided = set(COLUMNS) if provided is None else provided
    suite = gx.ExpectationSuite(name=NAME)
    share = {"$PARAMETER": "min_valid_profile_share"}
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="customer_id"))
    if "email_shape" in provided:
        suite.add_expectation(gxe.ExpectColumnValuesToMatchRegex(
            column="email_shape", regex=f"^{EMAIL_PATTERN}$", mostly=share,
            notes="Shapes of the raw addresses (letters -> a, digits -> 9): the address itself never reaches GX."))
    if "age_band" in provided:
        suite.add_expectation(gxe.ExpectColumnValuesToMatchRegex(column="age_band", regex=f"^{AGE_PATTERN}$",
                                                                 mostly=share))
        for column in ("age_min", "age_max"):
            suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
                column=column, min_value={"$PARAMETER": "min_age"}, max_value={"$PARAMETER": "max_age"},
                mostly=share))
        suite.add_expectation(gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="age_max", column_B="age_min", or_equal=True, ignore_row_if="either_value_is_missing"))
    for column in ("signup_at", "updated_at"):
        if column in provided:
            suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
                column=column, min_value={"$PARAMETER": "earliest_event"}, max_value={"$PARAMETER": "as_of"},
                notes="Not before SEGFLOW_MIN_EVENT_DATE, not after the run's as-of."))
    if {"signup_at", "updated_at"} <= provided:
        suite.add_expectation(gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="updated_at", column_B="signup_at", or_equal=True, ignore_row_if="either_value_is_missing",
            notes="A profile is not updated before its customer signed up."))
    return suite
