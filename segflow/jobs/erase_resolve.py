"""Who is the person to erase: every identifier the warehouse holds for them.

The person's pseudonyms are *read* from the warehouse, never recomputed (the pseudonymization function and its
key belong to dbt staging): the identity graph of the last build (``intermediate.int_identity_graph``) gives
the canonical customer and every user id, device and pseudonymized e-mail it merged; the typed staging table
``staging.base_raw__events`` links each raw event row to the e-mail pseudonym staging gave it, which connects a
pseudonymous ``email:<hash>`` customer to the plain address in raw. Raw rows loaded after the last build are
reached through the same ids, and the devices and e-mail addresses on the person's raw rows join the person,
unless another user also uses them (a shared device or e-mail, which the identity graph does not merge either).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import duckdb

from segflow.erasure import RAW_IDENTITY, normalize, raw_row_predicate
from segflow.errors import InputError
from segflow.sources import canonical
from segflow.warehouse import table_exists

MAX_ROUNDS = 10
PERSON_TABLES = {"user": "_p_user", "anon": "_p_anon", "email": "_p_email", "hash": "_p_hash"}
LABELS = {"user": "customer", "anon": "anonymous id", "email": "e-mail"}
# the raw streams that carry a device or an e-mail column, and the column naming the row's user there
_OWNER = {**{s: "user_id" for s in canonical.EVENT_STREAMS}, "customers": "customer_id", "identities": "user_id"}
_CARRIES = {"anon": (*canonical.EVENT_STREAMS, "identities"), "email": (*canonical.EVENT_STREAMS, "customers",
                                                                        "identities")}
_COLUMN = {"anon": "anonymous_id", "email": "email"}


def _expr(kind: str, column: str) -> str:
    """A raw column as staging compares it (trimmed; e-mail lower-cased)."""
    return f"lower(nullif(trim({column}), ''))" if kind == "email" else f"nullif(trim({column}), '')"


@dataclass
class Person:
    customer_ids: set[str] = field(default_factory=set)  # canonical customer ids (the graph's)
    user_ids: set[str] = field(default_factory=set)  # every user / customer id, pseudonymous email:<hash> ids too
    anonymous_ids: set[str] = field(default_factory=set)
    email_hashes: set[str] = field(default_factory=set)  # staging's e-mail pseudonyms
    emails: set[str] = field(default_factory=set)  # plain addresses in raw (lower-cased)

    def sets(self) -> dict[str, set[str]]:
        return {"user": self.user_ids, "anon": self.anonymous_ids, "email": self.emails, "hash": self.email_hashes}

    def size(self) -> int:
        return sum(len(s) for s in self.sets().values())

    def raw_identifiers(self) -> set[str]:
        """What raw rows and free text can hold (never the pseudonymous email: ids)."""
        return {u for u in self.user_ids if not u.startswith("email:")} | self.anonymous_ids | self.emails

    def all_identifiers(self) -> set[str]:
        """Every id and pseudonym, including the person keys of stitched anonymous activity."""
        return (self.user_ids | self.anonymous_ids | self.emails | self.email_hashes
                | {f"anon:{a}" for a in self.anonymous_ids})


def fill(con: duckdb.DuckDBPyConnection, table: str, values: Iterable[str]) -> None:
    con.execute(f"create or replace temp table {table} (v varchar)")
    rows = [(v,) for v in set(values)]
    if rows:
        con.executemany(f"insert into {table} values (?)", rows)


def _values(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> set[str]:
    return {v for (v,) in con.execute(sql, params or []).fetchall() if v is not None}


def _raw_streams(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [s for s in canonical.STREAMS if table_exists(con, "raw", s)]


def _in_raw(con: duckdb.DuckDBPyConnection, kind: str, value: str) -> bool:
    for stream in _raw_streams(con):
        columns = (_COLUMN[kind],) if kind in _CARRIES and stream in _CARRIES[kind] else ()
        if kind == "user":
            columns = RAW_IDENTITY[stream]["user"]
        for column in columns:
            if con.execute(f"select count(*) from raw.{stream} where {_expr(kind, column)} = ?",
                           [value]).fetchall()[0][0]:
                return True
    return False


def person_rows(con: duckdb.DuckDBPyConnection, stream: str) -> str:
    """The rule for the person's rows of raw.<stream> over the _p_* tables; purged rows by their pseudonym."""
    purged = con.execute("select count(*) from information_schema.columns where table_schema = 'raw' and "
                         "table_name = ? and column_name = '_email_pseudonym'", [stream]).fetchall()[0][0]
    return raw_row_predicate(stream, "_p_user", "_p_anon", "_p_email",
                             "_p_hash" if purged and stream in canonical.EVENT_STREAMS else None)


