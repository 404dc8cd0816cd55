"""Llama 4 (HF `llama4_text`, and the text part of `llama4`): complex-pair RoPE permuted at
load, chunked RoPE layers and global NoPE layers with temperature tuning, L2 QK-norm in RoPE
layers only, top-1 sigmoid MoE weighting the expert's input plus a shared expert, dense and
MoE layers interleaved, against HF transformers."""

from __future__ import annotations

import json

import pytest
import torch
from hf_reference import (
    assert_behaves_like_hf,
    ATOL,
    assert_covers_every_layer_kind,
    load_pair,
    make_hf,
    max_logit_diff,
    randomize,
    record,
    save_hf,
    transformers,
)

import archlab
from archlab.io.hf import FAMILIES

FAMILY = "llama4"

# floor_scale 4: the NoPE layers' temperature 1 + attn_scale * log1p(floor((p + 1) / 4)) changes
# every 4 tokens, so it acts well within the test sequences; chunks of 8 < 37 tokens
_BASE = {"vocab_size": 301, "hidden_size": 64, "intermediate_size": 48, "intermediate_size_mlp": 96, "num_attention_heads": 4,
             "num_key_value_heads": 2, "head_dim": 16, "num_local_experts": 4, "attention_chunk_size": 8, "floor_scale": 4,
             "attn_scale": 0.5, "max_position_embeddings": 256, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}
_LLAMA3 = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
           "high_freq_factor": 4.0, "original_max_position_embeddings": 16}


def llama4_text_config(**kw):
    return transformers.Llama4TextConfig(**{**_BASE, **kw})


CASES = {
    # Maverick's plan: MoE every 2nd layer (1, 3), NoPE every 4th (3), no QK-norm, no RoPE scaling
    "maverick-plan": llama4_text_config(num_hidden_layers=4, interleave_moe_layer_step=2, use_qk_norm=False),
    # Scout's: MoE everywhere, L2 QK-norm in the RoPE layers, llama3 scaling; NoPE every 2nd layer
    # so 2 layers hold both kinds; attention biases (permuted with their rows)
    "scout-plan-bias": llama4_text_config(num_hidden_layers=2, no_rope_layer_interval=2, use_qk_norm=True,
                                          attention_bias=True, rope_parameters=_LLAMA3),
}
PRESET_OF = {"maverick-plan": "llama-4-maverick", "scout-plan-bias": "llama-4-scout"}


@pytest.fixture(scope="module", params=list(CASES))
def pair(request, tmp_path_factory):
    return request.param, load_pair(CASES[request.param], tmp_path_factory.mktemp("llama4"))


def test_logits_equal_hf(pair):
    name, (ref, ours) = pair
    c = ours.config
    assert c.attention.chunk == 8 and c.attention.temperature.floor_scale == 4
    assert c.moe.router.weights_on == "input" and c.moe.top_k == 1
    assert_covers_every_layer_kind(c, PRESET_OF[name])
    d = max_logit_diff(ref, ours, c.vocab_size)
    record(FAMILY, logit_diff=d)
    assert d < ATOL


def test_param_count_cache_and_generation(pair):
    _, (ref, ours) = pair
    assert_behaves_like_hf(FAMILY, ref, ours)


def test_left_padding_leaves_the_nope_temperature_alone(pair):
    """Our NoPE-layer temperature counts positions from each row's first real token, so a
    left-padded row computes what HF computes for the same prompt unpadded. (HF's own padded
    rows differ: Llama4TextAttention counts from the cache length, padding included, so its
    logits move by ~0.1 here; greedy tokens above still agree.)"""
    _, (ref, ours) = pair
    prompt, pad = torch.randint(2, 301, (1, 13)), 6
    ids = torch.cat((torch.zeros(1, pad, dtype=torch.long), prompt), dim=1)
    with torch.no_grad():
        got = ours(ids, cache=ours.new_cache(1, ids.shape[1], pad=torch.tensor([pad])))[:, pad:]
        torch.testing.assert_close(got, ref(prompt).logits, atol=ATOL, rtol=0)


def test_multimodal_checkpoint_loads_its_text_model(tmp_path):
    """A `llama4` config.json nests the text model's as text_config; its weights sit under
    language_model.*, beside the vision encoder's, which are not part of it."""
    cfg = transformers.Llama4Config(
        text_config={**_BASE, "num_hidden_layers": 2, "no_rope_layer_interval": 2, "rope_parameters": _LLAMA3},
        vision_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
                           "image_size": 28, "patch_size": 14, "vision_output_dim": 32, "projector_input_dim": 32,
                           "projector_output_dim": 32},
    )
    ref = transformers.Llama4ForConditionalGeneration(cfg)
    randomize(ref)
    ref.eval().save_pretrained(tmp_path)
    ours = archlab.load(tmp_path).eval()
    assert ours.config.rope_layers == (True, False)
    text_params = sum(p.numel() for n, p in ref.named_parameters() if not n.startswith(("vision_model", "multi_modal")))
    assert sum(p.numel() for p in ours.parameters()) == text_params
    ids = torch.randint(0, 301, (2, 21))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), ref(input_ids=ids).logits, atol=ATOL, rtol=0)


