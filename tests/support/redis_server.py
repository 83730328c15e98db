"""A redis-server of a test's own, which the test may stop and restart (no persistence)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time


class LocalRedis:
    """``redis-server`` on 127.0.0.1:``port`` without persistence, as a child process.

    Raises ``RuntimeError`` when it does not answer within 10 s of :meth:`start`.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._proc = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
            [  # noqa: S607 - redis-server from PATH, as .ci/redis.sh installs it
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open and nothing answers, as with a
        hung host or a network partition."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kill the server (its data is gone: no persistence)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)  # a paused server is killed all the same
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None
