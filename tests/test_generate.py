"""Cached decoding computes what a full forward computes; generation stops, samples and pads as
it should. (Greedy generation against HF's generate is checked per family in test_families.py.)"""

from __future__ import annotations

import pytest
import torch

import archlab
from archlab.cache import DeltaNetCache, KVCache, MLACache, SlidingKVCache
from archlab.generation import sample
from measured import allocated_bytes

ATOL = 1e-4


def _sliding(name: str):
    """A tiny llama whose layers alternate sliding (window 5) and global attention."""
    cfg = archlab.tiny(name)
    return cfg.replace(
        name=f"{name}-sliding",
        attention=cfg.attention.__class__(**{**cfg.attention.__dict__, "window": 5}),
        layer_types=("sliding", "global") * (cfg.n_layers // 2) + ("sliding",) * (cfg.n_layers % 2),
    )


CONFIGS = {name: archlab.tiny(name) for name in archlab.presets()}
CONFIGS["llama-sliding"] = _sliding("llama-3-8b")
CONFIGS["gpt2-sliding"] = _sliding("gpt2")


def _model(cfg, seed=0):
    torch.manual_seed(seed)
    model = archlab.build(cfg).eval()
    with torch.no_grad():  # larger weights than the init, so that logits are O(1) and differences show
        for p in model.parameters():
            p.normal_(0, 0.1) if p.dim() > 1 else p.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.mark.parametrize("name", list(CONFIGS))
def test_prefill_then_decode_equals_full_forward(name):
    model = _model(CONFIGS[name])
    ids = torch.randint(0, model.config.vocab_size, (2, 23))
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache(2, 23)
        parts = [model(ids[:, :7], cache=cache)]  # prefill
        parts += [model(ids[:, t : t + 1], cache=cache) for t in range(7, 15)]  # decode one by one
        parts.append(model(ids[:, 15:], cache=cache))  # a second chunk on top of a cache
    assert full.std() > 0.1
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["llama-3-8b", "deepseek-v3", "llama-sliding", "gpt2"])
def test_left_padded_rows_equal_unpadded(name):
    model = _model(CONFIGS[name])
    V = model.config.vocab_size
    a, b = torch.randint(0, V, (1, 9)), torch.randint(0, V, (1, 16))
    batch = torch.cat((torch.cat((torch.zeros(1, 7, dtype=torch.long), a), 1), b))
    pad = torch.tensor([7, 0])
    with torch.no_grad():
        both = model(batch, pad=pad)
        torch.testing.assert_close(both[0, 7:], model(a)[0], atol=ATOL, rtol=0)
        torch.testing.assert_close(both[1], model(b)[0], atol=ATOL, rtol=0)
        # and through a cache, decoding one more token per row
        cache = model.new_cache(2, 17, pad=pad)
        model(batch, cache=cache)
        nxt = torch.tensor([[3], [4]])
        step = model(nxt, cache=cache)[:, 0]
        torch.testing.assert_close(step[0], model(torch.cat((a, nxt[:1]), 1))[0, -1], atol=ATOL, rtol=0)
        torch.testing.assert_close(step[1], model(torch.cat((b, nxt[1:]), 1))[0, -1], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["deepseek-v3", "deepseek-v2-lite"])
