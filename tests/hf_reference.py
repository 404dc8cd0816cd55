"""Tiny random HF transformers models for parity tests: every weight random, saved to disk
with save_pretrained, so archlab loads exactly what HF's own writer produced."""

from __future__ import annotations

from pathlib import Path

import torch

transformers = __import__("pytest").importorskip("transformers")


def randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.1) -> None:
    """Every floating tensor random: weights, biases, norm weights, buffers such as
    DeepSeek-V3's score-correction bias. Norm weights stay near 1 so activations stay O(1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            noise = torch.randn(t.shape, generator=g, dtype=torch.float32) * std
            if "norm" in name or name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                noise = noise + 1.0
            t.copy_(noise.to(t.dtype))


def make_hf(config, seed: int = 0):
    """An HF causal LM for `config`, all weights random, eager attention, eval mode."""
    config._attn_implementation = "eager"
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    randomize(model, seed)
    return model.eval()


def save_hf(model, directory: Path, **kwargs) -> Path:
    model.save_pretrained(directory, **kwargs)
    return directory


def hf_param_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- one small config per family, every optional part switched on somewhere ---------------

def gpt2_configs() -> dict:
    C = transformers.GPT2Config
    return {
        "gpt2": C(vocab_size=301, n_positions=64, n_embd=48, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0),
        "gpt2-ninner-gelu": C(vocab_size=263, n_positions=48, n_embd=32, n_layer=3, n_head=2, n_inner=80,
                              activation_function="gelu", bos_token_id=0, eos_token_id=0),
    }


def llama_configs() -> dict:
    C = transformers.LlamaConfig
    base = dict(vocab_size=301, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                max_position_embeddings=128, bos_token_id=0, eos_token_id=1)
    return {
        # GQA with 1 < n_kv_heads < n_heads and Llama 3.1's frequency scaling
        "llama-gqa-llama3rope": C(**base, num_attention_heads=8, num_key_value_heads=2, rope_parameters={
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 32}),
        "llama-mqa": C(**base, num_attention_heads=4, num_key_value_heads=1),
        "llama-mha-bias-tied": C(**{**base, "num_hidden_layers": 3}, num_attention_heads=4, num_key_value_heads=4,
                                 attention_bias=True, mlp_bias=True, tie_word_embeddings=True),
        # head_dim not equal to hidden_size / n_heads, as Gemma and Qwen3 do
        "llama-headdim-linear": C(**base, num_attention_heads=4, num_key_value_heads=2, head_dim=24,
                                  rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}),
    }


def _deepseek_base(**kw) -> dict:
    base = dict(vocab_size=301, hidden_size=64, intermediate_size=96, moe_intermediate_size=24,
                num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4, kv_lora_rank=32, qk_nope_head_dim=16,
                qk_rope_head_dim=8, v_head_dim=12, first_k_dense_replace=1, max_position_embeddings=256,
                bos_token_id=0, eos_token_id=1)
    base.update(kw)
    return base


_YARN = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 64,
         "beta_fast": 32.0, "beta_slow": 1.0}


def deepseek_v2_configs() -> dict:
    C = transformers.DeepseekV2Config
    return {
        # DeepSeek-V2 shape: compressed query, group-limited routing, 2 shared experts, YaRN with mscale
        "dsv2-qlora-groups-yarn": C(**_deepseek_base(
            q_lora_rank=48, n_routed_experts=8, num_experts_per_tok=3, n_group=4, topk_group=2,
            topk_method="group_limited_greedy", n_shared_experts=2, routed_scaling_factor=1.5,
            rope_parameters={**_YARN, "mscale": 0.707, "mscale_all_dim": 0.707})),
        # DeepSeek-V2-Lite shape: uncompressed query, greedy routing
        "dsv2-lite-greedy": C(**_deepseek_base(
            q_lora_rank=None, n_routed_experts=6, num_experts_per_tok=2, topk_method="greedy",
            n_shared_experts=1, routed_scaling_factor=1.0)),
    }


def deepseek_v3_configs() -> dict:
    C = transformers.DeepseekV3Config
    return {
        # DeepSeek-V3 shape: sigmoid routing, score-correction bias, groups by top-2 sum, YaRN
        "dsv3-qlora-groups-yarn": C(**_deepseek_base(
            q_lora_rank=48, n_routed_experts=8, num_experts_per_tok=3, n_group=4, topk_group=2,
            n_shared_experts=1, routed_scaling_factor=2.5, norm_topk_prob=True,
            rope_parameters={**_YARN, "mscale": 1.0, "mscale_all_dim": 1.0})),
        "dsv3-noqlora-nonorm": C(**_deepseek_base(
            q_lora_rank=None, n_routed_experts=6, num_experts_per_tok=2, n_group=1, topk_group=1,
            n_shared_experts=2, routed_scaling_factor=1.0, norm_topk_prob=False)),
        # rope_interleave=false: the checkpoint already uses rotate-half layout
        "dsv3-rope-halves": C(**_deepseek_base(
            q_lora_rank=40, n_routed_experts=8, num_experts_per_tok=2, n_group=2, topk_group=1,
            n_shared_experts=1, rope_interleave=False)),
    }


FAMILY_CONFIGS = {
    "gpt2": gpt2_configs,
    "llama": llama_configs,
    "deepseek_v2": deepseek_v2_configs,
    "deepseek_v3": deepseek_v3_configs,
}


def all_configs() -> list[tuple[str, str, object]]:
    return [(fam, name, cfg) for fam, fn in FAMILY_CONFIGS.items() for name, cfg in fn().items()]


# ---- the checks every family's parity test runs ---------------------------------------------------

ATOL = 1e-4  # float32

# family -> what its tests measured; printed at the end of the run (conftest.py)
FAMILY_TABLE: dict[str, dict] = {}


def record(family: str, **measured) -> None:
    """Keep the worst parity difference and the other measurements of a family for the summary."""
    row = FAMILY_TABLE.setdefault(family, {})
    for k, v in measured.items():
        if k == "logit_diff":
            row[k] = max(row.get(k, 0.0), v)
        elif k == "greedy_equal":
            row[k] = row.get(k, True) and v
        else:
            row[k] = v


def record_cache_bytes(family: str, model, tokens: int = 40, batch: int = 2) -> None:
    """Cache bytes the model allocates beside what analyze() says, for the summary table."""
    import archlab

    measured = model.new_cache(batch, tokens).nbytes
    analytic = archlab.analyze(model.config).kv_cache_bytes(tokens, batch=batch, dtype=str(model.tok_emb.weight.dtype))
    record(family, cache_measured=measured, cache_analytic=analytic)
    assert measured == analytic


def load_pair(hf_config, directory: Path, seed: int = 0):
    """(HF reference, archlab model) with the same random weights, archlab's read from disk."""
    import archlab

    ref = make_hf(hf_config, seed=seed)
    save_hf(ref, directory)
    return ref, archlab.load(directory).eval()


