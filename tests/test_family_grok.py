"""Grok 2.5 (xAI): NOT VERIFIED AGAINST A REFERENCE IMPLEMENTATION. There is no HF transformers
model; the semantics come from SGLang's python/sglang/srt/models/grok.py and its triton
attention / router kernels, which serve the released checkpoint (xai-org/grok-2).

So this file holds our modules to an independent, deliberately naive re-implementation written
from that description, in plain torch with per-token loops and weights named as SGLang names
them (never calling archlab's modules):

    x = embed[ids] * embedding_multiplier_scale
    per layer (Grok1DecoderLayer, residual_moe):
        h = attn(rmsnorm(x, pre_attn_norm));     x = x + rmsnorm(h, post_attn_norm)
        h = rmsnorm(x, pre_moe_norm)
        h = (mlp(h) + moe(h)) / sqrt(2);         x = x + rmsnorm(h, post_moe_norm)
    attn: GQA, neox-style RoPE on the whole head, s = q.k / sqrt(hd), s = cap * tanh(s / cap),
          then s *= log2(p) / log2(len) for a query at 0-based position p > len (xai_temperature_len,
          applied after the cap in decode_attention.py / extend_attention.py), softmax, o_proj
    mlp: down(gelu(gate h) * up h), exact GELU (gelu_and_mul_triton uses erf)
    moe: router logits in fp32, cap 30 tanh(x / 30), softmax, top-2, weights not renormalised
         (fused_moe_router_shim); experts down(gelu(w1 h) * w3 h)
    logits = rmsnorm(x, norm) @ (lm_head * output_multiplier_scale).T, then 50 tanh(l / 50)
"""

from __future__ import annotations

import math

import pytest
import torch
from hf_reference import (
    ATOL,
    assert_cached_decoding_equals_full_forward,
    record,
    record_cache_bytes,
)

import archlab

FAMILY = "grok"

# What SGLang's grok.py reads from xai-org/grok-2's config.json, and its hard-coded constants.
GROK_2 = dict(
    vocab_size=131072, hidden_size=8192, num_hidden_layers=64, num_attention_heads=64, num_key_value_heads=8,
    head_dim=128, intermediate_size=32768, moe_intermediate_size=16384, num_local_experts=8,
    num_experts_per_tok=2, rms_norm_eps=1e-5, rope_theta=208533496, embedding_multiplier_scale=90.50966799187809,
    output_multiplier_scale=0.5, attn_logit_softcapping=30.0, router_logit_softcapping=30.0,
    final_logit_softcapping=50.0, attn_temperature_len=1024, max_position_embeddings=131072,
)


# ---- the reference, from the description above -----------------------------------------------

def rmsnorm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def rope_neox(x, p, theta):
    """Rotate one head vector x (hd,) to position p, neox style (halves paired)."""
    half = x.shape[-1] // 2
    inv_freq = 1.0 / theta ** (torch.arange(0, half, dtype=torch.float32) * 2 / x.shape[-1])
    cos, sin = torch.cos(p * inv_freq), torch.sin(p * inv_freq)
    x1, x2 = x[:half], x[half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin))


def ref_attention(h, L, c):
    """h (T, D) of one sequence -> (T, D)."""
    T = h.shape[0]
    H, KV, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    q = (h @ L["q_proj"].T).view(T, H, hd)
    k = (h @ L["k_proj"].T).view(T, KV, hd)
    v = (h @ L["v_proj"].T).view(T, KV, hd)
    cap, tlen = c["attn_logit_softcapping"], c["attn_temperature_len"]
    k = torch.stack([torch.stack([rope_neox(k[s, j], s, c["rope_theta"]) for j in range(KV)]) for s in range(T)])
    out = torch.zeros(T, H, hd)
    for t in range(T):
        for head in range(H):
            kv = head // (H // KV)
            qt = rope_neox(q[t, head], t, c["rope_theta"])
            scores = torch.stack([qt @ k[s, kv] for s in range(t + 1)]) / math.sqrt(hd)
            scores = cap * torch.tanh(scores / cap)
            if tlen > 0 and t > tlen:
                scores = scores * (math.log2(t) / math.log2(tlen))
            p = torch.softmax(scores, dim=0)
            out[t, head] = (p[:, None] * v[: t + 1, kv]).sum(0)
    return out.reshape(T, H * hd) @ L["o_proj"].T


