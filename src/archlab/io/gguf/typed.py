"""GGUF metadata read with the type the key must have. llama.cpp's loader refuses a key of the
wrong type (src/llama-model-loader.cpp, GGUFMeta::GKV::validate_type; src/llama-vocab.cpp reads
the tokenizer.* arrays by type), so a damaged or hostile file is refused here by name, never
handed on to `tokenizers` (a bare Exception) or to int() (a float 2.5 read as 2).

No torch: tokenizer.py reads vocabularies through this."""

from __future__ import annotations

import math
from typing import Any, Callable

from ...errors import CheckpointError
from .reader import GGUFFile

__all__ = ["field"]

_MISSING = object()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "a string": lambda v: isinstance(v, str),
    "an integer": _is_int,
    "a bool": lambda v: isinstance(v, bool),
    "a list of strings": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "a list of integers": lambda v: isinstance(v, list) and all(map(_is_int, v)),
    "a list of finite numbers": lambda v: isinstance(v, list) and all(map(_is_number, v)),
}


# The item types each list may be stored as (llama.cpp's gguf_type codes: 0-5, 10, 11 integers, 6 and
# 12 floats, 8 strings): llama.cpp reads arrays by their declared type (gguf_get_arr_str asserts it),
# so even an empty array of integers is no list of strings.
_INTEGER_TYPES = frozenset((0, 1, 2, 3, 4, 5, 10, 11))
_ITEM_TYPES = {"a list of strings": frozenset((8,)), "a list of integers": _INTEGER_TYPES,
               "a list of finite numbers": _INTEGER_TYPES | {6, 12}}
_TYPE_NAMES = {0: "UINT8", 1: "INT8", 2: "UINT16", 3: "INT16", 4: "UINT32", 5: "INT32", 6: "FLOAT32", 7: "BOOL",
               8: "STRING", 10: "UINT64", 11: "INT64", 12: "FLOAT64"}


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


def field(g: GGUFFile, key: str, expected: str, default: Any = _MISSING) -> Any:
    """g.value(key), refused unless it is `expected` (a key of _CHECKS); a missing key gives
    `default` (or the missing-field error when there is none)."""
    if default is not _MISSING and not g.has(key):
        return default
    v = g.value(key)
    if not _CHECKS[expected](v):
        bad = next((x for x in v if not _CHECKS[expected]([x])), None) if isinstance(v, list) and "list" in expected else v
        raise CheckpointError(
            f"{g.path}: GGUF metadata field {key!r} = {_short(v)}; expected {expected}"
            + (f" (found {_short(bad)}, {type(bad).__name__})" if bad is not v else f", not {type(v).__name__}")
        )
    if isinstance(v, list) and expected in _ITEM_TYPES and (item := g.item_type(key)) not in _ITEM_TYPES[expected]:
        raise CheckpointError(f"{g.path}: GGUF metadata field {key!r} = {_short(v)} is an array of "
                              f"{_TYPE_NAMES.get(item, item)} items; expected {expected}")
    return v
