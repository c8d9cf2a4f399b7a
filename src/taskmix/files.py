"""Files: atomic writes, output-directory locks, input reading with size limits, temporary-file cleanup.

Every write taskmix makes goes through :func:`atomic_write_bytes` (a reader
never sees half a file); every run holds an :class:`OutputLock` on its output
directory; every input is read through :func:`read_input_bytes` /
:func:`open_input_file`, which refuse non-regular files and files over a size
limit with one :class:`~taskmix.errors.TaskmixError` naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from .errors import OutputError, TaskmixError


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask can only be read by setting it
_TEMP_SUFFIX = ".tmp"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temporary file, fsync, rename.

    A reader never sees a half-written file, and a crash leaves either the old
    file or the new one (plus, at worst, a hidden ``.<name>.taskmix-<pid>-<random>.tmp``
    file, named after the writing process; :func:`remove_stale_temps` clears
    those of dead processes when a run resumes).  The temporary file is
    created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (``tempfile.mkstemp``), so
    nothing planted under its name is ever opened.  The file gets the usual
    permissions (``0o666`` less the umask), not ``mkstemp``'s ``0o600``.

    Symbolic links are never followed: a link at ``path`` is replaced, not
    written through, and under a directory locked by :class:`OutputLock` a
    link planted as one of the directories between the locked directory and
    ``path`` is refused (:class:`OutputError`).
    """
    path = Path(path)
    check_no_symlinks(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=_TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o666 & ~_UMASK)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and e.filename is None:  # name the file (fsync / write errors do not)
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    try:  # make the rename durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def read_input(
    path: str | os.PathLike, noun: str, expected: str, error: type[TaskmixError] = TaskmixError,
    limit: int | None = None,
) -> bytes:
    """The bytes of an input file (:func:`read_input_bytes`); every way it can fail is one ``error`` naming the path.

    ``noun`` names the file in "... not found" (``"config file"``); ``expected``
    completes "expected ..." (``"a YAML file"``); ``limit`` caps its size
    (default :data:`MAX_TEXT_INPUT_BYTES`).
    """
    p = Path(path)
    with input_errors(p, noun, expected, error):
        return read_input_bytes(p, noun, MAX_TEXT_INPUT_BYTES if limit is None else limit, error)


@contextlib.contextmanager
def input_errors(path: Path, noun: str, expected: str, error: type[TaskmixError] = TaskmixError) -> Iterator[None]:
    """Turn the OS errors of opening an input (missing, a directory, unreadable) into one ``error`` naming ``path``."""
    try:
        yield
    except FileNotFoundError:
        raise error(f"{path}: {noun} not found") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected {expected}") from None
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror or e})") from None


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


TEMP_MARKER = "taskmix-"
"""The marker in the name of every temporary file taskmix writes: ``.<name>.taskmix-<pid>-<random>.tmp``."""


def temp_prefix(name: str) -> str:
    """The prefix of this process's temporary files for ``name``: ``.<name>.taskmix-<pid>-`` (unique per process)."""
    return f".{name}.{TEMP_MARKER}{os.getpid()}-"


