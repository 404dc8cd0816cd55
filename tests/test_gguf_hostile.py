"""Hostile GGUF files (issue 12): files written by gguf-py (llama.cpp's own writer) and then
damaged on purpose. Each must either read as gguf-py wrote it or be a CheckpointError that names
the file and what is wrong; never garbage, a stray exception or a huge allocation."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from archlab.errors import CheckpointError
from archlab.io.gguf import GGUFFile

gguf = pytest.importorskip("gguf")
Q = gguf.GGMLQuantizationType

_FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _write(path: Path, sizes: list[int], alignment: int) -> Path:
    """A GGUF with F32 tensors t0, t1, ... of the given sizes, as gguf-py lays them out."""
    w = gguf.GGUFWriter(str(path), "llama")
    if alignment != 32:
        w.add_custom_alignment(alignment)
    for i, n in enumerate(sizes):
        w.add_tensor(f"t{i}", np.arange(n, dtype=np.float32) + 1000 * i)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _offset_fields(path: Path) -> dict[str, int]:
    """Where each tensor's offset lies in the file, found with gguf-py's own reader (the field's
    last 8 bytes: GGUFWriter.write_ti_data_to_file)."""
    r = gguf.GGUFReader(str(path))
    return {t.name: t.field.offset + sum(p.nbytes for p in t.field.parts) - 8 for t in r.tensors}


# ---- item 1: a tensor's offset must be the running aligned one ------------------------------------

@_FAST
@given(sizes=st.lists(st.integers(1, 40), min_size=2, max_size=5), alignment=st.sampled_from([8, 32, 64]),
       victim=st.integers(0, 4), new=st.integers(0, 2**20))
def test_tensor_offset_other_than_the_running_aligned_one_is_refused(sizes, alignment, victim, new):
    with tempfile.TemporaryDirectory() as d:
        path = _write(Path(d) / "t.gguf", sizes, alignment)
        ok = GGUFFile(path)  # as written by gguf-py: every tensor reads back its own values
        for i, n in enumerate(sizes):
            np.testing.assert_array_equal(ok.read(f"t{i}"), np.arange(n, dtype=np.float32) + 1000 * i)
        name = f"t{victim % len(sizes)}"
        expected = ok.tensors[name].offset
        new = new if new != expected else expected + alignment  # e.g. 0: pointing into t0
        content = bytearray(path.read_bytes())
        struct.pack_into("<Q", content, _offset_fields(path)[name], new)
        path.write_bytes(bytes(content))
        with pytest.raises(CheckpointError, match=rf"t\.gguf: .*tensor '{name}' has data offset {new}, expected {expected} "):
            GGUFFile(path)


# ---- item 2: metadata of the wrong type or an impossible value ------------------------------------

V = gguf.GGUFValueType
_BASE = {  # a tiny llama, as write_llama_gguf (test_gguf.py) writes one
    "block_count": 2, "context_length": 64, "embedding_length": 64, "feed_forward_length": 128,
    "attention.head_count": 4, "attention.head_count_kv": 2, "attention.layer_norm_rms_epsilon": 1e-5,
    "rope.freq_base": 10000.0, "rope.dimension_count": 16, "vocab_size": 100,
}


def _meta_gguf(path: Path, arch: str = "llama", tensors: dict | None = None, **overrides) -> Path:
    """Metadata only (and `tensors`); `overrides` replace _BASE's values, a float or int keeping
    the type gguf-py would give it (FLOAT32 / UINT32), a (value, GGUFValueType) pair any other."""
    w = gguf.GGUFWriter(str(path), arch)
    for key, value in {**_BASE, **{k.replace("__", "."): v for k, v in overrides.items()}}.items():
        value, vtype = value if isinstance(value, tuple) else (value, V.FLOAT32 if isinstance(value, float) else V.UINT32)
        w.add_key_value(f"{arch}.{key}", value, vtype)
    for name, a in (tensors or {}).items():
        w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


_NAN, _INF = float("nan"), float("inf")


@pytest.mark.parametrize("arch, overrides, message", [
    ("llama", {"attention__head_count": 0}, r"llama\.attention\.head_count=0 \(int\); expected a positive integer"),
    ("qwen3", {"attention__head_count": 0}, r"qwen3\.attention\.head_count=0 \(int\); expected a positive integer"),
    ("llama", {"context_length": _NAN}, r"llama\.context_length=nan \(float\); expected a non-negative integer"),
    ("qwen3", {"context_length": _INF}, r"qwen3\.context_length=inf \(float\); expected a non-negative integer"),
    ("llama", {"block_count": 2.5}, r"llama\.block_count=2\.5 \(float\); expected a non-negative integer"),
    ("llama", {"embedding_length": (-64, V.INT32)}, r"llama\.embedding_length=-64 \(int\); expected a non-negative integer"),
    ("llama", {"feed_forward_length": (True, V.BOOL)}, r"llama\.feed_forward_length=True \(bool\); expected a non-negative integer"),
    ("llama", {"rope__freq_base": _INF}, r"llama\.rope\.freq_base=inf \(float\); expected a finite number"),
    ("qwen3", {"rope__freq_base": 0.0}, r"qwen3\.rope\.freq_base=0\.0 \(float\); expected a positive number"),
    ("llama", {"attention__layer_norm_rms_epsilon": _NAN}, r"llama\.attention\.layer_norm_rms_epsilon=nan \(float\); expected a finite number"),
    ("llama", {"rope__freq_base": ("1e4", V.STRING)}, r"llama\.rope\.freq_base='1e4' \(str\); expected a finite number"),
], ids=lambda x: str(x))
def test_impossible_metadata_is_a_checkpoint_error(tmp_path, arch, overrides, message):
    from archlab.io.gguf import read_gguf_config

    with pytest.raises(CheckpointError, match=rf"m\.gguf: GGUF metadata {message}"):
        read_gguf_config(_meta_gguf(tmp_path / "m.gguf", arch, **overrides))


@pytest.mark.parametrize("divisors", [np.zeros(8), np.full(8, np.inf), np.r_[np.ones(7), np.nan], np.r_[np.ones(7), -1.0]],
                         ids=["zero", "inf", "nan", "negative"])
def test_rope_freqs_divisors_must_be_finite_and_positive(tmp_path, divisors):
    from archlab.io.gguf import read_gguf_config

    path = _meta_gguf(tmp_path / "m.gguf", tensors={"rope_freqs.weight": divisors.astype(np.float32)})
    with pytest.raises(CheckpointError, match=r"m\.gguf: rope_freqs\.weight holds .*; expected finite positive RoPE frequency divisors"):
        read_gguf_config(path)


_VOCAB = {  # a three-token byte-level BPE vocabulary (tokenizer.ggml.model gpt2)
    "tokenizer.ggml.model": ("gpt2", V.STRING), "tokenizer.ggml.pre": ("default", V.STRING),
    "tokenizer.ggml.tokens": (["a", "b", "ab"], V.ARRAY), "tokenizer.ggml.token_type": ([1, 1, 1], V.ARRAY),
    "tokenizer.ggml.merges": (["a b"], V.ARRAY), "tokenizer.ggml.bos_token_id": (0, V.UINT32),
}


def _vocab_gguf(path: Path, **overrides) -> Path:
    w = gguf.GGUFWriter(str(path), "llama")
    for key, (value, vtype) in {**_VOCAB, **{f"tokenizer.{k.replace('__', '.')}": v for k, v in overrides.items()}}.items():
        if vtype == V.ARRAY:
            w.add_array(key, value)
        else:
            w.add_key_value(key, value, vtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("overrides, message", [
    ({"ggml__tokens": ([1, 2, 3], V.ARRAY)}, r"'tokenizer\.ggml\.tokens' = \[1, 2, 3\]; expected a list of strings \(found 1, int\)"),
    ({"ggml__tokens": ("abc", V.STRING)}, r"'tokenizer\.ggml\.tokens' = 'abc'; expected a list of strings, not str"),
    ({"ggml__token_type": (["1", "1", "1"], V.ARRAY)}, r"'tokenizer\.ggml\.token_type' = \['1', '1', '1'\]; expected a list of integers"),
    ({"ggml__merges": ([7], V.ARRAY)}, r"'tokenizer\.ggml\.merges' = \[7\]; expected a list of strings"),
    ({"ggml__model": (2, V.UINT32)}, r"'tokenizer\.ggml\.model' = 2; expected a string, not int"),
    ({"ggml__pre": (1.5, V.FLOAT32)}, r"'tokenizer\.ggml\.pre' = 1\.5; expected a string"),
    ({"ggml__bos_token_id": (1.5, V.FLOAT32)}, r"'tokenizer\.ggml\.bos_token_id' = 1\.5; expected an integer, not float"),
    ({"ggml__add_bos_token": ("yes", V.STRING)}, r"'tokenizer\.ggml\.add_bos_token' = 'yes'; expected a bool, not str"),
    ({"ggml__eot_token_id": ("2", V.STRING)}, r"'tokenizer\.ggml\.eot_token_id' = '2'; expected an integer"),
    ({"chat_template": (3, V.UINT32)}, r"'tokenizer\.chat_template' = 3; expected a string"),
    ({"ggml__model": ("llama", V.STRING), "ggml__scores": ([0.0, _NAN, 1.0], V.ARRAY)},
     r"'tokenizer\.ggml\.scores' = \[0\.0, nan, 1\.0\]; expected a list of finite numbers \(found nan, float\)"),
    ({"ggml__model": ("llama", V.STRING), "ggml__scores": (["x", "y", "z"], V.ARRAY)}, r"'tokenizer\.ggml\.scores' .*expected a list of finite numbers"),
], ids=lambda x: str(x)[:60])
def test_tokenizer_fields_of_the_wrong_type(tmp_path, overrides, message):
    from archlab.tokenizer import load_tokenizer

    assert load_tokenizer(_vocab_gguf(tmp_path / "ok.gguf")).encode("ab") == [2]  # the untouched file reads
    with pytest.raises(CheckpointError, match=rf"v\.gguf: GGUF metadata field {message}"):
        load_tokenizer(_vocab_gguf(tmp_path / "v.gguf", **overrides))


def test_embedded_tokenizer_json_that_tokenizers_cannot_read(tmp_path):
    from archlab.tokenizer import load_tokenizer

    path = _vocab_gguf(tmp_path / "v.gguf", huggingface__json=('{"model": 3}', V.STRING))
    with pytest.raises(CheckpointError, match=r"v\.gguf: tokenizer\.huggingface\.json is not a tokenizer\.json tokenizers can read \(.+\)"):
        load_tokenizer(path)
