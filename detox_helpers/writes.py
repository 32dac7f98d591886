"""Files and folders written whole (replaced in one step, renamed in without a gap), and a write
that fails as one error naming it and, out of room, the space it needed."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import DetoxError, first_line
from .layout import PARTIAL, aside, partial, shown

try:
    import resource  # Unix: the file-size limit a full-disk message states
except ImportError:
    resource = None


def write_atomically(path: Path, text: str | bytes) -> None:
    """Replace `path` with `text` in one step: a stop or a failed write leaves the previous file."""
    write_together({path: text})


def write_together(texts: dict[Path, str | bytes]) -> None:
    """Replace each path with its text (or bytes): all are written aside first, then renamed
    into place, so a failed write replaces none of them."""
    # A plain open (not mkstemp, which makes the file private) keeps the usual permissions.
    scratch = {path: path.with_name(f".{path.name}.{os.getpid()}{PARTIAL}") for path in texts}
    try:
        for path, text in texts.items():
            data = text.encode() if isinstance(text, str) else text
            with writing(scratch[path], shown(path), needed=len(data)):
                path.parent.mkdir(parents=True, exist_ok=True)
                scratch[path].write_bytes(data)
        for path in texts:
            os.replace(scratch[path], path)
    finally:  # after a stop or a failure, no scratch file is left behind
        for file in scratch.values():
            file.unlink(missing_ok=True)


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def files_in(path: Path) -> list[Path]:
    """`path` where it is a file, else the files in the folder (none where nothing is there)."""
    return [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]


def size_of(path: Path) -> int:
    """Bytes in a file, or in all the files of a folder (0 where there is nothing)."""
    return sum(p.stat().st_size for p in files_in(path))


def amount(size: int) -> str:
    """A number of bytes as people read it: 512 bytes, 17.2 kB, 3.4 MB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def file_size_limit() -> int | None:
    """The process's file-size limit in bytes (`ulimit -f`), None where there is none."""
    if resource is None:
        return None
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if limit == resource.RLIM_INFINITY else limit


def out_of_room(error: BaseException, scratch: Path) -> int | None:
    """ENOSPC, EFBIG or EDQUOT where `error` is a write that ran out of room, also as libraries
    report it in their own words (safetensors: "os error 27"; torch.save: a RuntimeError, and a
    file cut off at the size limit); None for any other failure."""
    said = re.search(r"os error (\d+)", str(error))
    code = getattr(error, "errno", None) or (int(said.group(1)) if said else None)
    limit = file_size_limit()
    if code is None and limit and isinstance(error, RuntimeError):
        code = errno.EFBIG if any(p.stat().st_size >= limit for p in files_in(scratch)) else None
    return code if code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else None


def space_note(code: int, scratch: Path, needed: int | None) -> str:
    """What a write that ran out of room (`code`, from out_of_room) needed, and the room there
    was: the file-size limit (EFBIG) or the disk's free space."""
    need = f"it needs {amount(needed)}" if needed else \
        f"it needed more than the {amount(size_of(scratch))} written before it failed"
    limit = file_size_limit()
    if code == errno.EFBIG:
        return need + (f", over the file-size limit of {amount(limit)} (`ulimit -f`)"
                       if limit else "")
    try:
        return need + f", {amount(shutil.disk_usage(scratch.parent).free)} free on that disk"
    except OSError:
        return need


@contextmanager
def writing(scratch: Path, what: str, failures: tuple = (Exception,), needed: int | None = None):
    """Around writes into `scratch` (a file or a folder on its way into place): a failure of the
    kinds `failures` names removes `scratch` and is one error naming `what` and, out of room,
    the space it needed; a stop (Ctrl-C) or another error removes it too and goes on."""
    try:
        yield
    except BaseException as error:
        code = out_of_room(error, scratch)
        room = f"; {space_note(code, scratch, needed)}" if code else ""  # before scratch goes
        if scratch.is_dir():
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            scratch.unlink(missing_ok=True)
        if isinstance(error, DetoxError) or not isinstance(error, failures):
            raise
        cause = os.strerror(code) if code else getattr(error, "strerror", None) or first_line(error)
        raise DetoxError(f"Could not write {what} ({cause}{room}); nothing was replaced. Free "
                         "some space or make the folder writable, then run again.") from None


def check_writable(folder: Path) -> None:
    """Make sure `folder` can be created and written, before any long work writes into it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise DetoxError(f"Cannot write into {folder} ({reason}): set DETOX_ARTIFACTS_DIR "
                         "(artifacts_dir) to a folder you can write.") from None


def finish_replacing(folder: Path) -> None:
    """Finish or undo a replacement of `folder` that a stop interrupted: with the new copy in
    place, delete the old one; with none (stopped between the renames), put the old one back."""
    old = aside(folder)
    if old.exists():
        if folder.exists():
            shutil.rmtree(old)
        else:
            old.rename(folder)


def replace_folder(new: Path, folder: Path) -> None:
    """Put the whole folder `new` where `folder` is, with no gap: a stop leaves one of the two."""
    finish_replacing(folder)
    if folder.exists():
        folder.rename(aside(folder))
    new.rename(folder)
    finish_replacing(folder)


@contextmanager
def written_whole(folder: Path, what: str, needed: int | None = None):
    """`with written_whole(folder, what) as scratch:` the block writes `scratch`, which then
    replaces `folder` whole (replace_folder); a failure is `writing`'s, `folder` left as it was."""
    scratch = partial(folder)
    shutil.rmtree(scratch, ignore_errors=True)  # a leftover of a stopped write
    with writing(scratch, what, needed=needed):
        yield scratch
    replace_folder(scratch, folder)
