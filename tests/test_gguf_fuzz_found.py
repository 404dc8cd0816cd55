"""Hostile GGUF files the gguf fuzz target (scripts/fuzzlib/targets/gguf.py, issue 12) found
mishandled: each written by gguf-py (llama.cpp's own writer) with one thing wrong, and each must
be a CheckpointError (or ChatTemplateError) naming the file and what is wrong."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from archlab.errors import CheckpointError
from archlab.io.gguf import GGUFFile

gguf = pytest.importorskip("gguf")
Q, V = gguf.GGMLQuantizationType, gguf.GGUFValueType
_FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _write(path: Path, tensors: dict, kvs: dict | None = None, arch: str | None = "llama", alignment: int | None = None) -> Path:
    """`tensors`: name -> array (or (raw array, raw type)); `kvs`: key -> (value, GGUFValueType)."""
    w = gguf.GGUFWriter(str(path), arch or "llama")
    if arch is None:  # general.architecture given in kvs instead
        del w.kv_data[0]["general.architecture"]
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for key, (value, vtype) in (kvs or {}).items():
        if vtype == V.ARRAY:
            w.add_array(key, value)
        else:
            w.add_key_value(key, value, vtype)
    for name, a in tensors.items():
        if isinstance(a, tuple):
            w.add_tensor(name, a[0], raw_dtype=a[1])
        else:
            w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# ---- general.architecture of another type: was a TypeError (unhashable list) at load ------------

@pytest.mark.parametrize("value, vtype", [(["llama"], V.ARRAY), (["a", "b"], V.ARRAY), (3, V.UINT32), (1.5, V.FLOAT32), (True, V.BOOL)],
                         ids=str)
def test_architecture_that_is_not_a_string(tmp_path, value, vtype):
    import archlab

    path = _write(tmp_path / "a.gguf", {"t": np.ones(4, np.float32)}, {"general.architecture": (value, vtype)}, arch=None)
    with pytest.raises(CheckpointError, match=r"a\.gguf: GGUF metadata field 'general\.architecture' = .*; expected a string, not"):
        archlab.load(path)


# ---- a power-of-two alignment that puts the data section past the file: named the first tensor --

@pytest.mark.parametrize("alignment", [2**20, 2**31])
def test_alignment_past_the_end_of_the_file_is_named(tmp_path, alignment):
    path = _write(tmp_path / "a.gguf", {"t": np.ones(4, np.float32)})
    content = bytearray(path.read_bytes())  # the same file, declaring a huge alignment
    bad = _write(tmp_path / "b.gguf", {"t": np.ones(4, np.float32)}, {"general.alignment": (alignment, V.UINT32)})
    bad.write_bytes(bad.read_bytes()[: len(content) + 64])
    with pytest.raises(CheckpointError, match=rf"b\.gguf: .*tensor data would start at byte {alignment} .*general\.alignment {alignment}\), past the end"):
        GGUFFile(bad)


# ---- NaN or infinite weights: loaded, and made every logit NaN ----------------------------------

def _damaged_values(kind: str, n: int, at: int, value: float):
    a = np.linspace(-1, 1, n, dtype=np.float32).reshape(2, -1)
    if kind == "F32":
        a.reshape(-1)[at] = value
        return a
    if kind == "F16":
        a = a.astype(np.float16)
        a.reshape(-1)[at] = value
        return a
    raw = gguf.quants.quantize(a, Q.Q8_0)  # a block: fp16 scale d, then 32 int8; damage the scale
    block = at % (raw.size // 34)
    raw.reshape(-1, 34)[block, :2] = np.array([value], np.float16).view(np.uint8)
    return raw, Q.Q8_0


@_FAST
@given(kind=st.sampled_from(["F32", "F16", "Q8_0"]), at=st.integers(0, 127), value=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_nan_or_infinite_weights_are_refused(kind, at, value):
    with tempfile.TemporaryDirectory() as d:
        good = GGUFFile(_write(Path(d) / "ok.gguf", {"w": _damaged_values(kind, 128, at, 0.5)}))
        assert np.isfinite(good.read("w")).all()
        path = _write(Path(d) / "w.gguf", {"w": _damaged_values(kind, 128, at, value)})
        with pytest.raises(CheckpointError, match=rf"w\.gguf: tensor 'w' \({kind}\) holds \d+ NaN or infinite values \(the first at flat index \d+"):
            GGUFFile(path).read("w")


# ---- a chat template that does not compile: the error named no file ----------------------------

def test_chat_template_syntax_error_names_the_file(tmp_path):
    import archlab
    from archlab.chat_template import ChatTemplateError

    tokens = ["a", "b", "ab"]
    path = _write(tmp_path / "v.gguf", {}, {
        "tokenizer.ggml.model": ("gpt2", V.STRING), "tokenizer.ggml.tokens": (tokens, V.ARRAY),
        "tokenizer.ggml.token_type": ([1, 1, 1], V.ARRAY), "tokenizer.ggml.merges": (["a b"], V.ARRAY),
        "tokenizer.chat_template": ("{% FOR m in messages %}{{ m.content }}{% endfor %}", V.STRING)})
    tok = archlab.load_tokenizer(path)
    with pytest.raises(ChatTemplateError, match=r"v\.gguf: chat template: syntax error at line 1"):
        tok.apply_chat_template([{"role": "user", "content": "hi"}])


# ---- arrays of another item type: an empty one passed as a list of strings ----------------------

def _raw_empty_array(path: Path, key: str, item: int) -> Path:
    """A vocabulary GGUF whose `key` is an empty array of item type `item` (gguf-py writes no empty
    arrays, so its non-empty one is replaced with an empty one of that type in place)."""
    import struct

    tokens = ["a", "b", "ab"]
    _write(path, {}, {"tokenizer.ggml.model": ("gpt2", V.STRING), "tokenizer.ggml.tokens": (tokens, V.ARRAY),
                      "tokenizer.ggml.merges": (["a b"], V.ARRAY), "zz.marker": ("end", V.STRING)})
    r = gguf.GGUFReader(str(path))
    f = r.fields[key]
    start = f.offset + 8 + len(key) + 4  # the value: item type, count, items
    end = f.offset + sum(p.nbytes for p in f.parts)
    content = path.read_bytes()
    path.write_bytes(content[:start] + struct.pack("<IQ", item, 0) + content[end:])
    return path


@pytest.mark.parametrize("item, name", [(4, "UINT32"), (6, "FLOAT32"), (7, "BOOL")])
def test_empty_array_of_another_item_type_is_refused(tmp_path, item, name):
    import archlab

    path = _raw_empty_array(tmp_path / "v.gguf", "tokenizer.ggml.tokens", item)
    with pytest.raises(CheckpointError, match=rf"v\.gguf: GGUF metadata field 'tokenizer\.ggml\.tokens' = \[\] is an array of {name} items; expected a list of strings"):
        archlab.load_tokenizer(path)


def test_empty_vocabulary_is_refused(tmp_path):
    import archlab

    path = _raw_empty_array(tmp_path / "v.gguf", "tokenizer.ggml.tokens", 8)
    with pytest.raises(CheckpointError, match=r"v\.gguf: GGUF metadata field 'tokenizer\.ggml\.tokens' is empty"):
        archlab.load_tokenizer(path)
