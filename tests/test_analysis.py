"""analyze() against the code (the built model, the caches it allocates, the FLOPs torch counts)
and against the world (the sizes the models' authors published)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

import archlab
from archlab.catalog import published
from marks import QUICK_PRESETS, slow_except
from measured import cache_allocated_bytes

ALL = archlab.presets()


@pytest.mark.parametrize("name", ALL)
def test_total_params_equal_the_model_built_on_meta(name):
    model = archlab.build(name, device="meta")
    a = archlab.analyze(name)
    assert a.total_params == sum(p.numel() for p in model.parameters())
    # and part by part: each layer's count equals its module's
    for layer, cost in zip(model.layers, a.layers):
        assert cost.params == sum(p.numel() for p in layer.parameters())


@pytest.mark.parametrize("name", ALL)
def test_sizes_agree_with_what_the_authors_published(name):
    pub = published(name)
    assert pub is not None, f"{name}: no published size recorded"
    a = archlab.analyze(name)
    total, tol = pub.total_figure()
    assert abs(a.total_params / total - 1) <= tol, f"{name}: {a.total_params:,} vs published {pub.total} ({pub.source})"
    if pub.active is not None:
        active, tol = pub.active_figure()
        ours = a.active_params_as(pub.active_convention)
        assert abs(ours / active - 1) <= tol, f"{name}: active {ours:,} ({pub.active_convention}) vs published {pub.active}"
    elif archlab.config(name).moe is None:
        assert a.active_params == a.total_params


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("tokens", [1, 7, 64])
def test_cache_bytes_equal_the_allocated_caches(name, tokens):
    cfg = archlab.tiny(name)
    model = archlab.build(cfg)
    a = archlab.analyze(cfg)
    for dtype, label in ((torch.float32, "float32"), (torch.bfloat16, "bfloat16")):
        cache = model.new_cache(3, tokens, dtype=dtype)
        allocated = cache_allocated_bytes(cache)  # torch's count of the storage, not Cache.nbytes
        assert allocated > 0
        assert cache.nbytes == allocated
        assert a.kv_cache_bytes(tokens, batch=3, dtype=label) == allocated


def _counted(fn) -> int:
    # torch counts SDPA only for its GPU kernels; count the CPU one with the same formula
    def sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)

    cpu_sdpa = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: sdpa}
    counter = FlopCounterMode(display=False, custom_mapping=cpu_sdpa)
    with counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("name", slow_except(ALL, QUICK_PRESETS))
def test_flops_per_token_equal_torch_flop_counter(name):
    cfg = archlab.tiny(name)
    model = archlab.build(cfg).eval()
    a = archlab.analyze(cfg)
    context = 40
    ids = torch.randint(0, cfg.vocab_size, (1, context))
    with torch.no_grad():
        if cfg.attention.kind == "mla":
            # our MLA decodes in absorbed form, whose FLOPs differ from the standard form the
            # analysis counts; the standard form is what a single-token forward computes
            assert _counted(lambda: model(ids[:, :1])) == a.flops_per_token(1)
            return
        cache = model.new_cache(1, context)
        model(ids[:, :-1], cache=cache)
        assert _counted(lambda: model(ids[:, -1:], cache=cache)) == a.flops_per_token(context)


def test_known_cache_sizes():
    # Llama 3 8B: 32 layers x 8 kv heads x 128 x (K and V) x 2 bytes = 128 KiB per token
    assert archlab.analyze("llama-3-8b").kv_cache_bytes_per_token() == 131072
    # DeepSeek-V3: 61 layers x (512 latent + 64 rope key) x 2 bytes
    assert archlab.analyze("deepseek-v3").kv_cache_bytes_per_token() == 61 * 576 * 2
    assert archlab.analyze("deepseek-v3").kv_cache_bytes(1000, batch=2, dtype="float32") == 2 * 1000 * 61 * 576 * 4


def _numel(module) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", ALL)
def test_active_params_equal_the_model_less_the_experts_a_token_skips(name):
    """Counted on the model built on meta: every parameter, less (n_experts - top_k) experts'
    share of each MoE layer's routed experts (each expert tensor is stacked on a first axis of
    n_experts), less the embedding tables and the head as each convention says."""
    model = archlab.build(name, device="meta")
    a = archlab.analyze(name)
    total = _numel(model)
    skipped = 0
    for layer in model.layers:
        experts = getattr(layer.ffn, "experts", None)
        if experts is not None:
            E, k = model.config.moe.n_experts, model.config.moe.top_k
            assert all(p.shape[0] == E for p in experts.parameters())
            skipped += _numel(experts) // E * (E - k)
    if model.config.moe is None:
        assert skipped == 0 and a.active_params == a.total_params
    else:
        assert skipped > 0
    embeddings = _numel(model.tok_emb) + _numel(model.pos_emb)
    logits_matrix = (model.head if model.head is not None else model.tok_emb).weight.numel()  # tied or not
    assert a.active_params == a.active_params_as("all") == total - skipped
    assert a.active_params_as("no_embeddings") == total - skipped - embeddings - _numel(model.head)
    assert a.active_params_as("no_embedding") == total - skipped - embeddings - _numel(model.head) + logits_matrix


def test_bad_arguments_are_clear():
    a = archlab.analyze("gpt2")
    with pytest.raises(ValueError, match=r"context: expected a positive integer, got 0"):
        a.flops_per_token(0)
    with pytest.raises(ValueError, match=r"tokens: expected a positive integer, got -5"):
        a.kv_cache_bytes(-5)
    with pytest.raises(ValueError, match=r"dtype: unknown dtype 'float7'"):
        a.kv_cache_bytes(10, dtype="float7")
    with pytest.raises(archlab.ConfigError, match=r"unknown preset 'gpt3'; did you mean"):
        archlab.analyze("gpt3")


def test_conventions_are_documented():
    text = archlab.analyze("gpt2").CONVENTIONS
    for phrase in ("active_params", "embedding", "flops_per_token", "kv_cache_bytes", "Multi-token-prediction"):
        assert phrase in text
