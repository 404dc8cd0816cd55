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
    ("llama", {"block_count": 2**32 - 1}, r"llama\.block_count=4294967295 \(int\); expected at most 512 \(llama\.cpp's LLAMA_MAX_LAYERS\)"),
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


def test_metadata_read_through_an_hf_family_gets_config_json_value_checks(tmp_path):
    """GGUF files of HF-backed architectures become a config.json for the family's reader: the
    same value checks as a real config.json run on it first, and name the config.json field."""
    from archlab.io.gguf import read_gguf_config

    path = _meta_gguf(tmp_path / "m.gguf", "qwen3", attention__layer_norm_rms_epsilon=-1.0)
    with pytest.raises(CheckpointError, match=r"m\.gguf: the metadata, read as an HF qwen3 config\.json, is not supported: "
                                              r"rms_norm_eps=-1\.0 \(float\); expected a finite number > 0"):
        read_gguf_config(path)


@pytest.mark.parametrize("divisors", [np.zeros(8), np.full(8, np.inf), np.r_[np.ones(7), np.nan], np.r_[np.ones(7), -1.0]],
                         ids=["zero", "inf", "nan", "negative"])
def test_rope_freqs_divisors_must_be_finite_and_positive(tmp_path, divisors):
    from archlab.io.gguf import read_gguf_config

    path = _meta_gguf(tmp_path / "m.gguf", tensors={"rope_freqs.weight": divisors.astype(np.float32)})
    # NaN and inf are refused when any tensor is read (reader.py: no trained weight is NaN or infinite)
    message = (r"tensor 'rope_freqs\.weight' \(F32\) holds \d+ NaN or infinite values" if not np.isfinite(divisors).all()
               else r"rope_freqs\.weight holds .*; expected finite positive RoPE frequency divisors")
    with pytest.raises(CheckpointError, match=rf"m\.gguf: {message}"):
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


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
@pytest.mark.parametrize("merge, missing", [("a c", "c"), ("b a", "ba")])
def test_merge_of_tokens_not_in_the_vocabulary(tmp_path, kind, merge, missing):
    """`tokenizers` refuses such a merge with a bare Exception (found by the fuzz test below)."""
    from archlab.tokenizer import load_tokenizer

    path = _vocab_gguf(tmp_path / "v.gguf", ggml__model=(kind, V.STRING), ggml__merges=(["a b", merge], V.ARRAY))
    with pytest.raises(CheckpointError, match=rf"v\.gguf: tokenizer\.ggml\.merges\[1\] = '{merge}' names '{missing}', which is not in the vocabulary"):
        load_tokenizer(path)


def test_embedded_tokenizer_json_that_tokenizers_cannot_read(tmp_path):
    from archlab.tokenizer import load_tokenizer

    path = _vocab_gguf(tmp_path / "v.gguf", huggingface__json=('{"model": 3}', V.STRING))
    with pytest.raises(CheckpointError, match=r"v\.gguf: tokenizer\.huggingface\.json is not a tokenizer\.json tokenizers can read \(.+\)"):
        load_tokenizer(path)


# ---- item 4: fuzzing the reader with damaged copies of a valid file --------------------------------

_MiB = 1 << 20


