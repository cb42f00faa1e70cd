"""ml.rules: the tiny predicate grammar of hybrid rule segments (no eval)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.rules import evaluate_rules, parse_predicate

FRAME = pd.DataFrame({"monetary": [600.0, 600.0, 1.0, None], "days_since_last_order": [10, 40, None, 1],
                      "frequency": [0, 0, 12, 0]})


def _members(predicate: str) -> list[bool]:
    return evaluate_rules([parse_predicate("r", predicate)], FRAME)["r"].tolist()


@pytest.mark.parametrize(("predicate", "expected"), [
    ("monetary > 500", [True, True, False, False]),
    ("monetary > 500 and days_since_last_order <= 30", [True, False, False, False]),
    ("monetary>500 or frequency >= 10", [True, True, True, False]),
    ("not monetary > 500", [False, False, True, True]),
    ("(frequency == 0 or frequency == 12) and days_since_last_order != 40", [True, False, False, True]),
    ("monetary >= 1e2 AND frequency < 1", [True, True, False, False]),
])
def test_predicates(predicate, expected):
    assert _members(predicate) == expected


def test_missing_value_never_satisfies_a_comparison():
    assert _members("days_since_last_order < 100") == [True, True, False, True]


def test_and_binds_tighter_than_or():
    assert parse_predicate("r", "frequency > 1 or monetary > 500 and frequency < 0").tree[0] == "or"


@pytest.mark.parametrize("predicate", [
    "", "monetary >", "monetary > abc", "__import__('os') > 1", "monetary > 1 and", "(monetary > 1",
    "monetary > 1)", "monetary = 1", "1 < monetary", "monetary > 1; drop table x",
])
def test_bad_predicates_are_refused(predicate):
    with pytest.raises(ValueError):
        parse_predicate("bad", predicate)


def test_unknown_feature_is_named():
    with pytest.raises(KeyError, match="clv"):
        evaluate_rules([parse_predicate("vip", "clv > 1")], FRAME)


def test_result_is_boolean_per_row():
    out = evaluate_rules([parse_predicate("a", "frequency > 0"), parse_predicate("b", "frequency <= 0")], FRAME)
    assert out["a"].dtype == np.bool_ and (out["a"] ^ out["b"]).all()
