"""One registry for every pluggable thing: adapters, benchmarks, failure-pattern detectors, decoding stages.

A `Registry` maps names to classes or functions. `@REG.register("name")` adds one and refuses a name that
another object already holds (the same object again is harmless: a module imported under two names);
`REG.get(name)` returns it or raises `BadInput` listing the names there are, so a typo on the command line
is one line; `REG.names()` lists them for help texts, and `REG.unregister(name)` takes one out again. It behaves as a read-only mapping, so `name in REG`,
`REG[name]`, `sorted(REG)` and `dict(REG)` work.

A registry may name a `loader`: a function run once before the first lookup that imports the modules whose
decorators fill it (the built-in adapters and benchmarks live in modules nobody else needs to import).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable, Iterator, TypeVar

from .exceptions import BadInput

T = TypeVar("T")


class Registry(Mapping):
    """name -> class or function, for one kind of thing (`kind` names it in messages: "adapter")."""

    def __init__(self, kind: str, loader: Callable[[], None] | None = None, attribute: str | None = "name"):
        self.kind = kind
        self._items: dict[str, object] = {}
        self._loader = loader
        self._attribute = attribute  # set on a registered class to its name (cls.name = "gsm8k"); None: not set

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: make the object known as `name`; a name another object holds is refused."""
        def deco(obj: T) -> T:
            held = self._items.get(name, obj)
            if held is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered (by {_label(held)})")
            if self._attribute and isinstance(obj, type):
                setattr(obj, self._attribute, name)
            self._items[name] = obj
            return obj
        return deco

    def unregister(self, name: str) -> None:
        """Take `name` out again (tests and plugins that register for a while); an absent name is no error."""
        self._items.pop(name, None)

    def _load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None  # once, and not again from inside itself
            loader()

    def get(self, name: str, default=None):
        """The object registered as `name`; an unknown name is one line of bad input (or `default` if given)."""
        self._load()
        if name in self._items:
            return self._items[name]
        if default is not None:
            return default
        raise BadInput(f"unknown {self.kind} {name!r}; expected one of {', '.join(self.names())}")

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __getitem__(self, name: str):
        self._load()
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(self._items)

    def __len__(self) -> int:
        self._load()
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(sorted(self._items))})"


def _label(obj: object) -> str:
    return getattr(obj, "__qualname__", None) or repr(obj)