def ref_moe(h, L, c):
    out = torch.zeros_like(h)
    cap = c["router_logit_softcapping"]
    for t in range(h.shape[0]):
        logits = h[t].float() @ L["router"].float().T
        probs = torch.softmax(cap * torch.tanh(logits / cap), dim=0)
        top = torch.topk(probs, c["num_experts_per_tok"]).indices
        for e in top.tolist():
            w1, w2, w3 = L["experts"][e]
            out[t] += probs[e] * ((gelu(h[t] @ w1.T) * (h[t] @ w3.T)) @ w2.T)
    return out


def ref_layer(x, L, c):
    """One Grok1DecoderLayer with residual_moe on one sequence x (T, D)."""
    eps = c["rms_norm_eps"]
    x = x + rmsnorm(ref_attention(rmsnorm(x, L["pre_attn_norm"], eps), L, c), L["post_attn_norm"], eps)
    h = rmsnorm(x, L["pre_moe_norm"], eps)
    mlp = (gelu(h @ L["gate_proj"].T) * (h @ L["up_proj"].T)) @ L["down_proj"].T
    h = (mlp + ref_moe(h, L, c)) / math.sqrt(2)
    return x + rmsnorm(h, L["post_moe_norm"], eps)


def ref_logits(ids, W, c):
    out = []
    for row in ids:
        x = W["embed"][row] * c["embedding_multiplier_scale"]
        for L in W["layers"]:
            x = ref_layer(x, L, c)
        logits = rmsnorm(x, W["norm"], c["rms_norm_eps"]) @ (W["lm_head"] * c["output_multiplier_scale"]).T
        cap = c["final_logit_softcapping"]
        out.append(cap * torch.tanh(logits / cap))
    return torch.stack(out)


def ref_weights(c, seed=0):
    """Random weights in SGLang's structure, scaled so attention scores, router logits and final
    logits are O(1-10): large enough for small caps to bite."""
    g = torch.Generator().manual_seed(seed)
    D, H, KV, hd = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    F, Fd, E = c["moe_intermediate_size"], c["intermediate_size"], c["num_local_experts"]
    r = lambda *shape, std: torch.randn(*shape, generator=g) * std
    norm = lambda: 1 + r(D, std=0.1)
    layers = []
    for _ in range(c["num_hidden_layers"]):
        layers.append(dict(
            pre_attn_norm=norm(), post_attn_norm=norm(), pre_moe_norm=norm(), post_moe_norm=norm(),
            q_proj=r(H * hd, D, std=2 / D**0.5), k_proj=r(KV * hd, D, std=2 / D**0.5),
            v_proj=r(KV * hd, D, std=1 / D**0.5), o_proj=r(D, H * hd, std=1 / (H * hd) ** 0.5),
            gate_proj=r(Fd, D, std=1 / D**0.5), up_proj=r(Fd, D, std=1 / D**0.5), down_proj=r(D, Fd, std=1 / Fd**0.5),
            router=r(E, D, std=2 / D**0.5),
            experts=[(r(F, D, std=1 / D**0.5), r(D, F, std=1 / F**0.5), r(F, D, std=1 / D**0.5)) for _ in range(E)],
        ))
    return dict(embed=r(c["vocab_size"], D, std=1.0), layers=layers, norm=norm(), lm_head=r(c["vocab_size"], D, std=4 / D**0.5))