def _ids(vocab: int, shapes, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, shape, generator=g) for shape in shapes]


def max_logit_diff(ref, ours, vocab: int, shapes=((1, 1), (2, 9), (3, 37))) -> float:
    """Largest |logit difference| over random batches; the logits must be far from trivial."""
    worst = 0.0
    with torch.no_grad():
        for ids in _ids(vocab, shapes):
            expected = ref(ids).logits
            got = ours(ids)
            assert got.shape == expected.shape
            assert expected.std() > 0.1, "reference logits are nearly constant: the comparison would prove little"
            worst = max(worst, (got - expected).abs().max().item())
    return worst


def assert_same_param_count(ref, ours) -> None:
    assert sum(p.numel() for p in ours.parameters()) == hf_param_count(ref)


def assert_cached_decoding_equals_full_forward(ours, vocab: int, length: int = 23, prefill: int = 7) -> None:
    """Prefill, then one token at a time, then a chunk: the logits of one full forward."""
    ids = _ids(vocab, [(2, length)], seed=5)[0]
    with torch.no_grad():
        full = ours(ids)
        cache = ours.new_cache(2, length)
        parts = [ours(ids[:, :prefill], cache=cache)]
        parts += [ours(ids[:, t : t + 1], cache=cache) for t in range(prefill, length - 5)]
        parts.append(ours(ids[:, length - 5 :], cache=cache))
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=ATOL, rtol=0)


def assert_greedy_equals_hf(ref, ours, vocab: int, n_new: int = 12, lengths=(5, 11, 1)) -> None:
    """archlab.generate == HF's greedy generate, prompt by prompt and as one left-padded batch."""
    import archlab

    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(2, vocab, (n,), generator=g).tolist() for n in lengths]
    got = archlab.generate(ours, prompts, max_new_tokens=n_new)
    kw = dict(max_new_tokens=n_new, do_sample=False, eos_token_id=None, pad_token_id=0)
    with torch.no_grad():
        single = [ref.generate(torch.tensor([p]), **kw)[0, len(p):].tolist() for p in prompts]
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.no_grad():
        batched = ref.generate(ids, attention_mask=mask, **kw)[:, width:].tolist()
    record(ours.config.family or "?", greedy_equal=got == single == batched)
    assert got == single
    assert got == batched


def assert_covers_every_layer_kind(cfg, preset: str) -> None:
    """The tiny test model holds every kind of layer the published model has (mixer kind,
    FFN kind, RoPE or NoPE): no layer kind may be left out of a parity test."""
    import archlab

    big = archlab.config(preset)
    kinds = lambda c: {(s.kind, s.ffn, s.rope is not None) for s in c.layers}  # noqa: E731
    missing = kinds(big) - kinds(cfg)
    assert not missing, f"the test config lacks {preset}'s layer kinds {sorted(missing)}"
    a = cfg.attention
    for k in ("window", "chunk"):
        if getattr(a, k, None):
            assert getattr(a, k) < 37, f"attention.{k}={getattr(a, k)} is not shorter than the test sequence"
    if cfg.moe is not None:
        assert cfg.moe.n_experts > cfg.moe.top_k


def assert_behaves_like_hf(family: str, ref, ours) -> None:
    """After logit parity: same parameter count, cached decoding equal to the full forward,
    greedy generation equal to HF's, cache bytes equal to the analysis."""
    assert_same_param_count(ref, ours)
    assert_cached_decoding_equals_full_forward(ours, ours.config.vocab_size)
    assert_greedy_equals_hf(ref, ours, ours.config.vocab_size)
    record_cache_bytes(family, ours)
