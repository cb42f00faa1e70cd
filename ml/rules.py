"""Hybrid rule segments: named predicates over customer features, parsed by a tiny grammar (no ``eval``).

Grammar (case-insensitive keywords)::

    predicate  := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | comparison
    comparison := FEATURE ("<" | "<=" | ">" | ">=" | "==" | "!=") NUMBER

FEATURE is a column name (letters, digits, underscores), NUMBER a decimal literal. A comparison with a missing
value is false. Example: ``monetary > 500 and days_since_last_order <= 30``.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["RuleSegment", "evaluate_rules", "parse_predicate"]

_TOKEN = re.compile(r"\s*(?:(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<op><=|>=|==|!=|<|>)"
                    r"|(?P<paren>[()])|(?P<word>[A-Za-z_][A-Za-z0-9_]*))")
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
        "!=": operator.ne}


@dataclass(frozen=True)
class RuleSegment:
    """A named predicate; ``tree`` is its parsed form (nested tuples), ``features`` the columns it reads."""

    name: str
    predicate: str
    tree: tuple
    features: frozenset[str]


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot parse {text!r} at position {pos}: {text[pos:pos + 10]!r}")
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "word" and value.lower() in ("and", "or", "not"):
            kind, value = "kw", value.lower()
        out.append((kind, value))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def parse_predicate(name: str, predicate: str) -> RuleSegment:
    """Parse ``predicate`` (module grammar); raises ``ValueError`` naming the problem."""
    tokens = _tokens(predicate)
    pos = 0
    features: set[str] = set()

    def peek():
        return tokens[pos] if pos < len(tokens) else (None, None)

    def take(kind=None, value=None):
        nonlocal pos
        tok = peek()
        if tok[0] is None or (kind and tok[0] != kind) or (value and tok[1] != value):
            want = value or kind or "more input"
            raise ValueError(f"rule {name!r}: expected {want} at token {pos + 1} of {predicate!r}")
        pos += 1
        return tok

    def or_expr():
        node = and_expr()
        while peek() == ("kw", "or"):
            take()
            node = ("or", node, and_expr())
        return node

    def and_expr():
        node = not_expr()
        while peek() == ("kw", "and"):
            take()
            node = ("and", node, not_expr())
        return node

    def not_expr():
        if peek() == ("kw", "not"):
            take()
            return ("not", not_expr())
        if peek() == ("paren", "("):
            take()
            node = or_expr()
            take("paren", ")")
            return node
        feature = take("word")[1]
        op = take("op")[1]
        number = float(take("num")[1])
        features.add(feature)
        return ("cmp", feature, op, number)

    if not tokens:
        raise ValueError(f"rule {name!r}: empty predicate")
    tree = or_expr()
    if pos != len(tokens):
        raise ValueError(f"rule {name!r}: unexpected {tokens[pos][1]!r} in {predicate!r}")
    return RuleSegment(name=name, predicate=predicate, tree=tree, features=frozenset(features))


def _evaluate(tree: tuple, frame: pd.DataFrame) -> np.ndarray:
    kind = tree[0]
    if kind == "cmp":
        _, feature, op, number = tree
        values = pd.to_numeric(frame[feature], errors="coerce").astype("Float64").to_numpy(np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            return _OPS[op](values, number) & ~np.isnan(values)
    if kind == "not":
        return ~_evaluate(tree[1], frame)
    left, right = _evaluate(tree[1], frame), _evaluate(tree[2], frame)
    return (left & right) if kind == "and" else (left | right)


def evaluate_rules(rules: list[RuleSegment], frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Boolean membership per rule name over the rows of ``frame``; ``KeyError`` names absent features."""
    out = {}
    for rule in rules:
        missing = sorted(rule.features - set(frame.columns))
        if missing:
            raise KeyError(f"rule segment {rule.name!r} reads unknown feature(s) {missing}")
        out[rule.name] = _evaluate(rule.tree, frame)
    return out
