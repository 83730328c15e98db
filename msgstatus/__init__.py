"""The msgstatus runtime shell: the command line, logging and the HTTP plumbing services share."""
