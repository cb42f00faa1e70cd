"""A real local CRM endpoint for the sink tests: a threaded ``http.server`` on 127.0.0.1, ephemeral port.

It deduplicates on the Idempotency-Key header (a key is applied once; a repeat answers 200 with
``"duplicate": true``) and counts, independently of segflow, every request, every key and every record applied.
A script makes it fail: ``500`` / ``503``, ``(429, "Retry-After value")``, ``"drop"`` (close the connection
before applying), ``"apply_drop"`` (apply, then close without answering: the answer is lost), ``400``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class CrmServer:
    def __init__(self, record_id: str = "customer_id"):
        self.record_id = record_id
        self.lock = threading.Lock()
        self.script: list = []  # actions for the next requests, in order; then "ok"
        self.refuse = None  # predicate(records) -> True: answer 503 (a batch the CRM cannot take yet)
        self.applied: dict[str, list] = {}  # idempotency key -> records applied
        self.record_counts: Counter = Counter()  # record id -> times applied
        self.requests = 0
        self.key_requests: Counter = Counter()
        self.duplicates = 0
        self.auth: set = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def _answer(self, status: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _drop(self):
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key")
                with server.lock:
                    server.requests += 1
                    server.key_requests[key] += 1
                    server.auth.add(self.headers.get("Authorization"))
                    action = server.script.pop(0) if server.script else "ok"
                    if server.refuse is not None and server.refuse(body["records"]):
                        action = 503
                if action == "drop":
                    return self._drop()
                if isinstance(action, tuple):
                    return self._answer(action[0], {"error": "slow down"}, {"Retry-After": action[1]})
                if isinstance(action, int):
                    return self._answer(action, {"error": f"scripted {action}"})
                with server.lock:
                    duplicate = key in server.applied
                    if duplicate:
                        server.duplicates += 1
                    else:
                        server.applied[key] = body["records"]
                        server.record_counts.update(r[server.record_id] for r in body["records"])
                if action == "apply_drop":
                    return self._drop()
                self._answer(200, {"duplicate": duplicate})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/batches"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> CrmServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
