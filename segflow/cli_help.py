"""Long help texts of the `segflow` CLI (kept apart so cli.py stays about commands)."""

LOAD_HELP = """\
Load delivered files into the warehouse's raw tables. Each file is loaded once (by checksum); every record
is loaded or rejected with its line number and reason (meta.load_rejects).

Where files come from
  $SEGFLOW_HOME/landing/<stream>/   files with segflow's canonical columns, for a stream:
                                    events, orders, support_tickets, email_events, customers, consent, identities
  $SEGFLOW_HOME/landing/<source>/   any export, described by <source>/_mapping.yml (scheduled runs use it)
  segflow load FILE... --mapping M  files from anywhere, described by mapping M

Built-in formats need only `format: segment` or `format: ga4` in the mapping (Segment spec JSON lines;
GA4 BigQuery export rows as JSON lines or Parquet). Shipped mappings: `segflow mapping list`.

A mapping (YAML; JSON Schema: `segflow mapping schema`) maps one export onto a canonical stream:

  name: shop_orders
  stream: orders
  format: csv                       # csv | jsonl | parquet | text (whitespace) | segment | ga4
  timezone: Europe/London           # zone of timestamps without an offset
  columns:
    order_id: InvoiceNo             # rename
    occurred_at: {column: InvoiceDate, timestamp_format: "%m/%d/%Y %H:%M"}
    event_type: {expr: "if(starts_with(InvoiceNo, 'C'), 'cancellation', 'purchase')"}
    revenue: {expr: "Quantity * UnitPrice"}
    channel: {value: store}         # constant
    user_id: CustomerID
  event_id: {hash: [InvoiceNo, StockCode, Quantity, InvoiceDate, CustomerID]}   # when there is no id

Try it first: `segflow mapping check mapping.yml export.csv` prints what each canonical column will hold
and which sampled rows staging would quarantine (unparseable timestamps or numbers, unknown event types).
A mapping that does not fit a file (a missing column, a timestamp format that matches no row) fails before
anything of that file is written, naming the column and the first offending row; single rows that do not
fit are quarantined with a reason. Loaded with a wrong mapping? Fix it and load the file again with --replace.

Expressions use Python syntax: == to compare, None (or null) for no value, 'text' in quotes,
col('Name with spaces') for awkward column names. An export identified only by e-mail: map the address to
`email` (never to user_id); staging pseudonymizes it into the customer id. Other personal data in the
export (phone, address): list its columns in `pii: [Phone, Street]` so a rejected line is stored redacted.
"""

MAPPING_HELP = """\
  segflow mapping check MAPPING.yml FILE   apply the mapping to (a sample of) FILE and print the result
  segflow mapping schema [--output F]      the JSON Schema of mapping files (for editors)
  segflow mapping list                     the mappings shipped with segflow (REES46, CDNOW, examples)
"""


BUILD_HELP = """\
Build the warehouse with dbt (staging, intermediate, marts and their tests) as of --as-of: every table holds
exactly the data received before it.

Builds are incremental: the event-level models (staging, stitching, sessions, orders) process only what
arrived since the last successful build, plus the sessions it touches, and give the same tables as a full
rebuild. segflow rebuilds everything by itself (and says why) on the first build, after a build that did not
finish, when --as-of moves backwards, when a setting that shapes the tables or the dbt project changed, and
when a load was replaced; --full-refresh asks for it.
"""

ERASE_HELP = """\
Erase a person (right to erasure): every row of theirs in raw, staging, quarantine, the identity graph,
the marts, feature snapshots and segment assignments, rejected lines that name them, and their rows in the
export files; identifiers in artifacts (logs, dbt target, data-quality results) become [erased].

Who
  --customer ID        any user / customer id of the person: the identity graph of the last build finds the
                       whole person (every merged account, device and e-mail pseudonym)
  --email ADDRESS      an e-mail address (case-insensitive), e.g. for an e-mail-only customer
  --anonymous-id ID    a device / cookie id: the person it belongs to, or the device's own activity
Each option can be repeated; an identifier the warehouse does not know is an error and nothing is erased.

Afterwards
  * meta.erasure_log records who ran it, when, --reference, rows per table and file - never the ids.
  * meta.erasure_list keeps keyed hashes (HMAC-SHA-256, the PII key SEGFLOW_PII_KEY) of the person's ids: a
    re-delivered file is loaded without their rows (counted as erased in marts.fct_load_audit).
  * The next `segflow build` is a full refresh (aggregates are recomputed without the person).
  * Landing files are the producer's deliveries and are not modified: the output lists those that held
    the person's rows, for the producer to act on.

Example
  segflow erase --customer C000143 --reference DSR-2025-0042 --dry-run   # what would be erased
  segflow erase --customer C000143 --reference DSR-2025-0042
"""
