"""KNOWN_OPEN: the failure classes other helpers are fixing now (issue 11). The sweep still draws
and counts them, and its report names the classes a failure falls in; the quick test slice
(tests/test_sweep_hf.py) leaves out configs that fall in one. The lead empties the list as the
fixes merge: a class whose fix has merged must come out, so that the quick slice covers it."""

from __future__ import annotations

from typing import Callable

from sweep_draws import head_dim_of


def _g(c: dict, key: str, default=None):
    return c.get(key, default)


# name -> (model types (none: every type), does the drawn config fall in it, the config made to
# avoid it). The third part lets the sweep check that a failure the class names is explained by
# it: the same config with every named class avoided must then pass.
KNOWN_OPEN: dict[str, tuple[tuple[str, ...], Callable[[dict], bool], Callable[[dict], dict]]] = {
    "deepseek latent-norm eps": (("deepseek_v2", "deepseek_v3"), lambda c: c["rms_norm_eps"] != 1e-6,
                                 lambda c: {**c, "rms_norm_eps": 1e-6}),
    "deepseek_v2 norm_topk_prob": (("deepseek_v2",), lambda c: bool(_g(c, "norm_topk_prob")),
                                   lambda c: {**c, "norm_topk_prob": False}),
    "deepseek_v2 mlp_bias": (("deepseek_v2",), lambda c: bool(_g(c, "mlp_bias")), lambda c: {**c, "mlp_bias": False}),
    "deepseek n_shared_experts 0": (("deepseek_v2", "deepseek_v3", "glm4_moe"), lambda c: _g(c, "n_shared_experts") == 0,
                                    lambda c: {**c, "n_shared_experts": 1}),
    "deepseek group routing with top-k > kept experts": (
        ("deepseek_v2", "deepseek_v3", "glm4_moe"), lambda c: c["num_experts_per_tok"] > _kept(c),
        lambda c: {**c, "num_experts_per_tok": _kept(c)}),
    "llama4 qk-norm with yarn": (("llama4_text",), lambda c: bool(_g(c, "use_qk_norm")) and "yarn" in _rope_types(c),
                                 lambda c: {**c, "use_qk_norm": False}),
    "bloom slow_but_exact": (("bloom",), lambda c: bool(_g(c, "slow_but_exact")), lambda c: {**c, "slow_but_exact": False}),
    "bloom apply_residual_connection_post_layernorm": (
        ("bloom",), lambda c: bool(_g(c, "apply_residual_connection_post_layernorm")),
        lambda c: {**c, "apply_residual_connection_post_layernorm": False}),
    "rope dynamic/longrope": ((), lambda c: bool(_rope_types(c) & {"dynamic", "longrope"}), lambda c: _default_rope(c)),
    "qwen3_next shared width / rotary rounding": (
        ("qwen3_next",), lambda c: _g(c, "shared_expert_intermediate_size", 0) % c["moe_intermediate_size"] != 0
        or int(head_dim_of(c) * c["rope_parameters"].get("partial_rotary_factor", 0.25)) % 2 != 0,
        lambda c: {**c, "shared_expert_intermediate_size": c["moe_intermediate_size"],
                   "rope_parameters": {**c["rope_parameters"], "partial_rotary_factor": 1.0}}),
    "smollm3 sliding with use_sliding_window false": (
        ("smollm3",), lambda c: not _g(c, "use_sliding_window") and "sliding_attention" in (_g(c, "layer_types") or []),
        lambda c: {**c, "use_sliding_window": True}),
    "gpt2 quick_gelu": (("gpt2",), lambda c: _g(c, "activation_function") == "quick_gelu",
                        lambda c: {**c, "activation_function": "gelu_new"}),
    "gpt2 scale_attn_by_inverse_layer_idx": (("gpt2",), lambda c: bool(_g(c, "scale_attn_by_inverse_layer_idx")),
                                             lambda c: {**c, "scale_attn_by_inverse_layer_idx": False}),
    "gpt_oss swiglu_alpha": (("gpt_oss",), lambda c: _g(c, "swiglu_alpha", 1.702) != 1.702,
                             lambda c: {k: v for k, v in c.items() if k != "swiglu_alpha"}),
    "moe_layer_freq": ((), lambda c: _g(c, "moe_layer_freq", 1) != 1, lambda c: {**c, "moe_layer_freq": 1}),
}


def _kept(c: dict) -> int:
    """Experts left after group-limited routing keeps topk_group of n_group groups."""
    return c["n_routed_experts"] // max(c.get("n_group") or 1, 1) * (c.get("topk_group") or 1)


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
    """The drawn config with every KNOWN_OPEN class it falls in avoided."""
    for name in known_open(model_type, kw):
        kw = KNOWN_OPEN[name][2](kw)
    return kw


def known_open(model_type: str, kw: dict) -> list[str]:
    """The KNOWN_OPEN classes the drawn config falls in."""
    return [name for name, (types, hit, _) in KNOWN_OPEN.items() if (not types or model_type in types) and hit(kw)]
