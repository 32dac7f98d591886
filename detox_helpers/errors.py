"""The one exception the lab raises for problems a user can fix."""


class DetoxError(Exception):
    """A bad setting, a missing file or model, or data that cannot be used. The message says
    what was wrong and what to do about it; notebooks and the CLI show it as it is, without a
    traceback from deep inside a library."""


class SettingsMismatch(DetoxError):
    """A checkpoint made under settings that change what a step computes."""


def user_error_names(kind: type = DetoxError) -> set[str]:
    """The class names of the errors a user can fix: how a notebook run by papermill, which
    reports a failing cell's exception by name, tells them from a bug."""
    return {kind.__name__}.union(*map(user_error_names, kind.__subclasses__()))
