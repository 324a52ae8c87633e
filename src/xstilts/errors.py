"""The one exception type for bad user input."""


class UserError(Exception):
    """Bad input (config, data file, path). The CLI prints it as one line and exits with code 2."""
