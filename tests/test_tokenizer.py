"""archlab.load_tokenizer against HF transformers' tokenizers: the real SmolLM2 GGUF vocabulary,
small GGUF vocabularies for each pre-tokenizer family, tokenizer.json directories, chat templates."""

from __future__ import annotations

import subprocess
import sys

import pytest

import archlab
from archlab.chat_template import ChatTemplateError
from test_fetch import fetch_smollm2

transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")

TEXTS = {
    "english": "Hello, world! How's it going? They'll say we're fine, I'd think.",
    "code": "def f(x):\n\tif x:\n\t\treturn x  # tab\n    else:\n        return [i ** 2 for i in range(10)]\n",
    "chinese": "你好，世界。今天天气很好！",
    "russian": "Привет, мир! Как дела?",
    "arabic": "مرحبا بالعالم، كيف حالك؟",
    "emoji": "emoji 🎉👍🏽 and a family 👨‍👩‍👧 ok",
    "whitespace": "   leading and trailing   \n\n\n\t \n  \r\n x  y",
    "digits": "1234567890 3.14159 2024-01-01 x1 1e10 0x1F $99.99",
    "special": "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<|endoftext|>",
    "empty": "",
    "one-space": " ",
    "newline": "\n",
}


@pytest.fixture(scope="module")
def smollm2():
    path = fetch_smollm2()
    ours = archlab.load_tokenizer(path)
    ref = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    return ours, ref


# ---- SmolLM2 (byte-level BPE, pre-tokenizer "smollm") ---------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("kind", list(TEXTS))
def test_smollm2_ids_equal_hf(smollm2, kind):
    ours, ref = smollm2
    text = TEXTS[kind]
    assert ours.encode(text) == ref.encode(text, add_special_tokens=False)
    assert ours.encode(text, add_special_tokens=True) == ref.encode(text, add_special_tokens=True)


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(TEXTS))
def test_smollm2_decode_roundtrip(smollm2, kind):
    ours, ref = smollm2
    text = TEXTS[kind]
    ids = ours.encode(text)
    assert ours.decode(ids) == text
    assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)


@pytest.mark.slow
def test_smollm2_non_ascii_numerals_split_like_llama_cpp(smollm2):
    """The GGUF names its pre-tokenizer "smollm": llama.cpp (src/llama-vocab.cpp) first isolates
    every \\p{N} character, then applies GPT-2's regex. HF's GGUF converter does not know
    "smollm" and skips the first split, which shows only on numerals that are not ASCII digits
    (" ½" is one piece for it, two for llama.cpp). The reference here: llama.cpp's two regexes
    applied with the `regex` module, each piece then encoded by HF's BPE."""
    regex = pytest.importorskip("regex")
    ours, ref = smollm2
    gpt2 = regex.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")
    text = "x² = 2³ ½ Ⅻ ٣٤ cafe 12"
    pieces = [p for chunk in regex.split(r"(\p{N})", text) if chunk for p in gpt2.findall(chunk)]
    expected = [i for p in pieces for i in ref.encode(p, add_special_tokens=False)]
    assert ours.encode(text) == expected
    assert ref.encode(text, add_special_tokens=False) != expected  # the HF converter's divergence, pinned


@pytest.mark.slow
def test_smollm2_special_tokens_and_attributes(smollm2):
    ours, ref = smollm2
    assert ours.encode("<|im_start|>") == [ref.convert_tokens_to_ids("<|im_start|>")]
    assert ours.bos_id == ref.bos_token_id and ours.eos_id == ref.eos_token_id
    assert ours.vocab_size == len(ref) == 49152
    assert ref.convert_tokens_to_ids("<|im_end|>") in ours.stop_ids
    assert ref.convert_tokens_to_ids("<|endoftext|>") in ours.stop_ids
    assert ref.convert_tokens_to_ids("<|im_start|>") not in ours.stop_ids
    assert ours.decode(ours.encode("<|im_start|>hi<|im_end|>"), skip_special_tokens=True) == "hi"
    assert ours.chat_template == ref.chat_template


