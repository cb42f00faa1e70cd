"""Activation: segment deltas and near-real-time triggers delivered to a CRM / CDP (docs/activation.md).

- :mod:`segflow.activation.store` - the activation store (<home>/activation.duckdb): ledger, dead letters, outbox.
- :mod:`segflow.activation.sink` - the HTTP sink: batches, idempotency keys, retries, rate limit, dead letters.
- :mod:`segflow.activation.campaigns` - campaigns.yml: segment -> action.
- :mod:`segflow.activation.deliver` - `segflow activate` / `segflow dead-letter`: what is sent, from where.
- :mod:`segflow.activation.triggers` - abandoned carts and session offers from fresh landing files.
"""
