"""Every HF-checkable family's test cases, as data.

A case is one tiny random HF checkpoint (an HF config, a fixed seed) and what must hold for
it; tests/test_families.py runs the common checks over every registered case:

    - the reader makes the expected config of it (`expect`), holding every layer kind of the
      published models named in `presets`
    - logits equal HF's (within `atol`, by default the model type's measured limit in
      tolerance.py, on `shapes`)
    - parameter count equals HF's, the meta-device build's and the analysis'
    - cached decoding (prefill, one token at a time, a chunk) equals one full forward
    - greedy generation equals HF's generate, prompt by prompt and left-padded as a batch
    - cache bytes the caches allocate equal the analysis'
    - `fused_experts`: HF v5's fused expert layout loads as the same model
    - `base_model`: the bare base model's checkpoint (the hub's layout) loads with a tied head
    - `bad_fields`: each change to config.json is refused naming the field

and, beside the cases, `HUB_CONFIGS`: published config.json files whose reading must equal a
preset. Checks that fit no common shape stay as small tests in tests/test_family_*.py, which
get a case's loaded pair through the `hf_pair` fixture (conftest.py).

Seeds are fixed numbers (a case's name through zlib.crc32 when not given), never hash(str),
which changes with PYTHONHASHSEED: the parity figures are the same in every process."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import archlab
from hf_reference import transformers

SHAPES = ((1, 1), (2, 9), (3, 37))

@dataclass(frozen=True)
class Case:
    family: str  # the row of the summary table
    name: str  # the test id
    hf_config: Callable[[], Any]  # built on use: configs are cheap, but not free to import
    seed: int | None = None
    presets: tuple[str, ...] = ()  # published models whose every layer kind the case must hold
    expect: Callable[[Any], None] | None = None  # asserts on the loaded model (its config, its modules)
    shapes: tuple = SHAPES
    atol: float | None = None  # None: tolerance.atol(the HF config's model_type), measured per type
    greedy: bool = True
    fused_experts: bool = False
    base_model: bool = False
    bad_fields: tuple = ()  # ((change to config.json, or a function of it making one), match), ...
    ignore_warnings: str | None = None  # a warning the reader gives on purpose while loading
    label: str | None = None  # family label to put on the loaded config (Kimi loads through deepseek_v3)
    slow: bool = False

    def __post_init__(self):
        if self.seed is None:
            object.__setattr__(self, "seed", zlib.crc32(self.name.encode()) % 1000)


CASES: dict[str, Case] = {}


def register(family: str, name: str, hf_config: Callable[[], Any], **kw) -> Case:
    assert name not in CASES, f"case {name!r} registered twice"
    CASES[name] = Case(family, name, hf_config, **kw)
    return CASES[name]


def case(name: str) -> Case:
    return CASES[name]


def cases(*families: str) -> list[Case]:
    return [c for c in CASES.values() if not families or c.family in families]


@dataclass(frozen=True)
class HubConfig:
    preset: str
    label: str  # the test id
    config: dict = field(repr=False)


HUB_CONFIGS: list[HubConfig] = []


def hub_config(preset: str, config: dict, label: str | None = None) -> None:
    """A config.json as published; the reader for its model_type must make exactly `preset` of it."""
    HUB_CONFIGS.append(HubConfig(preset, label or preset, config))


def _untied(ours) -> None:
    assert ours.head is not None, "the head is tied"


def _rotary(fraction: float):
    """config.json with rope_parameters' partial_rotary_factor changed (HF v5 keeps it there)."""
    return lambda cfg: {"rope_parameters": {**cfg["rope_parameters"], "partial_rotary_factor": fraction}}


# ---- GPT-2 ---------------------------------------------------------------------------------------

def _gpt2(**kw):
    return lambda: transformers.GPT2Config(**kw)


register("gpt2", "gpt2", _gpt2(vocab_size=301, n_positions=64, n_embd=48, n_layer=2, n_head=4, bos_token_id=0,
                               eos_token_id=0), base_model=True)
register("gpt2", "gpt2-ninner-gelu", _gpt2(vocab_size=263, n_positions=48, n_embd=32, n_layer=3, n_head=2, n_inner=80,
                                           activation_function="gelu", bos_token_id=0, eos_token_id=0), base_model=True)


# ---- GPT-1 ---------------------------------------------------------------------------------------

def gpt1_config(**kw):
    return transformers.OpenAIGPTConfig(**{**dict(vocab_size=301, n_embd=48, n_layer=3, n_head=4, n_positions=64), **kw})


def _gpt1_expect(ours):
    assert ours.config.block == "post" and ours.norm is None
    # modeling_openai.py maps afn "gelu" to gelu_new: the tanh approximation, not erf
    assert ours.config.ffn.activation == "gelu_tanh"


register("openai_gpt", "gpt1", gpt1_config, seed=0, presets=("gpt-1",), expect=_gpt1_expect, base_model=True,
         bad_fields=(({"afn": "tanh"}, "afn"), ({"n_head": 5}, "n_head"), ({"n_positions": None}, "n_positions")))
for _afn in ("relu", "silu"):
    # untied, the random model repeats itself less: a sharper check of positions under left padding
    register("openai_gpt", f"gpt1-{_afn}-untied", lambda afn=_afn: gpt1_config(n_layer=2, afn=afn, tie_word_embeddings=False),
             seed=4, shapes=((2, 9),), expect=_untied)

hub_config("gpt-1", {"model_type": "openai-gpt", "afn": "gelu", "n_embd": 768, "n_head": 12, "n_layer": 12,
                     "n_positions": 512, "vocab_size": 40478, "layer_norm_epsilon": 1e-5})


# ---- GPT-NeoX ------------------------------------------------------------------------------------

