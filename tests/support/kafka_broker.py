"""A Kafka broker of a test's own, started and stopped through `.ci/kafka.sh`."""

from __future__ import annotations

import os
import pathlib
import subprocess

__all__ = ["KafkaBrokerError", "LocalKafkaBroker"]

_REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
_DEFAULT_SCRIPT = _REPO_ROOT / ".ci" / "kafka.sh"


class KafkaBrokerError(RuntimeError):
    """Raised when `.ci/kafka.sh` fails or does not finish in time.

    Retrying can help only when the cause was a slow machine (a timeout);
    the message carries the script's output, including the broker's log tail.
    """


def _script_path() -> pathlib.Path:
    """Returns the kafka.sh to run: `$MSGSTATUS_TEST_KAFKA_SCRIPT`, else the repo's copy."""
    configured = os.environ.get("MSGSTATUS_TEST_KAFKA_SCRIPT")
    return pathlib.Path(configured) if configured else _DEFAULT_SCRIPT


class LocalKafkaBroker:
    """A single-node KRaft broker on 127.0.0.1 that a test may stop and restart at will.

    It is separate from the shared broker of `make test` (other ports, its own data
    directory), so stopping it disturbs no other test. Data survive `stop()`/`start()`
    because `workdir` keeps the formatted storage; use a fresh `workdir` for a fresh log.
    """

    def __init__(
        self,
        port: int,
        controller_port: int,
        workdir: pathlib.Path,
        *,
        start_timeout: float = 90.0,
        stop_timeout: float = 45.0,
    ) -> None:
        """Prepares (does not start) a broker.

        `port` is the client port, `controller_port` the KRaft controller port, `workdir`
        the directory for data, `kafka.log` and `kafka.pid`. `start_timeout` and
        `stop_timeout` bound each script call, in seconds.
        """
        self._port = port
        self._controller_port = controller_port
        self._workdir = workdir.resolve()
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._script = _script_path()

    @property
    def bootstrap(self) -> str:
        """The `host:port` string for `bootstrap_servers`."""
        return f"127.0.0.1:{self._port}"

    @property
    def workdir(self) -> pathlib.Path:
        """The broker's directory; its log is `workdir / "kafka.log"`."""
        return self._workdir

    def start(self) -> None:
        """Starts the broker and returns once a client metadata request succeeds.

        Idempotent: a broker of this `workdir` that already runs is kept. Blocks for
        at most `start_timeout` seconds (the script itself gives up after 60 s).

        Raises:
            KafkaBrokerError: the script failed (a port taken, also by another Kafka broker;
                the JVM died; not ready in time) or did not finish within `start_timeout`
                seconds.
        """
        self._run("start", self._start_timeout)

    def stop(self) -> None:
        """Stops the broker: SIGTERM, then SIGKILL after 30 s. Idempotent.

        Blocks for at most `stop_timeout` seconds.

        Raises:
            KafkaBrokerError: the script failed or did not finish within `stop_timeout` seconds.
        """
        self._run("stop", self._stop_timeout)

    def _run(self, command: str, timeout: float) -> None:
        """Runs `kafka.sh <command>` for this broker; raises KafkaBrokerError on failure."""
        self._workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            KAFKA_PORT=str(self._port),
            KAFKA_CONTROLLER_PORT=str(self._controller_port),
            KAFKA_DIR=str(self._workdir),
            # Never adopt a broker that someone else started on this port: stop() could
            # not stop it, and a restart test would silently test nothing.
            KAFKA_REUSE="0",
        )
        try:
            result = subprocess.run(  # noqa: S603 - fixed script path, no shell
                ["bash", str(self._script), command],  # noqa: S607 - bash from PATH on purpose
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise KafkaBrokerError(
                f"kafka.sh {command} (port {self._port}) did not finish within {timeout} s"
            ) from exc
        if result.returncode != 0:
            raise KafkaBrokerError(
                f"kafka.sh {command} (port {self._port}) exited {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )

    def __enter__(self) -> LocalKafkaBroker:
        """Starts the broker (see `start`)."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stops the broker (see `stop`)."""
        self.stop()
