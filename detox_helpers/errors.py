"""The one exception the lab raises for problems a user can fix."""


class DetoxError(Exception):
    """A bad setting, a missing file or model, or data that cannot be used. The message says
    what was wrong and what to do about it; notebooks and the CLI show it as it is, without a
    traceback from deep inside a library."""


class SettingsMismatch(DetoxError):
    """A checkpoint made under settings that change what a step computes."""
