"""Qwen3-Next: Gated DeltaNet linear-attention layers, gated full attention, zero-centred
norms, MoE with a sigmoid-gated shared expert; proven equal to HF's Qwen3NextForCausalLM."""

from __future__ import annotations

import json

import pytest
import torch
from hf_reference import (
    ATOL,
    assert_cached_decoding_equals_full_forward,
    assert_covers_every_layer_kind,
    assert_greedy_equals_hf,
    assert_same_param_count,
    hf_param_count,
    load_pair,
    make_hf,
    max_logit_diff,
    record,
    record_cache_bytes,
    save_hf,
)

import archlab
from archlab.io.hf import FAMILIES
from archlab.io.hf.qwen3_next import _qkvz_sizes, _regroup, _ungroup
from archlab.io.safetensors_dir import CheckpointError
from archlab.nn.context import Context
from archlab.nn.deltanet import (
    GatedDeltaNet,
    delta_rule_chunked,
    delta_rule_recurrent,
    l2_normalize,
)

transformers = pytest.importorskip("transformers")
hf_qwen3_next = pytest.importorskip("transformers.models.qwen3_next.modeling_qwen3_next")

FAMILY = "qwen3_next"
PRESET = "qwen3-next-80b-a3b"


def published_shape():
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


def variants():
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


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return load_pair(published_shape(), tmp_path_factory.mktemp("qwen3_next"))


# ---- the whole model against HF -----------------------------------------------------------------

def test_logits_equal_hf(pair):
    ref, ours = pair
    assert_covers_every_layer_kind(ours.config, PRESET)
    d = max_logit_diff(ref, ours, ref.config.vocab_size)
    record(FAMILY, logit_diff=d)
    assert d < ATOL


def test_variants_equal_hf(tmp_path):
    ref, ours = load_pair(variants(), tmp_path, seed=1)
    c = ours.config
    assert c.ffn_types == ("moe", "dense", "moe") and c.moe.n_shared == 2 and c.tie_embeddings
    d = max_logit_diff(ref, ours, c.vocab_size)
    record(FAMILY, logit_diff=d)
    assert d < ATOL
    assert_same_param_count(ref, ours)


