"""The msgstatus shell: the ``msgstatus`` command, one subcommand per process."""
