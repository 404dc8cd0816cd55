"""The failure classes still open, as data: which drawn configs fall in each, and how to avoid it.

KNOWN_OPEN: the classes other helpers are fixing now (issue 11). FOUND_OPEN: the classes this
sweep found that nobody is fixing yet (each with a minimal reproducer in its comment). The sweep
still draws and counts both, and its report names the classes a failure falls in; the quick
test slice (tests/test_sweep_hf.py) leaves out configs that fall in one. The lead empties the
lists as fixes merge: a class whose fix has merged must come out, so the quick slice covers it."""

from __future__ import annotations

from typing import Callable

from sweep_draws import head_dim_of


def _g(c: dict, key: str, default=None):
    return c.get(key, default)


# name -> (model types (none: every type), does the drawn config fall in it, the config made to
# avoid it). The third part lets the sweep check that a failure the class names is explained by
# it: the same config with every named class avoided must then pass.
KNOWN_OPEN: dict[str, tuple[tuple[str, ...], Callable[[dict], bool], Callable[[dict], dict]]] = {
    # every class once listed here is fixed: its reproducer is now a regression test
    # (sweep_reproducers.FIXED, tests/test_sweep_hf.py::test_fixed_class_reproducer_equals_hf)
}


def _kept(c: dict) -> int:
    """Experts left after group-limited routing keeps topk_group of n_group groups."""
    return c["n_routed_experts"] // max(c.get("n_group") or 1, 1) * (c.get("topk_group") or 1)


# Found by the sweep (scripts/sweep_hf.py --cases 250 --seed 1), not yet assigned.
FOUND_OPEN: dict[str, tuple[tuple[str, ...], Callable[[dict], bool], Callable[[dict], dict]]] = {
    # every class once listed here is fixed: its reproducer is now a regression test
}

OPEN = {**KNOWN_OPEN, **FOUND_OPEN}


def _no_rope_layers(c: dict) -> list[int]:
    """Llama 4's per-layer RoPE flags (0: NoPE) as Llama4TextConfig resolves them: the list, or
    when it is missing or empty, every no_rope_layer_interval-th layer NoPE."""
    step = c.get("no_rope_layer_interval", 4)
    return c.get("no_rope_layers") or [int((i + 1) % step != 0) for i in range(c["num_hidden_layers"])]


def _rope_dicts(c: dict) -> list[dict]:
    p = c.get("rope_parameters") or {}
    return [p] if "rope_type" in p else [v for v in p.values() if isinstance(v, dict)]


def _map_rope(c: dict, f) -> dict:
    p = c.get("rope_parameters")
    if not p:
        return c
    return {**c, "rope_parameters": f(p) if "rope_type" in p else {k: f(v) for k, v in p.items()}}


def _default_rope(c: dict) -> dict:
    def one(p: dict) -> dict:
        if p.get("rope_type") not in ("dynamic", "longrope"):
            return p
        keep = {k: p[k] for k in ("rope_theta", "partial_rotary_factor") if k in p}
        return {"rope_type": "default", **keep}
    p = c["rope_parameters"]
    return {**c, "rope_parameters": one(p) if "rope_type" in p else {k: one(v) for k, v in p.items()}}


def _rope_types(c: dict) -> set:
    p = c.get("rope_parameters") or {}
    if "rope_type" in p:
        return {p["rope_type"]}
    return {v.get("rope_type") for v in p.values() if isinstance(v, dict)}


def without_known(model_type: str, kw: dict) -> dict:
    """The drawn config with every open class it falls in avoided (again, until none is left:
    avoiding one may not avoid another)."""
    for _ in range(len(OPEN)):
        names = known_open(model_type, kw)
        if not names:
            break
        for name in names:
            kw = OPEN[name][2](kw)
    return kw


def known_open(model_type: str, kw: dict) -> list[str]:
    """The open classes (KNOWN_OPEN, then FOUND_OPEN) the drawn config falls in."""
    return [name for name, (types, hit, _) in OPEN.items() if (not types or model_type in types) and hit(kw)]
