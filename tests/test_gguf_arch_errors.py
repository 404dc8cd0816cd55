"""GGUF metadata that archlab cannot express is refused naming the key, its value and what is
supported; llama.cpp's silent defaults are applied as llama.cpp applies them."""

from __future__ import annotations

import pytest

import archlab
from archlab.io.gguf import read_gguf_config
from gguf_convert import gguf, write_gguf
from hf_reference import make_hf
from test_gguf_archs import CASES, _gemma3

CheckpointError = archlab.CheckpointError


def _with(path, arch: str, model, **extra):
    """`model` written as `arch`, with extra metadata keys (suffix -> (value, GGUFValueType))."""
    original = gguf.GGUFWriter.write_header_to_file

    def add_then_write(w, *args, **kwargs):  # before the header, which counts the keys
        for suffix, (value, vtype) in extra.items():
            w.add_key_value(f"{w.arch}.{suffix}", value, vtype)
        return original(w, *args, **kwargs)

    gguf.GGUFWriter.write_header_to_file = add_then_write
    try:
        return write_gguf(path, arch, model)
    finally:
        gguf.GGUFWriter.write_header_to_file = original


U32 = gguf.GGUFValueType.UINT32


@pytest.mark.parametrize("case, extra, message", [
    ("deepseek2-v3", {"rope.scaling.type": ("longrope", gguf.GGUFValueType.STRING)},
     r"deepseek2\.rope\.scaling\.type='longrope' is not supported \(supported: none, yarn\)"),
    ("qwen3", {"rope.scaling.type": ("longrope", gguf.GGUFValueType.STRING)},
     r"qwen3\.rope\.scaling\.type='longrope' is not supported \(supported: none, linear, yarn\)"),
    ("qwen3", {"rope.scaling.type": ("yarn", gguf.GGUFValueType.STRING), "rope.scaling.factor": (4.0, gguf.GGUFValueType.FLOAT32),
               "rope.scaling.yarn_ext_factor": (0.5, gguf.GGUFValueType.FLOAT32)},
     r"qwen3\.rope\.scaling\.yarn_ext_factor=0\.5 is not supported"),
    ("bloom", {"attention.head_count_kv": (1, U32)}, r"bloom\.attention\.head_count_kv differs from head_count=4"),
], ids=["deepseek2-rope", "qwen3-rope", "yarn-ext-factor", "bloom-kv-heads"])
def test_unsupported_metadata_is_named(tmp_path, case, extra, message):
    config, _ = CASES[case]
    arch = "deepseek2" if case.startswith("deepseek2") else case
    path = _with(tmp_path / "m.gguf", arch, make_hf(config(), seed=0), **extra)
    with pytest.raises(CheckpointError, match=rf"m\.gguf: {message}"):
        read_gguf_config(path)


def test_gating_function_is_checked(tmp_path):
    src = make_hf(CASES["glm4moe"][0](), seed=0)
    path = write_gguf(tmp_path / "glm.gguf", "glm4moe", src)
    # rewrite the file's gating function: softmax is not GLM-4.5's
    data = bytearray(path.read_bytes())
    key = b"glm4moe.expert_gating_func"
    at = data.index(key) + len(key) + 4  # past the key and its value type
    assert int.from_bytes(data[at:at + 4], "little") == 2
    data[at:at + 4] = (1).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"glm4moe\.expert_gating_func=1 is not supported \(GLM-4\.5 routes by sigmoid, 2\)"):
        read_gguf_config(path)


def test_gemma3_without_a_window_is_all_global(tmp_path):
    """Newer llama.cpp reads gemma3.attention.sliding_window as optional: absent, every layer is global."""
    src = make_hf(_gemma3(head_dim=256, query_pre_attn_scalar=256), seed=0)
    path = write_gguf(tmp_path / "g.gguf", "gemma3", src)
    data = path.read_bytes()
    assert b"gemma3.attention.sliding_window" in data
    # rename the key so the file has none (same length: the header stays valid)
    path.write_bytes(data.replace(b"gemma3.attention.sliding_window", b"gemma3.attention.sliding_wXndow"))
    cfg = read_gguf_config(path)
    assert {s.kind for s in cfg.layers} == {"global"}
