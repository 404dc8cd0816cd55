"""SentencePiece GGUF vocabularies (tokenizer.ggml.model "llama") against HF transformers' GGUF
tokenizer (AutoTokenizer.from_pretrained(..., gguf_file=...)): a Llama-style one (scores, byte
fallback <0xNN> tokens, the U+2581 space marker, BOS added by default) and a Gemma-style one
(whitespace tokens stored as spaces, merges in token order, control tokens of a chat format)."""

from __future__ import annotations

import json

import pytest

import archlab
from test_tokenizer import CORPUS, TEXTS

transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")
T = gguf.TokenType

MORE_TEXTS = [
    "don't WE'LL 1234567 12 quick\r\n\r\n  fox!!\n", "  two leading spaces", "trailing  ", "a\u2581marker", "<unk> and <s> inline",
    "ÿ þ ß ünïcödé 😀 ∑ 中", "<start_of_turn>user\nhi<end_of_turn>\n", "tab\tand\x00nul",
]


def _trained_pieces(n: int) -> list[str]:
    """Pieces of a BPE trained on CORPUS over the marker-spelled text, in merge order (the order a
    SentencePiece BPE model lists them, best first), then its single characters."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=n, show_progress=False))
    model = json.loads(tok.to_str())["model"]
    merged = ["".join(m if isinstance(m, list) else m.split(" ")) for m in model["merges"]]
    chars = [t for t in model["vocab"] if len(t) == 1]
    return list(dict.fromkeys(merged + chars))


def write_spm_vocab(path, arch: str = "llama", add_bos: bool | None = None, add_eos: bool = False, space_prefix=None):
    """A GGUF holding a SentencePiece vocabulary as llama.cpp's converter writes one
    (convert_hf_to_gguf.py, _create_vocab_sentencepiece / Gemma3Model.set_vocab)."""
    w = gguf.GGUFWriter(str(path), arch)
    add_spm_vocab(w, arch, add_bos, add_eos)
    if space_prefix is not None:
        w.add_add_space_prefix(space_prefix)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def add_spm_vocab(w, arch: str = "llama", add_bos: bool | None = None, add_eos: bool = False) -> int:
    """Writes the vocabulary's metadata with GGUFWriter `w`; returns the number of tokens."""
    pieces = _trained_pieces(300)
    bytes_ = [f"<0x{b:02X}>" for b in range(256)]
    if arch == "gemma3":
        head = [("<pad>", T.CONTROL), ("<eos>", T.CONTROL), ("<bos>", T.CONTROL), ("<unk>", T.UNKNOWN), ("<mask>", T.USER_DEFINED),
                ("<start_of_turn>", T.CONTROL), ("<end_of_turn>", T.CONTROL)]
        # Gemma's whitespace runs are tokens, stored as spaces in its GGUF files; its scores are not in merge order
        spaces = [(" " * n, T.NORMAL) for n in (2, 3, 4)]
        entries = head + [(b, T.BYTE) for b in bytes_] + spaces + [(p, T.NORMAL) for p in pieces]
        scores = [float((i * 7919) % 101) for i in range(len(entries))]
        ids = {"bos": 2, "eos": 1, "unk": 3, "pad": 0}
    else:
        head = [("<unk>", T.UNKNOWN), ("<s>", T.CONTROL), ("</s>", T.CONTROL), ("<think>", T.USER_DEFINED)]
        entries = head + [(b, T.BYTE) for b in bytes_] + [(p, T.NORMAL) for p in pieces]
        # SentencePiece BPE scores: 0 for special and byte pieces, then minus the merge rank
        scores = [0.0] * (len(head) + 256) + [-float(i) for i in range(len(pieces))]
        ids = {"bos": 1, "eos": 2, "unk": 0}
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([t for t, _ in entries])
    w.add_token_scores(scores)
    w.add_token_types([int(ty) for _, ty in entries])
    w.add_bos_token_id(ids["bos"])
    w.add_eos_token_id(ids["eos"])
    w.add_unk_token_id(ids["unk"])
    if "pad" in ids:
        w.add_pad_token_id(ids["pad"])
    if add_bos is not None:
        w.add_add_bos_token(add_bos)
    w.add_add_eos_token(add_eos)
    w.add_chat_template("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content }}<end_of_turn>\n{% endfor %}"
                        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
    return len(entries)


@pytest.mark.parametrize("arch,add_bos,add_eos", [("llama", None, False), ("llama", False, True), ("gemma3", True, False)])
def test_spm_gguf_vocab_equals_hf(tmp_path, arch, add_bos, add_eos):
    path = write_spm_vocab(tmp_path / "tok.gguf", arch, add_bos, add_eos)
    ours = archlab.load_tokenizer(path)
    ref = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
    assert ours.vocab_size == len(ref)
    assert (ours.bos_id, ours.eos_id) == (ref.bos_token_id, ref.eos_token_id)
    byte_fallbacks = 0
    for text in [*TEXTS.values(), *MORE_TEXTS]:
        ids = ours.encode(text)
        assert ids == ref.encode(text, add_special_tokens=False), (arch, text)
        assert ours.encode(text, add_special_tokens=True) == ref.encode(text, add_special_tokens=True), (arch, text)
        assert ours.decode(ids) == ref.decode(ids), (arch, text)
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True), (arch, text)
        byte_fallbacks += sum(1 for i in ids if ours.id_to_token(i).startswith("<0x"))
    assert byte_fallbacks > 10  # the texts exercise bytes missing from the vocabulary


def test_spm_bos_follows_the_file(tmp_path):
    """llama.cpp and HF add BOS to a SentencePiece vocabulary unless tokenizer.ggml.add_bos_token is false."""
    default = archlab.load_tokenizer(write_spm_vocab(tmp_path / "a.gguf"))
    assert default.encode("hi", add_special_tokens=True)[0] == default.bos_id == 1
    off = archlab.load_tokenizer(write_spm_vocab(tmp_path / "b.gguf", add_bos=False, add_eos=True))
    ids = off.encode("hi", add_special_tokens=True)
    assert ids[0] != off.bos_id and ids[-1] == off.eos_id


def test_spm_decode_roundtrip(tmp_path):
    """Text comes back whole, bytes outside the vocabulary included, except one leading space:
    LlamaTokenizer's decoder strips the space of the marker put in front, and so the one a text
    began with, and a U+2581 of the text itself, which decodes as the space it stands for (HF's
    decode does both the same; test_spm_gguf_vocab_equals_hf compares them)."""
    tok = archlab.load_tokenizer(write_spm_vocab(tmp_path / "tok.gguf"))
    for text in [t for t in (*TEXTS.values(), *MORE_TEXTS) if "<" not in t and "\u2581" not in t]:
        assert tok.decode(tok.encode(text)) == (text[1:] if text.startswith(" ") else text)


def test_spm_add_space_prefix_false_follows_hf_and_warns(tmp_path):
    """HF's GGUF tokenizer ignores tokenizer.ggml.add_space_prefix; llama.cpp honours it. The ids
    equal HF's, and the difference from llama.cpp is said."""
    path = write_spm_vocab(tmp_path / "tok.gguf", space_prefix=False)
    with pytest.warns(UserWarning, match=r"add_space_prefix is false: llama\.cpp puts no U\+2581"):
        ours = archlab.load_tokenizer(path)
    ref = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
    assert ours.encode("hello world") == ref.encode("hello world", add_special_tokens=False)
