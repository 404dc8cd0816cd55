"""Hostile or mistaken values in config.json (issue 12): each is refused with a CheckpointError
naming config.json, the field, the value and what was expected (io/hf/values.py), never a raw
exception from inside a reader and never a silent difference."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archlab
from archlab.io.hf.core import read_config
from archlab.model_config import ConfigError, ModelConfig

transformers = pytest.importorskip("transformers")

_SMALL = dict(vocab_size=101, hidden_size=32, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
              num_key_value_heads=2, max_position_embeddings=128)
_BASE = {
    "llama": lambda: transformers.LlamaConfig(**_SMALL),
    "gpt2": lambda: transformers.GPT2Config(vocab_size=101, n_embd=32, n_layer=1, n_head=2, n_positions=128),
    "deepseek_v3": lambda: transformers.DeepseekV3Config(
        **_SMALL, q_lora_rank=None, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8,
        moe_intermediate_size=16, first_k_dense_replace=0, n_shared_experts=1, n_routed_experts=4, n_group=1,
        topk_group=1, num_experts_per_tok=2),
}
_CONFIGS = {t: json.loads(make().to_json_string()) for t, make in _BASE.items()}


def _write(directory, content) -> None:
    (directory / "config.json").write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())


def _refused(directory, content, *words: str) -> str:
    _write(directory, content)
    with pytest.raises(archlab.CheckpointError) as e:
        read_config(directory)
    msg = str(e.value)
    assert "config.json" in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


# ---- item 1: what crashed with a raw exception ------------------------------------------

def test_non_utf8_config_json_is_refused(tmp_path):
    _refused(tmp_path, b'{"model_type": "llama", "name": "\xff"}', "not UTF-8")


@pytest.mark.parametrize("content", [[1, 2], None, "llama", 3])
def test_config_json_that_is_not_an_object_is_refused(tmp_path, content):
    _refused(tmp_path, content, "expected a JSON object")


def test_model_type_of_the_wrong_type_is_refused(tmp_path):
    _refused(tmp_path, {**_CONFIGS["llama"], "model_type": ["llama"]}, "model_type", "['llama']")


def test_string_where_a_number_belongs_is_refused(tmp_path):
    _refused(tmp_path, {**_CONFIGS["llama"], "hidden_size": "32"}, "hidden_size='32'", "an integer")


@pytest.mark.parametrize("kind", ["linear", "llama3", "dynamic"])
def test_rope_parameters_without_factor_is_refused(tmp_path, kind):
    hf = {**_CONFIGS["llama"], "rope_parameters": {"rope_type": kind, "rope_theta": 10000.0}}
    _refused(tmp_path, hf, "factor")


def test_deeply_nested_json_is_refused(tmp_path):
    _refused(tmp_path, b"[" * 100_000 + b"]" * 100_000, "nested too deeply")


@pytest.mark.parametrize("field,value", [("moe", "x"), ("norm", [1]), ("attention", 3)])
def test_our_config_json_with_a_sub_config_of_the_wrong_type_is_refused(tmp_path, field, value):
    d = archlab.config("mixtral-8x7b").to_dict()
    (tmp_path / "c.json").write_text(json.dumps({**d, field: value}))
    with pytest.raises(ConfigError, match=rf"ModelConfig\.{field}: expected a .*got {re.escape(repr(value))}"):
        ModelConfig.from_json_file(tmp_path / "c.json")


def test_our_config_json_nested_too_deeply_is_refused(tmp_path):
    (tmp_path / "c.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        ModelConfig.from_json_file(tmp_path / "c.json")


# ---- item 2: what was silently accepted --------------------------------------------------

@pytest.mark.parametrize("model_type,field,value", [
    ("llama", "tie_word_embeddings", "false"),
    ("gpt2", "scale_attn_weights", ""),
    ("llama", "num_hidden_layers", 2.5),
])
def test_a_value_hf_refuses_is_refused(tmp_path, model_type, field, value):
    """HF's config classes are @strict dataclasses that refuse these: so do we, naming the field."""
    cls = type(_BASE[model_type]())
    with pytest.raises(Exception, match=field):
        cls(**{field: value})
    _refused(tmp_path, {**_CONFIGS[model_type], field: value}, f"{field}={value!r}")


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 0.0, -1e-6])
@pytest.mark.parametrize("field", ["rope_theta", "rms_norm_eps", "rope_parameters.rope_theta"])
def test_a_non_finite_or_non_positive_float_is_refused(tmp_path, field, value):
    hf = dict(_CONFIGS["llama"])
    if field.startswith("rope_parameters."):
        hf["rope_parameters"] = {**hf["rope_parameters"], field.split(".")[1]: value}
    else:
        hf[field] = value
    _refused(tmp_path, hf, f"{field}=", "a finite number > 0")


def test_layer_count_too_large_to_read_is_refused(tmp_path):
    from archlab.model_config import BOUNDS

    # refused by the bounds (io/hf/bounds.py) before the value checks see it; either names the field
    _refused(tmp_path, {**_CONFIGS["llama"], "num_hidden_layers": 2**31 - 1}, "num_hidden_layers", f"{BOUNDS['layers']:,}")