def neox_config(**kw):
    # GPT-NeoX-20B's shape in small: a quarter of each 16-dim head rotated, gelu_fast, untied head
    base = dict(vocab_size=301, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=112,
                max_position_embeddings=128, rotary_pct=0.25, rotary_emb_base=10000, hidden_act="gelu_fast",
                use_parallel_residual=True, bos_token_id=0, eos_token_id=1)
    return transformers.GPTNeoXConfig(**{**base, **kw})


def _neox_expect(block: str, rotary_dims: int):
    def check(ours):
        assert ours.config.block == block
        assert ours.config.rope.rotary_dim(16) == rotary_dims
    return check


register("gpt_neox", "parallel-20b", neox_config, seed=0, presets=("gpt-neox-20b",), expect=_neox_expect("parallel", 4),
         bad_fields=(({"use_parallel_residual": "yes"}, "use_parallel_residual"), ({"hidden_act": "mish"}, "hidden_act"),
                     ({"num_attention_heads": 5}, "num_attention_heads"),
                     (_rotary(0.05), "partial")))  # 0 of 16 dims
# Pythia-style variants: sequential residual, exact GELU, half the head rotated, theta changed,
# no attention biases, tied embeddings
register("gpt_neox", "sequential-nobias-tied", lambda: neox_config(
    use_parallel_residual=False, hidden_act="gelu", rotary_pct=0.5, rotary_emb_base=500, attention_bias=False,
    tie_word_embeddings=True), seed=0, presets=("gpt-neox-20b",), expect=_neox_expect("pre", 8))

hub_config("gpt-neox-20b", {  # EleutherAI/gpt-neox-20b (v4 field names)
    "model_type": "gpt_neox", "vocab_size": 50432, "hidden_size": 6144, "num_hidden_layers": 44,
    "num_attention_heads": 64, "intermediate_size": 24576, "hidden_act": "gelu_fast", "rotary_pct": 0.25,
    "rotary_emb_base": 10000, "max_position_embeddings": 2048, "layer_norm_eps": 1e-5,
    "use_parallel_residual": True, "tie_word_embeddings": False})


# ---- BLOOM ---------------------------------------------------------------------------------------

def bloom_config(**kw):
    # 6 heads: not a power of two, so BLOOM's extra interleaved slopes are exercised
    base = dict(vocab_size=301, hidden_size=48, n_layer=2, n_head=6, bos_token_id=0, eos_token_id=1)
    return transformers.BloomConfig(**{**base, **kw})


def _bloom_expect(ours):
    assert ours.config.position == "alibi" and ours.config.embed_norm


register("bloom", "bloom-6heads", bloom_config, seed=0, presets=("bloom-176b",), expect=_bloom_expect, base_model=True,
         bad_fields=(({"apply_residual_connection_post_layernorm": "yes"}, "apply_residual_connection_post_layernorm"),
                     ({"pretraining_tp": 0}, "pretraining_tp"), ({"n_head": 5}, "n_head")))
# an untied random model generates less repetitively than a tied one: a sharper greedy check
register("bloom", "bloom-4heads-untied", lambda: bloom_config(n_head=4, tie_word_embeddings=False), seed=2,
         shapes=((2, 9),), expect=_untied)

hub_config("bloom-176b", {  # bigscience/bloom
    "model_type": "bloom", "n_embed": 14336, "n_layer": 70, "num_attention_heads": 112, "vocab_size": 250880,
    "layer_norm_epsilon": 1e-5, "apply_residual_connection_post_layernorm": False, "pretraining_tp": 4,
    "slow_but_exact": False})


# ---- Llama ---------------------------------------------------------------------------------------

_LLAMA = dict(vocab_size=301, hidden_size=64, intermediate_size=112, num_hidden_layers=2, max_position_embeddings=128,
              bos_token_id=0, eos_token_id=1)


def _llama(**kw):
    return lambda: transformers.LlamaConfig(**{**_LLAMA, **kw})


# GQA with 1 < n_kv_heads < n_heads and Llama 3.1's frequency scaling
register("llama", "llama-gqa-llama3rope", _llama(num_attention_heads=8, num_key_value_heads=2, rope_parameters={
    "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
    "original_max_position_embeddings": 32}))
register("llama", "llama-mqa", _llama(num_attention_heads=4, num_key_value_heads=1))
register("llama", "llama-mha-bias-tied", _llama(num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
                                                attention_bias=True, mlp_bias=True, tie_word_embeddings=True))