def test_several_chunks_equal_hf(pair):
    """150 tokens: the chunked form's pass over chunks (64, 64, 22), against HF's."""
    ref, ours = pair
    ids = torch.randint(0, ref.config.vocab_size, (2, 150), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        d = (ours(ids) - ref(ids).logits).abs().max().item()
    record(FAMILY, logit_diff=d)
    assert d < ATOL


def test_left_padded_batch_equals_hf(pair):
    """Padding must not leak into a row's state: HF zeroes the padded inputs of its linear
    layers (apply_mask_to_padding_states); its logits at the real tokens are ours."""
    ref, ours = pair
    g = torch.Generator().manual_seed(11)
    lengths = (13, 4, 9)
    ids = torch.randint(2, ref.config.vocab_size, (3, 13), generator=g)
    pad = torch.tensor([13 - n for n in lengths])
    mask = (torch.arange(13)[None] >= pad[:, None]).long()
    ids = ids * mask  # padding token 0
    with torch.no_grad():
        expected = ref(ids, attention_mask=mask).logits
        got = ours(ids, pad=pad)
        alone = [ours(ids[b : b + 1, pad[b] :]) for b in range(3)]
    for b in range(3):
        torch.testing.assert_close(got[b, pad[b] :], expected[b, pad[b] :], atol=ATOL, rtol=0)
        torch.testing.assert_close(got[b, pad[b] :], alone[b][0], atol=ATOL, rtol=0)


def test_param_count_equals_hf(pair):
    ref, ours = pair
    assert_same_param_count(ref, ours)
    meta = archlab.build(ours.config, device="meta")
    assert archlab.analyze(ours.config).total_params == sum(p.numel() for p in meta.parameters()) == hf_param_count(ref)


def test_cached_decoding_equals_full_forward(pair):
    _, ours = pair
    assert_cached_decoding_equals_full_forward(ours, ours.config.vocab_size)


def test_greedy_equals_hf(pair):
    ref, ours = pair
    assert_greedy_equals_hf(ref, ours, ref.config.vocab_size)


def test_cache_bytes_equal_analysis(pair):
    _, ours = pair
    record_cache_bytes(FAMILY, ours)
    for dtype, label in ((torch.float32, "float32"), (torch.bfloat16, "bfloat16")):
        cache = ours.new_cache(3, 50, dtype=dtype)
        assert cache.nbytes == archlab.analyze(ours.config).kv_cache_bytes(50, batch=3, dtype=label)


def test_recurrent_state_does_not_grow(pair):
    """A DeltaNet layer's cache is the same few tensors for 10 tokens or 200: allocated once at
    its fixed size and updated in place, while the attention layer's grows with capacity."""
    _, ours = pair
    linear = [i for i, t in enumerate(ours.config.layer_types) if t == "linear"]
    short, long = ours.new_cache(2, 10), ours.new_cache(2, 200)
    for i in linear:
        assert short.layers[i].nbytes == long.layers[i].nbytes
    assert short.layers[3].nbytes < long.layers[3].nbytes
    before = {i: [(t.data_ptr(), t.shape) for t in long.layers[i].tensors()] for i in linear}
    ids = torch.randint(0, ours.config.vocab_size, (2, 200), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours(ids[:, :197], cache=long)
        for t in range(197, 200):
            ours(ids[:, t : t + 1], cache=long)
    for i in linear:
        assert [(t.data_ptr(), t.shape) for t in long.layers[i].tensors()] == before[i]
        assert long.layers[i].state.abs().sum() > 0  # it was written to
    a = archlab.analyze(ours.config)
    assert [a.cache_bytes_per_layer(10)[i] for i in linear] == [a.cache_bytes_per_layer(10**6)[i] for i in linear]


def test_tiny_preset_builds():
    cfg = archlab.tiny(PRESET)
    model = archlab.build(cfg).eval()
    assert archlab.analyze(cfg).total_params == sum(p.numel() for p in archlab.build(cfg, device="meta").parameters())
    with torch.no_grad():
        assert torch.isfinite(model(torch.randint(0, cfg.vocab_size, (2, 70)))).all()


def test_fused_experts_checkpoint_loads(tmp_path):
    """HF v5 holds the experts fused (gate_up_proj); save_original_format=False writes them so."""
    ref = make_hf(published_shape())
    save_hf(ref, tmp_path, save_original_format=False)
    ours = archlab.load(tmp_path).eval()
    assert max_logit_diff(ref, ours, ref.config.vocab_size, shapes=((2, 9),)) < ATOL


# ---- the DeltaNet alone --------------------------------------------------------------------------

def _rule_inputs(B=2, H=3, T=37, dk=8, dv=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = l2_normalize(torch.randn(B, H, T, dk, generator=g)) * dk**-0.5
    k = l2_normalize(torch.randn(B, H, T, dk, generator=g))
    v = torch.randn(B, H, T, dv, generator=g)
    decay = -torch.rand(B, H, T, generator=g) * 2  # log decay: per-token factors in (e^-2, 1]
    beta = torch.rand(B, H, T, generator=g)
    state = torch.randn(B, H, dk, dv, generator=g)
    return q, k, v, decay, beta, state


@pytest.mark.parametrize("T,chunk", [(37, 64), (37, 8), (37, 5), (64, 64), (130, 64), (3, 1)])
def test_chunked_equals_recurrent(T, chunk):
    """Both forms from the same non-zero state, with lengths that are and are not multiples of the chunk."""
    q, k, v, decay, beta, s0 = _rule_inputs(T=T)
    o_rec, s_rec = delta_rule_recurrent(q, k, v, decay, beta, s0)
    o_chk, s_chk = delta_rule_chunked(q, k, v, decay, beta, s0, chunk)
    assert o_rec.abs().max() > 0.1
    torch.testing.assert_close(o_chk, o_rec, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s_chk, s_rec, atol=1e-5, rtol=1e-5)


def test_delta_rule_equals_hf():
    """Our two forms against HF's torch_recurrent_gated_delta_rule and torch_chunk_gated_delta_rule
    (which take (B, T, H, d), normalise q and k and scale q themselves)."""
    q, k, v, decay, beta, s0 = _rule_inputs(T=70)
    dk = q.shape[-1]
    bthd = lambda t: t.transpose(1, 2)
    hf_args = (bthd(q) * dk**0.5, bthd(k), bthd(v))
    kw = {"g": bthd(decay), "beta": bthd(beta), "initial_state": s0, "output_final_state": True, "use_qk_l2norm_in_kernel": True}
    o_hf, s_hf = hf_qwen3_next.torch_recurrent_gated_delta_rule(*hf_args, **kw)
    o_hf_chunk, s_hf_chunk = hf_qwen3_next.torch_chunk_gated_delta_rule(*hf_args, **kw)
    for rule in (delta_rule_recurrent, delta_rule_chunked):
        o, s = rule(q, k, v, decay, beta, s0)
        for o_ref, s_ref in ((o_hf, s_hf), (o_hf_chunk, s_hf_chunk)):
            torch.testing.assert_close(bthd(o), o_ref, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(s, s_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("chunk,T,prefill", [(8, 29, 10), (64, 80, 70)])
def test_module_prefill_then_decode_equals_one_pass(chunk, T, prefill):
    """The mixer itself, in float64 (where it computes in float64): one chunked pass equals a
    chunked prefill that crosses a chunk boundary, then single-token decoding through its
    DeltaNetCache (conv state and recurrent state)."""
    torch.manual_seed(0)
    cfg = archlab.tiny(PRESET)
    spec = next(s for s in cfg.layers if s.mixer == "deltanet")
    net = GatedDeltaNet(cfg, spec).double()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    net.chunk = chunk
    B = 2
    x = torch.randn(B, T, cfg.d_model, dtype=torch.float64)
    ctx = lambda start, n: Context(positions=torch.arange(start, start + n).expand(B, n), rope={}, start=start)
    with torch.no_grad():
        full = net(x, ctx(0, T))
        cache = net.new_cache(B, T, torch.float64, "cpu")
        parts = [net(x[:, :prefill], ctx(0, prefill), cache)]
        parts += [net(x[:, t : t + 1], ctx(t, 1), cache) for t in range(prefill, T)]
    assert full.abs().max() > 0.1
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-10, rtol=0)


def test_projection_regrouping_roundtrips():
    cfg = archlab.tiny(PRESET)
    w = torch.randn(cfg.linear_attention.conv_channels + cfg.linear_attention.n_v_heads * cfg.linear_attention.v_head_dim, 5)
    ours = _ungroup(_qkvz_sizes)([w], cfg)[0]
    assert not torch.equal(ours, w)
    torch.testing.assert_close(_regroup(_qkvz_sizes)([ours], cfg)[0], w, atol=0, rtol=0)


# ---- config.json ---------------------------------------------------------------------------------

def _read(changes: dict) -> archlab.ModelConfig:
    hf = {**published_shape().to_dict(), **changes}
    return FAMILIES["qwen3_next"].read_config(json.loads(json.dumps(hf)))


def test_config_defaults_follow_hf():
    hf = published_shape().to_dict()
    for key in ("layer_types", "rope_parameters", "rope_scaling", "partial_rotary_factor", "mlp_only_layers"):
        hf.pop(key, None)
    hf["full_attention_interval"] = 2
    c = FAMILIES["qwen3_next"].read_config(hf)
    assert c.layer_types == ("linear", "global", "linear", "global")
    assert c.rope.partial == 0.25  # Qwen3NextConfig's default
    assert c.norm.unit_offset and c.attention.qk_norm.unit_offset and c.attention.output_gate
    assert c.moe.shared_gate and c.moe.router.norm_topk


@pytest.mark.parametrize("changes,match", [
    ({"hidden_act": "gelu"}, "hidden_act='gelu'.*only 'silu'"),
    ({"layer_types": ["linear_attention", "sliding_attention", "linear_attention", "full_attention"]},
     r"layer_types has \['sliding_attention'\]"),
    ({"layer_types": ["full_attention"]}, "one entry per layer"),
    ({"shared_expert_intermediate_size": 36}, "shared_expert_intermediate_size=36 must be a multiple of moe_intermediate_size=24"),
    ({"linear_num_value_heads": 3}, "n_v_heads: must be a multiple of n_k_heads"),
    ({"decoder_sparse_step": 0}, "decoder_sparse_step must be a positive integer"),
    ({"linear_key_head_dim": None}, "linear_key_head_dim"),
])
def test_bad_config_fields_are_named(changes, match):
    with pytest.raises((CheckpointError, archlab.ConfigError), match=match):
        _read(changes)
