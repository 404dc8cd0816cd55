"""Llama 4 (Meta, 2025), text model only: a pre-norm MoE transformer whose layers come in
groups of four. Three of each four use RoPE and attend only within their 8192-token chunk
(attention_chunk_size); the fourth is a global NoPE layer (no rotation at all) whose queries
are sharpened with position by attention temperature tuning, 1 + 0.1 log(1 + floor((p + 1) /
8192)). Scout L2-normalises queries and keys in its RoPE layers (a weightless RMS norm,
use_qk_norm; HF applies it after the rotation, qk_norm_after_rope); Maverick does not.

The MoE is top-1 with a shared expert: the chosen expert's sigmoid score scales the token
before it enters the expert (weights on the input), and the shared expert (same width as
a routed one) always runs. Scout makes every layer MoE with 16 experts; Maverick alternates
dense layers (intermediate_size_mlp 16384) with MoE layers of 128 experts
(interleave_moe_layer_step 2: layers 1, 3, 5, ...). The vision encoder and projector of these
early-fusion models are not part of the presets.

Numbers: the text_config of config.json of meta-llama/Llama-4-Scout-17B-16E and
meta-llama/Llama-4-Maverick-17B-128E (the base checkpoints) on the Hugging Face hub; the
per-layer plan follows HF's Llama4TextConfig (no_rope_layers[i] = int((i + 1) % 4 != 0), a 1
meaning "uses RoPE"; layer_types "chunked_attention" where RoPE is used, else
"full_attention"; moe_layers = range(step - 1, n_layers, step)); sizes from Meta's Llama 4
model card (github.com/meta-llama/llama-models/blob/main/models/llama4/MODEL_CARD.md).
The Scout Instruct checkpoint differs in its RoPE scaling (llama3, factor 16 with
low_freq_factor = high_freq_factor = 1, a band-less form RopeScaling does not accept) and
context (10M); the base checkpoint's (factor 8, 1 / 4, 256K context) is used here.
"""

from ..model_config import (
    AttentionConfig,
    AttnTemperature,
    FFNConfig,
    ModelConfig,
    MoEConfig,
    NormConfig,
    Pattern,
    RopeConfig,
    RopeScaling,
    RouterConfig,
)
from . import Published, preset


# HF Llama4TextConfig: layer i uses RoPE unless (i + 1) % no_rope_layer_interval (4) == 0, and
# is "chunked_attention" where it uses RoPE, else "full_attention".
NOPE_INTERVAL = 4
ROPE_LAYERS = Pattern.every(NOPE_INTERVAL, False, True)
LAYER_TYPES = Pattern.every(NOPE_INTERVAL, "global", "chunked")


def moe_every(interleave_moe_layer_step: int) -> Pattern:
    """HF Llama4TextConfig: moe_layers = range(step - 1, n_layers, step); the others are dense."""
    return Pattern.every(interleave_moe_layer_step, "moe", "dense")


def llama4_config(
    name: str,
    repo: str,
    *,
    n_experts: int,
    interleave_moe_layer_step: int,
    use_qk_norm: bool,
    max_seq_len: int,
    scaling: RopeScaling | None,
) -> ModelConfig:
    n_layers, eps = 48, 1e-5
    return ModelConfig(
        name=name,
        family="llama4",
        source=f"huggingface.co/{repo}/blob/main/config.json (text_config)",
        vocab_size=202048,
        d_model=5120,
        n_layers=n_layers,
        max_seq_len=max_seq_len,
        norm=NormConfig("rmsnorm", eps=eps),
        position=RopeConfig(theta=500000.0, scaling=scaling),
        attention=AttentionConfig(
            n_heads=40, n_kv_heads=8, head_dim=128, chunk=8192,
            # HF builds Llama4TextL2Norm(rms_norm_eps) only in the RoPE layers
            # (modeling_llama4.py: `if config.use_qk_norm and self.use_rope`).
            qk_norm=NormConfig("l2norm", eps=eps) if use_qk_norm else None,
            qk_norm_in_nope_layers=not use_qk_norm,  # a setting of the QK-norm, so only where there is one
            qk_norm_after_rope=use_qk_norm,  # Llama4TextAttention: apply_rotary_emb, then qk_norm
            temperature=AttnTemperature(floor_scale=8192.0, scale=0.1),  # attn_temperature_tuning, NoPE layers only
        ),
        # intermediate_size_mlp, the dense layers (Scout has none: every layer is MoE)
        ffn=FFNConfig(hidden=16384, kind="glu", activation="silu") if interleave_moe_layer_step > 1 else None,
        moe=MoEConfig(
            n_experts=n_experts, top_k=1, hidden=8192, n_shared=1,  # intermediate_size; shared expert as wide
            router=RouterConfig(score="sigmoid", weights_on="input"),
        ),
        layer_types=LAYER_TYPES,
        ffn_types=moe_every(interleave_moe_layer_step),
        rope_layers=ROPE_LAYERS,
        tie_embeddings=False,
    )


_CARD = "Meta, Llama 4 model card (github.com/meta-llama/llama-models/blob/main/models/llama4/MODEL_CARD.md)"
_NOTE = ("the published totals are of the multimodal checkpoint, vision encoder (34 layers of width 1408) and "
         "projector included, under 1B together; the text model alone is {ours}, within the figure's rounding. "
         "The model card gives no text-only count")


@preset("llama-4-scout", Published(
    "109B", f"{_CARD}: Llama 4 Scout (17Bx16E), 17B activated, 109B total parameters", active="17B",
    active_convention="all", note=_NOTE.format(ours="107.8B")))
def llama_4_scout() -> ModelConfig:
    return llama4_config(
        "llama-4-scout", "meta-llama/Llama-4-Scout-17B-16E", n_experts=16, interleave_moe_layer_step=1,
        use_qk_norm=True, max_seq_len=262144,
        scaling=RopeScaling("llama3", factor=8.0, original_max_seq_len=8192, low_freq_factor=1.0, high_freq_factor=4.0),
    )


@preset("llama-4-maverick", Published(
    "400B", f"{_CARD}: Llama 4 Maverick (17Bx128E), 17B activated, 400B total parameters", active="17B",
    active_convention="all", note=_NOTE.format(ours="400.7B")))
def llama_4_maverick() -> ModelConfig:
    return llama4_config(
        "llama-4-maverick", "meta-llama/Llama-4-Maverick-17B-128E", n_experts=128, interleave_moe_layer_step=2,
        use_qk_norm=False, max_seq_len=1048576, scaling=None,
    )
