"""SentencePiece vocabularies of GGUF files (tokenizer.ggml.model "llama": Llama 1/2, Mistral,
Gemma ...) as a `tokenizers` BPE, built the way HF transformers builds them from the same file
(integrations/gguf/gguf_tokenizer_mapping.py: LlamaTokenizer or, for the gemma architectures,
GemmaTokenizer over the file's tokens, with merges recovered from the vocabulary), so that the
ids equal HF's:

    tokens                 -> BPE vocabulary; bytes missing from it fall back to the <0xNN> tokens
    scores (or, for Gemma, the tokens' order) -> merges, best first (generate_merges)
    the space marker U+2581 -> Llama: Metaspace, a marker in front of the text's first piece
                              Gemma: every space written as the marker, no prefix
    token types            -> control tokens special added tokens, user-defined ones plain added tokens

Imports no torch (tokenizer.py reads vocabularies without it).
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers
from tokenizers import Tokenizer as _Backend

from .errors import CheckpointError

__all__ = ["sentencepiece_backend", "GEMMA_ARCHITECTURES"]

MARKER = "\u2581"  # SentencePiece's visible space
# architectures whose SentencePiece vocabulary HF builds as GemmaTokenizer (GGUF_SENTENCEPIECE_BUILDERS)
GEMMA_ARCHITECTURES = ("gemma", "gemma2", "gemma3")
_CONTROL, _USER_DEFINED = 3, 4  # llama.cpp's token types (gguf.TokenType)


def generate_merges(vocab: dict[str, int], scores: dict[str, float]) -> list[tuple[str, str]]:
    """Merges from a vocabulary with scores: every split of a token into two tokens of the
    vocabulary, ranked by the merged token's score, best first; ties by the pieces' lengths,
    then ids. HF's convert_slow_tokenizer.generate_merges, which the ids must equal."""
    merges = []
    for merged, score in scores.items():
        local = []
        for at in range(1, len(merged)):
            left, right = merged[:at], merged[at:]
            if left in vocab and right in vocab:
                local.append((left, right, score))
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: (m[2], len(m[0]), len(m[1])), reverse=True)
    return [(m[0], m[1]) for m in merges]


def _respell_spaces(token: str) -> str:
    # Gemma's GGUF files store tokens of two or more spaces as spaces; its tokenizer looks them
    # up as markers (gemma_tokenizer in HF's gguf_tokenizer_mapping.py)
    return MARKER * len(token) if " " in token and not token.strip() else token


def merge_pairs(path: Path, merges: list[str], vocab: dict[str, int]) -> list[tuple[str, str]]:
    """tokenizer.ggml.merges as pairs, each checked as `tokenizers` would (its BPE refuses a merge
    whose two tokens or their join are not in the vocabulary, with a bare Exception)."""
    pairs = []
    for n, m in enumerate(merges):
        parts = m.split(" ")
        if len(parts) != 2:
            raise CheckpointError(f"{path}: tokenizer.ggml.merges[{n}] = {m!r} is not two tokens separated by one space")
        missing = [t for t in (*parts, parts[0] + parts[1]) if t not in vocab]
        if missing:
            raise CheckpointError(f"{path}: tokenizer.ggml.merges[{n}] = {m!r} names {missing[0]!r}, which is not in the vocabulary")
        pairs.append((parts[0], parts[1]))
    return pairs


def sentencepiece_backend(
    path: Path, architecture: str, tokens: list[str], types: list[int], scores: list[float] | None,
    merges: list[str] | None, specials: list[str],
) -> _Backend:
    """The backend for a SentencePiece GGUF vocabulary (post-processor left to the caller).
    `specials`: bos/eos/unk/pad tokens, which HF's tokenizer classes add as special tokens."""
    gemma = architecture in GEMMA_ARCHITECTURES
    if gemma:
        tokens = [_respell_spaces(t) for t in tokens]
    vocab = {t: i for i, t in enumerate(tokens)}
    if merges is not None:
        pairs = merge_pairs(path, merges, vocab)
    elif gemma:
        # Gemma's scores do not follow its merge order; the tokens' order does (HF's gemma_tokenizer)
        pairs = generate_merges(vocab, {t: -i for i, t in enumerate(tokens)})
    else:
        if scores is None or len(scores) != len(tokens):
            got = "none" if scores is None else f"{len(scores)}"
            raise CheckpointError(
                f"{path}: tokenizer.ggml.scores has {got} entries for {len(tokens)} tokens; a SentencePiece vocabulary "
                "without merges needs one score per token to rank its merges"
            )
        pairs = generate_merges(vocab, dict(zip(tokens, scores)))
    if gemma:
        # GemmaTokenizer (models/gemma/tokenization_gemma.py)
        unk = "<unk>" if "<unk>" in vocab else None
        backend = _Backend(models.BPE(vocab=vocab, merges=pairs, fuse_unk=True, unk_token=unk, byte_fallback=True))
        backend.normalizer = normalizers.Replace(" ", MARKER)
        backend.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous", invert=False)
        backend.decoder = decoders.Sequence([decoders.Replace(MARKER, " "), decoders.ByteFallback(), decoders.Fuse()])
    else:
        # LlamaTokenizer (models/llama/tokenization_llama.py), legacy=False: the marker goes in
        # front of the first piece only; decoding strips the one space it makes
        backend = _Backend(models.BPE(vocab=vocab, merges=pairs, fuse_unk=True, byte_fallback=True))
        backend.normalizer = None
        backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=MARKER, prepend_scheme="first", split=False)
        backend.decoder = decoders.Sequence([
            decoders.Replace(MARKER, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(content=" ", left=1),
        ])
    control = [AddedToken(t, normalized=False, special=True) for t, ty in zip(tokens, types) if ty == _CONTROL]
    backend.add_special_tokens(control)
    backend.add_tokens([AddedToken(t, normalized=False, special=False) for t, ty in zip(tokens, types) if ty == _USER_DEFINED])
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials if t in vocab])
    return backend
