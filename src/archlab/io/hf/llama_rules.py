"""The tensor names of the Llama-shaped HF families (model.layers.{i}.self_attn / mlp, with
experts stored per expert or fused): the rules each family builds its own from."""

from __future__ import annotations

from collections.abc import Callable

from ...model_config import ModelConfig
from ..mapping import Rule, Tensors, rename, same

ATTN = [(f"{o}.{w}", f"{t}.{w}") for o, t in (("wq", "q_proj"), ("wk", "k_proj"), ("wv", "v_proj"), ("wo", "o_proj"))
        for w in ("weight", "bias")] + [("q_norm.weight", "q_norm.weight"), ("k_norm.weight", "k_norm.weight")]

# our GLU's projections -> HF's
GLU = (("gate", "gate_proj"), ("up", "up_proj"), ("down", "down_proj"))

# our block norms (nn/block.py) -> HF decoder-layer names, per residual layout
PRE_NORMS = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
# OLMo 2 (modeling_olmo2.py Olmo2DecoderLayer): both norms sit on the sublayer outputs
OUTPUT_NORMS = {"attn_post_norm": "post_attention_layernorm", "ffn_post_norm": "post_feedforward_layernorm"}
# Gemma 2/3 (modeling_gemma3.py Gemma3DecoderLayer): post_attention_layernorm is the norm
# *after* attention here, not the one before the MLP as in Llama
SANDWICH_NORMS = {
    "attn_norm": "input_layernorm", "attn_post_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm", "ffn_post_norm": "post_feedforward_layernorm",
}


def decoder_rules(
    norms: dict[str, str],
    model: str = "model.",
    head: str = "lm_head.weight",
    attn: list[tuple[str, str]] = ATTN,
    mlp: str = "mlp",
    load: dict[str, Callable[[Tensors, ModelConfig], Tensors]] | None = None,
    save: dict[str, Callable[[Tensors, ModelConfig], Tensors]] | None = None,
) -> list[Rule]:
    """Embedding, final norm, head, block norms, attention (`attn`: our names under attn. ->
    theirs under self_attn.; by default q/k/v/o with biases and QK-norm) and the dense GLU
    (under `mlp`), all under `model` (Gemma 3's multimodal checkpoints nest it as
    language_model.model.). `load`: a layout change on load for some attention projections,
    by our name (Llama 4's complex-form RoPE rows of wq and wk), and `save` its inverse."""
    p, load, save = model + "layers.{i}.", load or {}, save or {}
    rules = [
        rename("tok_emb.weight", model + "embed_tokens.weight"),
        rename("norm.weight", model + "norm.weight"),
        rename("head.weight", head),
    ]
    rules += [rename(f"layers.{{i}}.{ours}.weight", f"{p}{theirs}.weight") for ours, theirs in norms.items()]
    for ours, theirs in attn:
        name = ours.split(".")[0]
        rules.append(rename(f"layers.{{i}}.attn.{ours}", f"{p}self_attn.{theirs}", load.get(name, same), save.get(name, same)))
    rules += [rename(f"layers.{{i}}.ffn.{ours}.{w}", f"{p}{mlp}.{theirs}.{w}") for ours, theirs in GLU for w in ("weight", "bias")]
    return rules


def _split_gate_up(ts: Tensors, cfg: ModelConfig) -> Tensors:
    # (E, 2F, D), gate rows first: HF's MergeModulelist + Concatenate(dim=1) of [gate, up]
    # (conversion_mapping.py), read back by `gate, up = linear(x, gate_up_proj[e]).chunk(2, -1)`
    F = cfg.moe.hidden
    return [ts[0][:, :F].contiguous(), ts[0][:, F:].contiguous()]


def expert_rules(block: str = "model.layers.{i}.mlp.", names: tuple[str, str, str] = ("gate_proj", "up_proj", "down_proj")) -> list[Rule]:
    """Routed experts stored per expert under `block` (router `gate.weight`, experts.{e}.<gate,
    up, down `names`>.weight: what save_pretrained writes and the hub holds), or fused as HF v5
    holds them in memory: model.layers.{i}.mlp.gate.weight, mlp.experts.gate_up_proj (E, 2F, D)
    and mlp.experts.down_proj (E, D, F), which save_pretrained(save_original_format=False) writes."""
    fused = "model.layers.{i}.mlp."
    ours = "layers.{i}.ffn."
    router = block + "gate.weight"
    gate, up, down = (f"{block}experts.{{e}}.{n}.weight" for n in names)
    return [
        Rule((ours + "router.weight",), (router,), alternative=rename(ours + "router.weight", fused + "gate.weight")),
        Rule(
            (ours + "experts.gate", ours + "experts.up"), (gate, up),
            alternative=Rule((ours + "experts.gate", ours + "experts.up"), (fused + "experts.gate_up_proj",), _split_gate_up),
        ),
        Rule((ours + "experts.down",), (down,), alternative=rename(ours + "experts.down", fused + "experts.down_proj")),
    ]


def shared_expert_rules(prefix: str) -> list[Rule]:
    """The always-on shared expert, a GLU under `prefix` (e.g. model.layers.{i}.mlp.shared_experts.),
    with biases where the config gives it some (DeepSeek-V2's mlp_bias)."""
    return [rename(f"layers.{{i}}.ffn.shared.{ours}.{w}", f"{prefix}{theirs}.{w}") for ours, theirs in GLU
            for w in ("weight", "bias")]


def deepseek_moe_rules() -> list[Rule]:
    """DeepSeek-V3's MoE layout, which GLM-4.5 shares: experts, the router's selection-only bias
    (e_score_correction_bias) and the shared experts, under model.layers.{i}.mlp."""
    m = "model.layers.{i}.mlp."
    return [
        *expert_rules(m),
        rename("layers.{i}.ffn.router.score_bias", m + "gate.e_score_correction_bias"),
        *shared_expert_rules(m + "shared_experts."),
    ]


IGNORE = (r".*rotary_emb\.inv_freq$",)  # a recomputed buffer older checkpoints carry


def no_shared_expert(hf: dict, cfg: ModelConfig) -> list[str]:
    """With n_shared_experts=0, HF's DeepseekV2/V3Moe and Glm4MoeMoE still build their shared
    expert, an MLP of width moe_intermediate_size * 0, and save_pretrained writes its (0, D) and
    (D, 0) weights: ours has no shared expert, and those empty tensors are skipped."""
    if cfg.moe is None or cfg.moe.n_shared:
        return []
    return [r"^model\.layers\.\d+\.mlp\.shared_experts\.(gate|up|down)_proj\.(weight|bias)$"]


def no_gated_shared_expert(hf: dict, cfg: ModelConfig) -> list[str]:
    """With shared_expert_intermediate_size=0, HF's Qwen2MoeSparseMoeBlock and
    Qwen3NextSparseMoeBlock still build a zero-width shared expert (saved as empty tensors,
    skipped) and its gate."""
    if cfg.moe is None or cfg.moe.n_shared:
        return []
    return [r"^model\.layers\.\d+\.mlp\.shared_expert\.(gate|up|down)_proj\.weight$"]


def unused_shared_gate(hf: dict, cfg: ModelConfig) -> list[str]:
    """The gate of no_gated_shared_expert's zero-width expert: a (1, D) weight that scales its
    all-zero output, so it carries nothing the model needs."""
    if cfg.moe is None or cfg.moe.n_shared:
        return []
    return [r"^model\.layers\.\d+\.mlp\.shared_expert_gate\.weight$"]
