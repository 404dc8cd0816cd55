"""MLA in a layer without RoPE (rope_layers False there): the decoupled key of width
qk_rope_head_dim stays, unrotated, shared by every head, at the plain 1/sqrt(qk_head_dim), as
HF's KimiLinearAttention computes it (Kimi Linear's NoPE MLA, modeling_kimi_linear.py). Before,
building such a config failed with an AttributeError in nn/mla.py."""

from __future__ import annotations

import pytest
import torch
from hf_reference import ATOL, assert_cache_bytes_equal_analysis, assert_cached_decoding_equals_full_forward, transformers

import archlab
from archlab.nn.context import Context

# RoPE, NoPE, RoPE, NoPE; tiny deepseek-v3 keeps its YaRN (whose softmax factor the NoPE layers
# must not take: it comes with YaRN's rotation)
ROPE_LAYERS = (True, False, True, False)


def _config(q_lora: bool = True):
    cfg = archlab.tiny("deepseek-v3").replace(rope_layers=ROPE_LAYERS)
    return cfg if q_lora else cfg.replace(attention={"q_lora_rank": None})


def _kimi_attention(cfg, layer: int):
    """HF's KimiLinearAttention of the same shapes, holding archlab's layer's weights."""
    a = cfg.attention
    hf_cfg = transformers.KimiLinearConfig(
        hidden_size=cfg.d_model, num_attention_heads=a.n_heads, num_key_value_heads=a.n_heads, q_lora_rank=a.q_lora_rank,
        kv_lora_rank=a.kv_lora_rank, qk_nope_head_dim=a.qk_nope_head_dim, qk_rope_head_dim=a.qk_rope_head_dim,
        v_head_dim=a.v_head_dim, attention_bias=a.bias,
    )
    hf_cfg._attn_implementation = "eager"
    from transformers.models.kimi_linear.modeling_kimi_linear import KimiLinearAttention

    ref = KimiLinearAttention(hf_cfg, layer_idx=layer).eval()
    names = {"wq": "q_proj", "wq_a": "q_a_proj", "q_norm": "q_a_layernorm", "wq_b": "q_b_proj",
             "wkv_a": "kv_a_proj_with_mqa", "kv_norm": "kv_a_layernorm", "wkv_b": "kv_b_proj", "wo": "o_proj"}
    ours = archlab.build(cfg).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in ours.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if p.dim() == 1 else 0.0))
        state = {}
        for k, v in ours.layers[layer].attn.state_dict().items():
            mod, rest = k.split(".", 1)
            state[f"{names[mod]}.{rest}"] = v
        missing, unexpected = ref.load_state_dict(state, strict=False)
        assert not unexpected and all(getattr(ref, m.split(".")[0]) is None for m in missing)
    return ref, ours


@pytest.mark.parametrize("q_lora", [True, False], ids=["q_lora", "plain_q"])
@pytest.mark.parametrize("absorb", [False, True], ids=["naive", "absorbed"])
def test_nope_mla_layer_equals_hf_kimi_linear_attention(q_lora, absorb):
    cfg = _config(q_lora)
    assert cfg.layers[1].rope is None and cfg.rope.scaling.softmax_factor() != 1.0
    ref, ours = _kimi_attention(cfg, 1)
    attn = ours.layers[1].attn
    attn.absorb = absorb
    B, T = 2, 9
    x = torch.randn(B, T, cfg.d_model, generator=torch.Generator().manual_seed(1))
    causal = torch.full((T, T), float("-inf")).triu(1)[None, None]  # HF's additive mask
    with torch.no_grad():
        want, _ = ref(x, attention_mask=causal)
        got = attn(x, Context(positions=torch.arange(T).expand(B, T), rope={}))
    d = (got - want).abs().max().item()
    assert d < 1e-5, f"max |difference| {d:.2e}"


def test_model_with_nope_mla_layers_decodes_as_it_computes():
    """Cached decoding (naive prefill, absorbed steps over the cached latent) equals one full
    forward; the caches hold what the analysis counts; and the NoPE layers are position-free
    (the same model with RoPE in every layer computes other logits)."""
    cfg = _config()
    torch.manual_seed(0)
    ours = archlab.build(cfg).eval()
    assert_cached_decoding_equals_full_forward(ours, cfg.vocab_size)
    assert_cache_bytes_equal_analysis(None, ours)
    every = archlab.build(cfg.replace(rope_layers=None)).eval()
    every.load_state_dict(ours.state_dict())
    ids = torch.randint(0, cfg.vocab_size, (1, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (every(ids) - ours(ids)).abs().max().item() > 10 * ATOL


@pytest.mark.parametrize("position", ["learned", "alibi", "none"])
def test_mla_without_rope_is_refused_by_name(position):
    """MLA's decoupled key is its position: another position kind is a ConfigError naming the
    field (it was an AttributeError from deep inside the longrope check)."""
    with pytest.raises(archlab.ConfigError, match="position: MLA carries its position"):
        archlab.config("deepseek-v3").replace(position=position).resolved()