# ---- item 4: any field, any hostile value ------------------------------------------------

_SCALARS = st.one_of(
    st.none(), st.booleans(), st.text(max_size=5), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, -1, 2**31, 2**63, 1e308, 0.5, 2.5]),
)
_HOSTILE = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                        max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), model_type=st.sampled_from(sorted(_CONFIGS)))
def test_a_hostile_value_in_any_field_loads_or_is_refused_naming_it(tmp_path, data, model_type):
    hf = dict(_CONFIGS[model_type])
    field = data.draw(st.sampled_from(sorted(hf)), label="field")
    hf[field] = data.draw(_HOSTILE, label="value")
    _write(tmp_path, hf)
    try:
        read_config(tmp_path)
    except (archlab.CheckpointError, ConfigError) as e:
        assert field in str(e), (field, hf[field], str(e))


# ---- item 3: a weight of an integer type ---------------------------------------------------

@pytest.mark.parametrize("dtype,name", [(torch.int32, "I32"), (torch.int64, "I64"), (torch.bool, "BOOL"), (torch.uint8, "U8")])
def test_an_integer_weight_is_refused_naming_the_tensor_and_dtype(tmp_path, dtype, name):
    from safetensors.torch import load_file, save_file

    from hf_reference import make_hf

    make_hf(_BASE["llama"]()).save_pretrained(tmp_path)
    (path,) = tmp_path.glob("*.safetensors")
    tensors = load_file(path)
    tensors["model.layers.0.mlp.up_proj.weight"] = tensors["model.layers.0.mlp.up_proj.weight"].to(dtype)
    save_file(tensors, path, metadata={"format": "pt"})
    with pytest.raises(archlab.CheckpointError, match=rf"model\.layers\.0\.mlp\.up_proj\.weight: stored as {name}"):
        archlab.load(tmp_path)


# what a sweep over every family's fields (tests/sweep_space.py's samplers) found a reader tripping on
_MORE = {
    "qwen3": lambda: transformers.Qwen3Config(**_SMALL, use_sliding_window=True, sliding_window=4),
    "qwen3_next": lambda: transformers.Qwen3NextConfig(**_SMALL, head_dim=16, num_experts=4, moe_intermediate_size=16,
                                                       shared_expert_intermediate_size=16, layer_types=["full_attention"],
                                                       num_experts_per_tok=2),
    "openai-gpt": lambda: transformers.OpenAIGPTConfig(vocab_size=101, n_embd=32, n_layer=1, n_head=2, n_positions=128),
    "gemma3_text": lambda: transformers.Gemma3TextConfig(**_SMALL, head_dim=16),
}


@pytest.mark.parametrize("model_type,field,value,expected", [
    ("qwen3", "max_window_layers", None, "max_window_layers"),
    ("qwen3_next", "num_experts", None, "num_experts"),
    ("openai-gpt", "afn", [], "afn=[] (list); expected a string"),
    ("gemma3_text", "final_logit_softcapping", 0, "final_logit_softcapping=0 (int); expected a finite number > 0"),
    ("qwen3", "layer_types", [[]], "layer_types=[[]] (list); expected a list of strings"),
])
def test_a_value_a_reader_tripped_on_is_refused_naming_it(tmp_path, model_type, field, value, expected):
    make = _MORE.get(model_type) or _BASE[model_type]
    hf = json.loads(make().to_json_string())
    _write(tmp_path, hf)
    read_config(tmp_path)  # the unchanged config loads
    _refused(tmp_path, {**hf, field: value}, expected)


# ---- null where HF's class annotates a plain bool --------------------------------------------

def _plain_bool_fields():
    """(model_type, field) for every true/false field the readers read that HF's own config class
    annotates `bool` (not `bool | None`): HF refuses null there, read from HF's annotations."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from sweep_space import SAMPLERS
    from archlab.io.hf.values import FIELDS, bool_value

    out = []
    for model_type, (cls, _) in SAMPLERS.items():
        ann: dict = {}
        for base in reversed(getattr(transformers, cls).__mro__):
            ann.update(getattr(base, "__annotations__", {}))
        out += [(model_type, k) for k, check in FIELDS.items() if check is bool_value and ann.get(k) is bool]
    return out


@pytest.mark.parametrize("model_type,field", _plain_bool_fields())
def test_null_where_hf_wants_a_bool_is_refused(tmp_path, model_type, field):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from sweep_space import SAMPLERS, draw

    cls, kw = draw(model_type, 0, 0)
    with pytest.raises(Exception, match=field):  # the reference refuses it
        getattr(transformers, cls)(**{**kw, field: None})
    hf = {"model_type": model_type, **{k: v for k, v in kw.items()}, field: None}
    _write(tmp_path, hf)
    with pytest.raises(archlab.CheckpointError, match=rf"{field}=None .*refuse null"):
        read_config(tmp_path)
