"""The checks every family passes, over every case registered in families.py: archlab.load of a
tiny random HF checkpoint computes HF transformers' logits, parameter count, greedy tokens, and
decodes from its cache what it computes in one pass, holding the bytes the analysis says."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch
from families import CASES, HUB_CONFIGS, Case
from hf_reference import (
    ATOL,
    _ids,
    assert_cache_bytes_equal_analysis,
    assert_cached_decoding_equals_full_forward,
    assert_covers_every_layer_kind,
    assert_greedy_equals_hf,
    hf_param_count,
    max_logit_diff,
    record,
)
from safetensors import safe_open
from tolerance import atol, limit

import archlab
from archlab.io.hf import FAMILIES


# the quick run (-m "not slow") runs the costlier checks on each family's first case only
FIRST_OF_FAMILY = {c.name for c in {c.family: c for c in reversed(CASES.values())}.values()}


def _params(select=lambda c: True, slow=lambda c: c.slow):
    """The registered cases `select` keeps, each marked slow where `slow` says."""
    return [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if slow(c) else []) for c in CASES.values() if select(c)]


def _beyond_first(c: Case) -> bool:
    return c.slow or c.name not in FIRST_OF_FAMILY


def _atol(case: Case, ref, shapes=None) -> float:
    """The case's own limit, or its model type's measured one (tolerance.py), never above the
    former flat 1e-4; with `shapes`, also within 8x HF's own float32 error on those inputs."""
    if case.atol is not None:
        return case.atol
    if shapes is None:
        return min(atol(ref.config.model_type), ATOL)
    from sweep_check import hf_noise

    ids = _ids(ref.config.vocab_size, shapes)
    with torch.no_grad():
        expected = [ref(x).logits for x in ids]
    return min(limit(ref.config.model_type, hf_noise(ref, ids, expected)), ATOL)


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _keys(directory) -> list[str]:
    keys = []
    for path in sorted(directory.glob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            keys += list(f.keys())
    return keys


@pytest.mark.parametrize("case", _params())
def test_reader_makes_the_expected_config(case: Case, hf_pair):
    _, ours = hf_pair(case.name)
    for preset in case.presets:
        assert_covers_every_layer_kind(ours.config, preset)
    if case.expect is not None:
        case.expect(ours)


@pytest.mark.parametrize("case", _params(slow=_beyond_first))
def test_logits_equal_hf(case: Case, hf_pair, parity_report):
    ref, ours = hf_pair(case.name)
    d = max_logit_diff(ref, ours, ours.config.vocab_size, shapes=case.shapes)
    record(case.family, logit_diff=d)
    parity_report(case.family, case.name, d)
    bound = _atol(case, ref, case.shapes)
    assert d < bound, f"{case.name}: max |logit difference| {d:.2e} >= {bound:.2e}"


@pytest.mark.parametrize("case", _params())
def test_param_count_equals_hf(case: Case, hf_pair):
    """Loaded, built on meta from what the reader makes of config.json, and analysed: one count, HF's."""
    ref, ours = hf_pair(case.name)
    want = hf_param_count(ref)
    assert _count(ours) == want
    with warnings.catch_warnings():
        if case.ignore_warnings:
            warnings.filterwarnings("ignore", message=case.ignore_warnings)
        cfg = FAMILIES[ref.config.model_type].read_config(ref.config.to_dict())
    assert _count(archlab.build(cfg, device="meta")) == want
    assert archlab.analyze(cfg).total_params == want


@pytest.mark.parametrize("case", _params(slow=_beyond_first))
def test_cached_decoding_equals_full_forward(case: Case, hf_pair):
    _, ours = hf_pair(case.name)
    assert_cached_decoding_equals_full_forward(ours, ours.config.vocab_size)


# HF's generate takes a second or more a case: one case stays in the quick run (-m "not slow")
@pytest.mark.parametrize("case", _params(lambda c: c.greedy, slow=lambda c: c.slow or c.name != "llama-mqa"))
def test_greedy_equals_hf(case: Case, hf_pair):
    ref, ours = hf_pair(case.name)
    assert_greedy_equals_hf(ref, ours, ours.config.vocab_size, family=case.family)


@pytest.mark.parametrize("case", _params())
def test_cache_bytes_equal_analysis(case: Case, hf_pair):
    """Past every window (40, up to 50 tokens) and short of them (5), float32 and bfloat16; the
    first, for a family's first case, is the summary table's figure."""
    _, ours = hf_pair(case.name)
    for batch, tokens in ((2, 40), (3, min(50, ours.config.max_seq_len)), (1, 5)):
        table = case.family if tokens == 40 and case.name in FIRST_OF_FAMILY else None
        assert_cache_bytes_equal_analysis(table, ours, tokens, batch)


@pytest.mark.parametrize("case", _params(lambda c: c.fused_experts, slow=_beyond_first))
def test_fused_expert_layout_loads(case: Case, hf_pair, tmp_path):
    """HF v5 holds experts fused (gate_up_proj (E, 2F, D), down_proj) and writes them so with
    save_original_format=False: the same model as the per-expert layout save_pretrained writes
    by default, tensor for tensor."""
    ref, ours = hf_pair(case.name)
    ref.save_pretrained(tmp_path, save_original_format=False)
    assert any(k.endswith("gate_up_proj") for k in _keys(tmp_path))
    assert not any(k.endswith("gate_up_proj") for k in _keys(hf_pair.path(case.name)))
    fused = archlab.load(tmp_path).eval()
    assert fused.state_dict().keys() == ours.state_dict().keys()
    for k, v in ours.state_dict().items():
        assert torch.equal(fused.state_dict()[k], v), k
    assert max_logit_diff(ref, fused, ours.config.vocab_size, shapes=((2, 13),)) < _atol(case, ref)


@pytest.mark.parametrize("case", _params(lambda c: c.base_model, slow=_beyond_first))
def test_base_model_checkpoint_loads(case: Case, hf_pair, tmp_path):
    """Hub checkpoints of GPT-2, GPT-1 and BLOOM hold the bare base model's tensors (h.0...,
    wte; no `transformer.` prefix, no head), as HF's base model writes them; the head is the
    tied embedding."""
    ref, _ = hf_pair(case.name)
    ref.base_model.save_pretrained(tmp_path)
    keys = _keys(tmp_path)
    assert not any(k.startswith(ref.base_model_prefix + ".") or k.startswith("lm_head") for k in keys)
    ours = archlab.load(tmp_path).eval()
    assert max_logit_diff(ref, ours, ours.config.vocab_size, shapes=((2, 13),)) < _atol(case, ref)


_BAD_FIELDS = [pytest.param(c, change, match, id=f"{c.name}-{match}")
               for c in CASES.values() for change, match in c.bad_fields]


@pytest.mark.parametrize("case,change,match", _BAD_FIELDS)
def test_bad_config_field_is_named(case: Case, change, match, hf_pair, tmp_path):
    directory = shutil.copytree(hf_pair.path(case.name), tmp_path / "ckpt")
    cfg = json.loads((directory / "config.json").read_text())
    bad = change(cfg) if callable(change) else change
    (directory / "config.json").write_text(json.dumps({**cfg, **bad}))
    with pytest.raises(archlab.CheckpointError, match=match):
        archlab.load(directory)


@pytest.mark.parametrize("hub", [pytest.param(h, id=h.label) for h in HUB_CONFIGS])
def test_preset_reads_like_its_hub_config_json(hub):
    """The preset equals what our reader makes of the published config.json (its fields as published)."""
    blank = {"name": "", "source": "", "family": ""}
    got = FAMILIES[hub.config["model_type"]].read_config(hub.config)
    assert got.resolved().replace(**blank) == archlab.config(hub.preset).resolved().replace(**blank)


@pytest.mark.parametrize("preset", archlab.presets())
def test_tiny_preset_builds_and_counts(preset):
    """Every preset's tiny form: the analysis counts the parameters the build holds, and 70
    tokens (past a DeltaNet chunk of 64) give finite logits of the right shape."""
    cfg = archlab.tiny(preset)
    model = archlab.build(cfg).eval()
    assert archlab.analyze(cfg).total_params == _count(model) == _count(archlab.build(cfg, device="meta"))
    ids = torch.randint(0, cfg.vocab_size, (2, 70), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(ids)
    assert logits.shape == (2, 70, cfg.vocab_size) and torch.isfinite(logits).all()


# the static decode step (what generate(compile=True) compiles), run eagerly: the same greedy
# tokens as the ordinary generate, which test_greedy_equals_hf holds equal to HF's
STATIC_QUICK = {"llama-mqa", "dsv3-qlora-groups-yarn", "qwen3next-variants", "gpt-oss-alpha",
                "gemma3-softcaps-bias-untied", "scout-plan-bias", "bloom-6heads", "mistral-sliding-gqa"}


@pytest.mark.parametrize("case", _params(lambda c: c.greedy, slow=lambda c: c.slow or c.name not in STATIC_QUICK))
def test_static_decode_greedy_equals_generate(case: Case, hf_pair, monkeypatch):
    import archlab.generation as generation

    _, ours = hf_pair(case.name)
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(2, ours.config.vocab_size, (n,), generator=g).tolist() for n in (5, 11, 1)]
    want = archlab.generate(ours, prompts, max_new_tokens=12)
    monkeypatch.setattr(generation, "_decode_fn", lambda model, compile: model.decode_step)
    assert archlab.generate(ours, prompts, max_new_tokens=12, compile="uncompiled") == want
    assert archlab.generate(ours, prompts[1], max_new_tokens=12, compile="uncompiled") == want[1]
