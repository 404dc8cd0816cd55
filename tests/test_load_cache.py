"""The load cache (archlab/load_cache.py): a GGUF loaded with quant="keep" is kept once in the
cache and read back as the same model (the same logits, bit for bit, as loading the file), a
changed file gets a new entry, a damaged entry is loaded again and replaced."""

from __future__ import annotations

import os

import pytest
import torch

import archlab
from archlab import load_cache
from archlab.quant.modules import _Packed
from test_quant_native import q4_gguf  # noqa: F401 -- a tiny llama GGUF, Q4_1 linears and a Q8_0 embedding


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """The load cache on (conftest turns it off for other tests), in a cache of the test's own."""
    monkeypatch.setenv("ARCHLAB_CACHE", str(tmp_path))
    monkeypatch.setenv("ARCHLAB_LOAD_CACHE", "1")


def _load(path, calls):
    def load():
        calls.append(path)
        return archlab.load(path, quant="keep")
    return load


def _logits(model):
    with torch.no_grad():
        return model.eval()(torch.tensor([[5, 17, 42, 7, 3]]))


def test_a_cached_load_is_the_same_model(q4_gguf, tmp_path, monkeypatch):  # noqa: F811
    calls = []
    first = load_cache.load_kept(q4_gguf, None, _load(q4_gguf, calls))
    assert (load_cache.entry(q4_gguf, torch.float32) / "model.safetensors").is_file()
    again = load_cache.load_kept(q4_gguf, None, _load(q4_gguf, calls))
    assert len(calls) == 1  # the second came from the cache
    assert again.config == first.config
    packed = [n for n, m in again.named_modules() if isinstance(m, _Packed)]
    assert packed and packed == [n for n, m in first.named_modules() if isinstance(m, _Packed)]
    assert torch.equal(_logits(again), _logits(archlab.load(q4_gguf, quant="keep")))


def test_a_changed_file_gets_a_new_entry(q4_gguf, tmp_path, monkeypatch):  # noqa: F811
    before = load_cache.entry(q4_gguf, torch.float32)
    st = os.stat(q4_gguf)
    try:
        os.utime(q4_gguf, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        assert load_cache.entry(q4_gguf, torch.float32) != before
    finally:
        os.utime(q4_gguf, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert load_cache.entry(q4_gguf, torch.bfloat16) != before


def test_a_damaged_entry_is_loaded_again(q4_gguf, tmp_path, monkeypatch):  # noqa: F811
    calls = []
    load_cache.load_kept(q4_gguf, None, _load(q4_gguf, calls))
    (load_cache.entry(q4_gguf, torch.float32) / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        model = load_cache.load_kept(q4_gguf, None, _load(q4_gguf, calls))
    assert len(calls) == 2 and torch.equal(_logits(model), _logits(archlab.load(q4_gguf, quant="keep")))
    load_cache.load_kept(q4_gguf, None, _load(q4_gguf, calls))
    assert len(calls) == 2  # replaced by a good entry


def test_the_cache_can_be_turned_off(q4_gguf, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ARCHLAB_LOAD_CACHE", "0")
    load_cache.load_kept(q4_gguf, None, _load(q4_gguf, []))
    assert not (tmp_path / "loaded").exists()


def test_a_changed_archlab_gets_a_new_entry_and_old_ones_go(q4_gguf, tmp_path, monkeypatch):  # noqa: F811
    """A fix to the loader must not be hidden behind weights the old loader converted; and a
    file's entries beyond KEEP are removed, oldest first."""
    entries = []
    for version in ("a", "b", "c"):
        monkeypatch.setattr(load_cache, "code_hash", lambda v=version: v)
        entries.append(load_cache.entry(q4_gguf, torch.float32))
        load_cache.load_kept(q4_gguf, None, _load(q4_gguf, []))
        os.utime(entries[-1], (1e9 + len(entries), 1e9 + len(entries)))  # written in this order
    assert len(set(entries)) == 3
    assert sorted(p for p in (tmp_path / "loaded").iterdir()) == sorted(entries[-load_cache.KEEP:])


def test_generate_writes_then_reads_the_cache(q4_gguf, tmp_path, monkeypatch, capsys):  # noqa: F811
    """`archlab generate` on a GGUF: the first run converts and keeps, the second reads the kept
    copy (the loader is not called) and prints the same text."""
    from archlab.cli import main
    from archlab.quant import native

    if not native.available():
        pytest.skip(f"quant keep is the default only with the C kernel: {native.why_unavailable()}")
    # byte prompt ids are not this GGUF's vocabulary, but any ids < its vocab size generate
    monkeypatch.setattr(archlab, "load_tokenizer", lambda path: __import__("archlab.tokenizer").tokenizer.byte_tokenizer())
    assert main(["generate", str(q4_gguf), "ab", "--max-new-tokens", "4"]) == 0
    first = capsys.readouterr().out
    assert load_cache.entry(q4_gguf, torch.float32).is_dir()
    monkeypatch.setattr(archlab, "load", lambda *a, **k: pytest.fail("loaded the file again"), raising=False)
    assert main(["generate", str(q4_gguf), "ab", "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out == first


@pytest.mark.parametrize("pre", ["llama-bpe", "qwen2"])
def test_a_cached_tokenizer_equals_hf(tmp_path, pre):
    """The tokenizer.json copy of a GGUF vocabulary, read back, encodes as HF's tokenizer of the
    GGUF file does (BOS added or not, as the file says), with the same chat template and stops."""
    transformers = pytest.importorskip("transformers")
    from test_tokenizer import TEXTS, _tiny_gguf_vocab

    path = _tiny_gguf_vocab(tmp_path / "tok.gguf", pre, add_bos=(pre == "llama-bpe"))
    calls = []
    first = load_cache.load_tokenizer_kept(path, lambda: calls.append(1) or archlab.load_tokenizer(path))
    cached = load_cache.load_tokenizer_kept(path, lambda: calls.append(1) or archlab.load_tokenizer(path))
    assert calls == [1] and (load_cache.entry(path, None, "tokenizers") / "tokenizer.json").is_file()
    ref = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
    for text in [*TEXTS.values(), "don't WE'LL 1234567 12 quick\r\n\r\n  fox!!\n"]:
        assert cached.encode_prompt(text) == ref.encode(text, add_special_tokens=True), (pre, text)
        assert cached.decode(cached.encode(text)) == text
    m = [{"role": "user", "content": "hi"}]
    assert cached.apply_chat_template(m) == first.apply_chat_template(m) and cached.stop_ids == first.stop_ids


def test_a_tokenizer_that_does_not_round_trip_is_not_kept(tmp_path, monkeypatch):
    from test_tokenizer import _tiny_gguf_vocab

    path = _tiny_gguf_vocab(tmp_path / "tok.gguf", "qwen2", add_bos=False)
    monkeypatch.setattr(load_cache, "_same_tokenizer", lambda a, b: False)
    load_cache.load_tokenizer_kept(path, lambda: archlab.load_tokenizer(path))
    assert not load_cache.entry(path, None, "tokenizers").exists()
