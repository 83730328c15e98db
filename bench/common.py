"""What every benchmark shares: the run context, child processes, result rows, statistics.

The context (:class:`Ctx`) knows where Kafka and Redis are, how long to run, and starts the
real services (``msgstatus api|ingest|projector``) and the reference servers as child
processes, each in its own session, logging to the run directory. Every child is stopped on
exit (SIGTERM, then SIGKILL after a few seconds), by its own pid.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


class BenchError(RuntimeError):
    """A benchmark could not run as designed (a service did not start, a check failed)."""


def require_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback address; raise :class:`BenchError` otherwise.

    Load is only ever generated against this machine's own loopback interface.
    """
    name = host.strip("[]")
    if name.lower() in LOOPBACK_NAMES:
        return host
    try:
        if ipaddress.ip_address(name).is_loopback:
            return host
    except ValueError:
        pass
    raise BenchError(f"{host!r} is not a loopback address: benchmarks only load 127.0.0.1/::1")


def split_hostport(text: str, default_port: int) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) as a pair."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    host, _, port = text.rpartition(":")
    return (host, int(port)) if host else (text, default_port)


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(probe: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    """Poll ``probe`` until it returns True; :class:`BenchError` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(step)
    raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")


def http_status(url: str, headers: dict[str, str] | None = None, timeout: float = 2.0) -> int:
    """Status of a GET to ``url`` (0 when nothing answers)."""
    require_loopback(urlsplit(url).hostname or "")
    req = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback http only
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, urllib.error.URLError):
        return 0


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> bytes:
    """Body of a GET to ``url`` that must answer 200."""
    require_loopback(urlsplit(url).hostname or "")
    req = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback http only
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        return bytes(resp.read())


# --- results ------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table.

    ``ours`` and ``reference`` are medians over the rounds; ``ratio`` is the median of the
    per-round ratios (each round measures both back to back), or, for absolute targets,
    None. ``met`` is None when the target could not be judged.
    """

    bench: str
    path: str
    ours: str
    reference: str
    ratio: str
    target: str
    met: bool | None
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "bench": self.bench,
            "path": self.path,
            "ours": self.ours,
            "reference": self.reference,
            "ratio": self.ratio,
            "target": self.target,
            "met": self.met,
            "note": self.note,
            "data": self.data,
        }


