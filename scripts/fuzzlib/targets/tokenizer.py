"""Tokenizer folders (tokenizer.json, tokenizer_config.json, special_tokens_map.json,
chat_template.jinja, generation_config.json) and chat templates, damaged.

The undamaged inputs are two folders sharing one small byte-level BPE trained by the `tokenizers`
library: "chatml" (a ChatML template inside tokenizer_config.json) and "llama3" (a Llama-3-like
template with loops, conditionals and raise_exception in chat_template.jinja, and a BOS
post-processor). Their expected outputs are HF transformers' own (PreTrainedTokenizerFast on the
folder: ids, decoded text, rendered conversations, len) and, for the ids that end a generation,
HF's GenerationConfig eos_token_id plus the tokenizer's eos and end-of-turn special tokens
(llama.cpp's rule, which archlab documents); make_seeds checks that archlab equals them there.
Hostile templates and the mutations of tokenizer.json live in tokenizer_mutations.py."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from fuzzlib.harness import Case

from . import tokenizer_mutations as mut

NAME = "tokenizer"
TEXTS = ["Hello, world! The quick brown fox.", "héllo wörld — 日本語 🙂 ñ", "<|im_start|>user\nhi<|im_end|>",
         "  spaces\tand\nnew lines  ", "", "1234567 + 89 = ?"]
CONVERSATIONS = [
    [{"role": "user", "content": "Hi there!"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2? ünïcödé"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"}],
]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>",
            "<|end_header_id|>", "<|eot_id|>"]
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|endoftext|>")  # llama.cpp's end-of-generation texts among SPECIALS
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
LLAMA3 = """{{- bos_token }}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] | trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "You are helpful." %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" + system_message + "<|eot_id|>" }}
{%- for message in messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""


def _corpus() -> list[str]:
    rng = random.Random(0)
    words = ("the quick brown fox jumps over lazy dog hello world héllo wörld 日本語 tokenizer chat "
             "template system user assistant 12 345 6789 ü ñ 🙂 , . ! ?").split()
    return [" ".join(rng.choice(words) for _ in range(30)) for _ in range(400)]


def _hf_outputs(folder: Path) -> dict:
    from transformers import GenerationConfig, PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast.from_pretrained(folder)
    gen = GenerationConfig.from_pretrained(folder).eos_token_id
    stops = set(gen if isinstance(gen, list) else [gen]) | {hf.eos_token_id}
    stops |= {hf.convert_tokens_to_ids(t) for t in END_OF_TURN}
    return {"len": len(hf),
            "encode": [hf.encode(t, add_special_tokens=False) for t in TEXTS],
            "encode_special": [hf.encode(t, add_special_tokens=True) for t in TEXTS],
            "decode": [hf.decode(hf.encode(t, add_special_tokens=False)) for t in TEXTS],
            "chat": [hf.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in CONVERSATIONS],
            "stops": sorted(stops)}


def make_seeds(folder: Path) -> None:
    import archlab
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=[AddedToken(s, normalized=False, special=True) for s in SPECIALS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(_corpus(), trainer)
    common = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False, "model_max_length": 4096}
    for name in ("chatml", "llama3"):
        d = folder / name
        d.mkdir(parents=True)
        if name == "llama3":
            bos = backend.token_to_id("<|begin_of_text|>")
            backend.post_processor = processors.TemplateProcessing(
                single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B", special_tokens=[("<|begin_of_text|>", bos)])
            cfg = {**common, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
                   "pad_token": {"__type": "AddedToken", "content": "<|endoftext|>", "special": True, "lstrip": False, "rstrip": False,
                                 "normalized": False, "single_word": False}}
            (d / "chat_template.jinja").write_text(LLAMA3)
            gen = {"bos_token_id": bos, "eos_token_id": [backend.token_to_id("<|eot_id|>"), backend.token_to_id("<|endoftext|>")]}
            (d / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}))
        else:
            cfg = {**common, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "chat_template": CHATML}
            gen = {"eos_token_id": backend.token_to_id("<|im_end|>")}
        backend.save(str(d / "tokenizer.json"))
        (d / "tokenizer_config.json").write_text(json.dumps(cfg, indent=1))
        (d / "generation_config.json").write_text(json.dumps(gen, indent=1))
        hf = _hf_outputs(d)
        ours = json.loads(json.dumps(_outputs(archlab.load_tokenizer(d))))
        if ours != hf:
            diff = {k: (ours[k], hf[k]) for k in hf if ours.get(k) != hf[k]}
            raise RuntimeError(f"archlab differs from HF on the undamaged {name} folder: {diff}")
        (folder / f"{name}.expected.json").write_text(json.dumps(hf))


def _outputs(tok) -> dict:
    encoded = [tok.encode(t) for t in TEXTS]
    return {"len": len(tok), "encode": encoded, "encode_special": [tok.encode(t, add_special_tokens=True) for t in TEXTS],
            "decode": [tok.decode(ids) for ids in encoded],
            "chat": [tok.apply_chat_template(c, add_generation_prompt=True) for c in CONVERSATIONS],
            "stops": sorted(tok.stop_ids)}


def _load(folder: Path):
    import archlab

    out = _outputs(archlab.load_tokenizer(folder / "in" / "tok"))
    # A template that reads the secret (by any means, not only open()) shows it in its output: count
    # that as the escape it is by opening the secret, which the harness's audit hook records.
    secret = folder / "outside" / "secret.txt"
    if secret.is_file() and any(mut.SECRET in c for c in out["chat"]):
        open(secret).close()
    return out


def references(seeds: Path) -> dict:
    # the undamaged folders' outputs are HF's (make_seeds checked that archlab's equal them)
    return {f"hf:{n}": (lambda folder, n=n: json.loads((seeds / f"{n}.expected.json").read_text())) for n in ("chatml", "llama3")}


def copy_seed(seed: Path, folder: Path) -> Path:
    dest = folder / "in" / "tok"
    shutil.copytree(seed, dest, dirs_exist_ok=True)
    (folder / "outside" / "secret.txt").write_text(mut.SECRET)
    return dest


def case(seeds: Path, rng: random.Random, index: int) -> Case:
    name = rng.choice(("chatml", "llama3"))
    seed = seeds / name
    kind, detail, edit, flags = mut.draw(rng, seed, name)

    def prepare(folder, edit=edit):
        edit(copy_seed(seed, folder), folder)

    return Case(NAME, kind, f"{name}: {detail}", _load, prepare, bad=flags.get("bad", False),
                names=tuple(flags.get("names", ())), escape=flags.get("escape", False),
                reference=f"hf:{name}" if flags.get("reference", True) else None)
