"""The smallest receiver: prints every event it gets, one JSON object per line.

    python examples/print_receiver.py [PORT]     (default 8765)
    pytest --rt --rt-url http://127.0.0.1:8765/loader

A starting point for writing your own receiver; it answers the seed's way (one
event per POST, no batching header). `pytest-rt serve` is the full receiver.
"""

from __future__ import annotations

import http.server
import json
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            event = json.loads(body)
        except ValueError:
            self.send_error(400, "body is not JSON")
            return
        print(json.dumps(event), flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on http://127.0.0.1:{port}/loader", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
