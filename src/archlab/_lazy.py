"""Package attributes imported on first access, so that importing a package stays light:
`import archlab` needs no torch, nor does archlab.io.gguf when the tokenizer reads a vocabulary."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, table: dict[str, str], namespace: dict[str, Any]) -> tuple[Callable, Callable]:
    """A package's __getattr__ and __dir__ for the names in `table` (name -> the submodule that
    defines it), each imported on first access and then kept in `namespace` (its globals())."""

    def __getattr__(name: str) -> Any:
        if name in table:
            value = getattr(import_module(f".{table[name]}", package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
