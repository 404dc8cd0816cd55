"""Checks of what a tokenizer folder's side files say (issue 12): each value of a wrong type or an
absurd size is refused naming the file, the field and the value, never dropped or converted.

What is valid follows what HF writes and reads: a special token in tokenizer_config.json /
special_tokens_map.json is a string or an AddedToken dict with a string "content"
(transformers' tokenization_utils_base.py raises TypeError for anything else); a chat template
is a string or a list of {"name", "template"} strings (PreTrainedTokenizerBase.save_pretrained
writes that list for named templates); generation_config.json's eos_token_id is an id or a list
of ids (GenerationConfig)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .io import CheckpointError

# 16.7M ids: far above the largest published vocabulary (google/gemma-3's 262,144 tokens), far
# below an embedding that cannot be allocated; an id past it is damage, not a tokenizer.
MAX_ID = 1 << 24


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def token_text(value: Any, key: str, file: Path | str) -> str | None:
    """The text of special token `key` (bos_token, ...) as the file spells it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    raise CheckpointError(
        f"{file}: {key} is {value!r}; expected the token's text (a string) or an AddedToken object "
        'with a string "content"'
    )


def chat_template(value: Any, file: Path | str) -> str | None:
    """The default chat template: a string, or the "default" entry of named templates."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("template"), str) for t in value
    ):
        return {t["name"]: t["template"] for t in value}.get("default")
    raise CheckpointError(
        f"{file}: chat_template is {_short(value)}; expected a template (a string) or a list of "
        '{"name": ..., "template": ...} strings'
    )


def vocab_size(value: Any, key: str, file: Path | str, tokens: int) -> int | None:
    """archlab's own vocabulary size (the model's embedding rows): at least the tokens there are."""
    if value is None:
        return None
    if not _is_int(value) or not tokens <= value <= MAX_ID:
        raise CheckpointError(
            f"{file}: {key} is {_short(value)}; expected a whole number from the {tokens} tokens of the "
            f"tokenizer to {MAX_ID}"
        )
    return value


def stop_ids(value: Any, file: Path | str) -> set[int]:
    """generation_config.json's eos_token_id: an id, a list of ids, or null."""
    ids = value if isinstance(value, list) else [value]
    if value is None:
        return set()
    if not all(_is_int(i) and 0 <= i < MAX_ID for i in ids):
        raise CheckpointError(
            f"{file}: eos_token_id is {_short(value)}; expected a token id (a whole number from 0 to "
            f"{MAX_ID - 1}) or a list of them"
        )
    return set(ids)


def check_ids(data: Any, backend, file: Path | str) -> None:
    """Every id of tokenizer.json (`data`, which `backend` was read from) names one token, is below
    MAX_ID, and is the id the `tokenizers` library gives that token: it takes two tokens with one
    id without a word, and renumbers an added token whose id is past the vocabulary."""
    model = data.get("model") if isinstance(data, dict) else None
    vocab = model.get("vocab") if isinstance(model, dict) else None
    seen: dict[int, str] = {}
    for token, i in (vocab.items() if isinstance(vocab, dict) else ()):
        if not _is_int(i) or not 0 <= i < MAX_ID:
            raise CheckpointError(f"{file}: model.vocab gives {token!r} the id {i!r}; ids are whole numbers below {MAX_ID}")
        if i in seen:
            a, b = sorted((seen[i], token))
            raise CheckpointError(f"{file}: model.vocab gives id {i} to two tokens, {a!r} and {b!r}; each id must name one token")
        seen[i] = token
    for entry in data.get("added_tokens") or () if isinstance(data, dict) else ():
        content, i = (entry.get("content"), entry.get("id")) if isinstance(entry, dict) else (None, None)
        got = backend.token_to_id(content) if isinstance(content, str) else None
        if got != i:
            raise CheckpointError(
                f"{file}: added_tokens gives {content!r} the id {i!r}, but it has id {got} here (an id past the "
                "vocabulary is renumbered, one taken by another token is lost); each added token needs its own id"
            )


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 80 else s[:77] + "..."
