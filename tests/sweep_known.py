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


# Found by the sweep (scripts/sweep_hf.py --cases 250 --seed 1), not yet assigned.
FOUND_OPEN: dict[str, tuple[tuple[str, ...], Callable[[dict], bool], Callable[[dict], dict]]] = {
    # Llama-style HF attention rotates the whole head whatever partial_rotary_factor says: the
    # default type's inv_freq (LlamaRotaryEmbedding.compute_default_rope_parameters, and each
    # copy of it) ignores the factor; the other types (modeling_rope_utils) honour it and
    # apply_rotary_pos_emb then fails on the shapes (or, at 2 rotary dims, broadcasts). archlab
    # rotates the fraction: max |diff| 1-6. LlamaConfig(hidden_size=64, num_attention_heads=4,
    # rope_parameters={"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5}): 2.7
    "partial_rotary_factor ignored by HF's Llama-style attention": (
        ("llama", "mistral", "mixtral", "qwen3", "qwen3_moe", "olmo2", "smollm3", "gemma3_text", "gpt_oss", "llama4_text"),
        lambda c: any(p.get("partial_rotary_factor", 1.0) != 1.0 for p in _rope_dicts(c)),
        lambda c: _map_rope(c, lambda p: {**p, "partial_rotary_factor": 1.0})),
    # HF's _compute_yarn_parameters reads `truncate` from config.rope_parameters itself
    # (modeling_rope_utils.py:475), which for Gemma 3's per-layer-type dict never holds it: HF
    # always truncates; archlab honours truncate=false. Gemma3TextConfig(hidden_size=96,
    # num_attention_heads=6, num_hidden_layers=1, layer_types=["full_attention"], rope_parameters=
    # {"full_attention": {"rope_type": "yarn", "rope_theta": 5e5, "factor": 8.0,
    # "original_max_position_embeddings": 32, "truncate": False}, "sliding_attention": {...}}): 0.45
    "gemma3 yarn truncate=false per layer type": (
        ("gemma3_text",), lambda c: "full_attention" in (c.get("rope_parameters") or {})
        and any(p.get("rope_type") == "yarn" and p.get("truncate") is False for p in _rope_dicts(c)),
        lambda c: _map_rope(c, lambda p: {k: v for k, v in p.items() if k != "truncate"})),
    # attn_temperature_tuning tunes only NoPE layers; with none (fewer layers than
    # no_rope_layer_interval, or a no_rope_layers list of 1s) HF runs as if it were off. archlab refuses,
    # naming its own fields: "attention.temperature: AttnTemperature tunes NoPE layers (Llama 4),
    # and rope_layers has none". Llama4TextConfig(num_hidden_layers=2, no_rope_layer_interval=4)
    "llama4 temperature tuning without NoPE layers refused": (
        ("llama4_text",), lambda c: c.get("attn_temperature_tuning", True) and 0 not in _no_rope_layers(c),
        lambda c: {**c, "attn_temperature_tuning": False}),
    # An odd number of rotary dimensions (rotary_pct / partial_rotary_factor x head_dim) is
    # refused naming archlab's field, not config.json's: "position.partial: rotates 9 of
    # head_dim 12 dimensions". GPTNeoXConfig(hidden_size=36, num_attention_heads=3,
    # rope_parameters={..., "partial_rotary_factor": 0.75})
    "odd rotary dims refused as position.partial": (
        (), lambda c: any(int(head_dim_of(c) * p.get("partial_rotary_factor", 1.0)) % 2 for p in _rope_dicts(c))
        and "qk_rope_head_dim" not in c,
        lambda c: _map_rope(c, lambda p: {**p, "partial_rotary_factor": 1.0})),
    # No MoE layer (first_k_dense_replace >= num_hidden_layers), so HF never routes; archlab
    # still checks the routing and refuses naming its own fields: "moe.router.group_score:
    # top2_sum needs at least 2 experts per group". DeepseekV3Config(num_hidden_layers=1,
    # first_k_dense_replace=1, n_routed_experts=4, n_group=4, topk_group=2)
    "MoE-less deepseek routing refused by internal names": (
        ("deepseek_v2", "deepseek_v3", "glm4_moe"), lambda c: c.get("first_k_dense_replace", 0) >= c["num_hidden_layers"]
        and (c["n_routed_experts"] // c.get("n_group", 1) < 2 or c["num_experts_per_tok"] > _kept(c)),
        lambda c: {**c, "n_group": 1, "topk_group": 1}),
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