def test_mla_absorbed_equals_naive(name):
    model = _model(CONFIGS[name])
    ids = torch.randint(0, model.config.vocab_size, (2, 19))
    with torch.no_grad():
        naive = model(ids)
        for layer in model.layers:
            layer.attn.absorb = True
        absorbed = model(ids)
    torch.testing.assert_close(absorbed, naive, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cache_bytes_equal_tensor_bytes(name, dtype):
    cfg = CONFIGS[name]
    model = archlab.build(cfg, dtype=dtype)
    B, S = 3, 40
    cache = model.new_cache(B, S)
    assert cache.nbytes == allocated_bytes(*cache.layers)
    size = torch.tensor([], dtype=dtype).element_size()
    a = cfg.resolved_attention
    for layer_cache, spec in zip(cache.layers, cfg.layers):
        if spec.mixer == "deltanet":  # a fixed-size state, whatever S: conv inputs + recurrent state (float32)
            g = cfg.linear_attention
            assert isinstance(layer_cache, DeltaNetCache)
            assert layer_cache.state.dtype == torch.float32
            assert layer_cache.nbytes == B * (g.conv_channels * (g.conv_kernel - 1) * size + g.n_v_heads * g.k_head_dim * g.v_head_dim * 4)
            continue
        if isinstance(a, archlab.MLAConfig):
            assert isinstance(layer_cache, MLACache)
            per_token = a.kv_lora_rank + a.qk_rope_head_dim  # never decompressed K/V
        else:
            per_token = 2 * a.n_kv_heads * a.head_dim
        limit = spec.window or spec.chunk
        held = min(S, limit) if limit else S
        assert isinstance(layer_cache, SlidingKVCache if limit and limit < S else (MLACache, KVCache))
        assert layer_cache.nbytes == B * held * per_token * size


def test_mla_cache_is_much_smaller_than_decompressed_kv():
    cfg = archlab.config("deepseek-v3")
    a = cfg.attention
    latent = a.kv_lora_rank + a.qk_rope_head_dim
    decompressed = a.n_heads * (a.qk_head_dim + a.v_head_dim)
    assert decompressed / latent > 70  # 576 vs 40960 values per token and layer


def test_stop_token_ends_a_row_and_stream_matches():
    model = _model(CONFIGS["llama-3-8b"])
    prompts = [[5, 6, 7], [8, 9, 10, 11, 12]]
    free = archlab.generate(model, prompts, 10)
    stop = free[0][3]
    got = archlab.generate(model, prompts, 10, stop=stop)
    assert got[0] == free[0][: free[0].index(stop) + 1]
    expect1 = free[1][: free[1].index(stop) + 1] if stop in free[1] else free[1]
    assert got[1] == expect1
    streamed = list(archlab.stream(model, prompts[1], 10))
    assert streamed == free[1]
    tensor_out = archlab.generate(model, torch.tensor([prompts[0]]), 10, stop=stop)
    assert tensor_out.shape == (1, len(got[0])) and tensor_out[0].tolist() == got[0]


@pytest.mark.slow
def test_sampling_is_seeded_and_follows_the_distribution():
    model = _model(CONFIGS["llama-3-8b"])
    p = [1, 2, 3, 4]
    a = archlab.generate(model, p, 20, temperature=1.0, seed=11)
    assert a == archlab.generate(model, p, 20, temperature=1.0, seed=11)
    assert a != archlab.generate(model, p, 20, temperature=1.0, seed=12)
    assert archlab.generate(model, p, 8, temperature=0.7, top_k=1, seed=1) == archlab.generate(model, p, 8)
    assert archlab.generate(model, p, 8, temperature=0.7, top_p=1e-6, seed=1) == archlab.generate(model, p, 8)
    # empirical frequencies follow softmax(logits / T), restricted to the top_k
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0]])
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sample(logits, 0.5, top_k=3, generator=g) for _ in range(20000)]).flatten()
    freq = torch.bincount(draws, minlength=5).float() / draws.numel()
    expected = torch.zeros(5)
    expected[:3] = (logits[0, :3] / 0.5).softmax(-1)
    torch.testing.assert_close(freq, expected, atol=0.015, rtol=0)
    # top_p keeps the smallest set holding p of the mass: here tokens 0 and 1
    probs = (logits / 0.5).softmax(-1)[0]
    assert probs[0] < 0.9 < probs[0] + probs[1]
    draws = torch.stack([sample(logits, 0.5, top_p=0.9, generator=g) for _ in range(4000)]).flatten()
    assert set(draws.tolist()) == {0, 1}


def test_generation_stops_at_the_context():
    model = _model(archlab.tiny("gpt2", max_seq_len=16))
    out = archlab.generate(model, list(range(1, 11)), 50)
    assert len(out) == 16 - 10 + 1


def test_generation_errors_are_clear():
    model = _model(archlab.tiny("gpt2", max_seq_len=16))
    with pytest.raises(ValueError, match=r"prompt 0 has 20 tokens, longer than the model's context of 16"):
        archlab.generate(model, list(range(20)), 5)
    with pytest.raises(ValueError, match=r"prompt 1 is empty"):
        archlab.generate(model, [[1], []], 5)
    with pytest.raises(ValueError, match=r"top_p: expected a number in \(0, 1\]"):
        archlab.generate(model, [1], 5, temperature=1.0, top_p=1.5)
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 512\)"):
        archlab.generate(model, [1, 999], 5)


def test_sliding_window_sees_exactly_window_tokens():
    # One sliding layer of window 5: the output at t depends on tokens t-4..t and on nothing earlier.
    cfg = _sliding("llama-3-8b").replace(n_layers=1, layer_types=("sliding",), ffn_types=("dense",), rope_layers=(True,))
    model = _model(cfg)
    ids = torch.randint(0, cfg.vocab_size, (1, 20))
    t, w = 15, 5
    with torch.no_grad():
        base = model(ids)[0, t]
        for j, should_change in ((t - w, False), (t - w + 1, True), (t, True)):
            other = ids.clone()
            other[0, j] = (other[0, j] + 1) % cfg.vocab_size
            changed = (model(other)[0, t] - base).abs().max().item() > 1e-5
            assert changed == should_change, f"token {j} {'should' if should_change else 'should not'} reach position {t}"
            cache = model.new_cache(1, 20)
            model(other[:, :t], cache=cache)
            torch.testing.assert_close(model(other[:, t : t + 1], cache=cache)[0, 0], model(other)[0, t], atol=ATOL, rtol=0)