def to_archlab_state(W) -> dict[str, torch.Tensor]:
    """SGLang's weights in our names (the one place this test knows our layout)."""
    s = {"tok_emb.weight": W["embed"], "norm.weight": W["norm"], "head.weight": W["lm_head"]}
    for i, L in enumerate(W["layers"]):
        p = f"layers.{i}."
        for ours, theirs in (("attn_norm", "pre_attn_norm"), ("attn_post_norm", "post_attn_norm"),
                             ("ffn_norm", "pre_moe_norm"), ("ffn_post_norm", "post_moe_norm")):
            s[p + ours + ".weight"] = L[theirs]
        for ours, theirs in (("wq", "q_proj"), ("wk", "k_proj"), ("wv", "v_proj"), ("wo", "o_proj")):
            s[p + f"attn.{ours}.weight"] = L[theirs]
        s[p + "ffn.router.weight"] = L["router"]
        s[p + "ffn.experts.gate"] = torch.stack([w1 for w1, _, _ in L["experts"]])
        s[p + "ffn.experts.down"] = torch.stack([w2 for _, w2, _ in L["experts"]])
        s[p + "ffn.experts.up"] = torch.stack([w3 for _, _, w3 in L["experts"]])
        # the residual dense GeGLU is the MoE's two shared experts
        for ours, theirs in (("gate", "gate_proj"), ("up", "up_proj"), ("down", "down_proj")):
            s[p + f"ffn.shared.{ours}.weight"] = L[theirs]
    return s


# ---- the configs compared --------------------------------------------------------------------

def tiny_constants(cfg) -> dict:
    """The reference's constants for a tiny config: its sizes, and the published constants
    wherever the tiny preset keeps them (it shrinks sizes, the temperature length and sqrt(d))."""
    a, m = cfg.attention, cfg.moe
    return {**GROK_2, "vocab_size": cfg.vocab_size, "hidden_size": cfg.d_model, "num_hidden_layers": cfg.n_layers,
            "num_attention_heads": a.n_heads, "num_key_value_heads": a.n_kv_heads, "head_dim": a.head_dim,
            "intermediate_size": 2 * m.hidden, "moe_intermediate_size": m.hidden, "num_local_experts": m.n_experts,
            "embedding_multiplier_scale": math.sqrt(cfg.d_model), "attn_temperature_len": a.temperature.length}


# Small caps, a fast-turning RoPE and an early temperature: every nonlinearity in its working range.
SHARP = dict(attn_logit_softcapping=2.0, router_logit_softcapping=1.0, final_logit_softcapping=3.0,
             rope_theta=100.0, attn_temperature_len=16)


def sharpened(cfg):
    from dataclasses import replace

    from archlab.model_config import LengthTemperature, RopeConfig

    return cfg.replace(
        attention=replace(cfg.attention, softcap=SHARP["attn_logit_softcapping"],
                          temperature=LengthTemperature(SHARP["attn_temperature_len"])),
        moe=replace(cfg.moe, router=replace(cfg.moe.router, logit_softcap=SHARP["router_logit_softcapping"])),
        logit_softcap=SHARP["final_logit_softcapping"],
        position=RopeConfig(theta=SHARP["rope_theta"]),
    )


VARIANTS = {
    "published": (lambda cfg: cfg, {}),
    "sharp": (sharpened, SHARP),
}


def grok_pair(variant: str, seed: int = 0):
    make, overrides = VARIANTS[variant]
    cfg = make(archlab.tiny("grok-2.5", vocab_size=301, n_layers=2))
    c = {**tiny_constants(archlab.tiny("grok-2.5", vocab_size=301, n_layers=2)), **overrides}
    W = ref_weights(c, seed)
    model = archlab.build(cfg).eval()
    model.load_state_dict(to_archlab_state(W), strict=True)
    return model, W, c


@pytest.fixture(scope="module", params=list(VARIANTS))
def grok(request):
    return (request.param, *grok_pair(request.param))


# ---- the tests --------------------------------------------------------------------------------

