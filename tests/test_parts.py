"""Each part against an independent statement of what it must compute."""

from __future__ import annotations

import math

import pytest
import torch

import archlab
from archlab import ModelConfig, MoEConfig, RopeConfig, RopeScaling, RouterConfig
from archlab.nn.moe import Experts, Router
from archlab.nn.position import apply_rope, interleaved_to_halves, rope_cos_sin, rope_frequencies


def test_rope_scores_depend_only_on_relative_position():
    rope, d = RopeConfig(theta=10000.0), 16
    q, k = torch.randn(1, 1, 1, d), torch.randn(1, 1, 1, d)

    def score(pq: int, pk: int) -> float:
        cq, sq = rope_cos_sin(rope, d, torch.tensor([[pq]]), torch.float64)
        ck, sk = rope_cos_sin(rope, d, torch.tensor([[pk]]), torch.float64)
        return (apply_rope(q.double(), cq, sq) * apply_rope(k.double(), ck, sk)).sum().item()

    # angles are float32, as in every reference implementation
    assert score(5, 2) == pytest.approx(score(103, 100), rel=1e-5)
    assert score(5, 2) != pytest.approx(score(5, 3), rel=1e-3)


def test_rope_rotation_keeps_norm_and_partial_passes_through():
    x = torch.randn(2, 3, 7, 16)
    cos, sin = rope_cos_sin(RopeConfig(), 8, torch.arange(7).expand(2, 7), torch.float32)
    y = apply_rope(x, cos, sin)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(y[..., 8:], x[..., 8:])


def test_llama3_scaling_keeps_high_and_divides_low_frequencies():
    s = RopeScaling("llama3", factor=8.0, original_max_seq_len=8192)
    base, _ = rope_frequencies(RopeConfig(theta=500000.0), 128)
    scaled, _ = rope_frequencies(RopeConfig(theta=500000.0, scaling=s), 128)
    wavelen = 2 * math.pi / base
    torch.testing.assert_close(scaled[wavelen < 8192 / 4], base[wavelen < 8192 / 4])
    torch.testing.assert_close(scaled[wavelen > 8192], base[wavelen > 8192] / 8)


def test_interleaved_permutation_equals_adjacent_pair_rotation():
    # Rotating adjacent pairs (x0,x1),(x2,x3).. (DeepSeek, Meta's Llama) equals rotating halves
    # of the permuted vector: the basis of loading such checkpoints by permuting rows.
    d, pos = 8, 5
    x = torch.randn(d, dtype=torch.float64)
    inv, _ = rope_frequencies(RopeConfig(), d)
    ang = pos * inv.double()
    pairs = torch.view_as_complex(x.view(-1, 2).contiguous()) * torch.polar(torch.ones_like(ang), ang)
    adjacent = torch.view_as_real(pairs).flatten()
    perm = interleaved_to_halves(d)
    cos, sin = rope_cos_sin(RopeConfig(), d, torch.tensor([[pos]]), torch.float64)
    halves = apply_rope(x[perm].view(1, 1, 1, d), cos, sin).flatten()
    torch.testing.assert_close(halves, adjacent[perm])


def test_experts_equal_a_per_token_loop():
    torch.manual_seed(0)
    cfg = MoEConfig(n_experts=5, top_k=2, hidden=12)
    experts = Experts(16, cfg)
    experts.reset_parameters()
    x = torch.randn(9, 16)
    idx = torch.randint(0, 5, (9, 2))
    w = torch.rand(9, 2)
    expected = torch.zeros(9, 16)
    for n in range(9):
        for j in range(2):
            e = idx[n, j]
            h = torch.nn.functional.silu(experts.gate[e] @ x[n]) * (experts.up[e] @ x[n])
            expected[n] += w[n, j] * (experts.down[e] @ h)
    torch.testing.assert_close(experts(x, idx, w), expected)


