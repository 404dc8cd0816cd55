"""Tokenizers: from a GGUF file's vocabulary, or from an HF tokenizer.json (and its directory).

Either way the work is done by the `tokenizers` library; this module only assembles it.
A GGUF file carries no tokenizer.json, only llama.cpp's description of one (tokens, token
types, merges, the name of a pre-tokenizer, special token ids, a chat template), so for
GGUF files we rebuild the tokenizer from those parts:

    tokens + merges        -> byte-level BPE model (GPT-2's byte-to-unicode spelling)
    tokenizer.ggml.pre     -> how text is split before BPE (one regex set per name, as llama.cpp)
    token types            -> control tokens become special added tokens, user-defined ones plain
                              added tokens, so both are matched whole in the text
    add_bos/add_eos_token  -> a post-processor used when encode(add_special_tokens=True)

Chat templates are rendered the way HF transformers renders them: a sandboxed jinja2
environment with trim_blocks/lstrip_blocks, `raise_exception`, a non-escaping `tojson`,
and the special tokens available by name (chat_template.py, with limits against hostile templates).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers, processors
from tokenizers import Tokenizer as _Backend

from .chat_template import render as render_chat_template
from .io import CheckpointError
from .io.files import CONFIG_CAP, TOKENIZER_CAP, read_json, read_text
from . import tokenizer_checks as checks
from .sentencepiece_gguf import GEMMA_ARCHITECTURES, merge_pairs, sentencepiece_backend

__all__ = ["Tokenizer", "load_tokenizer", "byte_tokenizer", "train_bpe", "tokenizer_from_spec", "BPE_MIN_VOCAB", "BPE_MAX_VOCAB"]

# Texts of tokens that end a turn, from llama.cpp's end-of-generation detection
# (src/llama-vocab.cpp, `special_eog_ids`: eot/eom ids plus tokens found by their text).
# Only special tokens of a vocabulary count, never ordinary text that happens to match.
_END_OF_TURN = (
    "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>", "<|return|>", "<|call|>",
)


class Tokenizer:
    """Text <-> token ids, plus the model's chat template and the ids that end a generation."""

    def __init__(
        self,
        backend: _Backend,
        *,
        bos_token: str | None = None,
        eos_token: str | None = None,
        unk_token: str | None = None,
        pad_token: str | None = None,
        chat_template: str | None = None,
        stop_ids: Iterable[int] = (),
        vocab_size: int | None = None,
        source: str = "",
    ):
        self.backend = backend
        self.source = source
        self.bos_token, self.eos_token, self.unk_token, self.pad_token = bos_token, eos_token, unk_token, pad_token
        self.bos_id = self._id_of(bos_token, "bos_token")
        self.eos_id = self._id_of(eos_token, "eos_token")
        self.chat_template = chat_template
        self.vocab_size = vocab_size if vocab_size is not None else backend.get_vocab_size(with_added_tokens=True)
        special = {t.content for t in backend.get_added_tokens_decoder().values() if t.special}
        stops = set(stop_ids)
        stops |= {i for text in _END_OF_TURN if text in special and (i := backend.token_to_id(text)) is not None}
        if self.eos_id is not None:
            stops.add(self.eos_id)
        self.stop_ids = frozenset(stops)

    def _id_of(self, token: str | None, what: str) -> int | None:
        if token is None:
            return None
        i = self.backend.token_to_id(token)
        if i is None:
            raise CheckpointError(f"{self.source}: {what} {token!r} is not in the vocabulary")
        return i

    def __repr__(self) -> str:
        return f"Tokenizer({self.source!r}, vocab_size={self.vocab_size}, bos={self.bos_token!r}, eos={self.eos_token!r})"

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of `text`. Special tokens written in the text (`<|im_start|>`) become their ids;
        add_special_tokens=True also adds what the tokenizer adds around a sequence (e.g. BOS)."""
        if not isinstance(text, str):
            raise TypeError(f"encode: expected a str, got {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:  # tokenizers' own TypeError ("TextInputSequence must be str") names nothing
            raise ValueError(f"text to encode: not valid Unicode (a lone surrogate {text[e.start]!r} at character "
                             f"{e.start}: bytes that were not UTF-8, e.g. in a command-line argument)") from None
        return self.backend.encode(text, add_special_tokens=add_special_tokens).ids

    @property
    def adds_bos(self) -> bool:
        """Whether encode(add_special_tokens=True) puts BOS in front, as the tokenizer's config
        says (GGUF tokenizer.ggml.add_bos_token, or tokenizer.json's post-processor)."""
        if self.bos_id is None:
            return False
        ids = self.backend.encode("a", add_special_tokens=True).ids
        return len(ids) > len(self.backend.encode("a", add_special_tokens=False).ids) and ids[0] == self.bos_id

    def encode_prompt(self, text: str, templated: bool = False) -> list[int]:
        """The ids a model is prompted with. Plain text gets the special tokens the tokenizer adds
        around a sequence (BOS for Llama 2, Gemma ...), as HF's tokenizer(text) and llama.cpp
        (common_tokenize with add_special) give them. A chat template's output (`templated`) is
        encoded as HF's apply_chat_template does, without them, since templates write their own
        BOS; where a template writes none and the tokenizer adds one, it is put in front, so the
        model sees BOS exactly once either way."""
        if not templated:
            return self.encode(text, add_special_tokens=True)
        ids = self.encode(text)
        if self.adds_bos and ids[:1] != [self.bos_id]:
            ids = [self.bos_id, *ids]
        return ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"decode: token ids must be in [0, {self.vocab_size}), got {bad[:5]}")
        return self.backend.decode(ids, skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def id_to_token(self, i: int) -> str | None:
        return self.backend.id_to_token(i)

    def save(self, directory: str | Path) -> Path:
        """Write tokenizer.json and tokenizer_config.json into `directory` (created when missing),
        so that load_tokenizer(directory) gives the same ids, special tokens and chat template.
        Each file is replaced atomically; other files in the directory are left alone."""
        from .io.atomic import atomic_file

        directory = Path(directory).expanduser()
        directory.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            k: v for k, v in (("bos_token", self.bos_token), ("eos_token", self.eos_token),
                              ("unk_token", self.unk_token), ("pad_token", self.pad_token)) if v is not None
        }
        if self.chat_template:
            config["chat_template"] = self.chat_template
        if self.vocab_size != self.backend.get_vocab_size(with_added_tokens=True):
            # A GGUF vocabulary counts every row of the embedding, even a duplicate token text
            # the backend keeps once; the model's size must survive the round trip.
            config[_VOCAB_SIZE_KEY] = self.vocab_size
        with atomic_file(directory / "tokenizer.json", "w") as f:
            f.write(self.backend.to_str(pretty=False))
        with atomic_file(directory / "tokenizer_config.json", "w") as f:
            json.dump(config, f, ensure_ascii=False, indent=1)
        # Stop ids that loading would not find by itself (a GGUF file's eot/eom ids) go where
        # load_tokenizer reads extra stops from; written only then, since in a model directory
        # generation_config.json has other settings we must not replace.
        derived = Tokenizer(self.backend, eos_token=self.eos_token, vocab_size=self.vocab_size).stop_ids
        if self.stop_ids - derived:
            with atomic_file(directory / "generation_config.json", "w") as f:
                json.dump({"eos_token_id": sorted(self.stop_ids)}, f, indent=1)
        return directory

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True, **kwargs: Any) -> str:
        """The conversation rendered with the model's chat template (a string, not yet token ids)."""
        if not self.chat_template:
            raise ValueError(f"{self.source}: this tokenizer has no chat template")
        if not isinstance(messages, (list, tuple)) or not all(isinstance(m, dict) for m in messages):
            raise TypeError("apply_chat_template: messages must be a list of dicts like {'role': 'user', 'content': '...'}")
        # Like HF, a special token the tokenizer lacks is left undefined (renders as ""), not "None".
        specials = {"bos_token": self.bos_token, "eos_token": self.eos_token, "unk_token": self.unk_token, "pad_token": self.pad_token}
        variables = {**{k: v for k, v in specials.items() if v is not None}, "tools": None, "documents": None, **kwargs}
        return render_chat_template(
            self.chat_template, self.source, messages=_plain(list(messages)), add_generation_prompt=add_generation_prompt,
            **_plain(variables),
        )


