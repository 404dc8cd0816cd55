"""BOS/EOS around prompts, as the tokenizer's config says, on every CLI path: `archlab generate`
(plain and --chat) and `archlab chat` encode a plain prompt as HF's tokenizer(text) does and a
chat template's output as HF's apply_chat_template does, so a model that needs its BOS (Gemma)
gets exactly one."""

from __future__ import annotations

import json

import pytest

import archlab
from gguf_convert import write_gguf
from hf_reference import make_hf
from test_tokenizer_spm import add_spm_vocab, write_spm_vocab

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def gemma_gguf(tmp_path_factory):
    """A tiny Gemma 3 GGUF with its SentencePiece vocabulary (BOS added by the file's flag)."""
    path = tmp_path_factory.mktemp("gemma") / "tiny-gemma3.gguf"
    n = add_spm_vocab(__import__("gguf").GGUFWriter(str(path.with_suffix(".probe")), "gemma3"), "gemma3")
    config = transformers.Gemma3TextConfig(vocab_size=n, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                           num_attention_heads=2, num_key_value_heads=1, head_dim=256,
                                           query_pre_attn_scalar=256, max_position_embeddings=64, sliding_window=8)
    return write_gguf(path, "gemma3", make_hf(config, seed=0), vocab=lambda w: add_spm_vocab(w, "gemma3", add_bos=True))


def _prompts_seen(monkeypatch) -> list[list[int]]:
    seen: list[list[int]] = []

    def stream(model, ids, *args, **kwargs):
        seen.append(list(ids))
        yield from ()

    def chat_stream(session, ids, turn):  # archlab chat's session: the prompt of each turn
        seen.append(list(ids))
        yield from ()

    monkeypatch.setattr(archlab, "stream", stream)
    monkeypatch.setattr("archlab.chat_session.ChatSession._stream", chat_stream)
    return seen


def test_cli_generate_and_chat_start_with_one_bos(gemma_gguf, monkeypatch, capsys):
    from archlab.cli import main

    tok = archlab.load_tokenizer(gemma_gguf)
    assert tok.adds_bos and tok.bos_token == "<bos>"
    seen = _prompts_seen(monkeypatch)
    assert main(["generate", str(gemma_gguf), "the quick fox", "--max-new-tokens", "2"]) == 0
    assert main(["generate", str(gemma_gguf), "the quick fox", "--chat", "--max-new-tokens", "2"]) == 0
    lines = iter(["the quick fox", "/bye"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert main(["chat", str(gemma_gguf), "--max-new-tokens", "2"]) == 0
    capsys.readouterr()
    plain, chat, session = seen
    assert plain == [tok.bos_id, *tok.encode("the quick fox")]
    # the template writes {{ bos_token }} itself: one BOS, not two
    rendered = tok.apply_chat_template([{"role": "user", "content": "the quick fox"}])
    assert rendered.startswith("<bos><start_of_turn>user")
    assert chat == session == tok.encode(rendered) and chat.count(tok.bos_id) == 1


def test_encode_prompt_equals_hf(tmp_path):
    """Plain prompts as HF's tokenizer(text), templated ones as HF's apply_chat_template(tokenize=True);
    a template without BOS gets the one the tokenizer adds."""
    for arch, add_bos, add_eos in (("llama", None, False), ("llama", False, True), ("gemma3", True, False)):
        path = write_spm_vocab(tmp_path / f"{arch}-{add_bos}.gguf", arch, add_bos, add_eos)
        ours = archlab.load_tokenizer(path)
        ref = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
        assert ours.adds_bos is (add_bos is not False)
        text = "Hello  world, 1234 ünïcödé"
        assert ours.encode_prompt(text) == ref(text)["input_ids"]
        assert (ours.encode_prompt(text)[-1] == ours.eos_id) is add_eos  # EOS too where the file says so, as HF
        msgs = [{"role": "user", "content": text}]
        want = ref.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
        want = want["input_ids"] if isinstance(want, dict) or hasattr(want, "keys") else want
        assert ours.encode_prompt(ours.apply_chat_template(msgs), templated=True) == want
        untemplated = ours.encode_prompt("<start_of_turn>user\nhi", templated=True)
        assert untemplated[:1] == ([ours.bos_id] if ours.adds_bos else untemplated[:1]) and untemplated.count(ours.bos_id) <= 1


@pytest.mark.parametrize("flags", [{"add_bos_token": True}, {"add_bos_token": False}, {"add_eos_token": True},
                                   {"add_bos_token": True, "add_eos_token": True}, {}])
def test_tokenizer_config_add_bos_eos_equal_hf(tmp_path, flags):
    """What encode adds equals HF's for a tokenizer.json directory whatever tokenizer_config.json's
    add_bos_token / add_eos_token say: HF 5.x keeps tokenizer.json's post-processor (here: BOS)."""
    tok = archlab.load_tokenizer(write_spm_vocab(tmp_path / "v.gguf"))
    tok.save(tmp_path / "dir")
    config = json.loads((tmp_path / "dir" / "tokenizer_config.json").read_text())
    (tmp_path / "dir" / "tokenizer_config.json").write_text(json.dumps({**config, **flags}))
    ours = archlab.load_tokenizer(tmp_path / "dir")
    ref = transformers.AutoTokenizer.from_pretrained(tmp_path / "dir")
    for text in ("hi there", "", " x"):
        assert ours.encode(text, add_special_tokens=True) == ref.encode(text, add_special_tokens=True), (flags, text)
    assert ours.adds_bos and ref.encode("hi")[0] == ours.bos_id
