"""Issue 12, item 2: counts and dimensions read from any source (replace(), our JSON, config.json,
GGUF metadata) are bounded (model_config.BOUNDS) before anything is allocated or looped over: a
hostile 10**9 or 2**63 is a clean ConfigError/CheckpointError within a second, never a hang, a
MemoryError or an OverflowError."""

import dataclasses
import json
import re
import time

import gguf
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import archlab
import archlab.io.gguf  # noqa: F401  (imported here, so that the time limits below measure the refusal alone)
import archlab.io.hf  # noqa: F401
from archlab.errors import CheckpointError
from archlab.io.index_range import index_range
from archlab.model_config import BOUNDS, ConfigError, ModelConfig

FAST = settings(max_examples=10, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])


HUGE_LITERAL = 10**5000  # str() and json refuse integers over 4300 digits; a file may still hold one


def _huge(limit: int):
    """Beyond `limit`: just above it, far above it, 2**63 (OverflowError in C), a 5000-digit integer,
    and the floats a JSON file can hold instead (1e9, inf, nan)."""
    return st.one_of(
        st.integers(limit + 1, limit + 1000), st.integers(limit + 1, 2**200), st.sampled_from([2**63, HUGE_LITERAL]),
        st.floats(min_value=float(limit + 1), allow_infinity=True), st.just(float("nan")),
    )


def _dumps(d: dict) -> str:
    """JSON text of `d`, with HUGE_LITERAL written out as the 5000 digits a hostile file may hold."""
    marker = 123456789123456789123
    text = json.dumps({k: marker if v is HUGE_LITERAL else v for k, v in d.items()})
    return text.replace(str(marker), "9" * 5000)


def _attention(**k):
    return lambda c: c.replace(attention=dataclasses.replace(c.attention, **k))


def _moe(**k):
    return lambda c: c.replace(moe=dataclasses.replace(c.moe, **k))


# (preset, field named in the error, bound, how to set it)
FIELDS = [
    ("llama-3-8b", "n_layers", "layers", lambda v: lambda c: c.replace(n_layers=v)),
    ("llama-3-8b", "vocab_size", "vocabulary", lambda v: lambda c: c.replace(vocab_size=v)),
    ("llama-3-8b", "d_model", "widths", lambda v: lambda c: c.replace(d_model=v)),
    ("llama-3-8b", "max_seq_len", "positions", lambda v: lambda c: c.replace(max_seq_len=v)),
    ("llama-3-8b", "attention.n_heads", "counts", lambda v: _attention(n_heads=v)),
    ("llama-3-8b", "attention.head_dim", "widths", lambda v: _attention(head_dim=v)),
    ("llama-3-8b", "ffn.hidden", "widths", lambda v: lambda c: c.replace(ffn=dataclasses.replace(c.ffn, hidden=v))),
    ("deepseek-v3", "moe.n_experts", "counts", lambda v: _moe(n_experts=v)),
    ("deepseek-v3", "moe.hidden", "widths", lambda v: _moe(hidden=v)),
    ("deepseek-v3", "attention.kv_lora_rank", "widths", lambda v: _attention(kv_lora_rank=v)),
    ("qwen3-next-80b-a3b", "linear_attention.n_v_heads", "counts",
     lambda v: lambda c: c.replace(linear_attention=dataclasses.replace(c.linear_attention, n_v_heads=v))),
]


@pytest.mark.parametrize("preset,field,kind,setter", FIELDS, ids=[f[1] for f in FIELDS])
@FAST
@given(data=st.data())
def test_huge_sizes_are_a_clean_config_error(preset, field, kind, setter, data):
    cfg = archlab.tiny(preset)
    value = data.draw(_huge(BOUNDS[kind]))
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=re.escape(field) + ":"):
        setter(value)(cfg)
    assert time.perf_counter() - start < 1.0


def test_the_bounds_refuse_no_preset():
    for name in archlab.presets():
        cfg = archlab.config(name)
        assert cfg.n_layers <= BOUNDS["layers"] and cfg.vocab_size <= BOUNDS["vocabulary"]


@FAST
@given(value=_huge(BOUNDS["layers"]))
def test_our_json_with_huge_layers_names_the_file(tmp_path_factory, value):
    d = archlab.tiny("gpt2").to_dict()
    d["n_layers"] = value
    path = tmp_path_factory.mktemp("cfg") / "edited.json"
    path.write_text(_dumps(d))
    with pytest.raises(ConfigError, match=re.escape(str(path)) + (": not a readable" if value is HUGE_LITERAL else r": (ModelConfig\.)?n_layers:")):
        ModelConfig.from_json_file(path)


def test_cli_inspect_and_compare_of_a_config_with_1e9_layers(tmp_path, capsys):
    from archlab.cli import main

    d = archlab.tiny("gpt2").to_dict()
    d["n_layers"] = 10**9
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(d))
    for command in (["inspect", str(path)], ["compare", str(path)]):
        start = time.perf_counter()
        assert main(command) != 0
        assert "n_layers" in capsys.readouterr().err and time.perf_counter() - start < 2.0


