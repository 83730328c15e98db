"""Running ``wrk`` (one thread, N connections, bounded duration) and reading its report."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import BenchError, require_loopback

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_LATENCY = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: requests/s, latency percentiles (ms), counts of failed requests."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: int

    def __str__(self) -> str:
        bad = f", {self.non2xx} non-2xx" if self.non2xx else ""
        bad += f", {self.socket_errors} socket errors" if self.socket_errors else ""
        return f"{self.rps:,.0f} req/s, p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms{bad}"


def parse(report: str) -> WrkResult:
    """Read wrk's text report (``--latency``)."""
    rps = _RPS.search(report)
    total = _TOTAL.search(report)
    if rps is None or total is None:
        raise BenchError(f"cannot read wrk's report:\n{report}")
    lat = {int(p): float(v) * _UNITS[u] for p, v, u in _LATENCY.findall(report)}
    non2xx = _NON2XX.search(report)
    sock = _SOCKET.search(report)
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=lat.get(50, float("nan")),
        p99_ms=lat.get(99, float("nan")),
        requests=int(total.group(1)),
        non2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sum(int(x) for x in sock.groups()) if sock else 0,
    )


def run(
    url: str,
    duration_s: float,
    *,
    connections: int = 64,
    threads: int = 1,
    headers: Sequence[str] = (),
    script: Path | None = None,
    max_bad_share: float = 0.001,
) -> WrkResult:
    """Load ``url`` (loopback only) for ``duration_s`` seconds; fail on failed requests.

    More than ``max_bad_share`` of non-2xx answers or socket errors means the numbers measure
    error paths, so that is a :class:`BenchError`, not a result.
    """
    require_loopback(urlsplit(url).hostname or "")
    exe = shutil.which("wrk")
    if exe is None:
        raise BenchError("wrk is not installed (apt-get install -y wrk)")
    argv = [exe, "-t", str(threads), "-c", str(connections), "-d", f"{duration_s:g}s"]
    argv += ["--latency", "--timeout", "10s"]
    for header in headers:
        argv += ["-H", header]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv, loopback URL
            argv, capture_output=True, text=True, timeout=duration_s + 30, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish within {duration_s + 30:.0f}s") from None
    if out.returncode != 0:
        raise BenchError(f"wrk failed ({out.returncode}): {out.stderr.strip()}")
    result = parse(out.stdout)
    bad = result.non2xx + result.socket_errors
    if result.requests == 0 or bad > max_bad_share * result.requests:
        sample = _sample_answer(exe, url, headers, script)
        raise BenchError(f"wrk against {url}: {result} of {result.requests} requests; {sample}")
    return result


_SHOW_ANSWER = """
local shown = false
function response(status, headers, body)
  if not shown and status >= 300 then
    shown = true
    io.write("first failed answer: " .. status .. " " .. string.sub(body or "", 1, 400) .. "\\n")
  end
end
"""


def _sample_answer(exe: str, url: str, headers: Sequence[str], script: Path | None) -> str:
    """Re-run briefly on one connection and show the first failed answer (diagnostics only)."""
    probe = Path(str(script) + ".probe.lua") if script else None
    argv = [exe, "-t", "1", "-c", "1", "-d", "1s"]
    for header in headers:
        argv += ["-H", header]
    if probe is not None and script is not None:
        probe.write_text(script.read_text() + _SHOW_ANSWER)
        argv += ["-s", str(probe)]
    argv.append(url)
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv, loopback URL
            argv, capture_output=True, text=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired:
        return "(no sample answer)"
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("first failed answer")]
    return lines[0] if lines else "(the 1-connection re-run got no failed answer)"


def lua_string(text: str) -> str:
    """A Lua long-bracket string literal holding ``text`` verbatim."""
    level = 0
    while True:
        close = f"]{'=' * level}]"
        if (text + close).find(close) == len(text):  # the first closing bracket is ours
            break
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}{close}"


def post_script(
    path: Path, url_path: str, requests: Sequence[tuple[dict[str, str], bytes]]
) -> Path:
    """Write a wrk Lua script that cycles through pre-built POST requests (headers, body).

    The requests are formatted once per thread in ``init`` (after wrk set the Host header).
    """
    lines = ["local reqs = {}", "local i = 0", "function init(args)"]
    for headers, body in requests:
        hdrs = ", ".join(f"[ {lua_string(k)} ] = {lua_string(v)}" for k, v in headers.items())
        lines.append(
            f"  reqs[#reqs + 1] = wrk.format('POST', {lua_string(url_path)}, "
            f"{{{hdrs}}}, {lua_string(body.decode())})"
        )
    lines += [
        "end",
        "function request()",
        "  i = i % #reqs + 1",
        "  return reqs[i]",
        "end",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path
