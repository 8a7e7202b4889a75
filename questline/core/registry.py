"""Name -> function registries (advantage estimators, losses, reward schemes)."""

from __future__ import annotations

from collections.abc import Callable


class Registry(dict):
    """A dict of named functions with a `register(name)` decorator and a `get`
    whose error lists the allowed names."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[Callable], Callable]:
        def deco(fn: Callable) -> Callable:
            self[name] = fn
            return fn
        return deco

    def get(self, name: str) -> Callable:  # type: ignore[override]
        if name not in self:
            raise KeyError(f"unknown {self.kind} '{name}' (allowed: {', '.join(self)})")
        return self[name]