def median(values: Iterable[float]) -> float:
    """Median of the values (NaN when there are none)."""
    items = list(values)
    return statistics.median(items) if items else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0-100) of the values (NaN when there are none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, int(-(-pct * len(ordered) // 100)))  # ceil(pct/100 * n)
    return ordered[min(rank, len(ordered)) - 1]


def ratios(ours: Sequence[float], reference: Sequence[float]) -> list[float]:
    """Per-round ratios ours/reference (rounds are paired)."""
    return [o / r for o, r in zip(ours, reference, strict=True) if r > 0]


def fmt_num(value: float, unit: str = "") -> str:
    """A figure for the table: thousands separated, one decimal below 100."""
    if math.isnan(value):
        return "n/a"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    return f"{text} {unit}".strip()


def fmt_ratio(value: float) -> str:
    """A ratio for the table (``0.93x``)."""
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def fmt_ratios(per_round: Sequence[float]) -> str:
    """Median of per-round ratios with their range: ``0.93x (0.81-1.02)``."""
    if not per_round:
        return "n/a"
    return f"{median(per_round):.2f}x ({min(per_round):.2f}-{max(per_round):.2f})"


def interleaved(
    rounds: int, variants: dict[str, Callable[[], Any]], log: Callable[[str], None]
) -> dict[str, list[Any]]:
    """Run each variant once per round, alternating the order (ABBA...), so drift of the
    machine within a minute hits both sides alike. Returns the results per variant."""
    names = list(variants)
    out: dict[str, list[Any]] = {n: [] for n in names}
    for index in range(rounds):
        order = names if index % 2 == 0 else list(reversed(names))
        for name in order:
            result = variants[name]()
            out[name].append(result)
            log(f"  round {index + 1}/{rounds} {name}: {result}")
    return out


# --- processes ----------------------------------------------------------------------------


@dataclass
class Child:
    """A child process this run started."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    stop_argv: list[str] | None = None  # for children that must be stopped by a command


class Procs:
    """Starts children in their own sessions and stops every one of them, by pid, on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []
        atexit.register(self.stop_all)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        """Start ``argv`` with ``env`` added to this process's environment."""
        log_path = self.log_dir / f"{name}.log"
        full_env = {**os.environ, **(env or {})}
        with log_path.open("ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - argv built by the benchmarks, no shell
                list(argv),
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=cwd or ROOT,
            )
        child = Child(name, proc, log_path)
        self.children.append(child)
        return child

    def check_alive(self, child: Child) -> None:
        """Raise :class:`BenchError` (with the log's tail) when ``child`` has exited."""
        if child.proc.poll() is not None:
            tail = child.log_path.read_text(errors="replace")[-2000:]
            raise BenchError(f"{child.name} exited with {child.proc.returncode}:\n{tail}")

    def stop(self, child: Child, timeout: float = 10.0) -> None:
        """SIGTERM the child (its pid only), SIGKILL after ``timeout`` seconds."""
        if child in self.children:
            self.children.remove(child)
        proc = child.proc
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)

    def stop_all(self) -> None:
        """Stop every child still running, newest first."""
        for child in reversed(list(self.children)):
            self.stop(child)


# --- the run context ----------------------------------------------------------------------


@dataclass
class Ctx:
    """Settings of one ``python -m bench`` run and the means to start services."""

    kafka: str
    redis_url: str
    quick: bool
    rounds: int
    duration_s: float
    faust_python: str | None = None
    run_id: str = field(default_factory=lambda: time.strftime("%m%d%H%M%S"))
    log_dir: Path = field(init=False)
    procs: Procs = field(init=False)
    verbose: bool = True

    def __post_init__(self) -> None:
        for part in self.kafka.split(","):
            require_loopback(split_hostport(part, 9092)[0])
        require_loopback(urlsplit(self.redis_url).hostname or "")
        self.log_dir = Path(f"/tmp/msgstatus-bench-{self.run_id}")  # noqa: S108 - logs only
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs = Procs(self.log_dir)

    def log(self, text: str) -> None:
        """Progress line on stderr."""
        if self.verbose:
            sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
            sys.stderr.flush()

    def unique(self, what: str) -> str:
        """A name unique to this run (topics, generations, groups)."""
        return f"bench{self.run_id}{what}{uuid.uuid4().hex[:4]}"

    # services ----------------------------------------------------------------------------
    def service_env(self, **settings: Any) -> dict[str, str]:
        """``MSGSTATUS_*`` variables: this run's Kafka and Redis, WARNING logs, no metrics port."""
        env = {
            "MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "MSGSTATUS_REDIS_URL": self.redis_url,
            # Access log lines are INFO: at WARNING none is written (the numbers are fair).
            "MSGSTATUS_LOG_LEVEL": "WARNING",
            "MSGSTATUS_METRICS_PORT": "0",
        }
        for name, value in settings.items():
            env[f"MSGSTATUS_{name.upper()}"] = str(value)
        return env

    def start_service(self, command: str, name: str, **settings: Any) -> Child:
        """Start ``msgstatus <command>`` as a child with the given ``MSGSTATUS_*`` settings."""
        return self.procs.start(
            name, [str(BIN / "msgstatus"), command], self.service_env(**settings)
        )

    def start_http_service(
        self, command: str, name: str, port_setting: str, ready_path: str, **settings: Any
    ) -> tuple[Child, str]:
        """Start an HTTP service on a free loopback port; wait until ``ready_path`` says 200."""
        port = free_port()
        child = self.start_service(
            command, name, host="127.0.0.1", **{port_setting: port}, **settings
        )
        url = f"http://127.0.0.1:{port}"
        self.wait_http(child, url + ready_path, 60)
        return child, url

    def start_reference(self, kind: str, name: str, *args: str) -> tuple[Child, str]:
        """Start a reference server of :mod:`bench.reference_servers` on a free port."""
        port = free_port()
        argv = [sys.executable, "-m", "bench.reference_servers", kind, "--port", str(port), *args]
        child = self.procs.start(name, argv)
        url = f"http://127.0.0.1:{port}"
        self.wait_http(child, url + "/healthz", 30)
        return child, url

    def wait_http(self, child: Child, url: str, timeout: float) -> None:
        """Wait until ``url`` answers 200 while ``child`` keeps running."""

        def probe() -> bool:
            self.procs.check_alive(child)
            return http_status(url) == 200

        wait_until(probe, timeout, f"{child.name} at {url}", step=0.2)


# --- machine facts ------------------------------------------------------------------------


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


PRODUCT = ("ingest", "projector", "query_api", "schemas", "msgstatus")


def product_fingerprint() -> str:
    """Which product code was measured: the commit, and a hash of the product's sources as
    they are on disk (the working tree may differ from the commit)."""
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256()
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".lua", ".json"):
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(ROOT), "status", "--porcelain", "--", *PRODUCT])
    state = "with uncommitted changes" if dirty not in ("", "unknown") else "clean"
    return f"commit {commit} ({state}); product sources sha256 {digest.hexdigest()[:12]}"


