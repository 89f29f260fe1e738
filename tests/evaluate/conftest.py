"""A fake OpenAI-compatible chat server on 127.0.0.1 for the judge tests.

``fake_judge.script`` is a list of behaviours consumed one per request; when it is empty the
server answers like a judge that prefers the response containing the word GOOD.
Behaviours: ("ok", text), ("body", raw_bytes), ("status", code, headers), ("sleep", seconds),
("cut",): a 200 whose body stops halfway and the connection closes (a server killed mid-answer).
``silent_judge`` is a server that accepts connections and never answers.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class FakeJudge:
    def __init__(self):
        self.script: list[tuple] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    @staticmethod
    def prefer_good(content: str) -> str:
        a = re.search(r"(?:Response|Summary) A: (.*)", content).group(1)
        letter = "A" if "GOOD" in a else "B"
        return f'Comparison: one of them is better.\nPrefered: "{letter}"'


def _handler(state: FakeJudge):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                action = state.script.pop(0) if state.script else None
            if action and action[0] == "sleep":
                time.sleep(action[1])
                action = None
            if action and action[0] == "status":
                self.send_response(action[1])
                for k, v in action[2].items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                return
            if action and action[0] == "cut":
                raw = json.dumps({"choices": [{"message": {"content": "Prefered: A"}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw[: len(raw) // 2])
                self.close_connection = True
                return
            if action and action[0] == "body":
                raw = action[1]
            else:
                text = action[1] if action else FakeJudge.prefer_good(body["messages"][-1]["content"])
                raw = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(raw)

    return Handler


@pytest.fixture
def fake_judge():
    state = FakeJudge()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_judge():
    """The URL of a server that accepts every connection and never says a word."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held, stop = [], threading.Event()

    def accept():
        sock.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(sock.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()
