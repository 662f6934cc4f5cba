"""A local HTTP server on 127.0.0.1 for download tests: every GET gets 200 and one body (a file, or what a captive
portal or proxy sends instead), optionally cut short after `cut_at` bytes."""
import http.server
import threading


class Server:
    """Serves `body` with `content_type`; counts requests; `cut_at` (bytes) truncates the response."""

    def __init__(self, body: bytes, content_type: str | None = "application/octet-stream"):
        self.body, self.content_type, self.cut_at, self.requests = body, content_type, None, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                self.send_response(200)
                if server.content_type:
                    self.send_header("Content-Type", server.content_type)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body[: server.cut_at])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
