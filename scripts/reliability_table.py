"""The tables of docs/reliability.md from scripts/fuzz.py's --json outputs.

    python scripts/fuzz.py --cases 1000 --json after.json
    python scripts/fuzz.py --cases 1000 --json before.json --src OLD_TREE/src
    python scripts/reliability_table.py after.json [before.json]

Prints the counts by target and outcome (before and after, when both are given), then the
outcomes after by group of inputs, with the command that reproduces each group's cases.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter

OUTCOMES = ("accepted", "clean error", "crash", "hang", "huge allocation", "silent acceptance", "escape")
PROBLEMS = OUTCOMES[2:]

# group of inputs -> what it is, per target; a kind belongs to the first group whose pattern matches
GROUPS = {
    "config": [
        (r"hf-file-", "config.json that is no JSON object: not UTF-8, a list/null/string, empty, truncated, nested 100k deep, a 5000-digit number, 40 MiB, /dev/zero, a FIFO, a folder, missing, linked outside"),
        (r"hf-other-json-type", "config.json field of another JSON type (\"false\" for a bool, a list for a number, ...)"),
        (r"hf-non-finite", "config.json number NaN or infinite"),
        (r"hf-absurd-count", "config.json count or size of 2^40 or more"),
        (r"hf-null", "config.json field null"),
        (r"hf-hostile-value", "config.json field of its type, hostile (0, -1, 2^31, x1000, 1e-45, ...)"),
        (r"hf-key-removed", "config.json field removed"),
        (r"own-", "archlab's own config JSON with a field of another type, non-finite, null or hostile"),
    ],
    "gguf": [
        (r"(magic|version|big|truncate|trailing|raw)", "GGUF file damage: magic, version, byte order, truncation, trailing bytes, raw header bytes"),
        (r"(value|delete|duplicate)", "GGUF metadata of another type or hostile (0, -1, 2^63, NaN, inf, strings, arrays), keys removed or doubled"),
        (r"(counts|blowup)", "GGUF counts blown up (layers, heads, experts, tensor and key counts, lengths)"),
        (r"(tensor|alignment)", "GGUF tensor infos (dims, types, offsets, names, n_dims) and alignment"),
        (r"(flip|rope)", "GGUF bit flips in header and data, rope_freqs divisors 0/NaN/inf/negative"),
        (r"vocab", "GGUF vocabulary: arrays of unequal lengths, wrong item types, chat template not a string"),
    ],
    "safetensors": [
        (r"index-", "model.safetensors.index.json: `..`/absolute/NUL names, wrong types, tensors not where it says"),
        (r"place-", "a shard that is a link outside, a FIFO, /dev/zero, a folder, missing or dangling"),
        (r"raw-", "safetensors header and data: lengths, JSON, dtypes, shapes, offsets, truncation"),
        (r"tensor-", "valid files of other tensors: missing, extra, reshaped, NaN/inf, integer, FP8, held twice"),
        (r"save-", "archlab.save onto links, FIFOs, /dev/null, folders, stale temporaries, with bad max_shard_bytes"),
        (r"report-", "archlab report -o onto links, FIFOs, /dev/null, folders, paths under a file"),
    ],
    "tokenizer": [
        (r"file-", "tokenizer folder files that are not JSON objects, huge, FIFOs, /dev/zero, folders, linked outside"),
        (r"field-", "tokenizer_config.json fields of the wrong type (special tokens, chat_template, vocab size)"),
        (r"tj-", "tokenizer.json damage: vocab ids, merges, added tokens, any value"),
        (r"generation", "generation_config.json eos_token_id of the wrong type or range"),
        (r"template-", "hostile chat templates: loops, huge strings, recursion, sandbox escapes, errors"),
    ],
    "cli": [(rf"{c}-", f"`archlab {c}` with hostile arguments") for c in
            ("compare", "inspect", "config", "presets", "report", "generate", "train", "data", "lab")],
    "generation": [(r"generate-", "archlab.generate with hostile arguments (ids, lengths, sampling, seeds, stops)"),
                   (r"stream-", "archlab.stream with hostile arguments")],
}


def _group(target: str, kind: str) -> str:
    for pattern, name in GROUPS.get(target, []):
        if re.match(pattern, kind):
            return name
    return kind


def main(after_path: str, before_path: str | None = None) -> None:
    after = json.load(open(after_path))
    before = json.load(open(before_path)) if before_path else None
    seed = after["seed"]
    print("| target | cases | " + " | ".join(OUTCOMES) + " |")
    print("|---|---:|" + "---:|" * len(OUTCOMES))
    for t, row in after["table"].items():
        if before and t in before["table"]:
            b = before["table"][t]
            print(f"| {t} before | {b['cases']} | " + " | ".join(str(b[o]) for o in OUTCOMES) + " |")
        print(f"| {t}{' after' if before else ''} | {row['cases']} | "
              + " | ".join(f"**{row[o]}**" if o in PROBLEMS else str(row[o]) for o in OUTCOMES) + " |")
    print()
    print("| target | inputs | cases | accepted | clean error | problems" + (" (before)" if before else "") + " | reproduce |")
    print("|---|---|---:|---:|---:|---:|---|")
    for t, row in after["table"].items():
        groups, old = _groups(t, row), _groups(t, before["table"][t]) if before and t in before["table"] else {}
        for name, c in groups.items():
            was = f" ({sum(old[name][p] for p in PROBLEMS)})" if name in old else ""
            print(f"| {t} | {name} | {sum(c.values())} | {c['accepted']} | {c['clean error']} | "
                  f"{sum(c[p] for p in PROBLEMS)}{was} | `python scripts/fuzz.py --targets {t} --cases {row['cases']} --seed {seed}` |")


def _groups(target: str, row: dict) -> dict[str, Counter]:
    groups: dict[str, Counter] = {}
    for kind, counts in row["kinds"].items():
        groups.setdefault(_group(target, kind), Counter()).update(counts)
    return groups


if __name__ == "__main__":
    main(*sys.argv[1:])
