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


def assert_cache_bytes_equal_analysis(family: str | None, model, tokens: int = 40, batch: int = 2,
                                      dtypes=(torch.float32, torch.bfloat16)) -> None:
    """The bytes the caches allocate (torch's count of their storage, measured.py), what
    Cache.nbytes reports and what analyze() says are one number, in every cache dtype; the
    first dtype's figures go to the summary table under `family` (None: not recorded)."""
    import archlab
    from measured import cache_allocated_bytes

    a = archlab.analyze(model.config)
    for i, dtype in enumerate(dtypes):
        cache = model.new_cache(batch, tokens, dtype=dtype)
        measured = cache_allocated_bytes(cache)
        analytic = a.kv_cache_bytes(tokens, batch=batch, dtype=str(dtype).removeprefix("torch."))
        if i == 0 and family is not None:
            record(family, cache_measured=measured, cache_analytic=analytic)
        assert measured > 0
        assert cache.nbytes == measured, f"{dtype}: Cache.nbytes {cache.nbytes} != allocated {measured}"
        assert analytic == measured, f"{dtype}: analysis {analytic} != allocated {measured}"


def record_cache_bytes(family: str, model, tokens: int = 40, batch: int = 2) -> None:
    """Cache bytes the model allocates beside what analyze() says, for the summary table, in the
    model's own dtype."""
    assert_cache_bytes_equal_analysis(family, model, tokens, batch, dtypes=(model.tok_emb.weight.dtype,))


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


def assert_greedy_equals_hf(ref, ours, vocab: int, n_new: int = 12, lengths=(5, 11, 1), family: str | None = None) -> None:
    """archlab.generate == HF's greedy generate, prompt by prompt and as one left-padded batch;
    recorded in the summary table under `family` (default: the loaded config's)."""
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
    record(family or ours.config.family or "?", greedy_equal=got == single == batched)
    assert got == single
    assert got == batched
    assert all(len(row) == n_new for row in got)  # no stop token: every row runs its full length


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