# head_dim not equal to hidden_size / n_heads, as Gemma and Qwen3 do
register("llama", "llama-headdim-linear", _llama(num_attention_heads=4, num_key_value_heads=2, head_dim=24, rope_parameters={
    "rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}))


# ---- DeepSeek-V2 / V3 ----------------------------------------------------------------------------

def _deepseek(cls: str, **kw):
    base = dict(vocab_size=301, hidden_size=64, intermediate_size=96, moe_intermediate_size=24, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=4, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8,
                v_head_dim=12, first_k_dense_replace=1, max_position_embeddings=256, bos_token_id=0, eos_token_id=1)
    return lambda: getattr(transformers, cls)(**{**base, **kw})


_YARN = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 64,
         "beta_fast": 32.0, "beta_slow": 1.0}

# DeepSeek-V2 shape: compressed query, group-limited routing, 2 shared experts, YaRN with mscale
register("deepseek_v2", "dsv2-qlora-groups-yarn", _deepseek(
    "DeepseekV2Config", q_lora_rank=48, n_routed_experts=8, num_experts_per_tok=3, n_group=4, topk_group=2,
    topk_method="group_limited_greedy", n_shared_experts=2, routed_scaling_factor=1.5,
    rope_parameters={**_YARN, "mscale": 0.707, "mscale_all_dim": 0.707}), fused_experts=True)
# DeepSeek-V2-Lite shape: uncompressed query, greedy routing
register("deepseek_v2", "dsv2-lite-greedy", _deepseek(
    "DeepseekV2Config", q_lora_rank=None, n_routed_experts=6, num_experts_per_tok=2, topk_method="greedy",
    n_shared_experts=1, routed_scaling_factor=1.0), fused_experts=True)
# DeepSeek-V3 shape: sigmoid routing, score-correction bias, groups by top-2 sum, YaRN
register("deepseek_v3", "dsv3-qlora-groups-yarn", _deepseek(
    "DeepseekV3Config", q_lora_rank=48, n_routed_experts=8, num_experts_per_tok=3, n_group=4, topk_group=2,
    n_shared_experts=1, routed_scaling_factor=2.5, norm_topk_prob=True,
    rope_parameters={**_YARN, "mscale": 1.0, "mscale_all_dim": 1.0}), fused_experts=True)
register("deepseek_v3", "dsv3-noqlora-nonorm", _deepseek(
    "DeepseekV3Config", q_lora_rank=None, n_routed_experts=6, num_experts_per_tok=2, n_group=1, topk_group=1,
    n_shared_experts=2, routed_scaling_factor=1.0, norm_topk_prob=False), fused_experts=True)
# rope_interleave=false: the checkpoint already uses rotate-half layout
register("deepseek_v3", "dsv3-rope-halves", _deepseek(
    "DeepseekV3Config", q_lora_rank=40, n_routed_experts=8, num_experts_per_tok=2, n_group=2, topk_group=1,
    n_shared_experts=1, rope_interleave=False), fused_experts=True)



# ---- Kimi K2 (DeepSeek-V3's architecture, through HF deepseek_v3) ---------------------------------

KIMI_VOCAB = 301


def kimi_hf_config():
    """HF DeepseekV3Config with archlab.tiny("kimi-k2")'s shape, field by field: the parity covers
    the preset's semantics (no group limit, one dense layer first, its routed_scaling_factor, one
    shared expert, YaRN with beta_fast = beta_slow = 1), not a DeepSeek-V3 stand-in."""
    c = archlab.tiny("kimi-k2")
    a, m, s = c.attention, c.moe, c.rope.scaling
    assert m.router.n_groups == 1 and m.router.topk_groups == 1 and m.router.scale == 2.827
    return transformers.DeepseekV3Config(
        vocab_size=KIMI_VOCAB, hidden_size=c.d_model, intermediate_size=c.ffn.hidden, moe_intermediate_size=m.hidden,
        num_hidden_layers=c.n_layers, num_attention_heads=a.n_heads, num_key_value_heads=a.n_heads,
        q_lora_rank=a.q_lora_rank, kv_lora_rank=a.kv_lora_rank, qk_nope_head_dim=a.qk_nope_head_dim,
        qk_rope_head_dim=a.qk_rope_head_dim, v_head_dim=a.v_head_dim,
        n_routed_experts=m.n_experts, num_experts_per_tok=m.top_k, n_shared_experts=m.n_shared,
        routed_scaling_factor=m.router.scale, norm_topk_prob=m.router.norm_topk, n_group=m.router.n_groups,
        topk_group=m.router.topk_groups, first_k_dense_replace=[s.ffn for s in c.layers].index("moe"),
        max_position_embeddings=c.max_seq_len, rms_norm_eps=c.norm.eps, hidden_act=c.ffn.activation,
        rope_parameters={"rope_type": "yarn", "rope_theta": c.rope.theta, "factor": s.factor,
                         "original_max_position_embeddings": s.original_max_seq_len, "beta_fast": s.beta_fast,
                         "beta_slow": s.beta_slow, "mscale": s.mscale, "mscale_all_dim": s.mscale_all_dim},
        bos_token_id=0, eos_token_id=1,
    )


def _kimi_expect(ours):
    """What the deepseek_v3 reader makes of the HF config is exactly the tiny kimi-k2 preset."""
    blank = dict(name="", source="", family="")
    assert ours.config.resolved().replace(**blank) == archlab.tiny("kimi-k2", vocab_size=KIMI_VOCAB).resolved().replace(**blank)


# the deepseek_v3 reader labels what it reads "deepseek"; the summary rows here are Kimi's
register("kimi", "kimi-k2-tiny-shape", kimi_hf_config, seed=0, presets=("kimi-k2",), expect=_kimi_expect, label="kimi")


# ---- Mistral, Mixtral ----------------------------------------------------------------------------

_MISTRAL = dict(vocab_size=301, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=128, bos_token_id=0, eos_token_id=1)


def _mistral(cls: str, **kw):
    return lambda: getattr(transformers, cls)(**{**_MISTRAL, **kw})


def _layer_types(kinds: set, window: int | None = None):
    def check(ours):
        assert set(ours.config.layer_types) == kinds
        if window is not None:
            assert ours.config.attention.window == window
    return check


# Mistral 7B v0.1's shape: GQA, a window (8) shorter than the test sequences, in every layer
register("mistral", "mistral-sliding-gqa", _mistral("MistralConfig", num_key_value_heads=2, sliding_window=8),
         seed=7, presets=("mistral-7b",))
# Mistral v0.3 / NeMo style: no window, head_dim not hidden / heads, tied head, default theta
register("mistral", "mistral-global-headdim", _mistral(
    "MistralConfig", num_key_value_heads=1, sliding_window=None, head_dim=24, tie_word_embeddings=True),
    seed=7, expect=_layer_types({"global"}))
# Mixtral: 8 experts, top 2, global attention
register("mistral", "mixtral-8e-top2", _mistral(
    "MixtralConfig", intermediate_size=48, num_key_value_heads=2, num_local_experts=8, num_experts_per_tok=2),
    seed=7, presets=("mixtral-8x7b",), fused_experts=True)
# Mixtral with a window: both layer kinds of the family in one model type
register("mistral", "mixtral-sliding-6e-top3", _mistral(
    "MixtralConfig", intermediate_size=32, num_key_value_heads=4, num_local_experts=6, num_experts_per_tok=3,
    sliding_window=7, rope_parameters={"rope_type": "default", "rope_theta": 500.0}),
    seed=7, expect=_layer_types({"sliding"}, window=7))


# ---- OLMo 2 --------------------------------------------------------------------------------------

_OLMO2 = dict(vocab_size=301, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
              max_position_embeddings=128, bos_token_id=0, eos_token_id=1, pad_token_id=0)


def _olmo2_expect(ours):
    assert ours.config.block == "output" and ours.config.attention.qk_norm_scope == "all"


# OLMo-2-7B's shape: MHA, untied, theta 500K
register("olmo2", "olmo2-mha", lambda: transformers.Olmo2Config(
    **_OLMO2, num_key_value_heads=4, rope_parameters={"rope_type": "default", "rope_theta": 500000.0}),
    seed=13, presets=("olmo-2-7b",), expect=_olmo2_expect)
# GQA (k_norm then spans only the 2 kv heads), attention biases, tied head
register("olmo2", "olmo2-gqa-bias-tied", lambda: transformers.Olmo2Config(
    **{**_OLMO2, "num_hidden_layers": 3}, num_key_value_heads=2, attention_bias=True, tie_word_embeddings=True),
    seed=13, presets=("olmo-2-7b",), expect=_olmo2_expect)


# ---- Qwen3, Qwen3-MoE ----------------------------------------------------------------------------

QWEN3_BASE = dict(vocab_size=301, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=128, bos_token_id=0, eos_token_id=1)

# Qwen3-0.6B's shape: 4 heads x 16 = 64 > hidden 32, GQA, tied head
register("qwen3", "qwen3-headdim-tied", lambda: transformers.Qwen3Config(
    **QWEN3_BASE, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True), seed=11, presets=("qwen3-0.6b",))
# attention_bias and Qwen3's sliding layers (from max_window_layers on), window 6
register("qwen3", "qwen3-bias-sliding", lambda: transformers.Qwen3Config(
    **{**QWEN3_BASE, "num_hidden_layers": 3}, num_key_value_heads=1, head_dim=12, attention_bias=True,
    use_sliding_window=True, sliding_window=6, max_window_layers=1,
    rope_parameters={"rope_type": "default", "rope_theta": 1000.0}), seed=11, presets=("qwen3-0.6b",))
# Qwen3-30B-A3B's shape: every layer MoE, renormalised top-k (8 experts, top 2)
register("qwen3", "qwen3moe-8e-top2-norm", lambda: transformers.Qwen3MoeConfig(
    **QWEN3_BASE, num_key_value_heads=2, head_dim=16, num_experts=8, num_experts_per_tok=2,
    moe_intermediate_size=24, norm_topk_prob=True), seed=11, presets=("qwen3-30b-a3b",), fused_experts=True)
# dense layers among the MoE ones (decoder_sparse_step 2, mlp_only_layers), no renormalising,
# and a window on every layer (Qwen3MoE applies sliding_window to all layers)
register("qwen3", "qwen3moe-mixed-sliding", lambda: transformers.Qwen3MoeConfig(
    **{**QWEN3_BASE, "num_hidden_layers": 4}, num_key_value_heads=4, num_experts=6, num_experts_per_tok=3,
    moe_intermediate_size=16, norm_topk_prob=False, decoder_sparse_step=2, mlp_only_layers=[3],
    use_sliding_window=True, sliding_window=9), seed=11)


# ---- SmolLM3 -------------------------------------------------------------------------------------

_SMOLLM3 = dict(vocab_size=301, hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2,
                max_position_embeddings=128, bos_token_id=0, eos_token_id=1, pad_token_id=0)

# SmolLM3-3B's plan: every 4th layer NoPE (no_rope_layer_interval), tied head, theta 5e6
register("smollm", "smollm3-interval4", lambda: transformers.SmolLM3Config(
    **_SMOLLM3, num_hidden_layers=4, no_rope_layer_interval=4, rope_parameters={"rope_type": "default", "rope_theta": 5e6}),
    seed=17, presets=("smollm3-3b",))
# an explicit no_rope_layers list, biases, untied head, and the first NoPE layer sliding
# (window 5) by an explicit layer_types list, so that global NoPE layers remain
register("smollm", "smollm3-list-bias-sliding", lambda: transformers.SmolLM3Config(
    **_SMOLLM3, num_hidden_layers=4, no_rope_layers=[0, 1, 0, 1], attention_bias=True, mlp_bias=True,
    tie_word_embeddings=False, use_sliding_window=True, sliding_window=5,
    layer_types=["sliding_attention"] + ["full_attention"] * 3), seed=17, presets=("smollm3-3b",))


# ---- Gemma 3 -------------------------------------------------------------------------------------

_GEMMA3 = dict(vocab_size=301, hidden_size=48, intermediate_size=80, num_attention_heads=4, max_position_embeddings=128,
               bos_token_id=2, eos_token_id=1, pad_token_id=0)
GEMMA3_PRESETS = ("gemma-3-1b", "gemma-3-27b")

# Gemma-3-1B's shape: MQA, head_dim (16) apart from hidden / heads, the 5:1 pattern shortened
# to 2:1 by sliding_window_pattern, a window of 8, default thetas (1e6 global, 1e4 local)
register("gemma3", "gemma3-1b-like", lambda: transformers.Gemma3TextConfig(
    **_GEMMA3, num_hidden_layers=3, num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16,
    sliding_window=8, sliding_window_pattern=3), seed=19, presets=GEMMA3_PRESETS)
# Gemma-3-27B's shape: GQA, query_pre_attn_scalar apart from head_dim, linear RoPE scaling on
# the global layers only, the stack ending on a sliding layer (window 6)
register("gemma3", "gemma3-27b-like", lambda: transformers.Gemma3TextConfig(
    **_GEMMA3, num_hidden_layers=3, num_key_value_heads=2, head_dim=24, query_pre_attn_scalar=20,
    sliding_window=6, layer_types=["sliding_attention", "full_attention", "sliding_attention"],
    rope_parameters={"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 100000.0},
                     "sliding_attention": {"rope_type": "default", "rope_theta": 100.0}}), seed=19, presets=GEMMA3_PRESETS)
# google/gemma-3-27b-pt's config.json: the text_config names only what differs from
# Gemma3TextConfig's defaults; rope_scaling has no original_max_position_embeddings
hub_config("gemma-3-27b", {
    "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "mm_tokens_per_image": 256,
    "text_config": {"head_dim": 128, "hidden_size": 5376, "intermediate_size": 21504, "model_type": "gemma3_text",
                    "num_attention_heads": 32, "num_hidden_layers": 62, "num_key_value_heads": 16,
                    "query_pre_attn_scalar": 168, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                    "sliding_window": 1024},
    "vision_config": {"hidden_size": 1152, "model_type": "siglip_vision_model"}})
# Gemma 2-style softcapping set to numbers, attention biases, untied head. HF's Gemma3Attention
# ignores attn_logit_softcapping and so do we, saying so with a warning.
register("gemma3", "gemma3-softcaps-bias-untied", lambda: transformers.Gemma3TextConfig(
    **_GEMMA3, num_hidden_layers=2, num_key_value_heads=2, head_dim=12, query_pre_attn_scalar=12,
    sliding_window=5, layer_types=["sliding_attention", "full_attention"], final_logit_softcapping=3.0,
    attn_logit_softcapping=0.5, attention_bias=True, tie_word_embeddings=False),
    seed=19, presets=GEMMA3_PRESETS, ignore_warnings="gemma3: attn_logit_softcapping")


# ---- Llama 4 -------------------------------------------------------------------------------------

# floor_scale 4: the NoPE layers' temperature 1 + attn_scale * log1p(floor((p + 1) / 4)) changes
# every 4 tokens, so it acts well within the test sequences; chunks of 8 < 37 tokens
LLAMA4_BASE = {"vocab_size": 301, "hidden_size": 64, "intermediate_size": 48, "intermediate_size_mlp": 96,
               "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "num_local_experts": 4,
               "attention_chunk_size": 8, "floor_scale": 4, "attn_scale": 0.5, "max_position_embeddings": 256,
               "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}
LLAMA4_LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 16}


def _llama4(**kw):
    return lambda: transformers.Llama4TextConfig(**{**LLAMA4_BASE, **kw})


def _llama4_expect(ours):
    c = ours.config
    assert c.attention.chunk == 8 and c.attention.temperature.floor_scale == 4
    assert c.moe.router.weights_on == "input" and c.moe.top_k == 1


# Maverick's plan: MoE every 2nd layer (1, 3), NoPE every 4th (3), no QK-norm, no RoPE scaling
register("llama4", "maverick-plan", _llama4(num_hidden_layers=4, interleave_moe_layer_step=2, use_qk_norm=False),
         seed=0, presets=("llama-4-maverick",), expect=_llama4_expect)
# Scout's: MoE everywhere, L2 QK-norm in the RoPE layers, llama3 scaling; NoPE every 2nd layer
# so 2 layers hold both kinds; attention biases (permuted with their rows)
register("llama4", "scout-plan-bias", _llama4(num_hidden_layers=2, no_rope_layer_interval=2, use_qk_norm=True,
                                              attention_bias=True, rope_parameters=LLAMA4_LLAMA3_ROPE),
         seed=0, presets=("llama-4-scout",), expect=_llama4_expect,
         bad_fields=(({"attention_chunk_size": None}, "attention_chunk_size"),
                     ({"layer_types": ["chunked_attention", "sliding_attention"]}, "layer_types"),
                     ({"no_rope_layers": [1, 2]}, "no_rope_layers"),
                     ({"moe_layers": [0, 5]}, "moe_layers"),
                     ({"attn_temperature_tuning": "on"}, "attn_temperature_tuning"),
                     ({"floor_scale": 0}, "floor_scale"),
                     ({"num_experts_per_tok": 5}, "num_experts_per_tok"),
                     ({"use_qk_norm": None}, "use_qk_norm")))


def _llama4_text_config(n_experts: int, step: int, qk_norm: bool, max_pos: int, rope_scaling) -> dict:
    # the text_config of meta-llama/Llama-4-{Scout-17B-16E,Maverick-17B-128E}'s config.json
    n = 48
    return {
        "attention_bias": False, "attention_chunk_size": 8192, "attention_dropout": 0.0, "attn_scale": 0.1,
        "attn_temperature_tuning": 4, "bos_token_id": 200000, "eos_token_id": [200001, 200007, 200008],
        "floor_scale": 8192, "for_llm_compressor": False, "head_dim": 128, "hidden_act": "silu", "hidden_size": 5120,
        "initializer_range": 0.02, "interleave_moe_layer_step": step, "intermediate_size": 8192,
        "intermediate_size_mlp": 16384, "max_position_embeddings": max_pos, "model_type": "llama4_text",
        "moe_layers": list(range(step - 1, n, step)), "no_rope_layers": [int((i + 1) % 4 != 0) for i in range(n)],
        "num_attention_heads": 40, "num_experts_per_tok": 1, "num_hidden_layers": n, "num_key_value_heads": 8,
        "num_local_experts": n_experts, "output_router_logits": False, "pad_token_id": 200018, "rms_norm_eps": 1e-05,
        "rope_scaling": rope_scaling, "rope_theta": 500000.0, "router_aux_loss_coef": 0.001,
        "router_jitter_noise": 0.0, "torch_dtype": "bfloat16", "use_cache": True, "use_qk_norm": qk_norm,
        "vocab_size": 202048,
    }


for _preset, _text in (
    ("llama-4-scout", _llama4_text_config(16, 1, True, 262144, {
        "factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8192,
        "rope_type": "llama3"})),
    ("llama-4-maverick", _llama4_text_config(128, 2, False, 1048576, None)),
):
    hub_config(_preset, {"architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4", "text_config": _text,
                         "tie_word_embeddings": False, "vision_config": {"hidden_size": 1408}})
    # the text-only form of the same config (Llama4ForCausalLM), with HF's derivable lists left out
    # (no_rope_layers as some of Meta's configs say it: empty)
    hub_config(_preset, {**{k: v for k, v in _text.items() if k != "moe_layers"}, "no_rope_layers": []},
               label=f"{_preset}-text-only")


# ---- GLM-4.5 -------------------------------------------------------------------------------------

def glm_config(**kw):
    # GLM-4.5's shape in small: more query heads x head_dim than width (6 x 16 > 64), GQA, q/k/v
    # biases and QK-norm, half of each head rotated (HF's default), one dense layer then MoE with
    # a shared expert, routing limited to 1 of 2 groups, scaled by 2.5
    base = {"vocab_size": 301, "hidden_size": 64, "intermediate_size": 96, "moe_intermediate_size": 24,
            "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 16,
            "n_routed_experts": 8, "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1, "n_shared_experts": 1,
            "first_k_dense_replace": 1, "routed_scaling_factor": 2.5, "norm_topk_prob": True, "use_qk_norm": True,
            "attention_bias": True, "max_position_embeddings": 256, "bos_token_id": 0, "eos_token_id": 1}
    return transformers.Glm4MoeConfig(**{**base, **kw})


def _glm_expect(partial: float, qk_norm: bool):
    def check(ours):
        c = ours.config
        assert c.attention.qkv_bias and not c.attention.out_bias
        assert c.rope.partial == partial
        assert (c.attention.qk_norm is not None) == qk_norm
    return check


register("glm4_moe", "glm45-shape", glm_config, seed=0, presets=("glm-4.5",), expect=_glm_expect(0.5, True),
         fused_experts=True,
         bad_fields=(({"use_qk_norm": "yes"}, "use_qk_norm"), ({"n_group": 3}, "n_group"),
                     ({"first_k_dense_replace": -1}, "first_k_dense_replace"), ({"hidden_act": "mish"}, "hidden_act"),
                     ({"num_attention_heads": 5}, "num_attention_heads|n_kv_heads"),
                     (_rotary(0.05), "partial")))  # 0 of 16 dims
# GLM-4.5-Air-like: no QK-norm; and a quarter of the head rotated, 2 shared experts, no
# renormalisation, no groups, two dense layers, tied embeddings
register("glm4_moe", "air-quarter-rope", lambda: glm_config(
    num_hidden_layers=3, first_k_dense_replace=2, use_qk_norm=False, n_group=1, topk_group=1, n_shared_experts=2,
    norm_topk_prob=False, routed_scaling_factor=1.0, tie_word_embeddings=True,
    rope_parameters={"rope_type": "default", "rope_theta": 1000.0, "partial_rotary_factor": 0.25}),
    seed=0, presets=("glm-4.5",), expect=_glm_expect(0.25, False))

_GLM45_HUB = {  # zai-org/GLM-4.5 (v4 field names)
    "architectures": ["Glm4MoeForCausalLM"], "attention_bias": True, "attention_dropout": 0.0,
    "pad_token_id": 151329, "eos_token_id": [151329, 151336, 151338], "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 5120, "partial_rotary_factor": 0.5, "initializer_range": 0.02, "intermediate_size": 12288,
    "max_position_embeddings": 131072, "model_type": "glm4_moe", "moe_intermediate_size": 1536,
    "norm_topk_prob": True, "num_attention_heads": 96, "n_group": 1, "topk_group": 1, "n_routed_experts": 160,
    "n_shared_experts": 1, "routed_scaling_factor": 2.5, "num_experts_per_tok": 8, "first_k_dense_replace": 3,
    "num_hidden_layers": 92, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_scaling": None,
    "rope_theta": 1000000, "num_nextn_predict_layers": 1, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "use_cache": True, "use_qk_norm": True, "vocab_size": 151552,
}
hub_config("glm-4.5", _GLM45_HUB)
# Glm4MoeConfig rotates half of each head when config.json does not say
hub_config("glm-4.5", {k: v for k, v in _GLM45_HUB.items() if k != "partial_rotary_factor"},
           label="glm-4.5-partial-unsaid")


# ---- GPT-OSS -------------------------------------------------------------------------------------

GPT_OSS_PRESETS = ("gpt-oss-20b", "gpt-oss-120b")


def gpt_oss_config(**kw):
    # gpt-oss-20b's shape in small: GQA with 16-dim heads, a 6-token window (shorter than the
    # 37-token test sequence), 5 experts top-2, HF's default RoPE (YaRN x32 of 4096, truncate=false)
    base = {"vocab_size": 301, "hidden_size": 64, "intermediate_size": 48, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "num_local_experts": 5,
            "num_experts_per_tok": 2, "sliding_window": 6, "bos_token_id": 0, "eos_token_id": 1}
    return transformers.GptOssConfig(**{**base, **kw})


def _gpt_oss_expect(ours):
    a = ours.config.attention
    assert a.sinks and a.window == 6
    assert ours.config.rope.scaling.kind == "yarn" and not ours.config.rope.scaling.truncate


register("gpt_oss", "20b-shape", gpt_oss_config, seed=0, presets=GPT_OSS_PRESETS, expect=_gpt_oss_expect,
         bad_fields=(({"swiglu_alpha": "1.0"}, "swiglu_alpha"), ({"swiglu_limit": -1}, "swiglu_limit"),
                     ({"sliding_window": None}, "sliding_window"),
                     ({"layer_types": ["sliding_attention", "chunked_attention"]}, "layer_types"),
                     ({"layer_types": ["sliding_attention"]}, "layer_types"),
                     ({"num_experts_per_tok": 9}, "num_experts_per_tok"),
                     ({"attention_bias": "yes"}, "attention_bias")))
# layer_types that break HF's even/odd default, no attention biases, tied embeddings, and a
# swiglu_limit small enough that random activations reach the clamp from both sides
register("gpt_oss", "layer-types-nobias-clamped", lambda: gpt_oss_config(
    num_hidden_layers=3, layer_types=["full_attention", "sliding_attention", "sliding_attention"],
    attention_bias=False, tie_word_embeddings=True, swiglu_limit=0.3, num_local_experts=4, num_experts_per_tok=3),
    seed=0, presets=GPT_OSS_PRESETS, expect=_gpt_oss_expect)


def gpt_oss_hub_config(n_layers: int, n_experts: int) -> dict:
    """openai/gpt-oss-{20b,120b} config.json on the hub, less its quantization_config (the bf16
    checkpoint save_pretrained writes after dequantizing the MXFP4 experts)."""
    return {
        "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "attention_bias": True,
        "attention_dropout": 0.0, "eos_token_id": 200002, "experts_per_token": 4, "head_dim": 64, "hidden_act": "silu",
        "hidden_size": 2880, "initial_context_length": 4096, "initializer_range": 0.02, "intermediate_size": 2880,
        "layer_types": ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n_layers)],
        "max_position_embeddings": 131072, "num_attention_heads": 64, "num_experts_per_tok": 4,
        "num_hidden_layers": n_layers, "num_key_value_heads": 8, "num_local_experts": n_experts,
        "output_router_logits": False, "pad_token_id": 199999, "rms_norm_eps": 1e-05,
        "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0, "original_max_position_embeddings": 4096,
                         "rope_type": "yarn", "truncate": False},
        "rope_theta": 150000, "router_aux_loss_coef": 0.9, "sliding_window": 128, "swiglu_limit": 7.0,
        "tie_word_embeddings": False, "use_cache": True, "vocab_size": 201088,
    }


