"""Which HF model_type archlab.save writes a model as, and what it says when none fits.

A family is chosen when its `problems` name nothing and the config.json it writes reads back
as the model (save.choose_family); HF's from_pretrained on the files is the proof that the
choice was right (tests/test_export.py for every family and preset, here for the parts that
no preset or HF test case has)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

import archlab
from archlab import ConfigError, FFNConfig, MoEConfig, RopeConfig, RopeScaling
from archlab.io.hf import choose_family, read_config, save_hf
from archlab.io.hf.core import SAVE_ORDER
from families import LLAMA4_BASE, LLAMA4_LLAMA3_ROPE, case
from hf_reference import make_hf, transformers
from marks import slow_except
from test_export import ATOL, _comparable, _hf_load, _random_model, _with_router, _worst_diff

# every preset's tiny version and the model_type it is written as
PRESET_MODEL_TYPE = {
    **dict.fromkeys(("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"), "gpt2"),
    "gpt-1": "openai-gpt", "gpt-neox-20b": "gpt_neox", "bloom-176b": "bloom",
    **dict.fromkeys(("llama-2-7b", "llama-3-8b", "llama-3-70b", "llama-3.1-405b"), "llama"),
    "smollm2-135m": "llama",  # SmolLM2 is a Llama
    "mistral-7b": "mistral", "mixtral-8x7b": "mixtral",
    "deepseek-v2": "deepseek_v2", "deepseek-v2-lite": "deepseek_v2", "deepseek-v3": "deepseek_v3",
    "kimi-k2": "deepseek_v3",  # Kimi K2 is DeepSeek-V3's architecture
    "olmo-2-7b": "olmo2", "gemma-3-1b": "gemma3_text", "gemma-3-27b": "gemma3_text",
    "llama-4-scout": "llama4_text", "llama-4-maverick": "llama4_text",
    "qwen3-0.6b": "qwen3", "qwen3-8b": "qwen3", "qwen3-30b-a3b": "qwen3_moe", "qwen3-235b-a22b": "qwen3_moe",
    "smollm3-3b": "smollm3", "glm-4.5": "glm4_moe", "gpt-oss-20b": "gpt_oss", "gpt-oss-120b": "gpt_oss",
    "qwen3-next-80b-a3b": "qwen3_next",
    **dict.fromkeys(("qwen3-1.7b", "qwen3-4b", "qwen3-14b", "qwen3-32b"), "qwen3"),
    "mistral-small-3.1-24b": "llama",  # no sliding window: a Llama
    # q/k/v biases without an o bias: Qwen2's own attention (GLM-4.5's attention_bias, after it, could too)
    "qwen2.5-7b": "qwen2", "qwen2.5-72b": "qwen2",
    # the gated shared expert without QK-norm
    "qwen2-57b-a14b": "qwen2_moe", "qwen1.5-moe-a2.7b": "qwen2_moe",
}
# Grok 2.5: transformers has no Grok model (its numbers come from xai-org's config.json and
# SGLang's grok.py), and no other model_type has MoE with sandwich norms and capped attention
REFUSED_PRESETS = {"grok-2.5": ("mixtral: block='sandwich'", "gemma3_text: norm=", "llama4_text: block='sandwich'"),
                   # from the papers: transformers has no PaLM, nor GPT-3's banded sparse layers
                   "palm-540b": ("llama: block='parallel'",), "gpt-3-175b": ("gpt2: layer_types has 'sliding' layers",)}
# the model type each refused preset's family would be, were it in transformers
_HF_NAME = {"grok-2.5": "grok", "palm-540b": "palm", "gpt-3-175b": "gpt3"}


def test_every_preset_is_written_as_its_model_type_or_refused():
    assert set(PRESET_MODEL_TYPE) | set(REFUSED_PRESETS) == set(archlab.presets())
    got = {p: choose_family(archlab.tiny(p)).model_types[0] for p in PRESET_MODEL_TYPE}
    assert got == PRESET_MODEL_TYPE


@pytest.mark.parametrize("preset", list(REFUSED_PRESETS))
def test_refused_preset_names_what_blocks_each_family(preset, tmp_path):
    # the refusal is true: HF transformers has no model of this family
    assert _HF_NAME[preset] not in transformers.models.auto.configuration_auto.CONFIG_MAPPING_NAMES
    with pytest.raises(ConfigError) as e:
        archlab.save(archlab.build(archlab.tiny(preset)), tmp_path / "m")
    message = str(e.value)
    # every candidate is named, each with a field that blocks it
    for family in SAVE_ORDER:
        if family.mixer == "attention":
            assert re.search(rf"^  {re.escape(family.model_types[0])}: \w+", message, re.M), family.model_types[0]
    for blocker in REFUSED_PRESETS[preset]:
        assert blocker in message
    assert list(tmp_path.iterdir()) == []


def _tiny(preset: str, attention: dict, **fields):
    cfg = archlab.tiny(preset)
    return cfg.replace(attention=replace(cfg.attention, **attention), **fields)


def _half_rope(preset: str):
    cfg = archlab.tiny(preset)
    return cfg.replace(position=replace(cfg.rope, partial=0.5))


# Models no preset or HF case has, each written as a family other than its own, or by a path
# through a writer the presets miss; HF must load each as the same function.
UNCOMMON = {
    # GPT-2 with rotary positions is GPT-NeoX's sequential block over the whole head
    "gpt2-with-rope": (lambda: archlab.tiny("gpt2").replace(position=RopeConfig()), "gpt_neox"),
    # a window in the first layer only: SmolLM3's explicit layer_types (with RoPE in both)
    "sliding-then-global": (lambda: _tiny("llama-3-8b", {"window": 16}, layer_types=("sliding", "global")), "smollm3"),
    # GLM-4.5 without experts: partial RoPE and QK-norm keep it from the Llama and Qwen3 writers
    "glm-without-experts": (lambda: archlab.tiny("glm-4.5").replace(moe=None, ffn_types=None), "glm4_moe"),
    # GLM-4.5's router always has a selection bias: written as zeros
    "glm-router-without-bias": (lambda: _with_router(archlab.tiny("glm-4.5"), score_bias=False), "glm4_moe"),
    # Llama 4's chunked and NoPE layers without experts: moe_layers is empty
    "llama4-without-experts": (lambda: archlab.tiny("llama-4-maverick").replace(moe=None, ffn_types=None), "llama4_text"),
    # Qwen3-Next's DeltaNet layers over dense FFNs: num_experts 0
    "qwen3-next-dense": (lambda: archlab.tiny("qwen3-next-80b-a3b").replace(
        moe=None, ffn_types=None, ffn=FFNConfig(hidden=96)), "qwen3_next"),
    # half of each head rotated: of the Llama-shaped families only GLM-4.5 (and Qwen3-Next)
    # honour partial_rotary_factor, so a Llama with it is a GLM-4.5 without experts
    "llama-half-rope": (lambda: _half_rope("llama-3-8b"), "glm4_moe"),
    # one window in every layer, with experts: Qwen3-MoE slides in all layers or none
    "qwen3-moe-sliding": (lambda: _tiny("qwen3-30b-a3b", {"window": 8}, layer_types=("sliding",) * 2), "qwen3_moe"),
    # a Llama with biases on q, k and v only is a Qwen2 (o_proj has none in Qwen2Attention)
    "llama-qkv-bias": (lambda: _tiny("llama-3-8b", {"qkv_bias": True, "out_bias": False}), "qwen2"),
    # windows where neither class's own rule puts them (qwen2: from max_window_layers on;
    # qwen2_moe: even layers below it): only the written layer_types says so
    "qwen2-sliding-first": (lambda: _tiny("qwen2.5-7b", {"window": 8}, layer_types=("sliding", "global")), "qwen2"),
    "qwen2-moe-sliding-odd": (lambda: _tiny("qwen2-57b-a14b", {"window": 8}, layer_types=("global", "sliding")), "qwen2_moe"),
}


@pytest.mark.parametrize("case", slow_except(list(UNCOMMON), ("sliding-then-global", "glm-router-without-bias",
                                                              "llama-qkv-bias", "qwen2-moe-sliding-odd")))
def test_uncommon_models_export(case, tmp_path):
    make_cfg, model_type = UNCOMMON[case]
    cfg = make_cfg()
    ours = _random_model(cfg)
    out = save_hf(ours, tmp_path)
    assert json.loads((out / "config.json").read_text())["model_type"] == model_type
    back = _hf_load(out)
    assert _worst_diff(ours, lambda ids: back(ids).logits, cfg.vocab_size) < ATOL
    if case != "glm-router-without-bias":  # a zero selection bias reads back as a bias
        assert _comparable(read_config(out)[2]) == _comparable(cfg)


# Refusals, each naming the field: the first two only the read-back check finds (every
# family's `problems` pass, but its config.json would read back as a different model).
READ_BACK_REFUSALS = {
    # no model_type caps attention logits (Gemma 3's HF code ignores attn_logit_softcapping)
    "attention-softcap": (lambda: _tiny("llama-3-8b", {"softcap": 30.0}), r"llama: attention\.softcap=30\.0 would read back as None"),
    # ALiBi without BLOOM's LayerNorm after the embedding
    "alibi-without-embed-norm": (lambda: archlab.tiny("gpt2").replace(position="alibi"),
                                 r"bloom: embed_norm=False would read back as True"),
    # Gemma3TextConfig types query_pre_attn_scalar as int; 0.3 ** -2 = 11.1 cannot be written
    "gemma3-fractional-scalar": (lambda: _tiny("gemma-3-1b", {"scale": 0.3}),
                                 r"gemma3_text: attention\.scale=0\.3 \(Gemma 3 scales by query_pre_attn_scalar \*\* -0\.5, a whole number\)"),
    # HF's Llama 4 L2-normalises after the rotation, undoing YaRN's attention factor
    "llama4-qknorm-yarn": (lambda: archlab.tiny("llama-4-scout").replace(position=RopeConfig(
        theta=500000.0, scaling=RopeScaling("yarn", factor=4.0, original_max_seq_len=32))),
        r"llama4_text: rope\.scaling\.kind='yarn' with attention\.qk_norm"),
    # experts in a model with a window on some layers only
    "moe-with-mixed-windows": (lambda: _tiny("llama-3-8b", {"window": 16},
        layer_types=("sliding", "global"), moe=MoEConfig(n_experts=4, top_k=2, hidden=32), ffn=None),
        r"mixtral: .*layer_types=\['sliding', 'global'\] \(Mixtral slides in every layer or in none\)"),
}


@pytest.mark.parametrize("case", list(READ_BACK_REFUSALS))
def test_refusal_names_the_field(case, tmp_path):
    make_cfg, message = READ_BACK_REFUSALS[case]
    model = archlab.build(make_cfg())
    with pytest.raises(ConfigError, match=r"no HF model_type expresses this config exactly(.|\n)*" + message):
        archlab.save(model, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


# HF's attention in these families rotates the whole head whatever partial_rotary_factor says
# (HF ignores the field with rope_type default and fails with the others; the reader follows:
# tests/test_partial_rope_hf.py), so the field blocks each.
HALF_ROPE_REFUSED = {"mistral-7b": "mistral: rope.partial=0.5 (Mistral rotates the whole head)",
                     "gemma-3-1b": "gemma3_text: rope.partial=0.5 (Gemma 3 rotates the whole head)",
                     "gpt-oss-20b": "gpt_oss: rope.partial=0.5 (GPT-OSS rotates the whole head)",
                     "llama-4-maverick": "llama4_text: rope.partial=0.5 (Llama 4 rotates the whole head)"}


@pytest.mark.parametrize("preset", list(HALF_ROPE_REFUSED))
def test_partial_rope_blocks_families_that_rotate_whole_heads(preset, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(HALF_ROPE_REFUSED[preset])):
        archlab.save(archlab.build(_half_rope(preset)), tmp_path / "m")


def _gemma3_multimodal():
    text = case("gemma3-1b-like").hf_config()
    vision = transformers.SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, image_size=28, patch_size=14)
    return transformers.Gemma3Config(text_config=text.to_dict(), vision_config=vision.to_dict(), mm_tokens_per_image=4)


def _llama4_multimodal():
    return transformers.Llama4Config(
        text_config={**LLAMA4_BASE, "num_hidden_layers": 2, "no_rope_layer_interval": 2, "rope_parameters": LLAMA4_LLAMA3_ROPE},
        vision_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
                       "image_size": 28, "patch_size": 14, "vision_output_dim": 32, "projector_input_dim": 32,
                       "projector_output_dim": 32},
    )


@pytest.mark.slow
@pytest.mark.parametrize("make,model_type", [(_gemma3_multimodal, "gemma3_text"), (_llama4_multimodal, "llama4_text")],
                         ids=["gemma3", "llama4"])
def test_multimodal_checkpoint_saves_its_text_model(make, model_type, tmp_path):
    """archlab loads the text decoder of a multimodal checkpoint; it saves as the text-only
    model_type, which computes the multimodal model's logits on text."""
    ref = make_hf(make(), seed=5)
    ref.save_pretrained(tmp_path / "hf")
    out = archlab.save(archlab.load(tmp_path / "hf"), tmp_path / "ours")
    assert json.loads((out / "config.json").read_text())["model_type"] == model_type
    back = _hf_load(out)
    vocab = back.config.vocab_size
    assert _worst_diff(lambda ids: ref(input_ids=ids).logits, lambda ids: back(ids).logits, vocab) < ATOL
