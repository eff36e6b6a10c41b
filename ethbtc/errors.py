"""User-facing errors: anything a user can cause (bad flag, file, config, data, exchange reply).

Every script runs under :func:`ethbtc.cli.run_main`, which prints such an error as one line
``error: <message>`` on stderr and exits with code 2 -- never a traceback.
"""


class UserError(Exception):
    """A problem the user can fix; the message names what is wrong."""

    exit_code = 2


class ConfigError(UserError):
    """Invalid configuration (unknown key, wrong type, out-of-range value)."""


class DataError(UserError):
    """Unreadable or inconsistent candle data."""
