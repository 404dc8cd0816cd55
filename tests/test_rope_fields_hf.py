"""Which of config.json's RoPE fields win where several say something, as HF transformers' config
classes settle them (convert_rope_params_to_dict in modeling_rope_utils.py and its overrides):
rope_scaling, when given, replaces rope_parameters whole; rope_theta and partial_rotary_factor
at the top only fill what the chosen dict lacks, while a top-level original_max_position_embeddings
overrides the dict's (standardize_rope_params); GPT-NeoX fills them from rotary_emb_base and
rotary_pct instead; GLM-4.5 and Qwen3-Next default partial_rotary_factor at the top. Each case
is a tiny checkpoint of tests/families.py with its config.json edited, loaded by HF and by
archlab: the logits must agree."""

from __future__ import annotations

import json

import pytest
from families import case
from hf_reference import ATOL, make_hf, max_logit_diff, transformers

import archlab


def _edit(hf: dict, drop=(), **fields) -> dict:
    return {**{k: v for k, v in hf.items() if k not in drop}, **fields}


EDITS = {
    # rope_scaling wins whole: linear x2 at the class's default theta (10000), not rope_parameters' 5000
    "llama-scaling-replaces-parameters": ("llama-mqa", lambda hf: _edit(
        hf, drop=("rope_theta",), rope_parameters={"rope_type": "default", "rope_theta": 5000.0},
        rope_scaling={"rope_type": "linear", "factor": 2.0})),
    # the top-level rope_theta fills rope_scaling's missing theta
    "qwen3-top-theta-fills-scaling": ("qwen3-headdim-tied", lambda hf: _edit(
        hf, rope_theta=500.0, rope_parameters={"rope_type": "default", "rope_theta": 5000.0},
        rope_scaling={"rope_type": "linear", "factor": 2.0})),
    # GLM-4.5: the chosen rope_scaling has no partial_rotary_factor; the class's top-level default 0.5 fills it
    "glm-scaling-takes-default-partial": ("glm45-shape", lambda hf: _edit(
        hf, drop=("partial_rotary_factor",), rope_parameters={"rope_type": "default", "rope_theta": 1000.0,
                                                              "partial_rotary_factor": 0.25},
        rope_scaling={"rope_type": "linear", "factor": 2.0, "rope_theta": 1000.0})),
    # Qwen3-Next: the same with its default 0.25
    "qwen3next-scaling-takes-default-partial": ("qwen3next-published", lambda hf: _edit(
        hf, drop=("partial_rotary_factor",), rope_parameters={"rope_type": "default", "rope_theta": 1000.0,
                                                              "partial_rotary_factor": 0.5},
        rope_scaling={"rope_type": "linear", "factor": 2.0, "rope_theta": 1000.0})),
    # YaRN's original length at the top of config.json, beside the dict's own / without one
    "yarn-top-original-beside-dict": ("llama-mqa", lambda hf: _edit(
        hf, original_max_position_embeddings=64, rope_parameters={
            "rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 16})),
    "yarn-top-original-alone": ("llama-mqa", lambda hf: _edit(
        hf, original_max_position_embeddings=16, rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0})),
    # GPT-NeoX: rotary_pct and rotary_emb_base fill the RoPE dict; top-level partial_rotary_factor /
    # rope_theta are not read
    "neox-rotary-pct-over-top-level": ("parallel-20b", lambda hf: _edit(
        hf, rope_parameters={"rope_type": "default"}, rotary_pct=0.5, rotary_emb_base=300.0,
        partial_rotary_factor=0.25, rope_theta=7000.0)),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_rope_fields_settle_as_hf_settles_them(name, tmp_path):
    base, edit = EDITS[name]
    ref = make_hf(case(base).hf_config(), seed=6)
    ref.save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    ref = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    ours = archlab.load(tmp_path).eval()
    d = max_logit_diff(ref, ours, ref.config.vocab_size)
    assert d < ATOL, f"{name}: max |logit difference| {d:.2e} (HF's rope_parameters {ref.config.rope_parameters}, ours {ours.config.rope})"
