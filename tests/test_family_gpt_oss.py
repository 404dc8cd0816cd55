"""GPT-OSS (HF `gpt_oss`): attention sinks, alternating sliding / full layers, q/k/v/o biases,
a biased router, clamped-SwiGLU experts with biases stored interleaved, YaRN without
truncation, against HF transformers."""

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
    record,
    save_hf,
    transformers,
)
from safetensors.torch import load_file, save_file

import archlab
from archlab.io.hf import FAMILIES

FAMILY = "gpt_oss"
PRESETS = ("gpt-oss-20b", "gpt-oss-120b")


def gpt_oss_config(**kw):
    # gpt-oss-20b's shape in small: GQA with 16-dim heads, a 6-token window (shorter than the
    # 37-token test sequence), 5 experts top-2, HF's default RoPE (YaRN x32 of 4096, truncate=false)
    base = {"vocab_size": 301, "hidden_size": 64, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
                "num_key_value_heads": 2, "head_dim": 16, "num_local_experts": 5, "num_experts_per_tok": 2, "sliding_window": 6,
                "bos_token_id": 0, "eos_token_id": 1}
    return transformers.GptOssConfig(**{**base, **kw})


CASES = {
    "20b-shape": gpt_oss_config(),
    # layer_types that break HF's even/odd default, no attention biases, tied embeddings, and a
    # swiglu_limit small enough that random activations reach the clamp from both sides
    "layer-types-nobias-clamped": gpt_oss_config(
        num_hidden_layers=3, layer_types=["full_attention", "sliding_attention", "sliding_attention"],
        attention_bias=False, tie_word_embeddings=True, swiglu_limit=0.3, num_local_experts=4, num_experts_per_tok=3),
}


@pytest.fixture(scope="module", params=list(CASES))
def pair(request, tmp_path_factory):
    return request.param, load_pair(CASES[request.param], tmp_path_factory.mktemp("gpt_oss"))


def test_logits_equal_hf(pair):
    _name, (ref, ours) = pair
    a = ours.config.attention
    assert a.sinks and a.window == 6 and ours.config.rope.scaling.kind == "yarn" and not ours.config.rope.scaling.truncate
    for preset in PRESETS:
        assert_covers_every_layer_kind(ours.config, preset)
    d = max_logit_diff(ref, ours, ours.config.vocab_size)
    record(FAMILY, logit_diff=d)
    assert d < ATOL


def test_param_count_cache_and_generation(pair):
    _, (ref, ours) = pair
    assert_behaves_like_hf(FAMILY, ref, ours)


def test_experts_split_from_interleaved_gate_up(pair):
    """Expert e's gate is column 2j of HF's gate_up_proj[e], its up column 2j + 1."""
    _, (ref, ours) = pair
    hf = ref.model.layers[0].mlp.experts
    ex = ours.layers[0].ffn.experts
    torch.testing.assert_close(ex.gate.data, hf.gate_up_proj.data[..., 0::2].transpose(1, 2), rtol=0, atol=0)
    torch.testing.assert_close(ex.up_bias.data, hf.gate_up_proj_bias.data[:, 1::2], rtol=0, atol=0)
    torch.testing.assert_close(ex.down.data, hf.down_proj.data.transpose(1, 2), rtol=0, atol=0)


# openai/gpt-oss-{20b,120b} config.json on the hub, less its quantization_config (the bf16
# checkpoint save_pretrained writes after dequantizing the MXFP4 experts)
def _hub_config(n_layers: int, n_experts: int) -> dict:
    return {
        "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "attention_bias": True,
        "attention_dropout": 0.0, "eos_token_id": 200002, "experts_per_token": 4, "head_dim": 64, "hidden_act": "silu",
        "hidden_size": 2880, "initial_context_length": 4096, "initializer_range": 0.02, "intermediate_size": 2880,
        "layer_types": ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n_layers)],
        "max_position_embeddings": 131072, "num_attention_heads": 64, "num_experts_per_tok": 4,
        "num_hidden_layers": n_layers, "num_key_value_heads": 8, "num_local_experts": n_experts,
        "output_router_logits": False, "pad_token_id": 199999, "rms_norm_eps": 1e-05,
        "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0, "original_max_position_embeddings": 4096,
                         "rope_type": "yarn", "truncate": False},
        "rope_theta": 150000, "router_aux_loss_coef": 0.9, "sliding_window": 128, "swiglu_limit": 7.0,
        "tie_word_embeddings": False, "use_cache": True, "vocab_size": 201088,
    }


@pytest.mark.parametrize("preset,n_layers,n_experts", [("gpt-oss-20b", 24, 32), ("gpt-oss-120b", 36, 128)])
def test_presets_read_like_the_hub_config_json(preset, n_layers, n_experts):
    got = FAMILIES["gpt_oss"].read_config(_hub_config(n_layers, n_experts))
    blank = {"name": "", "source": "", "family": ""}
    assert got.resolved().replace(**blank) == archlab.config(preset).resolved().replace(**blank)


def test_mxfp4_checkpoint_is_refused_clearly(tmp_path):
    hf = {**_hub_config(24, 32), "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": []}}
    with pytest.raises(archlab.CheckpointError, match="quantization_config.*MXFP4.*_blocks"):
        FAMILIES["gpt_oss"].read_config(hf)
    # the hub's tensor layout, even where config.json does not say so: each expert matrix as
    # uint8 blocks of 32 packed 4-bit values and one uint8 exponent per block
    save_hf(make_hf(gpt_oss_config()), tmp_path)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    for k in [k for k in tensors if k.endswith(("gate_up_proj", "down_proj"))]:
        E, rows, cols = tensors.pop(k).transpose(1, 2).shape  # the hub stores (E, out, in)
        tensors[k + "_blocks"] = torch.zeros(E, rows, cols // 32, 16, dtype=torch.uint8)
        tensors[k + "_scales"] = torch.zeros(E, rows, cols // 32, dtype=torch.uint8)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(archlab.CheckpointError, match="MXFP4.*_blocks"):
        archlab.load(tmp_path)


@pytest.mark.parametrize("preset", PRESETS)
def test_tiny_preset_builds_and_counts(preset):
    cfg = archlab.tiny(preset)
    assert cfg.attention.sinks and cfg.moe.swiglu_limit == 7.0
    model = archlab.build(cfg)
    assert archlab.analyze(cfg).total_params == sum(p.numel() for p in archlab.build(cfg, device="meta").parameters())
    with torch.no_grad():
        assert model(torch.randint(0, cfg.vocab_size, (2, 9))).shape == (2, 9, cfg.vocab_size)


def test_bad_config_fields_name_the_field(tmp_path):
    save_hf(make_hf(gpt_oss_config()), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    for bad, field in (({"swiglu_alpha": 1.0}, "swiglu_alpha"),
                       ({"swiglu_limit": -1}, "swiglu_limit"),
                       ({"sliding_window": None}, "sliding_window"),
                       ({"layer_types": ["sliding_attention", "chunked_attention"]}, "layer_types"),
                       ({"layer_types": ["sliding_attention"]}, "layer_types"),
                       ({"num_experts_per_tok": 9}, "num_experts_per_tok"),
                       ({"attention_bias": "yes"}, "attention_bias")):
        (tmp_path / "config.json").write_text(json.dumps({**cfg, **bad}))
        with pytest.raises(archlab.CheckpointError, match=field):
            archlab.load(tmp_path)