@pytest.mark.parametrize("score,group_score", [("softmax", "max"), ("sigmoid", "top2_sum")])
def test_group_limited_routing_stays_in_best_groups(score, group_score):
    torch.manual_seed(0)
    cfg = MoEConfig(n_experts=16, top_k=4, hidden=8, router=RouterConfig(
        score=score, n_groups=4, topk_groups=2, group_score=group_score, score_bias=score == "sigmoid", norm_topk=True))
    router = Router(32, cfg)
    router.reset_parameters()
    if router.score_bias is not None:
        router.score_bias.normal_()
    x = torch.randn(50, 32)
    w, idx = router(x)
    assert all(len(set((r // 4).tolist())) <= 2 for r in idx)
    torch.testing.assert_close(w.sum(-1), torch.ones(50))
    # without group limits the same router would reach outside two groups for some tokens
    free = Router(32, MoEConfig(n_experts=16, top_k=4, hidden=8, router=RouterConfig(score=score)))
    free.weight.data.copy_(router.weight.data)
    _, idx_free = free(x)
    assert any(len(set((r // 4).tolist())) > 2 for r in idx_free)


def test_score_bias_changes_selection_not_weights():
    torch.manual_seed(0)
    cfg = MoEConfig(n_experts=8, top_k=2, hidden=8, router=RouterConfig(score="sigmoid", score_bias=True))
    router = Router(16, cfg)
    router.reset_parameters()
    x = torch.randn(20, 16)
    _, idx0 = router(x)
    router.score_bias[idx0[0, 0]] = -10.0  # push token 0's first choice out
    w, idx = router(x)
    assert idx0[0, 0] not in idx[0]
    scores = torch.sigmoid(x @ router.weight.T)
    torch.testing.assert_close(w, scores.gather(1, idx))


def _architecture(c: ModelConfig) -> dict:
    """Everything about a config except its sizes."""
    a = c.attention
    arch = dict(
        norm=c.norm, position=c.position_kind, block=c.block, tie=c.tie_embeddings,
        ffn=None if c.ffn is None else (c.ffn.kind, c.ffn.activation, c.ffn.bias),
        attention=type(a).__name__, layer_kinds={(s.kind, s.ffn, s.rope is None) for s in c.layers},
        embed_scale=c.embed_scale is not None, logit_scale=c.logit_scale, logit_softcap=c.logit_softcap,
        rope=None if c.rope is None else (c.rope.theta, c.rope.partial, c.rope.scaling and c.rope.scaling.kind),
        rope_local=None if c.rope_local is None else (c.rope_local.theta, c.rope_local.scaling and c.rope_local.scaling.kind),
        linear_attention=c.linear_attention is not None and c.linear_attention.n_v_heads // c.linear_attention.n_k_heads,
    )
    if isinstance(a, archlab.AttentionConfig):
        shape = "MHA" if a.n_kv_heads == a.n_heads else "MQA" if a.n_kv_heads == 1 else "GQA"
        arch["attention"] = (shape, a.qkv_bias, a.out_bias, a.qk_norm, a.qk_norm_scope, a.sinks, a.softcap,
                             a.output_gate, a.temperature is not None, a.window is not None, a.chunk is not None,
                             a.scale is not None)
    else:
        arch["attention"] = ("MLA", a.q_lora_rank is None, a.bias)
    if c.moe is not None:
        m, r = c.moe, c.moe.router
        arch["moe"] = (m.top_k > 1, m.n_shared > 0, m.activation, m.bias, m.swiglu_limit, m.shared_gate,
                       r.score, r.norm_topk, r.scale, r.n_groups > 1, r.group_score, r.score_bias, r.logit_bias, r.weights_on)
    return arch


@pytest.mark.parametrize("name", archlab.presets())
def test_tiny_keeps_the_architecture(name):
    big, small = archlab.config(name), archlab.tiny(name)
    assert _architecture(small) == _architecture(big)
    if big.moe is not None:
        assert small.moe.n_experts > small.moe.top_k
        assert (small.moe.router.topk_groups < small.moe.router.n_groups) == (big.moe.router.topk_groups < big.moe.router.n_groups)
    a = small.attention
    for k in ("window", "chunk"):
        if getattr(a, k, None):
            assert getattr(a, k) < small.max_seq_len // 4  # short enough to bind in a test sequence


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt2", "llama-3-8b", "deepseek-v3"])
def test_tiny_model_trains(name):
    torch.manual_seed(0)
    model = archlab.build(archlab.tiny(name, vocab_size=64))
    ids = torch.randint(0, 64, (4, 33))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        logits = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 64), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(64), rel=0.1)  # starts at chance
    assert losses[-1] < 0.5 * losses[0]  # and memorises the batch


@pytest.mark.parametrize("name", archlab.presets())
def test_config_round_trips_through_dict(name):
    cfg = archlab.config(name)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_build_on_meta_allocates_nothing():
    model = archlab.build("deepseek-v3", device="meta")
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) > 600e9


def test_build_dtype():
    model = archlab.build(archlab.tiny("llama-3-8b"), dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model(torch.tensor([[1, 2, 3]])).dtype == torch.bfloat16
