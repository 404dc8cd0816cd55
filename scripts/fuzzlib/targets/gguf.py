"""GGUF files, damaged: what a broken download, a hostile upload or a hand-edited file gives.

The undamaged inputs are small GGUF files written by llama.cpp's own writer (gguf-py's GGUFWriter,
through the tests' converters tests/test_gguf.py and tests/gguf_convert.py) from tiny random HF
models: a llama with a byte-level BPE vocabulary and a chat template, its tensors F16, Q8_0 and
Q4_K; a llama with Llama 3's rope_freqs.weight; qwen3, deepseek2 (MLA + experts) and gemma3.
Damage is done on the file's parts as gguf-py's GGUFReader reads them (gguf_bytes.py), so the
oracle is llama.cpp's format and gguf-py, never archlab's reader. What makes a damage `bad`
(certainly invalid) is in gguf_damage.py."""

from __future__ import annotations

import json
import random
from pathlib import Path

from fuzzlib.harness import Case

from . import gguf_damage
from .gguf_bytes import parse, serialize

NAME = "gguf"
FILE = "model.gguf"
IDS = [[1, 2, 3, 4, 5, 6, 7]]
TEXT = "The quick brown fox, don't 12345!\n  Привет"
_CACHE: dict[str, object] = {}


# ---- the undamaged files -----------------------------------------------------------------------

def _bpe_vocab():
    """A byte-level BPE vocabulary trained by `tokenizers`, as tests/test_tokenizer.py trains one."""
    import json as _json

    from test_tokenizer import CORPUS
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=420, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=specials, show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    model = _json.loads(tok.to_str())["model"]
    tokens = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return tokens, merges, specials


def make_seeds(folder: Path) -> None:
    import gguf
    import numpy as np
    import transformers
    from gguf_convert import write_gguf
    from hf_reference import make_hf
    from test_gguf import llama3_rope_freqs, write_llama_gguf
    from test_gguf_archs import CASES, _arch

    import archlab

    folder.mkdir(parents=True, exist_ok=True)
    Q = gguf.GGMLQuantizationType
    tokens, merges, specials = _bpe_vocab()
    rng = np.random.default_rng(0)
    real_writer = gguf.GGUFWriter

    class VocabWriter(real_writer):
        """GGUFWriter adding the vocabulary (as llama.cpp's converter's _set_vocab_gpt2 does) and
        storing the MLP up-projections as Q4_K: gguf-py cannot quantize to Q4_K, so random valid
        blocks (small fp16 scales, as tests/test_gguf.py's _random_blocks makes them) stand in."""

        def add_tensor(self, name, tensor, raw_shape=None, raw_dtype=None, **kw):
            if name.endswith("ffn_up.weight"):
                rows, cols = tensor.shape
                blocks = rng.integers(0, 256, size=(rows, cols // 256, 144), dtype=np.uint8)
                for off in (0, 2):
                    blocks[:, :, off:off + 2] = (rng.standard_normal((rows, cols // 256)) * 0.01).astype(
                        np.float16).view(np.uint8).reshape(rows, -1, 2)
                return super().add_tensor(name, blocks.reshape(rows, -1), raw_dtype=Q.Q4_K)
            return super().add_tensor(name, tensor, raw_shape=raw_shape, raw_dtype=raw_dtype, **kw)

        def write_header_to_file(self, *a, **kw):
            self.add_tokenizer_model("gpt2")
            self.add_tokenizer_pre("qwen2")
            self.add_token_list(tokens)
            self.add_token_types([gguf.TokenType.CONTROL if t in specials else gguf.TokenType.NORMAL for t in tokens])
            self.add_token_merges(merges)
            self.add_bos_token_id(tokens.index("<|im_start|>"))
            self.add_eos_token_id(tokens.index("<|im_end|>"))
            self.add_add_bos_token(False)
            self.add_chat_template("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                                   "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
            return super().write_header_to_file(*a, **kw)

    base = dict(vocab_size=len(tokens), hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=128, bos_token_id=1, eos_token_id=2, rms_norm_eps=1e-5)
    types = {"token_embd": Q.F16, "output": Q.Q8_0}
    gguf.GGUFWriter = VocabWriter
    try:
        write_llama_gguf(folder / "llama-vocab.gguf", make_hf(transformers.LlamaConfig(**base), seed=1),
                         types=lambda n: types.get(n.split(".")[0], Q.Q8_0 if ".attn_" in n else Q.F16))
    finally:
        gguf.GGUFWriter = real_writer
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
    small = {**base, "vocab_size": 301, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 8,
             "rope_parameters": rope}
    write_llama_gguf(folder / "llama3-rope.gguf", make_hf(transformers.LlamaConfig(**small), seed=2),
                     rope_freqs=llama3_rope_freqs(rope["rope_theta"], 8, 8.0, 1.0, 4.0, 32))
    for case in ("qwen3", "deepseek2-v3", "gemma3-headdim32"):
        config, _ = CASES[case]
        write_gguf(folder / f"{case}.gguf", _arch(case), make_hf(config(), seed=len(case)),
                   types=lambda n: Q.Q8_0 if ".attn_" in n else Q.F16)
    for f in sorted(folder.glob("*.gguf")):
        assert serialize(parse(f)) == f.read_bytes(), f"gguf_bytes does not give {f.name} back byte for byte"
        archlab.load(f)
    (folder / "seeds.json").write_text(json.dumps({"vocab": ["llama-vocab"]}))


def _seeds(seeds: Path) -> dict:
    if str(seeds) not in _CACHE:
        vocab = set(json.loads((seeds / "seeds.json").read_text())["vocab"])
        _CACHE[str(seeds)] = {f.stem: (parse(f), f.stem in vocab) for f in sorted(seeds.glob("*.gguf"))}
    return _CACHE[str(seeds)]  # type: ignore[return-value]


# ---- what a user does with a file --------------------------------------------------------------

def _run(folder: Path, vocab: bool):
    import archlab
    import torch

    path = folder / "in" / FILE
    out = {}
    if vocab:
        tok = archlab.load_tokenizer(path)
        ids = tok.encode(TEXT)
        out.update(ids=ids, text=tok.decode(ids), chat=tok.apply_chat_template([{"role": "user", "content": "hi"}]))
    model = archlab.load(path)
    with torch.no_grad():
        out["logits"] = model(torch.tensor(IDS))[0]
    return out


def _runner(vocab: bool):
    return lambda folder: _run(folder, vocab)


def references(seeds: Path) -> dict:
    refs = {}
    for name, (parts, vocab) in _seeds(seeds).items():
        def run(folder, parts=parts, vocab=vocab):
            (folder / "in" / FILE).write_bytes(serialize(parts))
            return _run(folder, vocab)
        refs[name] = run
    return refs


def case(seeds: Path, rng: random.Random, index: int) -> Case:
    all_seeds = _seeds(seeds)
    r = rng.random()
    # a quarter of the cases on the vocabulary and the rope_freqs divisors, which one seed each has
    focus, name = ("vocab", "llama-vocab") if r < 0.2 else ("rope", "llama3-rope") if r < 0.25 else ("", rng.choice(sorted(all_seeds)))
    parts, vocab = all_seeds[name]
    d = gguf_damage.damage(parts, rng, focus)
    content = d.content

    def prepare(folder):
        (folder / "in" / FILE).write_bytes(content)

    return Case(NAME, d.kind, f"{name}: {d.detail}", _runner(vocab), prepare, bad=d.bad,
                names=d.names or (FILE,), reference=name)
