"""``python -m bench [name ...]``: run the benchmarks, print the table, keep the results.

Kafka and Redis must be on loopback addresses (``--kafka``, ``--redis``); when nothing
answers there, this run starts them itself (``redis-server``, ``.ci/kafka.sh``) and stops
them at the end. Every service and reference server is a child process of this run and is
stopped on exit, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from bench import BENCHMARKS
from bench.common import (
    ROOT,
    BenchError,
    Ctx,
    Procs,
    Row,
    machine_facts,
    port_open,
    require_loopback,
    split_hostport,
    wait_until,
)
from bench.redisutil import client, server_version
from bench.report import render_table, write_docs
from runtime.redis_config import LISTPACK_VALUE_BYTES

DEFAULT_FAUST_PYTHON = "/tmp/msgstatus-faust-venv/bin/python"  # noqa: S108 - a throwaway venv


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {BENCHMARKS})")
    parser.add_argument("--kafka", default="127.0.0.1:39092", help="Kafka bootstrap (loopback)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6381/0", help="Redis URL (loopback)")
    parser.add_argument("--quick", action="store_true", help="smoke run of about 2 minutes")
    parser.add_argument("--rounds", type=int, help="rounds per comparison (default 5; quick 2)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 6; quick 2)")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--results", type=Path, help="JSON results file (default: run dir)")
    parser.add_argument(
        "--faust-python",
        default=os.environ.get("MSGSTATUS_BENCH_FAUST_PYTHON", DEFAULT_FAUST_PYTHON),
        help="python of a venv with faust-streaming, for the projector's Faust reference "
        f"(default $MSGSTATUS_BENCH_FAUST_PYTHON or {DEFAULT_FAUST_PYTHON}; skipped if absent)",
    )
    parser.add_argument(
        "--no-start-infra",
        action="store_true",
        help="fail instead of starting Redis/Kafka when nothing answers at --redis/--kafka",
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    return args


class Infra:
    """Redis and Kafka for the run: used when they answer, started (and stopped) otherwise."""

    def __init__(self, ctx: Ctx, allow_start: bool) -> None:
        self.ctx = ctx
        self.allow_start = allow_start
        self.kafka_started: dict[str, str] | None = None
        # Its own process list: the run stops every benchmark's children after each module,
        # and a Redis started for the whole run must outlive them.
        self.procs = Procs(ctx.log_dir)

    def up(self) -> None:
        """Make sure both answer."""
        ctx = self.ctx
        url = urlsplit(ctx.redis_url)
        host, port = require_loopback(url.hostname or ""), url.port or 6379
        if not port_open(host, port):
            self._refuse(f"no Redis at {host}:{port}")
            ctx.log(f"starting redis-server on {host}:{port} (stopped at the end)")
            argv = ["redis-server", "--port", str(port), "--bind", host]
            argv += ["--save", "", "--appendonly", "no"]
            argv += ["--hash-max-listpack-value", str(LISTPACK_VALUE_BYTES)]
            child = self.procs.start("redis-server", argv)
            wait_until(lambda: port_open(host, port), 20, "redis-server")
            self.procs.check_alive(child)
        client(ctx.redis_url).ping()
        khost, kport = split_hostport(ctx.kafka.split(",")[0], 9092)
        if not port_open(require_loopback(khost), kport):
            self._refuse(f"no Kafka at {khost}:{kport}")
            ctx.log(f"starting Kafka on {khost}:{kport} via .ci/kafka.sh (stopped at the end)")
            env = {"KAFKA_PORT": str(kport), "KAFKA_CONTROLLER_PORT": str(kport + 1)}
            self.kafka_started = env
            self._kafka("start", {**env, "KAFKA_REUSE": "0"}, 180)

    def _refuse(self, what: str) -> None:
        if not self.allow_start:
            raise BenchError(f"{what} and --no-start-infra was given")

    @staticmethod
    def _kafka(action: str, env: dict[str, str], timeout: float) -> None:
        out = subprocess.run(  # noqa: S603 - the repository's own script
            [str(ROOT / ".ci" / "kafka.sh"), action],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if out.returncode != 0:
            raise BenchError(f".ci/kafka.sh {action} failed: {out.stdout}{out.stderr}")

    def down(self) -> None:
        """Stop what :meth:`up` started (Redis is a child of this run; Kafka via its script)."""
        self.procs.stop_all()
        if self.kafka_started is not None:
            self.ctx.log("stopping the Kafka this run started")
            self._kafka("stop", self.kafka_started, 90)
            self.kafka_started = None


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks; exit 0 when every one ran (targets met or not)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _terminate)
    rounds = args.rounds or (2 if args.quick else 5)
    duration = args.duration or (2.0 if args.quick else 6.0)
    faust = args.faust_python if Path(args.faust_python).exists() else None
    ctx = Ctx(kafka=args.kafka, redis_url=args.redis, quick=args.quick, rounds=rounds,
              duration_s=duration, faust_python=faust)  # fmt: skip
    infra = Infra(ctx, allow_start=not args.no_start_infra)
    names = args.names or list(BENCHMARKS)
    rows: list[Row] = []
    errors: dict[str, str] = {}
    started = time.monotonic()
    facts = machine_facts("unknown")
    try:
        infra.up()
        facts = machine_facts(server_version(ctx.redis_url))
        ctx.log(
            f"run {ctx.run_id}: {names}, {rounds} rounds x {duration:g}s; logs in {ctx.log_dir}"
        )
        # Import every benchmark (and the product code it runs in this process) up front, so
        # that the in-process parts all run the code the fingerprint above describes.
        modules = {name: importlib.import_module(f"bench.{name}") for name in names}
        for name, module in modules.items():
            t0 = time.monotonic()
            ctx.log(f"--- {name}")
            try:
                rows += module.run(ctx)
            except Exception as exc:  # one benchmark's failure must not stop the others
                errors[name] = f"{exc.__class__.__name__}: {exc}"
                ctx.log(f"{name} FAILED: {errors[name]}")
                traceback.print_exc(file=sys.stderr)
            finally:
                ctx.procs.stop_all()
            ctx.log(f"{name} took {time.monotonic() - t0:.0f}s")
    finally:
        ctx.procs.stop_all()
        infra.down()
    elapsed = time.monotonic() - started
    mode = "quick" if args.quick else "full"
    meta = {
        "facts": facts,
        "mode": mode,
        "rounds": rounds,
        "duration_s": duration,
        "elapsed_s": round(elapsed),
        "kafka": ctx.kafka,
        "redis": ctx.redis_url,
        "run_id": ctx.run_id,
        "errors": errors,
    }
    table = render_table(rows)
    sys.stdout.write(table + "\n")
    for name, err in errors.items():
        sys.stdout.write(f"\n{name} did not complete: {err}\n")
    sys.stdout.write(f"\n{mode} run of {elapsed:.0f}s; logs and results in {ctx.log_dir}\n")
    results_path = args.results or ctx.log_dir / "results.json"
    results_path.write_text(
        json.dumps({"meta": meta, "rows": [r.as_dict() for r in rows]}, indent=2) + "\n"
    )
    if args.write_docs:
        write_docs(ROOT / "docs" / "benchmarks.md", rows, meta)
        sys.stdout.write("docs/benchmarks.md updated\n")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