def _fuzz_base(path: Path) -> bytes:
    """A small valid GGUF, as gguf-py writes one: every metadata value type, a vocabulary and
    tensors of several types, so that damage lands in each kind of header field."""
    w = gguf.GGUFWriter(str(path), "llama")
    for key, value in _BASE.items():
        w.add_key_value(f"llama.{key}", value, V.FLOAT32 if isinstance(value, float) else V.UINT32)
    for key, (value, vtype) in _VOCAB.items():
        w.add_array(key, value) if vtype == V.ARRAY else w.add_key_value(key, value, vtype)
    w.add_bool("test.bool", True)
    w.add_int64("test.int64", -5)
    w.add_float64("test.float64", 0.25)
    w.add_array("test.floats", [0.5, 1.5])
    w.add_string("tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}")
    rng = np.random.default_rng(0)
    w.add_tensor("token_embd.weight", rng.standard_normal((4, 32)).astype(np.float32))
    w.add_tensor("blk.0.attn_norm.weight", rng.standard_normal(32).astype(np.float16))
    w.add_tensor("blk.0.attn_q.weight", gguf.quants.quantize(rng.standard_normal((2, 64)).astype(np.float32), Q.Q8_0), raw_dtype=Q.Q8_0)
    w.add_tensor("rope_freqs.weight", np.ones(8, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


@pytest.fixture(scope="module")
def fuzz_base(tmp_path_factory) -> tuple[bytes, int, list[int]]:
    path = tmp_path_factory.mktemp("fuzz") / "base.gguf"
    content = _fuzz_base(path)
    _read_everything(path)  # the undamaged file reads; and every lazy import is done before memory is measured
    g = GGUFFile(path)
    # where each metadata value starts (its 4-byte type code just before it), past the fixed header
    values = [at for key, (_, at) in g._fields.items() if not key.startswith("GGUF.")]
    return content, min(t.data_offset for t in g.tensors.values()), values


_HUGE_COUNTS = [2**31, 2**32 - 1, 2**32, 2**40, 2**62, 2**63, 2**64 - 1]


def _read_everything(path: Path) -> None:
    """What archlab does with a GGUF: the header, every metadata value, every tensor, the model
    config and the tokenizer."""
    from archlab.io.gguf import read_gguf_config
    from archlab.tokenizer import load_tokenizer

    g = GGUFFile(path)
    for key in g.keys():
        g.value(key, None)
    with np.errstate(all="ignore"):  # damaged scales dequantize to inf/NaN, which is fine here
        for name in g.tensors:
            g.read(name)
    for load in (read_gguf_config, load_tokenizer):
        try:
            load(path)
        except CheckpointError:
            pass  # each step is tried on its own: a refused config must not hide a crash in the tokenizer


@settings(max_examples=120, deadline=1000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_file_reads_or_is_a_checkpoint_error(tmp_path, fuzz_base, data):
    """Truncated, bytes overwritten in the header, or a length/count blown up: the file reads, or
    is a CheckpointError naming it, within the deadline and without allocating more than a few MiB."""
    import tracemalloc

    content, header_end, values = fuzz_base
    kind = data.draw(st.sampled_from(["truncate", "bytes", "count", "type", "value"]))
    damaged = bytearray(content)
    if kind == "truncate":
        damaged = damaged[:data.draw(st.integers(0, len(content) - 1))]
    elif kind == "bytes":
        for _ in range(data.draw(st.integers(1, 4))):
            damaged[data.draw(st.integers(4, header_end - 1))] = data.draw(st.integers(0, 255))
    elif kind == "count":  # a u64 length or count (all of them are 8 bytes; any start inside the header)
        at = data.draw(st.integers(8, header_end - 8))
        struct.pack_into("<Q", damaged, at, data.draw(st.sampled_from(_HUGE_COUNTS)))
    elif kind == "type":  # a metadata value read as another type (0..12 are GGUF's, 13+ unknown)
        struct.pack_into("<I", damaged, data.draw(st.sampled_from(values)) - 4, data.draw(st.integers(0, 14)))
    else:  # a metadata value's first bytes: 0, NaN, inf, -1, or anything
        at = data.draw(st.sampled_from(values))
        new = data.draw(st.sampled_from([bytes(4), struct.pack("<f", float("nan")), struct.pack("<f", float("inf")),
                                         b"\xff" * 4]) | st.binary(min_size=1, max_size=8))
        damaged[at:at + len(new)] = new
        damaged = damaged[:len(content)]
    path = tmp_path / f"fuzz-{data.draw(st.integers(0, 2**62))}.gguf"
    path.write_bytes(bytes(damaged))
    tracemalloc.start()
    try:
        _read_everything(path)
    except CheckpointError as e:
        assert path.name in str(e)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 16 * _MiB, f"{peak} bytes allocated reading a {len(damaged)}-byte file"
