"""`msgstatus ingest|projector|api` as child processes that a test can kill -9 and restart."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import aiohttp

from tests.support.ports import free_port


@dataclass
class Service:
    """One ``msgstatus <command>`` child process; its output goes to ``log_path``.

    ``port`` is where it answers HTTP: ``/readyz`` for ingest and api, ``/metrics`` for the
    projector (its metrics port), so :meth:`wait_started` knows the process is up.
    """

    command: str
    env: dict[str, str]
    port: int
    log_path: pathlib.Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        """Base URL of the process's HTTP port."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the process (its own session, so a terminal's Ctrl-C does not reach it)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "msgstatus.cli", self.command],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_started(self, http: aiohttp.ClientSession, timeout: float = 60.0) -> None:
        """Wait until the process answers on its port (ready for ingest and the api)."""
        path = "/metrics" if self.command == "projector" else "/readyz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(f"{self.command} exited: {self.log_path}\n{self.log_tail()}")
            try:
                async with http.get(self.url + path) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.command} not started within {timeout} s: {self.log_path}")

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the process's output, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join([t for t in text if "Unable connect" not in t][-lines:])

    def running(self) -> bool:
        """True while the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no batch finished, no commit, no leaving the group."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout`` s); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


@dataclass
class Processes:
    """Every child process a test started; :meth:`close` leaves none behind."""

    base_env: dict[str, str]
    log_dir: pathlib.Path
    started: list[Service] = field(default_factory=list)

    def service(self, command: str, name: str, **settings: str) -> Service:
        """A ``msgstatus <command>`` (not started) with the base settings plus ``settings``.

        ``settings`` are ``MSGSTATUS_<NAME>`` values by lower-case name; ingest and api get a
        free port, a projector a free metrics port.
        """
        port = free_port()
        port_setting = {"ingest": "INGEST_PORT", "api": "API_PORT"}.get(command, "METRICS_PORT")
        env = dict(os.environ)
        env.update(self.base_env)
        env["MSGSTATUS_" + port_setting] = str(port)
        env.update({"MSGSTATUS_" + k.upper(): v for k, v in settings.items()})
        service = Service(command, env, port, self.log_dir / f"{name}.log")
        self.started.append(service)
        return service

    def close(self) -> None:
        """SIGKILL whatever still runs (a failed test must not leave processes)."""
        for service in self.started:
            service.kill()


async def metric(http: aiohttp.ClientSession, service: Service, name: str) -> float:
    """Sum of the samples of metric ``name`` a running process serves (0 when none)."""
    async with http.get(service.url + "/metrics") as resp:
        text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def applied(http: aiohttp.ClientSession, projectors: list[Service]) -> float:
    """Events the running projectors have folded so far (their counters summed)."""
    return sum([await metric(http, p, "msgstatus_events_applied_total") for p in projectors])


async def wait_applied(
    http: aiohttp.ClientSession, projectors: list[Service], events: float, timeout: float = 120.0
) -> None:
    """Wait until the projectors have folded ``events`` events between them."""
    deadline = time.monotonic() + timeout
    while True:
        for p in projectors:
            assert p.running(), f"a projector exited: {p.log_path}\n{p.log_tail()}"
        try:
            done = await applied(http, projectors)
        except aiohttp.ClientError:
            continue  # it exited meanwhile: the check above says so
        if done >= events:
            return
        assert time.monotonic() < deadline, f"{done} of {events} events folded in {timeout} s"
        await asyncio.sleep(0.05)
