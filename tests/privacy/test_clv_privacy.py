"""ml.customer_clv follows the person: `erase` removes their rows, a consent revocation redacts earlier weeks."""

from __future__ import annotations

from tests_support import week_end

from segflow.jobs.clv import fit_clv
from segflow.jobs.consent import redact_revoked
from segflow.jobs.erase import erase
from segflow.warehouse import connect


def _clv_rows(settings) -> dict[str, int]:
    with connect(settings, read_only=True) as con:
        return dict(con.execute("select customer_id, count(*) from ml.customer_clv group by 1").fetchall())


def _two_customers(settings) -> tuple[str, str]:
    rows = sorted(_clv_rows(settings))
    return rows[0], rows[-1]


def test_erase_removes_the_person_from_customer_clv(home_copy):
    assert fit_clv(home_copy, as_of=week_end(4)).status == "fitted"
    before = _clv_rows(home_copy)
    person, other = _two_customers(home_copy)
    result = erase(home_copy, customers=[person], reference="DSR-CLV")
    after = _clv_rows(home_copy)
    assert result.status == "done" and result.tables["ml.customer_clv"] == 1
    assert person not in after and after[other] == 1
    assert sum(after.values()) == sum(before.values()) - 1


def test_a_revoked_consent_removes_earlier_clv_rows(home_copy):
    assert fit_clv(home_copy, as_of=week_end(4)).status == "fitted"
    person, other = _two_customers(home_copy)
    # what the next build's consent model says after the customer withdrew analytics consent
    with connect(home_copy) as con:
        con.execute("update intermediate.int_customer_consent set has_analytics_consent = false "
                    "where customer_id = ?", [person])
    redaction = redact_revoked(home_copy)
    after = _clv_rows(home_copy)
    assert redaction.tables["ml.customer_clv"] == 1
    assert person not in after and other in after