CONVERSATIONS = {
    "one-user": [{"role": "user", "content": "What is 2+2?"}],
    "system-multi-turn": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! 你好"},
        {"role": "user", "content": "Write code:\n\tx = 1"},
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("gen", [True, False], ids=["gen-prompt", "no-gen-prompt"])
@pytest.mark.parametrize("conv", list(CONVERSATIONS))
def test_smollm2_chat_template_equals_hf(smollm2, conv, gen):
    ours, ref = smollm2
    msgs = CONVERSATIONS[conv]
    expected = ref.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
    assert ours.apply_chat_template(msgs, add_generation_prompt=gen) == expected
    assert ours.encode(expected) == ref.encode(expected, add_special_tokens=False)


# ---- chat template rendering, against HF's renderer, on a template using its features ----------

TEMPLATE = (
    "{{ bos_token }}{% set ns = namespace(n=0) %}"
    "{% for m in messages %}{% if m.role == 'skip' %}{% continue %}{% endif %}"
    "{% set ns.n = ns.n + 1 %}\n"
    "  [{{ m.role | upper }}] {{ m.content | trim }}{% if m.meta is defined %} {{ m.meta | tojson }}{% endif %}\n"
    "{% if loop.last %}{{ eos_token }}{% endif %}{% endfor %}"
    "({{ ns.n }}){% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.mark.slow
def test_template_features_equal_hf(smollm2):
    ours, ref = smollm2
    msgs = [
        {"role": "user", "content": "  a <b> & 'c'  ", "meta": {"k": "ü<>", "n": [1, 2]}},
        {"role": "skip", "content": "x"},
        {"role": "assistant", "content": "ok"},
    ]
    ours.chat_template = TEMPLATE
    try:
        got = ours.apply_chat_template(msgs)
    finally:
        ours.chat_template = ref.chat_template
    assert got == ref.apply_chat_template(msgs, chat_template=TEMPLATE, tokenize=False, add_generation_prompt=True)


@pytest.mark.slow
def test_template_raise_exception_and_sandbox(smollm2):
    ours, _ = smollm2
    saved = ours.chat_template
    try:
        ours.chat_template = "{% if messages[0].role != 'user' %}{{ raise_exception('first must be user') }}{% endif %}ok"
        # archlab's error names the template's source (chat_template.py), where HF raises jinja's TemplateError
        with pytest.raises(ChatTemplateError, match="raised an error: first must be user$"):
            ours.apply_chat_template([{"role": "system", "content": "x"}])
        assert ours.apply_chat_template([{"role": "user", "content": "x"}]) == "ok"
        ours.chat_template = "{{ messages.__class__.__mro__ }}"
        with pytest.raises(ChatTemplateError, match="SecurityError: access to attribute '__class__'"):
            ours.apply_chat_template([{"role": "user", "content": "x"}])
    finally:
        ours.chat_template = saved


# ---- small GGUF vocabularies, one per pre-tokenizer family HF also knows ------------------------

CORPUS = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "def main():\n    return 42\n\n",
    "Numbers like 12345 and 3.14 and 1,000,000 appear often; so do words like don't and we'll.",
    "Привет мир. 你好世界。 مرحبا",
] * 5


def _tiny_gguf_vocab(path, pre: str, add_bos: bool | None, hf_json: str | None = None):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=420, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=specials, show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    import json

    model = json.loads(tok.to_str())["model"]
    tokens = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t in specials else gguf.TokenType.NORMAL for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(tokens.index("<|im_start|>"))
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    if add_bos is not None:
        w.add_add_bos_token(add_bos)
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}")
    if hf_json is not None:
        w.add_string("tokenizer.huggingface.json", hf_json)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("pre", ["default", "llama-bpe", "qwen2"])
def test_tiny_gguf_vocab_equals_hf(tmp_path, pre):
    path = _tiny_gguf_vocab(tmp_path / "tok.gguf", pre, add_bos=(pre == "llama-bpe"))
    ours = archlab.load_tokenizer(path)
    ref = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
    for text in [*TEXTS.values(), "don't WE'LL 1234567 12 quick\r\n\r\n  fox!!\n"]:
        assert ours.encode(text) == ref.encode(text, add_special_tokens=False), (pre, text)
        assert ours.encode(text, add_special_tokens=True) == ref.encode(text, add_special_tokens=True), (pre, text)
        assert ours.decode(ours.encode(text)) == text


