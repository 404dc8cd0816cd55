"""Qwen3-Next: Gated DeltaNet linear-attention layers, gated full attention, zero-centred
norms, MoE with a sigmoid-gated shared expert. The checks every family passes run over its cases
in test_families.py (cases in families.py: the published layer plan and the variants
config.json may spell); here, Qwen3-Next's own, and the DeltaNet alone."""

from __future__ import annotations

import json

import pytest
import torch
from families import QWEN3_NEXT_PRESET, qwen3_next_published_shape
from hf_reference import ATOL, record
from measured import allocated_bytes

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


@pytest.fixture
def pair(hf_pair):
    return hf_pair("qwen3next-published")


# ---- the whole model against HF -----------------------------------------------------------------

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


def test_recurrent_state_does_not_grow(pair):
    """A DeltaNet layer's cache is the same few tensors for 10 tokens or 200: allocated once at
    its fixed size and updated in place, while the attention layer's grows with capacity."""
    _, ours = pair
    linear = [i for i, t in enumerate(ours.config.layer_types) if t == "linear"]
    short, long = ours.new_cache(2, 10), ours.new_cache(2, 200)
    for i in linear:
        assert allocated_bytes(short.layers[i]) == allocated_bytes(long.layers[i])
    assert allocated_bytes(short.layers[3]) < allocated_bytes(long.layers[3])
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
    cfg = archlab.tiny(QWEN3_NEXT_PRESET)
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
    cfg = archlab.tiny(QWEN3_NEXT_PRESET)
    w = torch.randn(cfg.linear_attention.conv_channels + cfg.linear_attention.n_v_heads * cfg.linear_attention.v_head_dim, 5)
    ours = _ungroup(_qkvz_sizes)([w], cfg)[0]
    assert not torch.equal(ours, w)
    torch.testing.assert_close(_regroup(_qkvz_sizes)([ours], cfg)[0], w, atol=0, rtol=0)


# ---- config.json ---------------------------------------------------------------------------------

def _read(changes: dict) -> archlab.ModelConfig:
    hf = {**qwen3_next_published_shape().to_dict(), **changes}
    return FAMILIES["qwen3_next"].read_config(json.loads(json.dumps(hf)))


def test_config_defaults_follow_hf():
    hf = qwen3_next_published_shape().to_dict()
    for key in ("layer_types", "rope_parameters", "rope_scaling", "partial_rotary_factor", "mlp_only_layers"):
        hf.pop(key, None)
    hf["full_attention_interval"] = 2
    c = FAMILIES["qwen3_next"].read_config(hf)
    assert c.layer_types == ("linear", "global", "linear", "global")
    assert c.rope.partial == 0.25  # Qwen3NextConfig's default
    assert c.norm.unit_offset and c.attention.qk_norm.unit_offset and c.attention.output_gate
    assert c.moe.shared_gate and c.moe.router.norm_topk


@pytest.mark.parametrize("changes,match", [
    ({"hidden_act": "elu"}, "hidden_act"),
    ({"layer_types": ["linear_attention", "sliding_attention", "linear_attention", "full_attention"]},
     r"layer_types has \['sliding_attention'\]"),
    ({"layer_types": ["full_attention"]}, "one entry per layer"),
    ({"shared_expert_intermediate_size": -8}, "shared_expert_intermediate_size"),
    ({"linear_num_value_heads": 3}, r"^config.json: linear_num_value_heads: must be a multiple of linear_num_key_heads \(2\)"),
    ({"decoder_sparse_step": 0}, "decoder_sparse_step must be a positive integer"),
    ({"linear_key_head_dim": None}, "linear_key_head_dim"),
])
def test_bad_config_fields_are_named(changes, match):
    with pytest.raises((CheckpointError, archlab.ConfigError), match=match):
        _read(changes)


def test_hidden_act_reaches_the_deltanet_convolution():
    """Qwen3NextGatedDeltaNet applies hidden_act after its convolution (its activation =
    config.hidden_act); parity with HF: sweep_reproducers' 'qwen3_next non-silu hidden_act
    refused' in test_sweep_hf.py. A model whose convolution and FFN activations differ has no
    qwen3_next config.json: saving refuses it by name."""
    cfg = _read({"hidden_act": "gelu"})
    assert cfg.linear_attention.conv_activation == "gelu"
    apart = cfg.replace(linear_attention={"conv_activation": "silu"})
    assert any("conv_activation='silu'" in p for p in FAMILIES["qwen3_next"].problems(apart))
    assert not FAMILIES["qwen3_next"].problems(cfg)