def test_preset_is_what_sglang_reads_from_the_config():
    cfg = archlab.config("grok-2.5")
    a, m, c = cfg.attention, cfg.moe, GROK_2
    assert (cfg.vocab_size, cfg.d_model, cfg.n_layers) == (c["vocab_size"], c["hidden_size"], c["num_hidden_layers"])
    assert (a.n_heads, a.n_kv_heads, a.head_dim) == (c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"])
    assert a.scale is None and not a.qkv_bias and not a.out_bias and a.softcap == c["attn_logit_softcapping"]
    assert a.temperature.length == c["attn_temperature_len"]
    assert cfg.rope.theta == c["rope_theta"] and cfg.rope.partial == 1.0 and cfg.rope.scaling is None
    assert cfg.block == "sandwich" and cfg.norm.kind == "rmsnorm" and cfg.norm.eps == c["rms_norm_eps"]
    assert {(s.ffn, s.kind) for s in cfg.layers} == {("moe", "global")}
    assert (m.n_experts, m.top_k, m.hidden) == (c["num_local_experts"], c["num_experts_per_tok"], c["moe_intermediate_size"])
    assert m.activation == "gelu" and m.n_shared * m.hidden == c["intermediate_size"] and not m.bias
    assert m.router.score == "softmax" and not m.router.norm_topk and m.router.scale == 1.0
    assert m.router.logit_softcap == c["router_logit_softcapping"] and m.router.n_groups == 1 and not m.router.score_bias
    assert m.output_scale == pytest.approx(1 / math.sqrt(2), rel=1e-12)
    assert cfg.embed_multiplier == pytest.approx(c["embedding_multiplier_scale"], rel=1e-12)
    assert cfg.logit_scale == c["output_multiplier_scale"] and cfg.logit_softcap == c["final_logit_softcapping"]
    assert not cfg.tie_embeddings
    assert "not verified against a reference implementation" in cfg.source


def test_one_layer_equals_the_reference(grok):
    _, model, W, c = grok
    seen = {}
    model.layers[0].register_forward_hook(lambda mod, args, out: seen.update(x=args[0], y=out))
    ids = torch.randint(0, 301, (2, 37), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model(ids)
        want = torch.stack([ref_layer(x, W["layers"][0], c) for x in seen["x"]])
    model.layers[0]._forward_hooks.clear()
    assert seen["y"].abs().max() > 1.0
    torch.testing.assert_close(seen["y"], want, atol=ATOL * want.abs().max().item(), rtol=0)


def test_logits_equal_the_reference(grok):
    _, model, W, c = grok
    ids = torch.randint(0, 301, (2, 37), generator=torch.Generator().manual_seed(2))  # 37 > temperature length
    with torch.no_grad():
        got, want = model(ids), ref_logits(ids, W, c)
    assert want.std() > 0.1
    d = (got - want).abs().max().item()
    record(FAMILY, logit_diff=d)
    assert d < ATOL


@pytest.mark.slow
def test_cached_decoding_equals_full_forward():
    model, _, _ = grok_pair("sharp", seed=1)
    # 40 tokens: decoding steps run past the temperature length (16)
    assert_cached_decoding_equals_full_forward(model, 301, length=40, prefill=7)
    record_cache_bytes(FAMILY, model)


@pytest.mark.slow
def test_left_padded_batch_generates_as_single_prompts():
    model, _, _ = grok_pair("sharp", seed=3)
    g = torch.Generator().manual_seed(4)
    prompts = [torch.randint(2, 301, (n,), generator=g).tolist() for n in (14, 3, 20)]  # cross length 16 while decoding
    single = [archlab.generate(model, [p], max_new_tokens=8)[0] for p in prompts]
    assert archlab.generate(model, prompts, max_new_tokens=8) == single


def test_temperature_acts_only_past_its_length():
    from dataclasses import replace

    model, _, c = grok_pair("sharp", seed=5)
    cold = archlab.build(model.config.replace(attention=replace(model.config.attention, temperature=None))).eval()
    cold.load_state_dict(model.state_dict())
    n = c["attn_temperature_len"]
    ids = torch.randint(0, 301, (2, 24), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        hot, plain = model(ids), cold(ids)
    torch.testing.assert_close(hot[:, : n + 1], plain[:, : n + 1], atol=1e-6, rtol=0)  # positions 0..n
    assert (hot[:, n + 1 :] - plain[:, n + 1 :]).abs().amax(dim=(0, 2)).min() > 1e-3  # every later position


def test_analyze_equals_meta_build_and_the_reference_count():
    cfg = archlab.tiny("grok-2.5", vocab_size=301, n_layers=2)
    meta = sum(p.numel() for p in archlab.build(cfg, device="meta").parameters())
    assert archlab.analyze(cfg).total_params == meta
    W = ref_weights(tiny_constants(cfg))
    count = lambda t: t.numel() if isinstance(t, torch.Tensor) else sum(map(count, t.values() if isinstance(t, dict) else t))
    assert count(W) == meta
    full = archlab.config("grok-2.5")
    assert archlab.analyze(full).total_params == sum(p.numel() for p in archlab.build(full, device="meta").parameters())
