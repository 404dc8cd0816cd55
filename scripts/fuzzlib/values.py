"""Hostile JSON values, and when one is certainly wrong for the value it replaces."""

from __future__ import annotations

import math
import random
from typing import Any

HOSTILE = [None, True, False, "false", "true", "", "x", "1", 0, 1, -1, 2, 3, 2**31, 2**53 + 1, 2**63, -(2**63), 10**9,
           2.5, 0.0, -0.0, 1e-45, 1e308, -1e308, math.nan, math.inf, -math.inf, [], [1], [None], {}, {"a": 1}]


def hostile_value(rng: random.Random, old: Any) -> Any:
    """A value from HOSTILE, or one derived from `old` (scaled, negated, wrapped, stringified)."""
    if rng.random() < 0.35:
        derived = [str(old), [old], {"value": old}]
        if isinstance(old, (int, float)) and not isinstance(old, bool):
            derived += [old * 2, old * 1000, -old, old + 1, old - 1, old * 0.5, old * 1e30]
        if isinstance(old, list) and old:
            derived += [old[:-1], old + old[-1:], old * 1000, old[::-1]]
        if isinstance(old, str):
            derived += [old.upper(), old + "_x", old * 1000]
        return rng.choice(derived)
    return rng.choice(HOSTILE)


def _finite(v: Any) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(_finite(x) for x in v)
    if isinstance(v, dict):
        return all(_finite(x) for x in v.values())
    return True


def bad_for(old: Any, new: Any) -> bool:
    """True when `new` cannot be a valid value where HF's writer put `old`: a JSON type HF never
    writes there, or a non-finite or absurd number. Unknown cases are not bad (then accepting and
    refusing are both fine; only a crash, hang or huge allocation counts)."""
    if not _finite(new):
        return True
    if isinstance(new, int) and not isinstance(new, bool) and abs(new) >= 2**40 and type(old) is int:
        return True  # a count, size or id; a float field may hold any finite number
    if new is None or old is None:
        return False
    if isinstance(old, bool):
        return not isinstance(new, bool)
    if isinstance(old, int):
        return isinstance(new, (bool, str, list, dict))
    if isinstance(old, float):
        return isinstance(new, (bool, str, list, dict))
    if isinstance(old, str):
        return not isinstance(new, str)
    if isinstance(old, list):
        return not isinstance(new, list)
    if isinstance(old, dict):
        return not isinstance(new, dict)
    return False


def where_keys(config: dict) -> list[tuple]:
    """Paths to the values to damage: every key, one level into nested objects and lists."""
    paths: list[tuple] = []
    for k, v in config.items():
        paths.append((k,))
        if isinstance(v, dict):
            paths += [(k, k2) for k2 in v]
        elif isinstance(v, list) and v:
            paths.append((k, 0))
            if isinstance(v[0], dict):
                paths += [(k, 0, k2) for k2 in v[0]]
    return paths


def put(config: dict, path: tuple, value: Any) -> None:
    d = config
    for p in path[:-1]:
        d = d[p]
    d[path[-1]] = value


def value_kind(old: Any, new: Any) -> str:
    """A short name of what kind of damage `new` is, for the tables."""
    if new is None:
        return "null"
    if not _finite(new):
        return "non-finite"
    if isinstance(new, int) and not isinstance(new, bool) and abs(new) >= 2**40 and type(old) is int:
        return "absurd-count"
    if old is not None and type(new) is not type(old) and not (isinstance(old, (int, float)) and not isinstance(old, bool)
                                                              and isinstance(new, (int, float)) and not isinstance(new, bool)):
        return "other-json-type"
    return "hostile-value"