def _text_config(n_experts: int, step: int, qk_norm: bool, max_pos: int, rope_scaling) -> dict:
    # the text_config of meta-llama/Llama-4-{Scout-17B-16E,Maverick-17B-128E}'s config.json
    n = 48
    return {
        "attention_bias": False, "attention_chunk_size": 8192, "attention_dropout": 0.0, "attn_scale": 0.1,
        "attn_temperature_tuning": 4, "bos_token_id": 200000, "eos_token_id": [200001, 200007, 200008],
        "floor_scale": 8192, "for_llm_compressor": False, "head_dim": 128, "hidden_act": "silu", "hidden_size": 5120,
        "initializer_range": 0.02, "interleave_moe_layer_step": step, "intermediate_size": 8192,
        "intermediate_size_mlp": 16384, "max_position_embeddings": max_pos, "model_type": "llama4_text",
        "moe_layers": list(range(step - 1, n, step)), "no_rope_layers": [int((i + 1) % 4 != 0) for i in range(n)],
        "num_attention_heads": 40, "num_experts_per_tok": 1, "num_hidden_layers": n, "num_key_value_heads": 8,
        "num_local_experts": n_experts, "output_router_logits": False, "pad_token_id": 200018, "rms_norm_eps": 1e-05,
        "rope_scaling": rope_scaling, "rope_theta": 500000.0, "router_aux_loss_coef": 0.001,
        "router_jitter_noise": 0.0, "torch_dtype": "bfloat16", "use_cache": True, "use_qk_norm": qk_norm,
        "vocab_size": 202048,
    }


_SCOUT_ROPE = {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8192,
               "rope_type": "llama3"}


@pytest.mark.parametrize("preset,text", [
    ("llama-4-scout", _text_config(16, 1, True, 262144, _SCOUT_ROPE)),
    ("llama-4-maverick", _text_config(128, 2, False, 1048576, None)),
])
def test_presets_read_like_the_hub_config_json(preset, text):
    hf = {"architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4", "text_config": text,
          "tie_word_embeddings": False, "vision_config": {"hidden_size": 1408}}
    blank = {"name": "", "source": "", "family": ""}
    want = archlab.config(preset).resolved().replace(**blank)
    assert FAMILIES["llama4"].read_config(hf).resolved().replace(**blank) == want
    # the text-only form of the same config (Llama4ForCausalLM), with HF's derivable lists left out
    # (no_rope_layers as some of Meta's configs say it: empty)
    derived = {**{k: v for k, v in text.items() if k != "moe_layers"}, "no_rope_layers": []}
    assert FAMILIES["llama4_text"].read_config(derived).resolved().replace(**blank) == want


@pytest.mark.parametrize("preset", ["llama-4-scout", "llama-4-maverick"])
def test_tiny_preset_builds_and_counts(preset):
    cfg = archlab.tiny(preset)
    assert any(s.kind == "chunked" for s in cfg.layers) and any(s.rope is None for s in cfg.layers)
    model = archlab.build(cfg)
    assert archlab.analyze(cfg).total_params == sum(p.numel() for p in archlab.build(cfg, device="meta").parameters())
    with torch.no_grad():
        assert model(torch.randint(0, cfg.vocab_size, (2, 9))).shape == (2, 9, cfg.vocab_size)


def test_bad_config_fields_name_the_field(tmp_path):
    save_hf(make_hf(CASES["scout-plan-bias"]), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    for bad, field in (({"attention_chunk_size": None}, "attention_chunk_size"),
                       ({"layer_types": ["chunked_attention", "sliding_attention"]}, "layer_types"),
                       ({"no_rope_layers": [1, 2]}, "no_rope_layers"),
                       ({"moe_layers": [0, 5]}, "moe_layers"),
                       ({"attn_temperature_tuning": "on"}, "attn_temperature_tuning"),
                       ({"floor_scale": 0}, "floor_scale"),
                       ({"num_experts_per_tok": 5}, "num_experts_per_tok"),
                       ({"use_qk_norm": None}, "use_qk_norm")):
        (tmp_path / "config.json").write_text(json.dumps({**cfg, **bad}))
        with pytest.raises(archlab.CheckpointError, match=field):
            archlab.load(tmp_path)
    multimodal = {"model_type": "llama4", "text_config": None}
    (tmp_path / "config.json").write_text(json.dumps(multimodal))
    with pytest.raises(archlab.CheckpointError, match="text_config"):
        archlab.load(tmp_path)
