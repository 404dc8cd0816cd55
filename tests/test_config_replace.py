"""Ablations: `config.replace(...)` turns one architecture into another a knob at a time, and
everything that follows from the knobs (head width, FFN width, per-layer plan) follows.

Every changed config is checked against what it builds: the parameter count of the analysis
must equal the model's tensors, and the model must run."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import archlab
from archlab import AttentionConfig, ConfigError, FFNConfig, MLAConfig, MoEConfig, Pattern, RopeConfig, RouterConfig


def builds_and_runs(cfg: archlab.ModelConfig) -> torch.nn.Module:
    """The analysis counts what the model holds, and a forward pass gives finite logits."""
    meta = archlab.build(cfg, device="meta")
    assert archlab.analyze(cfg).total_params == sum(p.numel() for p in meta.parameters())
    torch.manual_seed(0)
    model = archlab.build(cfg)
    ids = torch.randint(0, cfg.vocab_size, (2, 12))
    with torch.no_grad():
        logits = model(ids)
    assert logits.shape == (2, 12, cfg.vocab_size) and torch.isfinite(logits).all()
    return model


def kinds(cfg):
    return [s.kind for s in cfg.layers], [s.ffn for s in cfg.layers], [s.rope is not None for s in cfg.layers]


# ---- the ablations named in the issue ------------------------------------------------------

def test_gpt2_at_twice_the_width_derives_heads_and_ffn_as_gpt2_does():
    cfg = archlab.config("gpt2").replace(d_model=1536)
    # GPT2Config: head_dim = n_embd / n_head; n_inner unset = 4 * n_embd
    assert cfg.resolved_attention.head_dim == 128 and cfg.resolved_attention.n_heads == 12
    assert cfg.resolved_ffn.hidden == 6144
    model = archlab.build(cfg, device="meta")
    assert model.layers[0].attn.wq.weight.shape == (1536, 1536)
    assert model.layers[0].ffn.up.weight.shape == (6144, 1536)
    # the HF reference derives the same shapes from the same knobs
    transformers = pytest.importorskip("transformers")
    with torch.device("meta"):  # shapes only: 0.4B parameters need no memory to be counted
        ref = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_embd=1536, n_layer=12, n_head=12))
    assert sum(p.numel() for p in ref.parameters()) == archlab.analyze(cfg).total_params
    builds_and_runs(archlab.tiny(cfg))


def test_llama_with_learned_positions():
    cfg = archlab.tiny("llama-3-8b").replace(position="learned")
    assert cfg.rope is None and all(s.rope is None for s in cfg.layers)
    model = builds_and_runs(cfg)
    assert model.pos_emb is not None


def test_deepseek_v3_at_depth_2_keeps_its_rule():
    big = archlab.tiny("deepseek-v3")
    assert [s.ffn for s in big.layers] == ["dense"] * 3 + ["moe"]
    cfg = big.replace(n_layers=2)
    assert [s.ffn for s in cfg.layers] == ["dense", "dense"]  # the first 3 layers are dense, by the rule
    builds_and_runs(cfg)
    deeper = big.replace(n_layers=7)
    assert [s.ffn for s in deeper.layers] == ["dense"] * 3 + ["moe"] * 4
    builds_and_runs(deeper)


def test_gemma3_at_depth_12_is_still_5_to_1():
    cfg = archlab.tiny("gemma-3-27b").replace(n_layers=12)
    assert [s.kind for s in cfg.layers] == (["sliding"] * 5 + ["global"]) * 2
    # two RoPEs: the sliding layers rotate with the local one
    assert {s.rope.theta for s in cfg.layers if s.kind == "sliding"} == {1e4}
    assert {s.rope.theta for s in cfg.layers if s.kind == "global"} == {1e6}
    builds_and_runs(cfg)


def test_smollm3_at_depth_8_is_still_nope_every_4th():
    cfg = archlab.tiny("smollm3-3b").replace(n_layers=8)
    assert [s.rope is None for s in cfg.layers] == [False, False, False, True] * 2
    builds_and_runs(cfg)


# ---- more ablations, one knob at a time ---------------------------------------------------

def test_mha_to_gqa_to_mqa():
    base = archlab.tiny("gpt2")
    for kv in (4, 2, 1):
        cfg = base.replace(attention={"n_kv_heads": kv})
        assert cfg.resolved_attention.n_kv_heads == kv
        model = builds_and_runs(cfg)
        assert model.layers[0].attn.wk.weight.shape[0] == kv * 16


def test_heads_change_the_derived_head_width():
    cfg = archlab.tiny("llama-3-8b").replace(attention={"n_heads": 8, "n_kv_heads": 2})
    assert cfg.resolved_attention.head_dim == 8
    builds_and_runs(cfg)


def test_dense_to_moe_and_back():
    base = archlab.tiny("llama-3-8b")
    moe = MoEConfig(n_experts=4, top_k=2, hidden=32, router=RouterConfig(norm_topk=True))
    # every layer MoE: the dense FFN would be read by no layer, so it goes too
    all_moe = base.replace(moe=moe, ffn=None)
    assert {s.ffn for s in all_moe.layers} == {"moe"}
    builds_and_runs(all_moe)
    # MoE every other layer (Llama 4 Maverick's plan)
    interleaved = base.replace(moe=moe, ffn_types=Pattern(("dense", "moe")))
    assert [s.ffn for s in interleaved.layers] == ["dense", "moe"]
    builds_and_runs(interleaved)
    # and back: DeepSeek with dense FFNs only
    dense = archlab.tiny("deepseek-v3").replace(moe=None, ffn_types=None)
    assert {s.ffn for s in dense.layers} == {"dense"}
    builds_and_runs(dense)


def test_leaving_a_part_unused_is_an_error_that_says_how():
    base = archlab.tiny("llama-3-8b")
    moe = MoEConfig(n_experts=4, top_k=2, hidden=32)
    with pytest.raises(ConfigError, match=r"^ffn: is set, but nothing uses it: it needs 'dense' layers"):
        base.replace(moe=moe)


def test_attention_kind_gqa_to_mla():
    base = archlab.tiny("llama-3-8b")
    mla = MLAConfig(n_heads=4, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16)
    cfg = base.replace(attention=mla)
    assert {s.mixer for s in cfg.layers} == {"mla"}
    builds_and_runs(cfg)


def test_ffn_kind_swiglu_to_gelu_mlp():
    cfg = archlab.tiny("llama-3-8b").replace(ffn=FFNConfig(mult=4, kind="mlp", activation="gelu"))
    assert cfg.resolved_ffn.hidden == 256
    builds_and_runs(cfg)


def test_layer_pattern_global_to_sliding():
    cfg = archlab.tiny("llama-3-8b").replace(
        layer_types=Pattern.every(4, "global", "sliding"), attention={"window": 8}, n_layers=8
    )
    assert [s.window for s in cfg.layers] == [8, 8, 8, None] * 2
    builds_and_runs(cfg)


def test_rope_to_alibi_and_nope():
    for position in ("alibi", "none"):
        cfg = archlab.tiny("llama-3-8b").replace(position=position)
        assert cfg.position_kind == position
        builds_and_runs(cfg)


def test_hybrid_deltanet_ratio():
    cfg = archlab.tiny("qwen3-next-80b-a3b").replace(layer_types=Pattern.every(2, "global", "linear"), n_layers=4)
    assert [s.kind for s in cfg.layers] == ["linear", "global"] * 2
    builds_and_runs(cfg)


def test_replace_with_rope_keyword_is_the_position():
    cfg = archlab.tiny("llama-3-8b")
    assert cfg.replace(rope=RopeConfig(theta=1e4)).position == RopeConfig(theta=1e4)
    assert cfg.replace(position="learned", rope=None).position == "learned"
    gpt = archlab.tiny("gpt2")
    assert gpt.replace(rope=None) == gpt  # no RoPE to remove
    with pytest.raises(ConfigError, match=r"^rope: and position='learned' both given"):
        cfg.replace(rope=RopeConfig(theta=1e4), position="learned")
    with pytest.raises(ConfigError, match=r"^rope: rope=None: say which position replaces it"):
        cfg.replace(rope=None)


# ---- contradictions and ignored knobs are errors naming the field -------------------------

@pytest.mark.parametrize("change,field", [
    (lambda c: c.replace(attention={"window": 16}), "attention.window"),
    (lambda c: c.replace(attention={"chunk": 16}), "attention.chunk"),
    (lambda c: c.replace(layer_types=Pattern(("sliding",))), "attention.window"),
    (lambda c: c.replace(rope_local=RopeConfig(theta=1e4)), "rope_local"),
    (lambda c: c.replace(attention={"qk_norm_scope": "all"}), "attention.qk_norm_scope"),
    (lambda c: c.replace(layer_types=("global",) * 3), "layer_types"),
    (lambda c: c.replace(ffn=FFNConfig(hidden=64, mult=4)), "ffn.hidden"),
    (lambda c: c.replace(position="rotary"), "position"),
    (lambda c: c.replace(embed_scale="sqrt"), "embed_scale"),
    (lambda c: c.replace(n_layerz=3), "replace"),
    (lambda c: c.replace(attention={"n_kv_heads": 3}), "attention.n_kv_heads"),
])
def test_contradictions_name_the_field(change, field):
    with pytest.raises(ConfigError, match=rf"^{field.replace('.', '[.]')}\b"):
        change(archlab.tiny("llama-3-8b"))


def test_ignored_moe_knobs_are_errors():
    with pytest.raises(ConfigError, match=r"^moe\.activation: 'gelu' would be ignored"):
        MoEConfig(n_experts=4, top_k=2, hidden=8, activation="gelu", swiglu_limit=7.0)
    with pytest.raises(ConfigError, match=r"^moe\.router\.group_score: 'top2_sum' scores groups"):
        RouterConfig(group_score="top2_sum")


def test_mla_ignores_partial_rope_so_it_is_an_error():
    cfg = archlab.tiny("deepseek-v3")
    with pytest.raises(ConfigError, match=r"^position\.partial: 0\.5 would be ignored"):
        cfg.replace(position=RopeConfig(theta=1e4, partial=0.5))


def test_smollm3_to_learned_positions_says_what_else_to_change():
    with pytest.raises(ConfigError, match=r"^rope_layers: position='learned'"):
        archlab.tiny("smollm3-3b").replace(position="learned")
    cfg = archlab.tiny("smollm3-3b").replace(position="learned", rope_layers=None)
    builds_and_runs(cfg)


# ---- nothing derived is written back -------------------------------------------------------

@pytest.mark.parametrize("name", archlab.presets())
def test_a_config_holds_what_was_given(name):
    cfg = archlab.config(name)
    # a saved config reads back equal, and as the same rules (not resolved lists)
    again = archlab.ModelConfig.from_dict(cfg.to_dict())
    assert again == cfg
    if isinstance(cfg.attention, AttentionConfig) and cfg.attention.head_dim is None:
        assert cfg.resolved_attention.head_dim == cfg.d_model // cfg.attention.n_heads
    # resolved() writes out the same model
    assert cfg.resolved().layers == cfg.layers
    assert archlab.analyze(cfg.resolved()).total_params == archlab.analyze(cfg).total_params


def test_old_saved_configs_with_a_rope_field_still_read():
    d = archlab.config("llama-3-8b").to_dict()
    rope = d.pop("position")
    old = {**d, "position": "rope", "rope": rope}
    assert archlab.ModelConfig.from_dict(old) == archlab.config("llama-3-8b")


# ---- property: depth, width and heads are free knobs of every preset ----------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(archlab.presets()),
    n_layers=st.integers(1, 9),
    width_heads=st.sampled_from([(32, 2), (64, 4), (96, 6), (128, 8), (128, 4)]),
)
def test_any_preset_at_any_depth_and_width(name, n_layers, width_heads):
    d_model, n_heads = width_heads
    base = archlab.tiny(name)
    try:
        cfg = archlab.tiny(name, d_model=d_model, n_heads=n_heads).replace(n_layers=n_layers)
    except ConfigError as e:
        # a per-layer list (not a rule) cannot follow a change of depth: that is the only refusal
        assert "layer_types" in str(e) or "ffn_types" in str(e) or "rope_layers" in str(e), e
        return
    # the plan is the rule's, whatever the depth: a prefix of a deeper stack
    deeper = base.replace(n_layers=max(n_layers, base.n_layers) + 8)
    assert kinds(cfg) == tuple(k[:n_layers] for k in kinds(deeper))
    builds_and_runs(cfg)
    assert math.isfinite(archlab.analyze(cfg).flops_per_token(64))
