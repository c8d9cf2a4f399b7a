"""Named registries: one per kind of pluggable thing (rules, strategies, rewards, methods, encoders).

A :class:`Registry` maps names to objects, refuses a second registration under
one name, and lists the valid names in every error, so the registry *is* the
list of names -- no other list exists to drift from it.  A *family* registers a
prefix whose suffix is a parameter (``temperature_2`` -> the ``temperature``
family with ``"2"``; ``shuffled:lookahead`` -> ``shuffled:`` with
``"lookahead"``).

>>> from taskmix.registry import Registry
>>> colours = Registry("colour", field="paint.colour")
>>> _ = colours.register("red", (255, 0, 0))
>>> colours.get("red")
(255, 0, 0)
>>> colours.get("blue")
Traceback (most recent call last):
...
taskmix.errors.ConfigError: paint.colour: unknown colour 'blue'; expected one of ['red']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")

__all__ = ["Entry", "Registry"]


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object and its metadata (``kind``, ``per_task``, ... -- whatever the registry's users read)."""

    name: str
    obj: T
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Name -> object, with families of parametric names.

    Args:
        kind: what is registered, for messages ("reward", "method", ...).
        field: the config field (or option) whose value is looked up, named in errors.
    """

    def __init__(self, kind: str, field: str | None = None):
        self.kind = kind
        self.field = field
        self._entries: dict[str, Entry[T]] = {}
        self._families: dict[str, tuple[Callable[[str], T], str, dict[str, Any]]] = {}

    # -------------------------------------------------------------- adding
    def register(self, name: str, obj: T, **meta: Any) -> T:
        """Register ``obj`` under ``name``; a name registered before is refused."""
        if not name or name in self._entries or any(name.startswith(p) for p in self._families):
            raise ValueError(f"{self.kind} {name!r} is already registered (or empty)")
        self._entries[name] = Entry(name, obj, dict(meta))
        return obj

    def register_family(self, prefix: str, build: Callable[[str], T], placeholder: str = "X", **meta: Any) -> None:
        """Register every name ``prefix + suffix``: :meth:`get` returns ``build(suffix)``.

        ``build`` raises :class:`ValueError` for a suffix it does not accept.
        """
        if prefix in self._families or any(n.startswith(prefix) for n in self._entries):
            raise ValueError(f"{self.kind} family {prefix!r} clashes with a registered name")
        self._families[prefix] = (build, placeholder, dict(meta))

    # ------------------------------------------------------------- looking up
    def names(self) -> list[str]:
        """Every plain name, then each family as ``prefix<placeholder>``, in registration order."""
        return list(self._entries) + [f"{p}<{ph}>" for p, (_, ph, _) in self._families.items()]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.entry(name)
        except ConfigError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def _unknown(self, name: str, field: str | None, why: str = "") -> ConfigError:
        where = field or self.field or self.kind
        shown = name if len(name) <= 60 else name[:57] + "..."
        return ConfigError(f"{where}: unknown {self.kind} {shown!r}{why}; expected one of {self.names()}")

    def entry(self, name: str, field: str | None = None) -> Entry[T]:
        """The entry for ``name`` (a family member is built); :class:`ConfigError` listing the valid names if none."""
        if not isinstance(name, str):
            raise self._unknown(repr(name), field)
        if name in self._entries:
            return self._entries[name]
        for prefix, (build, _, meta) in self._families.items():
            if name.startswith(prefix):
                try:
                    return Entry(name, build(name[len(prefix):]), dict(meta))
                except ValueError as e:
                    raise self._unknown(name, field, f" ({e})") from None
        raise self._unknown(name, field)

    def get(self, name: str, field: str | None = None) -> T:
        """The object registered as ``name``."""
        return self.entry(name, field).obj

    def meta(self, name: str, key: str, default: Any = None) -> Any:
        """Metadata ``key`` of ``name`` (``default`` when unset)."""
        return self.entry(name).meta.get(key, default)
