"""The ``msgstatus`` command: one subcommand per process (SPEC section 1).

Each subcommand builds its frozen settings from ``MSGSTATUS_*`` environment variables and
the same names as flags (``--kafka-bootstrap-servers``), then runs its component.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from msgstatus import logs

USAGE = """usage: msgstatus <command> [--setting-name value ...]

commands:
  ingest      webhook receiver: provider callbacks -> Kafka   (port 8081)
  projector   Kafka -> Redis projection (consumer group)
  api         read API over the Redis projection             (port 8080)

Every setting is an environment variable MSGSTATUS_<NAME> or a flag --<name>;
'msgstatus <command> --help' lists them.
"""


def _ingest(argv: Sequence[str]) -> None:
    from ingest.app import create_app  # noqa: PLC0415 - import only the component that runs
    from ingest.settings import IngestSettings  # noqa: PLC0415
    from msgstatus.web import run  # noqa: PLC0415

    settings = IngestSettings(_cli_parse_args=list(argv), _cli_prog_name="msgstatus ingest")  # type: ignore[call-arg]
    logs.configure(settings.log_level, settings.log_format)
    run(create_app(settings), settings.host, settings.ingest_port, settings.shutdown_timeout_s)


def _api(argv: Sequence[str]) -> None:
    from msgstatus.web import run  # noqa: PLC0415
    from query_api.app import create_app  # noqa: PLC0415
    from query_api.settings import ApiSettings  # noqa: PLC0415

    settings = ApiSettings(_cli_parse_args=list(argv), _cli_prog_name="msgstatus api")  # type: ignore[call-arg]
    logs.configure(settings.log_level, settings.log_format)
    run(create_app(settings), settings.host, settings.api_port, settings.shutdown_timeout_s)


def _projector(argv: Sequence[str]) -> None:
    from projector.runner import main as run_projector  # noqa: PLC0415
    from projector.settings import ProjectorSettings  # noqa: PLC0415

    settings = ProjectorSettings(_cli_parse_args=list(argv), _cli_prog_name="msgstatus projector")  # type: ignore[call-arg]
    logs.configure(settings.log_level, settings.log_format)
    run_projector(settings)


COMMANDS: dict[str, Callable[[Sequence[str]], None]] = {
    "ingest": _ingest,
    "projector": _projector,
    "api": _api,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        sys.stderr.write(USAGE)
        return 0 if args and args[0] in ("-h", "--help") else 2
    try:
        COMMANDS[args[0]](args[1:])
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            name = "MSGSTATUS_" + "_".join(str(p) for p in err["loc"]).upper()
            sys.stderr.write(f"msgstatus {args[0]}: invalid setting {name}: {err['msg']}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