# ---- chat templates -------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    # Templates are untrusted code: they only ever see plain JSON-like data, never caller objects
    # whose methods the sandbox cannot vet.
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    for base in (bool, int, float, str):
        if isinstance(value, base):
            return base(value)
    return f"<{type(value).__name__}>"


# ---- GGUF vocabularies ------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _byte_spelling() -> dict[int, str]:
    """GPT-2's byte -> printable character map: printable Latin-1 bytes stand for themselves,
    the other 68 are shifted to code points 256.. so every byte is a visible character."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    spelling = {b: chr(b) for b in keep}
    shifted = 0
    for b in range(256):
        if b not in spelling:
            spelling[b] = chr(256 + shifted)
            shifted += 1
    return spelling


# llama.cpp's pre-tokenizer regexes by `tokenizer.ggml.pre` (src/llama-vocab.cpp, the
# `regex_exprs` of each LLAMA_VOCAB_PRE_TYPE_*). GPT-2's own regex is what tokenizers'
# ByteLevel(use_regex=True) applies, so families built on it only add a split in front.
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@dataclass(frozen=True)
class _PreTokenizer:
    split: str | None  # a regex applied first (isolated), or None
    gpt2_regex: bool  # then GPT-2's regex (inside ByteLevel), or only the byte mapping
    ignore_merges: bool = False  # a word that is itself a token is taken whole (Llama 3)
    add_bos: bool = False  # llama.cpp's default when the file has no tokenizer.ggml.add_bos_token

    def build(self):
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=self.gpt2_regex)
        if self.split is None:
            return byte_level
        return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(self.split), behavior="isolated"), byte_level])


_GPT2 = _PreTokenizer(None, gpt2_regex=True)
_DIGITS_THEN_GPT2 = _PreTokenizer(r"\p{N}", gpt2_regex=True)
_LLAMA3 = _PreTokenizer(_LLAMA3_SPLIT, gpt2_regex=False, ignore_merges=True, add_bos=True)
_QWEN2 = _PreTokenizer(_QWEN2_SPLIT, gpt2_regex=False)
_PRE_TOKENIZERS = {
    "default": _GPT2, "gpt-2": _GPT2, "gpt2": _GPT2, "mpt": _GPT2, "olmo": _GPT2, "jais": _GPT2,
    "smollm": _DIGITS_THEN_GPT2, "starcoder": _DIGITS_THEN_GPT2, "refact": _DIGITS_THEN_GPT2,
    "command-r": _DIGITS_THEN_GPT2, "codeshell": _DIGITS_THEN_GPT2, "exaone": _DIGITS_THEN_GPT2,
    "minerva-7b": _DIGITS_THEN_GPT2,
    "llama3": _LLAMA3, "llama-bpe": _LLAMA3, "llama-v3": _LLAMA3, "falcon3": _LLAMA3, "falcon-h1": _LLAMA3,
    "pixtral": _LLAMA3, "midm-2.0": _LLAMA3, "lfm2": _LLAMA3,
    "qwen2": _QWEN2, "deepseek-r1-qwen": _QWEN2, "stablelm2": _QWEN2, "megrez": _QWEN2,
}

# llama.cpp's token types (gguf.TokenType)
_CONTROL, _USER_DEFINED = 3, 4


def _gguf_byte_level_bpe(
    path: Path, tokens: list[str], types: list[int], merges: list[str], pre: str,
    add_bos: bool | None, add_eos: bool, bos: str | None, eos: str | None,
) -> _Backend:
    if pre not in _PRE_TOKENIZERS:
        raise CheckpointError(
            f"{path}: tokenizer.ggml.pre {pre!r} is not supported; supported: {', '.join(sorted(_PRE_TOKENIZERS))}"
        )
    spec = _PRE_TOKENIZERS[pre]
    if add_bos is None:
        add_bos = spec.add_bos
    spelling = _byte_spelling()
    alphabet = set(spelling.values())
    vocab: dict[str, int] = {}
    for i, (tok, ty) in enumerate(zip(tokens, types)):
        # Ordinary tokens are stored in the byte spelling already; a few converters store some
        # (e.g. added tokens that were not special) as plain text, which we respell. Control and
        # user-defined tokens are matched as plain text, so they keep their text.
        if ty not in (_CONTROL, _USER_DEFINED) and not set(tok) <= alphabet:
            tok = "".join(spelling[b] for b in tok.encode("utf-8"))
        vocab.setdefault(tok, i)
    pairs = merge_pairs(path, merges, vocab)
    backend = _Backend(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False, ignore_merges=spec.ignore_merges))
    backend.pre_tokenizer = spec.build()
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True) for t, ty in zip(tokens, types) if ty == _CONTROL])
    backend.add_tokens([AddedToken(t, normalized=False, special=False) for t, ty in zip(tokens, types) if ty == _USER_DEFINED])
    backend.post_processor = _bos_eos_processor(backend, bos if add_bos else None, eos if add_eos else None)
    return backend


def _bos_eos_processor(backend: _Backend, bos: str | None, eos: str | None):
    """What encode(add_special_tokens=True) adds: `bos` in front, `eos` behind (None: nothing)."""
    # a token outside the vocabulary is left out here; Tokenizer() then refuses it by name
    bos, eos = (t if t is not None and backend.token_to_id(t) is not None else None for t in (bos, eos))
    pieces = [bos] * (bos is not None) + ["$A"] + [eos] * (eos is not None)
    special = {t: backend.token_to_id(t) for t in pieces if t != "$A"}
    return processors.TemplateProcessing(single=" ".join(pieces), special_tokens=list(special.items()))


def _from_gguf(path: Path) -> Tokenizer:
    from .io.gguf.reader import GGUFFile  # the parser alone: no torch to read a vocabulary
    from .io.gguf.typed import field

    g = GGUFFile(path)
    tokens = field(g, "tokenizer.ggml.tokens", "a list of strings")
    if not tokens:
        raise CheckpointError(f"{path}: GGUF metadata field 'tokenizer.ggml.tokens' is empty; a vocabulary has at least one token")
    kind = field(g, "tokenizer.ggml.model", "a string")
    types = field(g, "tokenizer.ggml.token_type", "a list of integers", None) or [1] * len(tokens)
    if len(types) != len(tokens):
        raise CheckpointError(f"{path}: tokenizer.ggml.token_type has {len(types)} entries for {len(tokens)} tokens")

    def token(key: str) -> str | None:
        i = field(g, f"tokenizer.ggml.{key}", "an integer", None)
        if i is None:
            return None
        if not 0 <= i < len(tokens):
            raise CheckpointError(f"{path}: tokenizer.ggml.{key} = {i} is outside the vocabulary of {len(tokens)} tokens")
        return tokens[int(i)]

    bos, eos = token("bos_token_id"), token("eos_token_id")
    if g.has("tokenizer.huggingface.json"):
        # Some converters embed the original tokenizer.json: the most faithful source there is.
        text = field(g, "tokenizer.huggingface.json", "a string")
        try:
            backend = _Backend.from_str(text)
        except Exception as e:  # tokenizers raises a bare Exception for any bad tokenizer.json
            raise CheckpointError(f"{path}: tokenizer.huggingface.json is not a tokenizer.json tokenizers can read ({e})") from None
    elif kind == "gpt2":
        backend = _gguf_byte_level_bpe(
            path, tokens, types, field(g, "tokenizer.ggml.merges", "a list of strings"),
            field(g, "tokenizer.ggml.pre", "a string", "default"),
            field(g, "tokenizer.ggml.add_bos_token", "a bool", None), field(g, "tokenizer.ggml.add_eos_token", "a bool", False),
            bos, eos,
        )
    elif kind == "llama":
        if field(g, "tokenizer.ggml.add_space_prefix", "a bool", True) is False and g.architecture not in GEMMA_ARCHITECTURES:
            warnings.warn(
                f"{path}: tokenizer.ggml.add_space_prefix is false: llama.cpp puts no U+2581 in front of the text, but HF's "
                "GGUF tokenizer (LlamaTokenizer) does, and archlab's ids equal HF's; a text's first token may differ from llama.cpp's",
                stacklevel=3,
            )
        backend = sentencepiece_backend(
            path, g.architecture, tokens, types, field(g, "tokenizer.ggml.scores", "a list of finite numbers", None),
            field(g, "tokenizer.ggml.merges", "a list of strings", None),
            [t for t in (bos, eos, token("unknown_token_id"), token("padding_token_id")) if t is not None],
        )
        # llama.cpp and HF's GGUF loader add BOS to a SentencePiece vocabulary that does not say otherwise
        add_bos = field(g, "tokenizer.ggml.add_bos_token", "a bool", True)
        add_eos = field(g, "tokenizer.ggml.add_eos_token", "a bool", False)
        backend.post_processor = _bos_eos_processor(backend, bos if add_bos else None, eos if add_eos else None)
    else:
        raise CheckpointError(
            f"{path}: tokenizer.ggml.model {kind!r} is not supported yet; supported: gpt2 (byte-level BPE), llama (SentencePiece)"
        )
    stops = {i for key in ("eot_token_id", "eom_token_id") if (i := field(g, f"tokenizer.ggml.{key}", "an integer", None)) is not None}
    return Tokenizer(
        backend, bos_token=bos, eos_token=eos, unk_token=token("unknown_token_id"), pad_token=token("padding_token_id"),
        chat_template=field(g, "tokenizer.chat_template", "a string", None), stop_ids=stops, vocab_size=len(tokens), source=str(path),
    )


# ---- HF tokenizer.json ------------------------------------------------------------------------

def _read_json(path: Path) -> dict:
    # capped, regular files only (not /dev/zero, not a FIFO), resolving inside the tokenizer's folder
    return read_json(path, CONFIG_CAP, path.parent)


# Our own key in tokenizer_config.json (HF ignores keys it does not know); not "vocab_size",
# which HF tokenizer classes have as a read-only property.
_VOCAB_SIZE_KEY = "archlab_vocab_size"


def _present(path: Path) -> bool:
    # a side file that is there but is no regular file (a FIFO, a folder, a link to /dev/zero or
    # to nothing) is read, so that reading refuses it by name, instead of being passed over
    return path.exists() or path.is_symlink()


def _from_tokenizer_json(file: Path) -> Tokenizer:
    directory = file.parent
    try:
        # inside its folder like the side files: a tokenizer.json linked elsewhere is not this folder's
        text = read_text(file, TOKENIZER_CAP, directory)
        backend = _Backend.from_str(text)
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 -- tokenizers raises plain Exception on bad files
        raise CheckpointError(f"{file}: not a readable tokenizer.json ({e})") from None
    checks.check_ids(json.loads(text), backend, file)  # tokenizers read it: it is JSON, nested a little
    config: dict = {}
    origin: dict[str, Path] = {}  # which file each key came from, to name it in an error
    for name in ("special_tokens_map.json", "tokenizer_config.json"):  # the later wins
        if _present(directory / name):
            values = _read_json(directory / name)
            config.update(values)
            origin.update(dict.fromkeys(values, directory / name))
    specials = {
        key: checks.token_text(config.get(key), key, origin.get(key, file))
        for key in ("bos_token", "eos_token", "unk_token", "pad_token")
    }
    template = checks.chat_template(config.get("chat_template"), origin.get("chat_template", file))
    if _present(directory / "chat_template.jinja"):  # where transformers >= 4.43 saves it
        template = read_text(directory / "chat_template.jinja", CONFIG_CAP, directory)
    stops: set[int] = set()
    if _present(directory / "generation_config.json"):
        gen = directory / "generation_config.json"
        stops = checks.stop_ids(_read_json(gen).get("eos_token_id"), gen)
    # add_bos_token / add_eos_token of tokenizer_config.json are not read: HF (5.x) keeps the
    # post-processor of tokenizer.json, which says what encode adds (test_prompt_bos.py pins it)
    size = checks.vocab_size(config.get(_VOCAB_SIZE_KEY), _VOCAB_SIZE_KEY, origin.get(_VOCAB_SIZE_KEY, file),
                             backend.get_vocab_size(with_added_tokens=True))
    return Tokenizer(backend, **specials, chat_template=template, stop_ids=stops, vocab_size=size, source=str(file))


def load_tokenizer(path: str | Path) -> Tokenizer:
    """A tokenizer from a GGUF file, a tokenizer.json, or a directory holding tokenizer.json
    (with tokenizer_config.json for special tokens and the chat template, when present)."""
    p = Path(path).expanduser()
    if p.is_dir():
        if _present(p / "tokenizer.json"):
            return _from_tokenizer_json(p / "tokenizer.json")
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return _from_gguf(ggufs[0])
        raise CheckpointError(f"{p}: no tokenizer.json (and not exactly one .gguf file) in this directory")
    if not p.exists():
        raise CheckpointError(f"{p}: no such file or directory")
    if p.suffix == ".gguf":
        return _from_gguf(p)
    if p.suffix == ".json":
        return _from_tokenizer_json(p)
    raise CheckpointError(f"{p}: expected a .gguf file, a tokenizer.json, or a directory holding tokenizer.json")


# ---- tokenizers made here: bytes, and BPE trained on a corpus ---------------------------------

EOS_TEXT = "<|endoftext|>"
# A trained BPE needs its 256 bytes and the end-of-text token; above 2**20 ids the embedding
# alone of a small model is billions of parameters, surely a mistake for a corpus trained here.
BPE_MIN_VOCAB = 257
BPE_MAX_VOCAB = 1 << 20


def byte_tokenizer() -> Tokenizer:
    """256 ids, id b is byte b of the UTF-8 text. No special tokens: every id is a byte, so
    there is none spare for an end-of-text token."""
    spelling = _byte_spelling()
    # a BPE model without merges over GPT-2's byte spelling, which ByteLevel produces, is
    # exactly "one token per byte", in the library's own (fast, serializable) terms
    backend = _Backend(models.BPE(vocab={spelling[b]: b for b in range(256)}, merges=[], fuse_unk=False, byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    return Tokenizer(backend, source="byte")


def train_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE of exactly `vocab_size` ids trained on `texts`: id 0 is <|endoftext|>
    (the EOS, which also separates documents), then the 256 bytes, then the merges. GPT-2's
    pre-tokenizer regex; the same texts give the same tokenizer."""
    from tokenizers import trainers

    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TypeError(f"train_bpe: vocab_size must be an int, got {type(vocab_size).__name__}")
    if not BPE_MIN_VOCAB <= vocab_size <= BPE_MAX_VOCAB:
        raise ValueError(
            f"bpe vocab_size {vocab_size} is out of range: it must be at least {BPE_MIN_VOCAB} "
            f"(256 bytes + {EOS_TEXT}) and at most {BPE_MAX_VOCAB}"
        )
    if isinstance(texts, str):
        raise TypeError("train_bpe: texts must be an iterable of strings, not one string")
    backend = _Backend(models.BPE(fuse_unk=False, byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=0, special_tokens=[AddedToken(EOS_TEXT, normalized=False, special=True)],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    got = backend.get_vocab_size(with_added_tokens=True)
    if got != vocab_size:
        raise ValueError(
            f"bpe:{vocab_size}: the training text only has enough distinct pairs for {got} ids; "
            "give more text or ask for fewer ids"
        )
    return Tokenizer(backend, eos_token=EOS_TEXT, source=f"bpe:{vocab_size}")


SPEC_FORMS = "'byte', 'bpe:N' (N from 257 to 1048576), or a path to a tokenizer.json, a directory holding one, or a .gguf file"


def parse_bpe_spec(spec: str) -> int | None:
    """N of a 'bpe:N' spec (checked), or None for any other spec."""
    if not spec.startswith("bpe:"):
        return None
    n = spec[4:]
    if not n.isdigit():
        raise ValueError(f"tokenizer {spec!r}: expected bpe:N with N a whole number of ids, e.g. bpe:4096")
    if not BPE_MIN_VOCAB <= int(n) <= BPE_MAX_VOCAB:
        raise ValueError(f"tokenizer {spec!r}: N must be from {BPE_MIN_VOCAB} (256 bytes + {EOS_TEXT}) to {BPE_MAX_VOCAB}")
    return int(n)


def tokenizer_from_spec(spec: str | Path, texts: Iterable[str] | None = None) -> Tokenizer:
    """'byte' -> byte_tokenizer(); 'bpe:N' -> train_bpe(texts, N) (texts required); anything
    else is a path that load_tokenizer reads. Unknown -> ValueError listing the accepted forms."""
    if isinstance(spec, str):
        if spec == "byte":
            return byte_tokenizer()
        n = parse_bpe_spec(spec)
        if n is not None:
            if texts is None:
                raise ValueError(f"tokenizer {spec!r} is trained on the training text: pass texts=")
            return train_bpe(texts, n)
    p = Path(spec).expanduser()
    if not p.exists():
        raise ValueError(f"tokenizer {str(spec)!r}: not a known kind and no such file or directory; expected {SPEC_FORMS}")
    return load_tokenizer(p)
