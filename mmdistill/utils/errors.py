"""User-facing errors: one line that names the problem and the fix."""


class UserError(Exception):
    """Bad input (file, config, checkpoint, data). Reported as one line with a
    non-zero exit by the command-line tools (a traceback only with
    ``--debug``)."""
