"""The --json output of `archlab presets` and `archlab inspect`: plain data with stable keys.

The keys are part of the command line's interface (scripts read them), so they are listed
once here, in PRESETS_KEYS and INSPECT_KEYS, which --help prints; a test holds the output to
them. Add keys freely; rename or remove one only with a note in the changelog.
Torch-free: built from the config and its analysis.
"""

from __future__ import annotations

from typing import Any

from .model_config import ModelConfig

PRESETS_KEYS = {
    "name": "the preset's name (what `archlab compare NAME` takes)",
    "family": "the HF model_type family",
    "verified": "true when checked against a reference implementation",
    "params": "total parameters (an integer)",
    "active_params": "parameters a token uses (an integer; equal to params when dense)",
    "n_layers": "layers",
    "d_model": "hidden width",
    "max_context": "the longest context in tokens",
    "attention": "the attention, in words",
    "layer_pattern": "which layers attend how, in words",
    "ffn": "the feed-forward, in words",
    "source": "where the config's numbers come from (a URL or a paper)",
}

INSPECT_KEYS = {
    **{k: v for k, v in PRESETS_KEYS.items() if k not in ("attention", "layer_pattern", "ffn")},
    "vocab_size": "vocabulary size",
    "parts": "{key: text} for published, norm, position, attention, pattern, ffn, kv",
    "plan": "[{first, last, label, params, active_params}]: runs of identical layers (params per layer)",
    "layers": "[{index, kind, ffn, rope}]: one entry per layer (kind: global, sliding, chunked, linear, mla)",
}


def keys_help(keys: dict[str, str]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in keys.items())


def _common(cfg: ModelConfig, d) -> dict[str, Any]:
    return {
        "name": d.name,
        "family": cfg.family or None,
        "verified": d.verified,
        "params": d.numbers["total_params"],
        "active_params": d.numbers["active_params"],
        "n_layers": cfg.n_layers,
        "d_model": cfg.d_model,
        "max_context": cfg.max_seq_len,
        "source": cfg.source,
    }


def preset_entry(cfg: ModelConfig, d) -> dict[str, Any]:
    out = {**_common(cfg, d), "attention": d.parts["attention"].short, "layer_pattern": d.text("pattern"),
           "ffn": d.text("ffn")}
    return {k: out[k] for k in PRESETS_KEYS}


def inspect_entry(cfg: ModelConfig, analysis, d) -> dict[str, Any]:
    from .describe import layer_runs
    from .parts import MIXERS

    out = {
        **_common(cfg, d),
        "vocab_size": cfg.vocab_size,
        "parts": {k: d.text(k) for k in ("published", "norm", "position", "attention", "pattern", "ffn", "kv")},
        "plan": [{"first": r.start, "last": r.end, "label": r.label, "params": r.params, "active_params": r.active}
                 for r in layer_runs(cfg, analysis)],
        "layers": [{"index": s.index, "kind": MIXERS[s.mixer].plan_kind(s), "ffn": s.ffn, "rope": s.rope is not None}
                   for s in cfg.layers],
    }
    return {k: out[k] for k in INSPECT_KEYS}