# exactly what atomic_write_bytes creates: mkstemp's 8 random characters between the prefix and ".tmp"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.taskmix-(?P<pid>[1-9][0-9]{0,9})-(?P<rand>[a-z0-9_]{8})\.tmp$")
STALE_TEMP_SECONDS = 3600.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def remove_stale_temps(directory: str | os.PathLike, max_age: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete the temporary files that writes killed mid-way left in ``directory``; return them.

    Only regular files named exactly as :func:`atomic_write_bytes` names its
    temporary files, ``.<name>.taskmix-<pid>-<random>.tmp``, are touched (a
    user's ``.notes.tmp``, or anything else, never is), and only those of a
    process that is gone or older than ``max_age`` seconds; this process's own
    are left to it.  Call it with ``directory``'s :class:`OutputLock` held.
    """
    d = Path(directory)
    if not d.is_dir() or d.is_symlink():
        return []
    removed = []
    now = time.time()
    for p in d.iterdir():
        m = _TEMP_NAME.match(p.name)
        if m is None:
            continue
        try:
            st = p.lstat()
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        pid = int(m.group("pid"))
        if pid == os.getpid():
            continue
        if now - st.st_mtime > max_age or not _alive(pid):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


# ----------------------------------------------------------------- inputs

MAX_TEXT_INPUT_BYTES = 64 * 2**20
"""The largest config or schedule file read (a planted ``/dev/zero`` or a huge file is refused)."""
MAX_DATA_INPUT_BYTES = 16 * 2**30
"""The largest data file (npz) read, and the largest total its arrays may decompress to."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def _open_error(path: Path, e: OSError, error: type[TaskmixError]) -> TaskmixError | OSError:
    if e.errno == errno.ELOOP:
        return error(f"{path}: a symbolic link loop or a symbolic link where none is allowed; expected a regular file")
    return e


def _check_regular(p: Path, st: os.stat_result, what: str, limit: int, error: type[TaskmixError]) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(p))
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{p}: is {_kind(st.st_mode)}, expected a regular file ({what})")
    if st.st_size > limit:
        raise error(f"{p}: {st.st_size} bytes, more than the {limit} bytes allowed for a {what}")


def check_input_file(
    path: str | os.PathLike, what: str, limit: int, error: type[TaskmixError] = TaskmixError
) -> os.stat_result:
    """``os.stat`` of an input that must be a regular file of at most ``limit`` bytes.

    ``FileNotFoundError`` and ``IsADirectoryError`` pass through (callers name
    them); a FIFO, a device, a socket, a symbolic link loop or a file over the
    limit are ``error``.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as e:
        raise _open_error(p, e, error) from None
    _check_regular(p, st, what, limit, error)
    return st


def read_input_bytes(
    path: str | os.PathLike,
    what: str,
    limit: int = MAX_TEXT_INPUT_BYTES,
    error: type[TaskmixError] = TaskmixError,
    follow_symlinks: bool = True,
) -> bytes:
    """The bytes of an input file: a regular file (not a FIFO, device or socket) of at most ``limit`` bytes.

    Opening never blocks (a FIFO is refused, not waited on) and at most
    ``limit + 1`` bytes are read.  ``follow_symlinks=False`` refuses a symbolic
    link (for files inside an output directory).  ``FileNotFoundError`` and
    ``IsADirectoryError`` pass through; the other refusals are ``error``.
    """
    p = Path(path)
    fd = _open_checked(p, what, limit, error, follow_symlinks)
    try:
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise error(f"{p}: more than the {limit} bytes allowed for a {what}")
        return b"".join(chunks)
    finally:
        os.close(fd)


def open_input_file(
    path: str | os.PathLike, what: str, limit: int, error: type[TaskmixError] = TaskmixError
) -> BinaryIO:
    """An input file opened for binary reading, checked like :func:`read_input_bytes` (the open never blocks).

    For a file read piece by piece (data files): the returned file is a regular
    file of at most ``limit`` bytes when opened; the caller bounds each read.
    ``FileNotFoundError`` and ``IsADirectoryError`` pass through; the other
    refusals are ``error``.
    """
    fd = _open_checked(Path(path), what, limit, error)
    try:
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _open_checked(p: Path, what: str, limit: int, error: type[TaskmixError], follow_symlinks: bool = True) -> int:
    """A descriptor of ``p`` opened for reading without blocking, once it is known to be a regular file within ``limit``."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(p, flags)
    except OSError as e:
        raise _open_error(p, e, error) from None
    try:
        _check_regular(p, os.fstat(fd), what, limit, error)
    except BaseException:
        os.close(fd)
        raise
    return fd


# ------------------------------------------------------------- output lock

LOCK_NAME = ".taskmix.lock"
_HELD: dict[str, "OutputLock"] = {}  # absolute directory -> the lock this process holds on it


def _held_root(path: Path) -> Path | None:
    a = os.path.abspath(path)
    for root in _HELD:
        if a == root or a.startswith(root.rstrip(os.sep) + os.sep):
            return Path(root)
    return None


def check_no_symlinks(directory: str | os.PathLike) -> None:
    """Refuse ``directory`` when, below a directory this process has locked, one of its parts is a symlink."""
    d = Path(os.path.abspath(directory))
    root = _held_root(d)
    if root is None:
        return
    p = root
    for part in d.relative_to(root).parts:
        p = p / part
        if p.is_symlink():
            raise OutputError(f"{p}: is a symbolic link inside the output directory; taskmix does not write through links")
        if not p.exists():
            break


def check_output_tree(directory: str | os.PathLike) -> None:
    """Refuse (:class:`OutputError`) an output directory holding a symbolic link that leads to a directory outside it.

    The whole tree below ``directory`` is walked without following links
    (:func:`os.scandir`), before a run deletes or writes anything there: a link
    anywhere in it whose target is a directory outside ``directory`` (as
    ``logs/tb/<run> -> /elsewhere``) is named in one line.  Links to files are
    allowed (writes replace them, never write through them), and so are links
    to directories inside the tree (W&B's ``latest-run``); every write still
    refuses a linked directory on its path (:func:`check_no_symlinks`).
    """
    root = os.path.abspath(directory)
    real = os.path.realpath(root)
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = list(it)
        except OSError:  # unreadable: the write that needs it will say so
            continue
        for e in entries:
            try:
                if e.is_symlink():
                    target = os.path.realpath(e.path)
                    if os.path.isdir(e.path) and not (target == real or target.startswith(real.rstrip(os.sep) + os.sep)):
                        raise OutputError(
                            f"{e.path}: is a symbolic link inside the output directory, to a directory outside it "
                            f"({target[:200]}); taskmix does not delete or write through links: remove it or choose another --out")
                elif e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
            except OSError:
                continue


class OutputLock:
    """An exclusive lock on an output directory, held while a run writes there.

    ``with OutputLock(out):`` creates ``out`` (if needed) and the lock file
    ``out/.taskmix.lock`` (holding the pid), and takes an ``flock`` on it
    without waiting: a second run on the same directory is refused with an
    :class:`OutputError` naming the holder's pid.  The kernel drops the lock
    when the process dies (even by SIGKILL), so a stale lock never blocks.
    On exit the lock file is removed, and so is ``out`` when this lock created
    it and nothing was written there.  Where ``fcntl`` is missing (Windows)
    :mod:`filelock` does the locking.

    Before anything else happens under ``out`` the lock file is checked (a
    regular file with one link, opened with ``O_NOFOLLOW``: a hard link, a
    FIFO or a symbolic link planted as ``.taskmix.lock`` is refused, never
    written through) and so is the tree below ``out``
    (:func:`check_output_tree`).  With ``nested=True`` a later
    ``OutputLock`` on the same directory in this process (a command that
    holds the lock while it prepares ``out``, then calls an API function that
    locks it too) joins this one instead of being refused.
    """

    def __init__(self, directory: str | os.PathLike, nested: bool = False):
        self.dir = Path(directory)
        self.path = self.dir / LOCK_NAME
        self.nested = nested
        self._fd: int | None = None
        self._fallback: Any = None
        self._created: list[Path] = []
        self._joined = False

    def _mkdirs(self) -> None:
        missing = []
        p = Path(os.path.abspath(self.dir))
        while not p.exists() and not p.is_symlink():
            missing.append(p)
            p = p.parent
        for m in reversed(missing):
            try:
                m.mkdir()
                self._created.append(m)
            except FileExistsError:
                pass
        if not self.dir.is_dir():
            raise OutputError(f"{self.dir}: exists and is not a directory; --out needs a directory")

    def _holder(self) -> str:
        try:
            text = read_input_bytes(self.path, "lock file", 4096, follow_symlinks=False).decode("ascii", "replace")
            pid = text.split()[0] if text.split() else ""
            return f"pid {int(pid)}" if pid.isdigit() else "an unknown process"
        except (OSError, TaskmixError, ValueError):
            return "an unknown process"

    def _refuse(self) -> OutputError:
        return OutputError(f"{self.dir}: in use by another taskmix run ({self._holder()}); "
                           "wait for it to finish or choose another --out")

    def _open(self) -> tuple[int, bool]:
        """Open (creating it if needed) the lock file without following a link or blocking; (fd, created)."""
        flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
        expected = "expected taskmix's lock file (a regular file); remove it or choose another --out"
        for _ in range(10):
            try:
                try:
                    return os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o644), True
                except FileExistsError:
                    fd = os.open(self.path, flags)
            except FileNotFoundError:  # removed in between by the run releasing it: create it again
                continue
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise OutputError(f"{self.path}: is a symbolic link; {expected}") from None
                if e.errno in (errno.EISDIR, errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):
                    kind = "a directory" if e.errno == errno.EISDIR else "not a regular file"
                    raise OutputError(f"{self.path}: is {kind}, {expected}") from None
                raise OSError(e.errno, e.strerror, str(self.path)) from None
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise OutputError(f"{self.path}: is {_kind(st.st_mode)}, {expected}")
                if st.st_nlink > 1:  # 0: unlinked by a run releasing it, the inode check in acquire() retries
                    raise OutputError(f"{self.path}: has {st.st_nlink} hard links (another file shares it), {expected}")
            except BaseException:
                os.close(fd)
                raise
            return fd, False
        raise self._refuse()

    def acquire(self) -> "OutputLock":
        """Take the lock (refused with one line naming the holder's pid when another run holds it).

        Refused too (one line naming the path): a lock file that is not
        taskmix's own regular file, and a tree holding a symbolic link to a
        directory outside it (:func:`check_output_tree`).
        """
        held = _HELD.get(os.path.abspath(self.dir))
        if held is not None and held.nested:
            self._joined = True
            return self
        self._mkdirs()
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            import filelock

            self._fallback = filelock.FileLock(str(self.path), timeout=0)
            try:
                self._fallback.acquire()
            except filelock.Timeout:
                self._cleanup_dirs()
                raise self._refuse() from None
            try:
                check_output_tree(self.dir)
            except BaseException:
                self._fallback.release()
                self._fallback = None
                self._cleanup_dirs()
                raise
            _HELD[os.path.abspath(self.dir)] = self
            return self
        for _ in range(10):
            try:
                fd, created = self._open()
            except BaseException:
                self._cleanup_dirs()
                raise
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    self._cleanup_dirs()
                    raise self._refuse() from None
                raise
            try:  # a holder that was releasing may have unlinked the file we opened: try again on the new one
                same = os.fstat(fd).st_ino == os.stat(self.path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            try:
                check_output_tree(self.dir)  # before anything is deleted or written under it
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            except BaseException:
                if created:
                    with contextlib.suppress(OSError):
                        os.unlink(self.path)
                os.close(fd)
                self._cleanup_dirs()
                raise
            self._fd = fd
            _HELD[os.path.abspath(self.dir)] = self
            return self
        raise self._refuse()

    def release(self) -> None:
        """Release the lock and remove the lock file (and the directory, if this run created it and left it empty)."""
        if self._joined:  # nested in a lock this process holds: that one releases
            self._joined = False
            return
        _HELD.pop(os.path.abspath(self.dir), None)
        if self._fallback is not None:  # pragma: no cover - Windows
            self._fallback.release()
            self._fallback = None
        if self._fd is not None:
            try:
                if os.fstat(self._fd).st_ino == os.stat(self.path, follow_symlinks=False).st_ino:
                    os.unlink(self.path)
            except OSError:
                pass
            os.close(self._fd)  # releases the flock
            self._fd = None
        self._cleanup_dirs()

    def _cleanup_dirs(self) -> None:
        for d in reversed(self._created):  # deepest first; only directories this lock created, only when empty
            try:
                d.rmdir()
            except OSError:
                break
        self._created = []

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
