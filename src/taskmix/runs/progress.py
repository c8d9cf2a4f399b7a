"""Progress of a comparison or a search: a bar on a terminal, one line per finished step elsewhere, log records.

A run reports to a :class:`ProgressReporter` through a few hooks (every hook of the base class does
nothing, so a subclass overrides only what it needs):

* ``start(what, total, done)``: ``what`` is ``"compare"`` or ``"search"``; ``total`` counts the (method,
  seed) cells of a comparison (its ``recommended`` cells included) or the meta-steps of a search, ``done``
  those a resumed run finished before;
* ``cell_started(method, seed)`` and ``cell_finished(method, seed, test, seconds)``: a comparison's cells
  (the Ray backend calls only ``cell_finished``, in the order the cells finish);
* ``meta_step(i, n, label=, accuracy=, weights=, seconds=)``: meta-step ``i`` of ``n`` finished (between
  ``cell_started`` and ``cell_finished``: a meta-step of the search inside that cell);
* ``set_total(total, done)``: the count changed (a comparison learns how many ``recommended`` cells it runs);
* ``finish()``: the run ended, also by an error.

What ``progress=`` accepts (:func:`make_progress`; :func:`taskmix.compare.run_compare`,
:func:`taskmix.runs.run_search`, :func:`taskmix.runs.search`, :meth:`taskmix.runs.SearchRun.run`):

* ``None`` (the default): one record per finished cell or meta-step on the ``taskmix.progress`` logger at
  ``INFO`` (:class:`LogProgress`), so silent unless logging is set up, e.g. ``logging.basicConfig(level=logging.INFO)``;
* ``False`` or ``"off"``: nothing;
* ``"lines"``: one line per finished cell or meta-step on stderr (:class:`LineProgress`), e.g.
  ``[compare] 3/12 uniform seed 1: test accuracy 0.8123 (0.4 s; ETA 12 s)``;
* ``"bar"``: a rich bar on stderr naming the current method, seed and meta-step, with M/N, elapsed time and
  ETA (:class:`BarProgress`);
* ``"log"``: the same as ``None``;
* ``True`` or ``"auto"``: ``$TASKMIX_PROGRESS`` if set (``bar``, ``lines``, ``off``; ``1`` means ``lines``,
  ``0`` ``off``), else a bar when stderr is a terminal and lines when it is not (CI, ``nohup``, SLURM);
* a :class:`ProgressReporter` (or any object with some of its hooks, called with their documented
  arguments), or a ``rich.progress.Progress`` (one task, advanced per finished cell or meta-step).

The ETA scales the time spent so far by the work left: a comparison estimates each remaining cell from the
finished cells of the same method (a learned method costs more than a rule), so it also holds when the Ray
backend runs cells in parallel.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import time
from typing import Any, Callable, Iterator, Mapping, Sequence, TextIO

from ..errors import ConfigError

__all__ = [
    "ENV",
    "MODES",
    "BarProgress",
    "LineProgress",
    "LogProgress",
    "ProgressReporter",
    "auto_mode",
    "current",
    "format_seconds",
    "make_progress",
    "reporting",
]

ENV = "TASKMIX_PROGRESS"
"""The environment variable that picks the mode of ``auto`` (the command line's default): bar, lines, off."""
MODES = ("auto", "bar", "lines", "log", "off")
"""What ``progress=`` (and ``--progress``, less ``log``) accepts as a string."""
_ENV_VALUES = {"bar": "bar", "lines": "lines", "off": "off", "auto": "auto", "": "auto", "1": "lines", "0": "off"}

logger = logging.getLogger("taskmix.progress")
"""Where :class:`LogProgress` (``progress=None``) sends one ``INFO`` record per finished cell or meta-step."""

MAX_WEIGHTS = 8
"""The most task weights a meta-step's line names (then ``+N more``)."""


def format_seconds(s: float) -> str:
    """``0.4 s``, ``12 s``, ``3 min 05 s``, ``1 h 02 min``."""
    s = max(0.0, float(s))
    if s < 9.95:
        return f"{s:.1f} s"
    if s < 59.5:
        return f"{s:.0f} s"
    m, sec = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def auto_mode(isatty: Callable[[], bool] | None = None) -> str:
    """``bar``, ``lines`` or ``off``: ``$TASKMIX_PROGRESS`` when set, else ``bar`` on a terminal (stderr) and ``lines`` off one."""
    raw = os.environ.get(ENV, "")
    mode = _ENV_VALUES.get(raw.strip().lower())
    if mode is None:
        raise ConfigError(f"{ENV}: expected bar, lines, off or auto (1 means lines, 0 off), got {raw[:40]!r}")
    if mode != "auto":
        return mode
    try:
        tty = (isatty or sys.stderr.isatty)()
    except (AttributeError, ValueError):  # no stderr, or a closed one
        tty = False
    return "bar" if tty else "lines"


@contextlib.contextmanager
def mode_env(mode: str) -> Iterator[None]:
    """``$TASKMIX_PROGRESS`` set to ``mode`` for the duration (unless ``auto``): what reads it (the sentence
    encoder's lines) follows ``--progress``."""
    if mode in ("auto", "log"):
        yield
        return
    old = os.environ.get(ENV)
    os.environ[ENV] = mode
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old


class ProgressReporter:
    """What a run reports as it goes.  Every hook does nothing here: subclass and override what you need.

    See the module's docstring for when each hook is called.
    """

    def start(self, what: str, total: int, done: int = 0, *, cells: Sequence[tuple[str, int]] = (),
              metric: str = "test") -> None:
        """A run starts: ``total`` cells or meta-steps, ``done`` of them finished before (a resumed run).

        ``cells``: the (method, seed) cells still to run, in order (a comparison); ``metric``: what a cell's
        ``test`` is, e.g. ``"test accuracy"``.
        """

    def set_total(self, total: int, done: int | None = None) -> None:
        """The count of cells or meta-steps changed (and, when given, how many of them are finished)."""

    def cell_started(self, method: str, seed: int) -> None:
        """A comparison's (method, seed) cell starts (not called by the Ray backend)."""

    def cell_finished(self, method: str, seed: int, test: float | None = None, seconds: float | None = None) -> None:
        """A comparison's cell finished: its metric on the reported split and its cost in seconds."""

    def meta_step(self, i: int, n: int, *, label: str | None = None, accuracy: float | None = None,
                  weights: Mapping[str, float] | None = None, seconds: float | None = None) -> None:
        """Meta-step ``i`` of ``n`` finished (inside a cell: of that cell's search).

        ``label``: which meta-step, e.g. ``"meta-step 3"`` or ``"round 2 meta-step 3"``; ``accuracy``: the
        target's accuracy on the reward split; ``weights``: each task's sampling weight after the update.
        """

    def finish(self) -> None:
        """The run ended (also by an error or an interrupt)."""


class _Tracked(ProgressReporter):
    """Counting, timing and the ETA, shared by the lines, log and bar reporters; subclasses render."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.what = ""
        self.total = 0
        self.done = 0
        self.metric = "test"
        self.plan: list[tuple[str, int]] = []
        self.cell: tuple[str, int] | None = None  # the cell running now (sequential compare)
        self.inner: tuple[int, int] | None = None  # the meta-step of the current cell's search
        self.last: str | None = None  # what finished last, for the description
        self._t0 = self._w0 = clock()  # start; the first cell's start (the ETA leaves a warm-up before it out)
        self._started: dict[tuple[str, int], float] = {}
        self._finished: set[tuple[str, int]] = set()
        self._work: list[tuple[str | None, float]] = []  # (method, seconds) of what finished in this session
        self._prev = self._t0

    # --------------------------------------------------------------- hooks
    def start(self, what: str, total: int, done: int = 0, *, cells: Sequence[tuple[str, int]] = (),
              metric: str = "test") -> None:
        self.what, self.total, self.done, self.metric = what, int(total), int(done), metric
        self.plan = [(str(m), int(s)) for m, s in cells]
        self.cell = self.inner = None
        self._t0 = self._w0 = self._prev = self.clock()
        self._started.clear()
        self._finished.clear()
        self._work.clear()
        self.refresh()

    def set_total(self, total: int, done: int | None = None) -> None:
        self.total = int(total)
        if done is not None:
            self.done = int(done)
        self.refresh()

    def cell_started(self, method: str, seed: int) -> None:
        self.cell, self.inner = (method, int(seed)), None
        now = self.clock()
        if not self._work and not self._started:
            self._w0 = now
        self._started[(method, int(seed))] = now
        self.refresh()

    def cell_finished(self, method: str, seed: int, test: float | None = None, seconds: float | None = None) -> None:
        key = (method, int(seed))
        now = self.clock()
        began = self._started.pop(key, None)
        # the wall time this process waited when it ran the cell itself; the cell's own cost otherwise (Ray)
        took = now - began if began is not None else (float(seconds) if seconds is not None else now - self._prev)
        self._prev = now
        self.done += 1
        self._finished.add(key)
        self._work.append((method, max(0.0, took)))
        if self.cell == key:
            self.cell = self.inner = None
        self.last = f"{method} seed {seed}"
        result = f"{self.metric} {test:.4f}" if test is not None else "finished"
        self.emit(f"[{self.what}] {self.done}/{self.total} {method} seed {seed}: {result} ({self._timing(took)})",
                  {"event": "cell", "method": method, "seed": int(seed), "test": test, "seconds": took})
        self.refresh()

    def meta_step(self, i: int, n: int, *, label: str | None = None, accuracy: float | None = None,
                  weights: Mapping[str, float] | None = None, seconds: float | None = None) -> None:
        if self.cell is not None:  # the search inside the running cell: shown on the bar, no line of its own
            self.inner = (int(i), int(n))
            self.refresh()
            return
        now = self.clock()
        took = float(seconds) if seconds is not None else now - self._prev
        self._prev = now
        self.done, self.total = int(i), int(n)
        self._work.append((None, max(0.0, took)))
        label = label or f"meta-step {i}"
        parts = []
        if accuracy is not None:
            parts.append(f"reward split accuracy {accuracy:.4f}")
        if weights:
            items = list(weights.items())
            shown = " ".join(f"{k}={v:.2f}" for k, v in items[:MAX_WEIGHTS])
            parts.append("weights " + shown + (f" +{len(items) - MAX_WEIGHTS} more" if len(items) > MAX_WEIGHTS else ""))
        self.last = label + (f", reward split accuracy {accuracy:.4f}" if accuracy is not None else "")
        body = ", ".join(parts) or "finished"
        self.emit(f"[{self.what or 'search'}] {self.done}/{self.total} {label}: {body} ({self._timing(took)})",
                  {"event": "meta_step", "i": int(i), "n": int(n), "accuracy": accuracy, "seconds": took})
        self.refresh()

    # ---------------------------------------------------------- rendering
    def emit(self, line: str, fields: dict[str, Any]) -> None:
        """One finished cell or meta-step (``fields``: the same, as values)."""

    def refresh(self) -> None:
        """The state changed (the bar redraws)."""

    @property
    def description(self) -> str:
        """What runs now: ``compare: uniform seed 1``, ``compare: learned_time_invariant seed 0, meta-step 3/10``."""
        what = self.what or "progress"
        if self.cell is not None:
            m, s = self.cell
            return f"{what}: {m} seed {s}" + (f", meta-step {self.inner[0]}/{self.inner[1]}" if self.inner else "")
        if self.last is not None:
            return f"{what}: {self.last}" + (" (last finished)" if self.what == "compare" else "")
        return what

    # --------------------------------------------------------------- ETA
    def elapsed(self) -> float:
        """Seconds since :meth:`start`."""
        return max(0.0, self.clock() - self._t0)

    def eta(self) -> float | None:
        """Seconds left, estimated; ``None`` before anything finished in this session."""
        if not self._work:
            return None
        left = max(0, self.total - self.done)
        if left == 0:
            return 0.0
        overall = sum(w for _, w in self._work) / len(self._work)
        by_method: dict[str | None, list[float]] = {}
        for m, w in self._work:
            by_method.setdefault(m, []).append(w)
        means = {m: sum(ws) / len(ws) for m, ws in by_method.items()}
        todo = [m for m, s in self.plan if (m, s) not in self._finished][:left]
        est = sum(means.get(m, overall) for m in todo)
        # cells beyond the plan (a comparison's recommended ones: a rule's row reused, or one retrain) cost about
        # as much as the cheapest method seen; a search's meta-steps all cost alike
        est += (left - len(todo)) * (min(means.values()) if self.plan else overall)
        spent = sum(w for _, w in self._work)
        # the time spent per second of work so far (overheads; < 1 when Ray runs cells in parallel)
        return est * (max(0.0, self.clock() - self._w0) / spent) if spent > 0 else est

    def _timing(self, took: float) -> str:
        if self.done >= self.total:
            return f"{format_seconds(took)}; done in {format_seconds(self.elapsed())}"
        eta = self.eta()
        return format_seconds(took) + (f"; ETA {format_seconds(eta)}" if eta is not None else "")


class LineProgress(_Tracked):
    """One line per finished cell or meta-step, written to ``stream`` (default: stderr at the time) and flushed."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        super().__init__(clock)
        self.stream = stream

    def emit(self, line: str, fields: dict[str, Any]) -> None:
        """``line`` and a newline, flushed (a log read while the run goes on shows it at once)."""
        out = self.stream if self.stream is not None else sys.stderr
        out.write(line + "\n")
        out.flush()


class LogProgress(_Tracked):
    """One ``INFO`` record per finished cell or meta-step on the ``taskmix.progress`` logger.

    The record's message is the line :class:`LineProgress` writes; ``record.taskmix_progress`` holds the
    same as values (``event``, ``method``, ``seed``, ``test``, ``seconds``, or ``i``, ``n``, ``accuracy``).
    """

    def __init__(self, log: logging.Logger | None = None, level: int = logging.INFO,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(clock)
        self.log = log if log is not None else logger
        self.level = level

    def emit(self, line: str, fields: dict[str, Any]) -> None:
        """One record, when the logger takes the level (nothing is formatted otherwise)."""
        if self.log.isEnabledFor(self.level):
            self.log.log(self.level, "%s", line, extra={"taskmix_progress": fields})


class BarProgress(_Tracked):
    """A rich bar on stderr: what runs now (method, seed, meta-step), the bar, M/N, elapsed time and ETA."""

    def __init__(self, console: Any = None, clock: Callable[[], float] = time.monotonic):
        super().__init__(clock)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Column

        self.console = console if console is not None else Console(stderr=True)
        # a long description is cut (…), never wrapped: the bar stays one line on a narrow terminal
        text = TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", min_width=12))
        self.progress = Progress(text, BarColumn(bar_width=24), MofNCompleteColumn(), TimeElapsedColumn(),
                                 _eta_column(self), console=self.console, transient=False, get_time=clock)
        self.task: Any = None
        self.finished = False

    def start(self, what: str, total: int, done: int = 0, *, cells: Sequence[tuple[str, int]] = (),
              metric: str = "test") -> None:
        """The bar appears (drawn until :meth:`finish`)."""
        self.task, self.finished = None, False
        super().start(what, total, done, cells=cells, metric=metric)
        self.task = self.progress.add_task(self.description, total=self.total, completed=self.done)
        self.progress.start()

    def refresh(self) -> None:
        """The description, M/N and total, as they are now."""
        if self.task is not None:
            self.progress.update(self.task, description=self.description, total=self.total, completed=self.done)

    def finish(self) -> None:
        """The bar's last state stays on the terminal; drawing stops."""
        self.finished = True
        self.refresh()
        self.progress.stop()

    @property
    def description(self) -> str:
        """What runs now (:attr:`_Tracked.description`); once finished, only what ran (``compare``)."""
        return self.what if self.finished and self.what else super().description

    def eta_text(self) -> str:
        """``ETA 12 s`` (counting down between finished cells), ``ETA -`` before the first."""
        if self.total and self.done >= self.total:
            return "done"
        eta = self.eta()
        if eta is None:
            return "ETA -"
        since = max(0.0, self.clock() - self._prev)
        return f"ETA {format_seconds(max(0.0, eta - since))}"


def _eta_column(bar: BarProgress) -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class EtaColumn(ProgressColumn):
        """The bar's ETA (:meth:`_Tracked.eta`): from the cells' costs, not rich's speed window."""

        def render(self, task: Any) -> Text:
            return Text(bar.eta_text(), style="progress.remaining")

    return EtaColumn()


class _RichTask(ProgressReporter):
    """A ``rich.progress.Progress`` given as ``progress=`` (taskmix 0.2's API): one task, advanced per finished item."""

    def __init__(self, progress: Any):
        self.progress = progress
        self.tracked = _Tracked()
        self.task: Any = None
        self.entered = False

    def start(self, what: str, total: int, done: int = 0, *, cells: Sequence[tuple[str, int]] = (),
              metric: str = "test") -> None:
        self.tracked.start(what, total, done, cells=cells, metric=metric)
        self.progress.__enter__()
        self.entered = True
        self.task = self.progress.add_task(what, total=total, completed=done)

    def set_total(self, total: int, done: int | None = None) -> None:
        self.tracked.set_total(total, done)
        if self.task is not None and hasattr(self.progress, "update"):
            self.progress.update(self.task, total=total, **({"completed": done} if done is not None else {}))

    def cell_started(self, method: str, seed: int) -> None:
        self.tracked.cell_started(method, seed)
        self._describe()

    def cell_finished(self, method: str, seed: int, test: float | None = None, seconds: float | None = None) -> None:
        self.tracked.cell_finished(method, seed, test, seconds)
        if self.task is not None:
            self.progress.advance(self.task)
        self._describe()

    def meta_step(self, i: int, n: int, **info: Any) -> None:
        nested = self.tracked.cell is not None
        self.tracked.meta_step(i, n, **info)
        if self.task is not None and not nested:
            self.progress.advance(self.task)
        self._describe()

    def _describe(self) -> None:
        if self.task is not None and hasattr(self.progress, "update"):
            self.progress.update(self.task, description=self.tracked.description)

    def finish(self) -> None:
        if self.entered:
            self.entered = False
            self.progress.__exit__(None, None, None)


class _Forward(ProgressReporter):
    """An object with some of the hooks (not a :class:`ProgressReporter`): those it has are called."""

    def __init__(self, target: Any):
        self.target = target

    def _call(self, name: str, *args: Any, **kwargs: Any) -> None:
        hook = getattr(self.target, name, None)
        if callable(hook):
            hook(*args, **kwargs)

    def start(self, what: str, total: int, done: int = 0, **info: Any) -> None:
        self._call("start", what, total, done, **info)

    def set_total(self, total: int, done: int | None = None) -> None:
        self._call("set_total", total, done)

    def cell_started(self, method: str, seed: int) -> None:
        self._call("cell_started", method, seed)

    def cell_finished(self, method: str, seed: int, test: float | None = None, seconds: float | None = None) -> None:
        self._call("cell_finished", method, seed, test, seconds)

    def meta_step(self, i: int, n: int, **info: Any) -> None:
        self._call("meta_step", i, n, **info)

    def finish(self) -> None:
        self._call("finish")


_HOOKS = ("start", "cell_started", "cell_finished", "meta_step", "finish")


def make_progress(progress: Any = None) -> ProgressReporter:
    """The reporter ``progress=`` asks for (see the module's docstring); a bad value is refused naming it."""
    if isinstance(progress, ProgressReporter):
        return progress
    if progress is None:
        return LogProgress()
    if isinstance(progress, bool):
        progress = "auto" if progress else "off"
    if isinstance(progress, str):
        mode = progress.strip().lower()
        if mode not in MODES:
            raise ConfigError(f"progress: expected one of {', '.join(MODES)}, got {progress[:40]!r}")
        if mode == "auto":
            mode = auto_mode()
        if mode == "off":
            return ProgressReporter()
        if mode == "lines":
            return LineProgress()
        if mode == "log":
            return LogProgress()
        return BarProgress()
    if callable(getattr(progress, "add_task", None)) and callable(getattr(progress, "advance", None)):
        return _RichTask(progress)
    if any(callable(getattr(progress, h, None)) for h in _HOOKS):
        return _Forward(progress)
    raise TypeError(f"progress: expected None, a bool, one of {', '.join(MODES)}, a ProgressReporter or a "
                    f"rich.progress.Progress, got {type(progress).__name__}")


_CURRENT: contextvars.ContextVar[ProgressReporter | None] = contextvars.ContextVar("taskmix_progress", default=None)


def current() -> ProgressReporter | None:
    """The reporter of the comparison running in this context (a cell's search reports its meta-steps to it)."""
    return _CURRENT.get()


@contextlib.contextmanager
def reporting(reporter: ProgressReporter) -> Iterator[ProgressReporter]:
    """``reporter`` is :func:`current` for the duration."""
    token = _CURRENT.set(reporter)
    try:
        yield reporter
    finally:
        _CURRENT.reset(token)