def _graph(con: duckdb.DuckDBPyConnection) -> bool:
    return table_exists(con, "intermediate", "int_identity_graph")


def _sync(con: duckdb.DuckDBPyConnection, person: Person) -> None:
    for kind, table in PERSON_TABLES.items():
        fill(con, table, person.sets()[kind])


def _grow(con: duckdb.DuckDBPyConnection, person: Person) -> None:
    """One round: graph customers of the known identifiers and all their identifiers; devices and addresses
    on the person's raw rows; e-mail pseudonyms <-> plain addresses through staging's event lineage."""
    _sync(con, person)
    if _graph(con):
        person.customer_ids |= _values(con, """
            select customer_id from intermediate.int_identity_graph
            where (identifier_kind = 'user_id' and identifier in (select v from _p_user))
               or (identifier_kind = 'anonymous_id' and identifier in (select v from _p_anon))
               or (identifier_kind = 'email' and identifier in (select v from _p_hash))""")
        fill(con, "_p_customer", person.customer_ids)
        for kind, ident in (("user_id", person.user_ids), ("anonymous_id", person.anonymous_ids),
                            ("email", person.email_hashes)):
            ident |= _values(con, "select identifier from intermediate.int_identity_graph where identifier_kind = ? "
                                  "and customer_id in (select v from _p_customer)", [kind])
        person.user_ids |= person.customer_ids
        _sync(con, person)
    anon: set[str] = set()
    emails: set[str] = set()
    streams = _raw_streams(con)
    for stream in streams:
        mine = person_rows(con, stream)
        if stream in _CARRIES["email"]:
            emails |= _values(con, f"select distinct {_expr('email', 'email')} from raw.{stream} where {mine}")
        if stream in _CARRIES["anon"]:
            anon |= _values(con, f"select distinct {_expr('anon', 'anonymous_id')} from raw.{stream} "
                                 f"where {_expr('user', 'user_id')} in (select v from _p_user)")
        if stream == "identities":
            previous = _values(con, "select distinct nullif(trim(previous_id), '') from raw.identities "
                                    "where nullif(trim(user_id), '') in (select v from _p_user)")
            person.user_ids |= previous
            person.anonymous_ids |= previous
    person.anonymous_ids |= anon - _shared(con, streams, "anon", anon - person.anonymous_ids)
    person.emails |= emails - _shared(con, streams, "email", emails - person.emails)
    if table_exists(con, "staging", "base_raw__events"):
        _sync(con, person)
        for stream in (s for s in streams if s in canonical.EVENT_STREAMS):
            join = (f"from staging.base_raw__events as b inner join raw.{stream} as r on b._stream = '{stream}' "
                    "and b._load_id = r._load_id and b._source_row = r._source_row")
            person.email_hashes |= _values(con, f"select distinct b.email_hash {join} "
                                                "where lower(nullif(trim(r.email), '')) in (select v from _p_email)")
            person.emails |= _values(con, f"select distinct lower(nullif(trim(r.email), '')) {join} "
                                          "where b.email_hash in (select v from _p_hash)")


