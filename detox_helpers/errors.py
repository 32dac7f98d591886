"""The one exception the lab raises for problems a user can fix, and how it quotes a library's."""


class DetoxError(Exception):
    """A bad setting, a missing file or model, or data that cannot be used. The message says
    what was wrong and what to do about it; notebooks and the CLI show it as it is, without a
    traceback from deep inside a library."""


def first_line(error: BaseException) -> str:
    """A library's error as ours quote it: its first line (at most 200 characters), or its type
    where it says nothing."""
    said = str(error).strip()
    return said.splitlines()[0][:200] if said else type(error).__name__


class SettingsMismatch(DetoxError):
    """A checkpoint made under settings that change what a step computes."""