@pytest.mark.parametrize("pre,adds_bos", [("llama-bpe", True), ("qwen2", False), ("default", False)])
def test_gguf_add_bos_default_follows_llama_cpp(tmp_path, pre, adds_bos):
    """With no tokenizer.ggml.add_bos_token in the file, llama.cpp (src/llama-vocab.cpp) adds BOS
    for the Llama 3 pre-tokenizer group and not for the others."""
    tok = archlab.load_tokenizer(_tiny_gguf_vocab(tmp_path / "tok.gguf", pre, add_bos=None))
    plain = tok.encode("hello world")
    assert tok.encode("hello world", add_special_tokens=True) == ([tok.bos_id] if adds_bos else []) + plain


def test_reading_a_gguf_vocabulary_needs_no_torch(tmp_path):
    """The tokenizer reads GGUF files through the parser alone (io/gguf/reader.py): a vocabulary
    is read, and text encoded, in a process that never imports torch."""
    path = _tiny_gguf_vocab(tmp_path / "tok.gguf", "default", add_bos=None)
    code = (
        "import sys\n"
        "from archlab.tokenizer import load_tokenizer\n"
        f"tok = load_tokenizer({str(path)!r})\n"
        "assert tok.decode(tok.encode('hello world')) == 'hello world'\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---- HF tokenizer.json directories --------------------------------------------------------------

@pytest.mark.slow
def test_tokenizer_json_directory_equals_hf(smollm2, tmp_path):
    ours_gguf, ref = smollm2
    ref.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    saved = transformers.AutoTokenizer.from_pretrained(tmp_path)
    for source in (tmp_path, tmp_path / "tokenizer.json"):
        tok = archlab.load_tokenizer(source)
        for text in TEXTS.values():
            assert tok.encode(text) == saved.encode(text, add_special_tokens=False)
            assert tok.decode(tok.encode(text)) == text
    tok = archlab.load_tokenizer(tmp_path)
    assert (tok.bos_id, tok.eos_id) == (saved.bos_token_id, saved.eos_token_id)
    msgs = CONVERSATIONS["system-multi-turn"]
    assert tok.apply_chat_template(msgs) == saved.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert tok.stop_ids == ours_gguf.stop_ids


def test_tokenizer_errors(tmp_path):
    with pytest.raises(archlab.CheckpointError, match="no such file"):
        archlab.load_tokenizer(tmp_path / "absent.gguf")
    with pytest.raises(archlab.CheckpointError, match="no tokenizer.json"):
        archlab.load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(archlab.CheckpointError, match="not a readable tokenizer.json"):
        archlab.load_tokenizer(tmp_path / "tokenizer.json")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all")
    with pytest.raises(archlab.CheckpointError, match="not a GGUF file"):
        archlab.load_tokenizer(bad)


def test_unsupported_gguf_pre_tokenizer(tmp_path):
    path = _tiny_gguf_vocab(tmp_path / "tok.gguf", "no-such-pre", add_bos=False)
    with pytest.raises(archlab.CheckpointError, match=r"tokenizer\.ggml\.pre 'no-such-pre' is not supported; supported: .*smollm"):
        archlab.load_tokenizer(path)


@pytest.mark.slow
def test_gguf_with_embedded_tokenizer_json_uses_it(tmp_path, smollm2):
    """A GGUF that embeds the original tokenizer.json (tokenizer.huggingface.json) is read from it,
    not rebuilt from the vocabulary; here the embedded one differs (SmolLM2's) and must win."""
    from tokenizers import Tokenizer as Backend

    _, ref = smollm2
    embedded = ref.backend_tokenizer.to_str()
    path = _tiny_gguf_vocab(tmp_path / "tok.gguf", "default", add_bos=False, hf_json=embedded)
    ours = archlab.load_tokenizer(path)
    expected = Backend.from_str(embedded)
    for text in TEXTS.values():
        assert ours.encode(text) == expected.encode(text, add_special_tokens=False).ids


@pytest.mark.slow
def test_no_chat_template_and_missing_specials(tmp_path, smollm2):
    _, ref = smollm2
    (tmp_path / "tokenizer.json").write_text(ref.backend_tokenizer.to_str())
    tok = archlab.load_tokenizer(tmp_path)  # no tokenizer_config.json: no template, no bos/eos
    assert tok.chat_template is None and tok.bos_id is None and tok.eos_id is None
    with pytest.raises(ValueError, match="has no chat template"):
        tok.apply_chat_template([{"role": "user", "content": "x"}])
    tok.chat_template = "[{{ bos_token }}]{{ messages[0].content }}"
    assert tok.apply_chat_template([{"role": "user", "content": "x"}]) == "[]x"  # undefined, as in HF