HF_KEYS = [("llama", "num_hidden_layers", "layers"), ("llama", "vocab_size", "vocabulary"),
           ("llama", "hidden_size", "widths"), ("llama", "intermediate_size", "widths"),
           ("llama", "num_attention_heads", "counts"), ("llama", "max_position_embeddings", "positions"),
           ("deepseek_v3", "num_hidden_layers", "layers"), ("deepseek_v3", "num_nextn_predict_layers", "layers"),
           ("deepseek_v3", "n_routed_experts", "counts")]


def _hf_json(model_type: str) -> dict:
    preset = {"llama": "llama-3-8b", "deepseek_v3": "deepseek-v3"}[model_type]
    from archlab.io.hf import hf_config_json

    return hf_config_json(archlab.tiny(preset))[1]


@pytest.mark.parametrize("model_type,key,kind", HF_KEYS, ids=[f"{m}.{k}" for m, k, _ in HF_KEYS])
@FAST
@given(data=st.data())
def test_config_json_with_huge_sizes_is_refused_before_the_family_reads_it(tmp_path_factory, model_type, key, kind, data):
    hf = _hf_json(model_type)
    hf[key] = data.draw(_huge(BOUNDS[kind]))
    directory = tmp_path_factory.mktemp("m")
    (directory / "config.json").write_text(_dumps(hf))
    start = time.perf_counter()
    expected = ": not valid JSON" if hf[key] is HUGE_LITERAL else f": {key} is .*bound on {kind}"
    with pytest.raises(CheckpointError, match=re.escape(str(directory / "config.json")) + expected):
        archlab.load(directory)
    assert time.perf_counter() - start < 1.0


@given(lo=st.integers(1, 10**6), n=st.one_of(st.integers(0, 3000), st.integers(0, 2**64)), probe=st.integers(0, 10**7))
@settings(max_examples=100, deadline=1000)
def test_mtp_layer_pattern_matches_exactly_the_range_without_listing_it(lo, n, probe):
    pattern = re.compile(rf"^(?:{index_range(lo, lo + n)})$")
    assert len(pattern.pattern) < 2000  # grows with the digits, not with n
    for i in (probe, lo - 1, lo, lo + n - 1, lo + n, lo + probe):
        if i >= 0:
            assert bool(pattern.match(str(i))) == (lo <= i < lo + n), (lo, n, i)
    assert not pattern.match("0" + str(lo))  # no leading zeros


def test_deepseek_mtp_ignore_of_2_63_layers_is_immediate():
    from archlab.io.hf.deepseek import _mtp_ignore

    cfg = archlab.tiny("deepseek-v3")
    start = time.perf_counter()
    (pattern,) = _mtp_ignore({"num_nextn_predict_layers": 2**63}, cfg)
    assert time.perf_counter() - start < 0.1
    n = cfg.n_layers
    assert re.search(pattern, f"model.layers.{n}.eh_proj.weight") and re.search(pattern, f"model.layers.{n + 2**62}.x")
    assert not re.search(pattern, f"model.layers.{n - 1}.mlp.gate.weight")


GGUF_CASES = [("block_count", v, "layers") for v in (100_000, 10**9, 2**63, 2**64 - 1)] + [
    ("rope.scaling.original_context_length", v, "positions") for v in (2**63, float("inf"), float("nan"))
] + [("vocab_size", 2**40, "vocabulary")]


@pytest.mark.parametrize("key,value,kind", GGUF_CASES)
def test_gguf_counts_are_bounded(tmp_path, key, value, kind):
    from archlab.io.gguf import read_gguf_config

    # a small llama's metadata as llama.cpp's converter writes it, with one hostile value
    hostile = {"block_count": 2, "vocab_size": 64, **{key: value}}
    w = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "llama")
    for k in ("vocab_size", "block_count"):
        w.add_uint64(f"llama.{k}", hostile[k])
    if key.startswith("rope.scaling"):
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(4.0)
        (w.add_float64 if isinstance(value, float) else w.add_uint64)(f"llama.{key}", value)
    w.add_context_length(128)
    w.add_embedding_length(32)
    w.add_feed_forward_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    start = time.perf_counter()
    # refused by llama.cpp's own rules (integer type, LLAMA_MAX_LAYERS) or, past those, by archlab's bound
    with pytest.raises(CheckpointError, match=rf"m\.gguf: (GGUF metadata )?llama\.{re.escape(key)}( is |=).*"
                                              rf"(bound on {kind}|LLAMA_MAX_LAYERS|expected a non-negative integer)"):
        read_gguf_config(tmp_path / "m.gguf")
    assert time.perf_counter() - start < 1.0