hub_config("gpt-oss-20b", gpt_oss_hub_config(24, 32))
# as published: the experts in MXFP4 (dequantized on load), the rest unquantized
hub_config("gpt-oss-20b", {**gpt_oss_hub_config(24, 32), "quantization_config": {
    "quant_method": "mxfp4",
    "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}},
    label="gpt-oss-20b-mxfp4")
hub_config("gpt-oss-120b", gpt_oss_hub_config(36, 128))


# ---- Qwen3-Next ----------------------------------------------------------------------------------

QWEN3_NEXT_PRESET = "qwen3-next-80b-a3b"


def qwen3_next_published_shape():
    """The published model's layer plan (3 DeltaNet : 1 gated attention, every layer MoE) at toy
    size. Two value heads per key head, dk != dv and head_dim != hidden / heads, so a mixed-up
    axis cannot pass; partial RoPE 0.25 of 16 = 4 dims."""
    return transformers.Qwen3NextConfig(
        vocab_size=301, hidden_size=48, intermediate_size=80, num_hidden_layers=4, max_position_embeddings=256,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=8, linear_value_head_dim=12,
        num_experts=6, num_experts_per_tok=2, moe_intermediate_size=24, shared_expert_intermediate_size=24,
        bos_token_id=0, eos_token_id=1,
    )


def qwen3_next_variants():
    """What config.json may also say: a dense layer (mlp_only_layers), attention biases, a
    shared expert twice an expert's size, no renormalisation of the top-k, one value head per
    key head, kernel 3, tied embeddings, RoPE on half of each head, explicit layer_types."""
    return transformers.Qwen3NextConfig(
        vocab_size=263, hidden_size=32, intermediate_size=72, num_hidden_layers=3, max_position_embeddings=128,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, attention_bias=True,
        layer_types=["linear_attention", "full_attention", "linear_attention"],
        linear_num_key_heads=2, linear_num_value_heads=2, linear_key_head_dim=8, linear_value_head_dim=8,
        linear_conv_kernel_dim=3, num_experts=5, num_experts_per_tok=2, moe_intermediate_size=16,
        shared_expert_intermediate_size=32, norm_topk_prob=False, mlp_only_layers=[1], tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
        bos_token_id=0, eos_token_id=1,
    )


def _qwen3_next_variants_expect(ours):
    c = ours.config
    assert c.ffn_types == ("moe", "dense", "moe") and c.moe.n_shared == 2 and c.tie_embeddings


# Qwen/Qwen3-Next-80B-A3B-Instruct's config.json (v4 field names)
hub_config(QWEN3_NEXT_PRESET, {
    "architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next", "attention_bias": False,
    "attention_dropout": 0.0, "bos_token_id": 151643, "decoder_sparse_step": 1, "eos_token_id": 151645,
    "full_attention_interval": 4, "head_dim": 256, "hidden_act": "silu", "hidden_size": 2048,
    "initializer_range": 0.02, "intermediate_size": 5120, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128,
    "linear_num_key_heads": 16, "linear_num_value_heads": 32, "linear_value_head_dim": 128,
    "max_position_embeddings": 262144, "mlp_only_layers": [], "moe_intermediate_size": 512, "norm_topk_prob": True,
    "num_attention_heads": 16, "num_experts": 512, "num_experts_per_tok": 10, "num_hidden_layers": 48,
    "num_key_value_heads": 2, "output_router_logits": False, "partial_rotary_factor": 0.25, "rms_norm_eps": 1e-06,
    "rope_scaling": None, "rope_theta": 10000000, "router_aux_loss_coef": 0.001,
    "shared_expert_intermediate_size": 512, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "use_cache": True, "use_sliding_window": False, "vocab_size": 151936})
register("qwen3_next", "qwen3next-published", qwen3_next_published_shape, seed=0, presets=(QWEN3_NEXT_PRESET,),
         fused_experts=True)
register("qwen3_next", "qwen3next-variants", qwen3_next_variants, seed=1, expect=_qwen3_next_variants_expect)


# ---- MoE configs the published models do not use, which HF accepts and runs (issue 11, part B) ----

# no shared expert: HF still builds DeepseekV3MLP / Glm4MoeMLP of width 0 and saves its empty tensors
register("deepseek_v3", "dsv3-no-shared", _deepseek(
    "DeepseekV3Config", q_lora_rank=None, n_routed_experts=6, num_experts_per_tok=2, n_group=1, topk_group=1,
    n_shared_experts=0))
register("deepseek_v2", "dsv2-no-shared", _deepseek(
    "DeepseekV2Config", q_lora_rank=None, n_routed_experts=6, num_experts_per_tok=2, topk_method="greedy",
    n_shared_experts=0))
register("glm4_moe", "glm-no-shared", lambda: glm_config(n_shared_experts=0), seed=0)
# mlp_bias: biases on the dense MLP's and the shared expert's projections (DeepseekV2MLP), none on
# the routed experts (DeepseekV2Experts)
register("deepseek_v2", "dsv2-mlp-bias", _deepseek(
    "DeepseekV2Config", q_lora_rank=None, n_routed_experts=6, num_experts_per_tok=2, topk_method="greedy",
    n_shared_experts=2, mlp_bias=True))
# top-k larger than the experts of the kept groups: 1 group of 2 kept, top-3. V3 masks the
# dropped groups to -inf and weighs by the unmasked scores; V2 masks them to 0.0
register("deepseek_v3", "dsv3-topk-beyond-groups", _deepseek(
    "DeepseekV3Config", q_lora_rank=None, n_routed_experts=8, num_experts_per_tok=3, n_group=4, topk_group=1,
    n_shared_experts=1, norm_topk_prob=True))
register("deepseek_v2", "dsv2-topk-beyond-groups", _deepseek(
    "DeepseekV2Config", q_lora_rank=None, n_routed_experts=8, num_experts_per_tok=3, n_group=4, topk_group=1,
    topk_method="group_limited_greedy", n_shared_experts=1))
register("glm4_moe", "glm-topk-beyond-groups", lambda: glm_config(n_group=4, topk_group=1, num_experts_per_tok=3),
         seed=0)
# moe_layer_freq: HF's DeepseekV2DecoderLayer ignores it (MoE where layer >= first_k_dense_replace)
register("deepseek_v2", "dsv2-moe-layer-freq", _deepseek(
    "DeepseekV2Config", q_lora_rank=None, n_routed_experts=6, num_experts_per_tok=2, topk_method="greedy",
    n_shared_experts=1, moe_layer_freq=2, num_hidden_layers=4), ignore_warnings="moe_layer_freq")
# norm_topk_prob=true: HF's DeepseekV2TopkRouter ignores it (weights: top-k softmax scores x routed_scaling_factor)
register("deepseek_v2", "dsv2-norm-topk-ignored", _deepseek(
    "DeepseekV2Config", q_lora_rank=None, n_routed_experts=6, num_experts_per_tok=2, topk_method="greedy",
    n_shared_experts=1, norm_topk_prob=True, routed_scaling_factor=1.5), ignore_warnings="norm_topk_prob")
# a shared expert not a whole number of routed experts wide
register("qwen3_next", "qwen3next-odd-shared", lambda: transformers.Qwen3NextConfig(
    **{**qwen3_next_published_shape().to_dict(), "shared_expert_intermediate_size": 40}), seed=0)
# head_dim 12 x partial_rotary_factor 0.25 = 3, odd: HF rotates 4 dimensions with 2 frequencies theta**(-2i/3)
register("qwen3_next", "qwen3next-odd-rotary", lambda: transformers.Qwen3NextConfig(
    **{**qwen3_next_published_shape().to_dict(), "head_dim": 12}), seed=0)
register("glm4_moe", "glm-odd-rotary", lambda: glm_config(
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.2}), seed=0)  # 3 of 16
# swiglu_alpha other than GPT-OSS's 1.702
register("gpt_oss", "gpt-oss-alpha", lambda: gpt_oss_config(swiglu_alpha=1.2, swiglu_limit=0.5), seed=0)

MOE_EDGE_CASES = ("dsv3-no-shared", "dsv2-no-shared", "glm-no-shared", "dsv2-mlp-bias", "dsv3-topk-beyond-groups",
                  "dsv2-topk-beyond-groups", "glm-topk-beyond-groups", "dsv2-moe-layer-freq", "dsv2-norm-topk-ignored", "qwen3next-odd-shared",
                  "qwen3next-odd-rotary", "glm-odd-rotary", "gpt-oss-alpha")

# ---- Qwen2, Qwen2.5, Qwen2-MoE (their own module, registered here) --------------------------------

import families_qwen2  # noqa: E402,F401
import families_sizes  # noqa: E402,F401

# the families archlab.save writes (tests/test_export.py): every family registered above
EXPORTABLE_FAMILIES = tuple(dict.fromkeys(c.family for c in CASES.values()))
