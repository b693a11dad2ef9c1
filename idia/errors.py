"""The one error type users see: bad input, told in one line that names the file and the problem."""


class InputError(ValueError):
    """Bad user input: a missing file, a broken checkpoint, an unreadable folder. The CLI prints it and exits 2."""
