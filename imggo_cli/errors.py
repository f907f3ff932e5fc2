"""How `imggo-fn` ends: exit codes, and the one-line error every user mistake becomes."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED_ITEMS = 1  # the command ran; some images did not succeed
EXIT_USAGE = 2  # a user mistake (arguments, files, settings)
EXIT_UNREACHABLE = 3  # ImgGo could not be reached
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
EXIT_BROKEN_PIPE = 141  # the reader went away (`| head`), as a shell reports SIGPIPE


class UserError(Exception):
    """Printed as one `error:` line, then the command exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