def machine_facts(redis_version: str) -> dict[str, str]:
    """What the table's numbers were measured on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    jars = sorted((ROOT / ".cache" / "kafka-libs").glob("kafka_2.13-*.jar"))
    kafka = jars[-1].name.removeprefix("kafka_2.13-").removesuffix(".jar") if jars else "unknown"
    versions = {}
    for dist in ("aiohttp", "aiokafka", "redis", "hiredis", "orjson", "pydantic"):
        try:
            from importlib.metadata import version  # noqa: PLC0415

            versions[dist] = version(dist)
        except Exception:  # a missing dist is just "unknown"
            versions[dist] = "unknown"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis": redis_version,
        "kafka": kafka + " (KRaft, single node, .ci/kafka.sh)",
        "java": _first_line(["java", "-version"]),
        "wrk": _first_line([shutil.which("wrk") or "wrk", "-v"]),
        "libraries": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "code": product_fingerprint(),
    }


# --- CPU accounting -----------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the command name: state is field 3, utime 14 and stime 15 (1-based, man proc)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores; /proc/stat, not idle/iowait)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    busy = sum(values[:8]) - values[3] - values[4]  # user..steal minus idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU use of named processes over a stretch of time, in % of one core; ``others`` is
    what the rest of the machine used meanwhile (other users' processes, the kernel)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.machine = machine_busy_seconds()
        self.t0 = time.monotonic()

    def percent(self) -> dict[str, float]:
        """CPU % of one core of each process since this meter was made, and ``others``."""
        span = max(time.monotonic() - self.t0, 1e-9)
        out = {
            name: 100 * (cpu_seconds(pid) - self.start[name]) / span
            for name, pid in self.pids.items()
        }
        total = 100 * (machine_busy_seconds() - self.machine) / span
        out["others"] = max(0.0, total - sum(out.values()))
        return out


def infra_pids(ctx: Ctx) -> dict[str, int]:
    """Pids of this run's Redis and Kafka, when they are on this machine and findable."""
    from bench.redisutil import client  # noqa: PLC0415 - avoids an import cycle

    pids: dict[str, int] = {}
    with contextlib.suppress(Exception):
        info: dict[str, Any] = client(ctx.redis_url).info("server")
        pids["redis"] = int(info["process_id"])
    port = split_hostport(ctx.kafka.split(",")[0], 9092)[1]
    with contextlib.suppress(OSError, ValueError):
        pids["kafka"] = int((ROOT / ".cache" / f"kafka-{port}" / "kafka.pid").read_text().strip())
    return pids


def fmt_cpu(percent: dict[str, float]) -> str:
    """``ingest 95%, projector 40%, ...``"""
    return ", ".join(f"{name} {value:.0f}%" for name, value in percent.items())
