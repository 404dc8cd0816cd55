"""RoPE scalings whose frequencies follow the sequence length (HF modeling_rope_utils.py's
dynamic_rope_update): dynamic NTK and LongRoPE, on a tiny HF Llama. Logits equal HF's below and
beyond the original length, and cached decoding equals HF's cached decoding step by step across
it (each step's queries and keys rotate with that step's frequencies; cached keys keep theirs)."""

from __future__ import annotations

import pytest
import torch
from hf_reference import ATOL, load_pair, transformers

import archlab
from archlab.io.hf import FAMILIES

ORIGINAL = 16  # max_position_embeddings (dynamic) / original_max_position_embeddings (longrope)
HEAD_DIM = 16
_LLAMA = dict(vocab_size=301, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, bos_token_id=0, eos_token_id=1)


def _longrope():
    g = torch.Generator().manual_seed(0)
    short = (1 + torch.rand(HEAD_DIM // 2, generator=g)).tolist()
    long = (2 + 6 * torch.rand(HEAD_DIM // 2, generator=g)).tolist()
    return {"rope_type": "longrope", "rope_theta": 10000.0, "short_factor": short, "long_factor": long,
            "original_max_position_embeddings": ORIGINAL}


CONFIGS = {
    "dynamic": lambda: transformers.LlamaConfig(**_LLAMA, max_position_embeddings=ORIGINAL, rope_parameters={
        "rope_type": "dynamic", "rope_theta": 10000.0, "factor": 3.0}),
    # factor unset: max_position_embeddings / original, which sets the default attention factor
    "longrope": lambda: transformers.LlamaConfig(**_LLAMA, max_position_embeddings=4 * ORIGINAL, rope_parameters=_longrope()),
}


def _ids(B: int, T: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 301, (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module", params=list(CONFIGS))
def pair(request, tmp_path_factory):
    return request.param, *load_pair(CONFIGS[request.param](), tmp_path_factory.mktemp(request.param), seed=2)


def test_reader_reads_the_scaling(pair):
    kind, _, ours = pair
    s = ours.config.rope.scaling
    assert s.kind == kind and s.original_max_seq_len == ORIGINAL
    if kind == "longrope":
        assert s.factor == 4.0 and s.cos_sin_factor() == pytest.approx((1 + torch.log(torch.tensor(4.0)).item() / torch.log(torch.tensor(16.0)).item()) ** 0.5)


def test_logits_equal_hf_within_and_beyond_the_original_length(pair):
    """In increasing length, so HF's dynamic state (it keeps the longest length seen) is what a
    fresh model's would be."""
    kind, ref, ours = pair
    with torch.no_grad():
        for B, T in ((2, 9), (1, ORIGINAL), (2, 29), (1, 41)):
            ids = _ids(B, T, T)
            d = (ours(ids) - ref(ids).logits).abs().max().item()
            assert d < ATOL, f"{kind}, length {T}: max |logit difference| {d:.2e}"
        # and the scaling acts beyond the original length: without it the logits differ
        plain = archlab.build(ours.config.replace(position={"scaling": None})).eval()
        plain.load_state_dict(ours.state_dict())
        ids = _ids(1, 41, 41)
        assert (plain(ids) - ours(ids)).abs().max().item() > 1e-2


def test_cached_decoding_equals_hf_across_the_original_length(pair):
    """Prefill within the original length, then one token at a time past it, against HF's own
    cached forward (a fresh DynamicCache, prefill resetting HF's dynamic state)."""
    kind, ref, ours = pair
    ids = _ids(2, 27, 5)
    prefill = 10
    with torch.no_grad():
        out = ref(ids[:, :prefill], use_cache=True)
        want, past = [out.logits], out.past_key_values
        for t in range(prefill, ids.shape[1]):
            out = ref(ids[:, t : t + 1], past_key_values=past, use_cache=True)
            want.append(out.logits)
            past = out.past_key_values
        cache = ours.new_cache(2, ids.shape[1])
        got = [ours(ids[:, :prefill], cache=cache)] + [ours(ids[:, t : t + 1], cache=cache) for t in range(prefill, ids.shape[1])]
    d = (torch.cat(got, 1) - torch.cat(want, 1)).abs().max().item()
    assert d < ATOL, f"{kind}: max |logit difference| {d:.2e}"


def test_greedy_generation_equals_hf(pair):
    """Prompts within the original length, generation past it (longrope: up to 23 > 16 tokens;
    archlab.generate stops at max_seq_len, for dynamic NTK the original length itself, so the
    cached test above is the one that crosses it there). The frequencies follow the longest row
    of a batch (HF takes torch.max(position_ids) + 1), so a left-padded batch generates what
    HF's batch does, not what each prompt alone does: each is compared with HF's own."""
    kind, ref, ours = pair
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(2, 301, (n,), generator=g).tolist() for n in (5, 11, 1)]
    n_new = 12 if kind == "longrope" else ORIGINAL - 11 + 1
    kw = dict(max_new_tokens=n_new, do_sample=False, eos_token_id=None, pad_token_id=0)
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.no_grad():
        for p in prompts:
            assert archlab.generate(ours, [p], max_new_tokens=n_new)[0] == ref.generate(torch.tensor([p]), **kw)[0, len(p):].tolist()
        batched = ref.generate(ids, attention_mask=mask, **kw)[:, width:].tolist()
    assert archlab.generate(ours, prompts, max_new_tokens=n_new) == batched


def test_bad_longrope_fields_are_named():
    hf = CONFIGS["longrope"]().to_dict()
    params = hf["rope_parameters"]
    for change, match in (({"short_factor": params["short_factor"][:-1]}, "short_factor|long_factor"),
                          ({"long_factor": None}, "long_factor"), ({"short_factor": [1.0] * 4, "long_factor": [1.0] * 4}, "short_factor")):
        # a count that does not fit the head is found when the config is made (ConfigError; load says CheckpointError)
        with pytest.raises((archlab.CheckpointError, archlab.ConfigError), match=match):
            FAMILIES["llama"].read_config({**hf, "rope_parameters": {**params, **change}})
    hf = CONFIGS["dynamic"]().to_dict()
    with pytest.raises(archlab.CheckpointError, match="factor"):
        FAMILIES["llama"].read_config({**hf, "rope_parameters": {**hf["rope_parameters"], "factor": None}})


def test_saved_checkpoint_loads_in_hf_as_the_same_model(pair, tmp_path):
    kind, _, ours = pair
    archlab.save(ours, tmp_path)
    again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert again.config.rope_parameters["rope_type"] == kind
    ids = _ids(2, 29, 29)
    with torch.no_grad():
        assert (ours(ids) - again(ids).logits).abs().max().item() < ATOL