def _shared(con: duckdb.DuckDBPyConnection, streams: list[str], kind: str, candidates: set[str]) -> set[str]:
    """Candidates another user also uses (a row with a user id that is not the person's)."""
    if not candidates:
        return set()
    fill(con, "_p_candidates", candidates)
    expr = _expr(kind, _COLUMN[kind])
    shared: set[str] = set()
    for stream in (s for s in streams if s in _CARRIES[kind]):
        owner = _expr("user", _OWNER[stream])
        shared |= _values(con, f"select distinct {expr} from raw.{stream} where {expr} in (select v from "
                               f"_p_candidates) and {owner} is not null and {owner} not in (select v from _p_user)")
    if kind == "anon" and table_exists(con, "intermediate", "int_identity_identifiers"):
        shared |= _values(con, "select identifier from intermediate.int_identity_identifiers where identifier_kind = "
                               "'anonymous_id' and link_status <> 'usable' and identifier in (select v from "
                               "_p_candidates)")
    return shared


def _accounts_of(con: duckdb.DuckDBPyConnection, email: str) -> set[str]:
    """The user ids a requester's e-mail address names: the accounts that carry it, when they are one person in
    the identity graph (or one account); an address several people use is refused (name the customer)."""
    users: set[str] = set()
    for stream in _raw_streams(con):
        if stream in _CARRIES["email"]:
            owner = _expr("user", _OWNER[stream])
            users |= _values(con, f"select distinct {owner} from raw.{stream} where {_expr('email', 'email')} = ?",
                             [email])
    if len(users) <= 1:
        return users
    people = users
    if _graph(con):
        fill(con, "_p_accounts", users)
        people = _values(con, "select coalesce(g.customer_id, a.v) from _p_accounts as a left join "
                              "intermediate.int_identity_graph as g on g.identifier_kind = 'user_id' "
                              "and g.identifier = a.v")
    if len(people) > 1:
        raise InputError(f"the e-mail address {email!r} is used by {len(people)} different customers: name the "
                         "customer to erase with --customer. Nothing was erased.")
    return users


def resolve(con: duckdb.DuckDBPyConnection, customers: Iterable[str] = (), emails: Iterable[str] = (),
            anonymous_ids: Iterable[str] = (), erased_by: Callable[[str, str], str | None] | None = None) -> Person:
    """The person (or people) named by the request, with every identifier the warehouse holds for them.

    A customer id may be any user id of the person (the graph resolves it to the canonical customer), an e-mail
    address is matched case-insensitively, an anonymous id alone erases that device's activity. An identifier
    the warehouse does not know is an error: nothing is erased (``erased_by(kind, value)`` names the erasure that
    already removed it, if any)."""
    person = Person()
    unknown: list[str] = []
    graph = _graph(con)
    for kind, given, target in (("user", customers, person.user_ids), ("anon", anonymous_ids, person.anonymous_ids),
                                ("email", emails, person.emails)):
        for value in given:
            norm = normalize(kind, value)
            if norm is None:
                raise InputError("an empty identifier was given: name the customer id, e-mail or anonymous id")
            graph_kind = {"user": "user_id", "anon": "anonymous_id"}.get(kind)
            known = bool(graph and graph_kind and con.execute(
                "select count(*) from intermediate.int_identity_graph where identifier_kind = ? and identifier = ?",
                [graph_kind, norm]).fetchall()[0][0]) or _in_raw(con, kind, norm)
            if not known:
                earlier = erased_by(kind, norm) if erased_by else None
                unknown.append(f"{LABELS[kind]} {norm!r}" + (f" (erased by {earlier})" if earlier else ""))
            target.add(norm)
    if unknown:
        raise InputError(f"not in the warehouse: {', '.join(unknown)}. Nothing was erased. (A customer id may be "
                         "any user id of the person; e-mail addresses are matched case-insensitively.)")
    for email in sorted(person.emails):
        person.user_ids |= _accounts_of(con, email)
    for _ in range(MAX_ROUNDS):
        before = person.size()
        _grow(con, person)
        if person.size() == before:
            break
    _sync(con, person)
    return person
