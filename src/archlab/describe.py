"""Short human descriptions of a model's parts, from its config and analysis alone.

Each part (norm, position, attention, layer pattern, FFN, KV cache, parameters, compute) is
a `Part`: a compact string for tables and the same facts as data for JSON. Together they
regenerate the "key differences" of the architecture comparison from nothing but a
`ModelConfig`, so a new preset is described the moment it exists, whether or not its
modules do. No torch here: `archlab compare` over every preset must stay instant.

The layer-plan helpers (`pattern`, `layer_runs`, `layer_map`) and `module_tree` (which walks
an already-built nn.Module without importing torch) serve `archlab inspect`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from .analysis import Analysis, analyze, dtype_bytes
from .model_config import AttentionConfig, LayerSpec, MLAConfig, ModelConfig, NormConfig, RopeConfig, shown
from .parts import FFNS, MIXERS
from .parts.base import Part, fmt_tokens
from .catalog import names as _preset_names, verified as _preset_verified

__all__ = [
    "ROWS",
    "UNVERIFIED",
    "Description",
    "Part",
    "analytic_tree",
    "describe",
    "fmt_bytes",
    "fmt_count",
    "fmt_flops",
    "fmt_si",
    "fmt_tokens",
    "layer_label",
    "layer_map",
    "layer_runs",
    "module_tree",
    "parse_tokens",
    "pattern",
    "preset_published",
    "suggest",
    "verified",
]

# Presets whose semantics were read from code we could not run against our modules
# (registered with verified=False). A config also marks itself by saying "not verified" in its
# `source`, which tiny copies inherit.
UNVERIFIED = frozenset(n for n in _preset_names() if not _preset_verified(n))

# (key, label) of each table row, in display order. "{ctx}" is filled with the context.
ROWS: tuple[tuple[str, str], ...] = (
    ("family", "family"),
    ("params", "parameters"),
    ("active", "active / token"),
    ("published", "published"),
    ("layers", "layers x width"),
    ("context", "max context"),
    ("norm", "norm"),
    ("position", "position"),
    ("attention", "attention"),
    ("pattern", "layer pattern"),
    ("ffn", "feed-forward"),
    ("kv", "KV cache / token"),
    ("kv_at", "KV cache @ {ctx}"),
    ("flops", "FLOPs/token @ {ctx}"),
)


# ---- number formatting ------------------------------------------------------------------------

def _scaled(x: float, units: Sequence[tuple[str, float]], sep: str = "") -> str:
    """x in the largest unit it reaches: 2 decimals below 10 of a unit, 1 decimal above."""
    for i, (unit, div) in enumerate(units):
        if abs(x) >= div:
            v = x / div
            text = f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
            if i > 0 and abs(float(text)) >= 1000:  # 999.96M must read 1.00B, not 1000.0M
                unit, div = units[i - 1]
                text = f"{x / div:.2f}"
            return f"{text}{sep}{unit}"
    return f"{x:g}"


_DECIMAL = (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3))


def fmt_count(n: float) -> str:
    """Parameter counts: 124.4M, 8.03B, 671.0B, 1.03T."""
    return _scaled(n, _DECIMAL)


def fmt_flops(n: float) -> str:
    return _scaled(n, (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6), ("KFLOP", 1e3)), " ")


def fmt_bytes(n: float) -> str:
    """Binary units, as memory is sold to the programs that fill it: 128 KiB, 1.00 GiB."""
    if abs(n) < 1024:
        return f"{n:g} B"
    return _scaled(n, (("PiB", 1024**5), ("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)), " ")


def fmt_si(x: float) -> str:
    """Decimal, trailing zeros dropped: RoPE theta 10K, 500K, 1M, 208.5M."""
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.4g}{unit}"
    return f"{x:g}"


# far past any model's context (the longest published are ~10M tokens), and small enough that
# every count derived from it (KV bytes, FLOPs) stays an exact float
MAX_TOKENS = 2**40
# sequences in the KV cache: far past any serving batch; with MAX_TOKENS it keeps KV bytes a
# finite float (a batch of 10**400 ended in an OverflowError inside fmt_bytes)
MAX_BATCH = 2**20


def parse_tokens(text: str) -> int:
    """A token count as a user writes it: 8192, 8K, 128k, 1M (K = 1024, as in fmt_tokens)."""
    s = str(text).strip().replace(",", "").replace("_", "")
    mult = 1
    if s[-1:].upper() in ("K", "M"):
        mult = 1024 if s[-1].upper() == "K" else 1024**2
        s = s[:-1]
    try:
        v = float(s) * mult
    except ValueError:
        raise ValueError(f"expected a number of tokens such as 8192, 8K or 1M, got {text!r}") from None
    if not math.isfinite(v) or v > MAX_TOKENS:
        raise ValueError(f"expected at most {MAX_TOKENS:,} tokens (2**40), got {text!r}")
    if v != int(v):
        raise ValueError(f"expected a whole number of tokens, got {text!r}")
    if v < 1:
        raise ValueError(f"must be at least 1 token, got {text!r}")
    return int(v)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ---- verification and published figures ------------------------------------------------------

def verified(cfg: ModelConfig) -> bool:
    """False for a model whose numbers or semantics were not checked against a reference."""
    return cfg.name not in UNVERIFIED and "not verified" not in cfg.source.lower()


def preset_published(cfg: ModelConfig):
    """The Published figures of the preset `cfg` is, or None (hand-made or modified configs,
    whose size no one published)."""
    from .catalog import get, names, published

    if cfg.name not in names() or get(cfg.name) != cfg:
        return None
    return published(cfg.name)


def suggest(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(name, list(known), n=n, cutoff=0.5)


# ---- the per-layer plan ------------------------------------------------------------------------

def _period(labels: Sequence[str]) -> int | None:
    """The shortest p that the sequence repeats with, seen at least twice; None if none."""
    n = len(labels)
    for p in range(1, n // 2 + 1):
        if all(labels[i] == labels[i % p] for i in range(p, n)):
            return p
    return None


def _runs(labels: Sequence[str]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for lab in labels:
        if out and out[-1][0] == lab:
            out[-1] = (lab, out[-1][1] + 1)
        else:
            out.append((lab, 1))
    return out


def pattern(labels: Sequence[str]) -> str:
    """A per-layer sequence as people say it: "all global", "5 sliding(512) : 1 global"
    (a repeating unit), "3 dense, then 58 MoE", or counts when there is no shape to name."""
    if not labels:
        return "none"
    if len(set(labels)) == 1:
        return f"all {labels[0]}"
    runs = _runs(labels)
    p = _period(labels)
    if p is not None:
        return " : ".join(f"{k} {lab}" for lab, k in _runs(labels[:p]))
    if len(runs) <= 3:
        return ", then ".join(f"{k} {lab}" for lab, k in runs)
    counts: dict[str, int] = {}
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
    return ", ".join(f"{k} {lab}" for lab, k in counts.items())


def _span(spec: LayerSpec) -> str:
    return MIXERS[spec.mixer].span(spec)


def layer_label(cfg: ModelConfig, spec: LayerSpec) -> str:
    """One layer in words: "global MLA, MoE FFN, RoPE", "sliding(512) attention, dense FFN, RoPE 10K"."""
    kind = MIXERS[spec.mixer]
    span = kind.span(spec)
    head = kind.label(cfg) if spec.kind == "linear" else f"{span} {kind.label(cfg)}"
    parts = [head, f"{spec.ffn if spec.ffn == 'dense' else 'MoE'} FFN"]
    if spec.kind != "linear":  # a linear-attention layer has no positions to rotate
        if spec.rope is None:
            parts.append("NoPE")
        elif cfg.rope_local is not None:  # two RoPEs: say which one
            parts.append(f"RoPE {fmt_si(spec.rope.theta)}")
        else:
            parts.append("RoPE")
    return ", ".join(parts)


def _pattern_labels(cfg: ModelConfig) -> list[str]:
    hybrid = any(s.kind == "linear" for s in cfg.layers)
    out = []
    for spec in cfg.layers:
        kind, span = MIXERS[spec.mixer], _span(spec)
        if spec.kind == "linear":
            out.append(kind.describe(cfg).brief)  # "3 DeltaNet : 1 gated attention"
        elif hybrid and span == "global":
            out.append(kind.label(cfg))
        else:
            out.append(span)
    return out


@dataclass(frozen=True)
class Run:
    """Consecutive layers that are the same kind of layer."""

    start: int
    end: int  # inclusive
    label: str
    params: int  # each
    active: int  # each

    @property
    def count(self) -> int:
        return self.end - self.start + 1

    @property
    def span(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}-{self.end}"


def layer_runs(cfg: ModelConfig, analysis: Analysis | None = None) -> list[Run]:
    a = analysis or analyze(cfg)
    runs: list[Run] = []
    for spec, cost in zip(cfg.layers, a.layers):
        lab = layer_label(cfg, spec)
        last = runs[-1] if runs else None
        if last and last.label == lab and last.params == cost.params and last.end == spec.index - 1:
            runs[-1] = Run(last.start, spec.index, lab, last.params, last.active)
        else:
            runs.append(Run(spec.index, spec.index, lab, cost.params, cost.active))
    return runs


def index_set(indices: Sequence[int]) -> str:
    """Layer indices compactly: "0-2", "5, 11, ..., 59 (every 6th)", "0-4, 6-10, ..."."""
    ix = sorted(indices)
    if not ix:
        return "none"
    if len(ix) >= 3:
        step = ix[1] - ix[0]
        if step > 1 and all(b - a == step for a, b in pairwise(ix)):
            return f"{ix[0]}, {ix[1]}, ..., {ix[-1]} (every {_ordinal(step)})"
    ranges, start = [], ix[0]
    for a, b in zip(ix, ix[1:] + [None]):
        if b != a + 1:
            ranges.append(str(start) if start == a else f"{start}-{a}")
            start = b
    text = ", ".join(ranges)
    return text if len(ranges) <= 6 else ", ".join(ranges[:5]) + f", ... ({len(ix)} layers)"


# One letter per layer kind (each mixer kind names its own); the case says the FFN: lowercase
# dense, UPPERCASE MoE.
MAP_LEGEND = {letter: words for kind in MIXERS.values() for letter, words in kind.legend.items()}


def layer_map(cfg: ModelConfig, group: int = 10, per_line: int = 60) -> list[str]:
    """The plan as rows of letters (see MAP_LETTERS), grouped by ten, with a row of ^ under
    the NoPE layers when there are any."""
    letters, nope = [], []
    for spec in cfg.layers:
        ch = MIXERS[spec.mixer].letter(spec)
        letters.append(ch.upper() if spec.ffn == "moe" else ch)
        nope.append("^" if spec.kind != "linear" and spec.rope is None and cfg.position_kind == "rope" else " ")
    def spaced(seq: list[str], start: int) -> str:
        line = seq[start : start + per_line]
        return " ".join("".join(line[g : g + group]) for g in range(0, len(line), group))

    lines = []
    for start in range(0, len(letters), per_line):
        lines.append(f"{start:>5}  {spaced(letters, start)}")
        if "^" in nope:
            lines.append(f"{'NoPE':>5}  {spaced(nope, start)}".rstrip())
    used = sorted({c.lower() for c in letters}, key=list(MAP_LEGEND).index)
    legend = ", ".join(f"{c} {MAP_LEGEND[c]}" for c in used)
    lines.append(f"       {legend}; lowercase dense FFN, UPPERCASE MoE" + ("; ^ NoPE" if "^" in nope else ""))
    return lines


# ---- the parts ----------------------------------------------------------------------------------

_NORM_NAMES = {"layernorm": "LayerNorm", "rmsnorm": "RMSNorm", "l2norm": "L2 norm"}
_PLACEMENT = {
    "pre": "pre-norm",  # x + f(norm(x))
    "post": "post-norm",  # norm(x + f(x))
    "sandwich": "sandwich",  # x + norm(f(norm(x)))
    "output": "output-norm",  # x + norm(f(x))
    "parallel": "parallel",  # x + attn(norm(x)) + ffn(norm'(x))
    "normed_residual": "pre-norm, normalised residual",  # norm(x) + f(norm(x))
}


def _norm_name(n: NormConfig) -> str:
    return _NORM_NAMES[n.kind] + ("(1+w)" if n.unit_offset else "")


def _norm_data(n: NormConfig) -> dict[str, Any]:
    return {"kind": n.kind, "eps": n.eps, "bias": n.bias, "unit_offset": n.unit_offset}


def _has_nope(cfg: ModelConfig) -> bool:
    return cfg.position_kind == "rope" and any(s.rope is None for s in cfg.layers if s.kind != "linear")


def describe_norm(cfg: ModelConfig) -> Part:
    text = f"{_norm_name(cfg.norm)}, {_PLACEMENT[cfg.block]}"
    a = cfg.attention
    qk = None
    if isinstance(a, AttentionConfig) and a.qk_norm is not None:
        q = a.qk_norm
        name = "QK L2-norm" if q.kind == "l2norm" else "QK-norm" if q == cfg.norm else f"QK-norm {_norm_name(q)}"
        if a.qk_norm_scope == "all":
            name += " (all heads)"
        if not a.qk_norm_in_nope_layers and _has_nope(cfg):
            name += " (RoPE layers)"
        text += f", {name}"
        qk = {**_norm_data(q), "scope": a.qk_norm_scope, "in_nope_layers": a.qk_norm_in_nope_layers,
              "after_rope": a.qk_norm_after_rope}
    if cfg.embed_norm:
        text += ", embedding norm"
    return Part(text, {**_norm_data(cfg.norm), "placement": cfg.block, "qk_norm": qk, "embed_norm": cfg.embed_norm})


def _rope_text(r: RopeConfig, head_dim: int | None) -> str:
    text = f"RoPE {fmt_si(r.theta)}"
    if r.scaling is not None:
        s = r.scaling
        text += f" {'YaRN' if s.kind == 'yarn' else s.kind} x{s.factor:g}"
    if r.partial < 1:
        dims = f" ({r.rotary_dim(head_dim)}/{head_dim} dims)" if head_dim else ""
        text += f" on {r.partial:.0%}{dims}"
    return text


def _rope_data(r: RopeConfig | None) -> dict[str, Any] | None:
    if r is None:
        return None
    s = r.scaling
    return {
        "theta": r.theta, "partial": r.partial,
        "scaling": None if s is None else {"kind": s.kind, "factor": s.factor, "original_max_seq_len": s.original_max_seq_len},
    }


def describe_position(cfg: ModelConfig) -> Part:
    data: dict[str, Any] = {"kind": cfg.position_kind, "rope": _rope_data(cfg.rope), "rope_local": _rope_data(cfg.rope_local)}
    if cfg.position == "learned":
        return Part(f"learned ({fmt_tokens(cfg.max_seq_len)} positions)", data)
    if cfg.position == "alibi":
        return Part("ALiBi", data)
    if cfg.position == "none":
        return Part("none (NoPE)", data)
    a = cfg.resolved_attention
    head_dim = a.head_dim if isinstance(a, AttentionConfig) else None
    text = _rope_text(cfg.rope, head_dim)
    if cfg.rope_local is not None:
        text = f"{text} global / {_rope_text(cfg.rope_local, head_dim).removeprefix('RoPE ')} sliding"
    if isinstance(a, MLAConfig):
        text += f", decoupled {a.qk_rope_head_dim}-dim key"
        data["rope_head_dim"] = a.qk_rope_head_dim
    softmax = [s for s in cfg.layers if s.kind != "linear"]
    nope = [s.index for s in softmax if s.rope is None]
    data["nope_layers"] = nope
    if nope:
        step = nope[1] - nope[0] if len(nope) > 1 else 0
        if nope == [s.index for s in softmax if _span(s) == "global"] and len(nope) < len(softmax):
            text += f"; NoPE in the {len(nope)} global layers"  # Llama 4: position only from the local layers
        elif step > 1 and nope == list(range(nope[0], nope[0] + step * len(nope), step)):
            text += f"; NoPE every {_ordinal(step)} layer ({len(nope)}/{len(softmax)})"
        else:
            text += f"; NoPE in {len(nope)}/{len(softmax)} layers"
    return Part(text, data)


def describe_attention(cfg: ModelConfig) -> Part:
    """Each mixer kind the layers use, in words: "GQA: ...; Gated DeltaNet: ..."."""
    kinds = [k for k in MIXERS.values() if k.used(cfg)]
    words = [k.describe(cfg) for k in kinds]
    # the first kind's data at the top, each other kind's under its own key
    data = {**words[0].data, **{k.json_key: w.data for k, w in zip(kinds[1:], words[1:])}}
    return Part("; ".join(w.text for w in words), data, " + ".join(w.brief for w in words))


def describe_pattern(cfg: ModelConfig) -> Part:
    labels = _pattern_labels(cfg)
    counts: dict[str, int] = {}
    kinds = [s.kind for s in cfg.layers]
    for t in kinds:
        counts[t] = counts.get(t, 0) + 1
    return Part(pattern(labels), {"layer_types": kinds, "counts": counts, "period": _period(labels)})


def describe_ffn(cfg: ModelConfig) -> Part:
    ffn_types = [s.ffn for s in cfg.layers]
    dense = FFNS["dense"].describe(cfg) if cfg.ffn is not None else None
    data: dict[str, Any] = {"dense": dense and dense.data, "ffn_types": ffn_types, "moe": None}
    n_moe = ffn_types.count("moe")
    if n_moe == 0:
        return Part(dense.text, data, dense.brief)
    moe = FFNS["moe"].describe(cfg)
    text = moe.text
    if n_moe < cfg.n_layers:  # where the dense layers are, in the words the authors use
        runs = _runs(ffn_types)
        if len(runs) == 2 and runs[0][0] == "dense":
            first = "first layer" if runs[0][1] == 1 else f"first {runs[0][1]} layers"
            text += f"; {first} dense {dense.text}"
        else:
            p = _period(ffn_types)
            if p is not None and ffn_types[:p].count("moe") == 1:
                text += f"; MoE every {_ordinal(p)} layer, else dense {dense.text}"
            elif p is not None:
                text += f"; {pattern(ffn_types[:p])} repeating, dense {dense.text}"
            else:
                text += f"; {cfg.n_layers - n_moe} dense {dense.text}"
    data["moe"] = {**moe.data, "layers": n_moe}
    return Part(text, data, moe.brief + ("" if n_moe == cfg.n_layers else f" ({n_moe}/{cfg.n_layers})"))


def _kv_kind(cfg: ModelConfig, b1: list[int], b2: list[int]) -> str:
    """What a token leaves in the cache, in the words of the first layer whose cache grows
    (b1, b2: bytes per layer at 1 and 2 tokens); a stack of fixed-size states names the first."""
    growing = [s for s, x, y in zip(cfg.layers, b1, b2) if y != x]
    return MIXERS[(growing or cfg.layers)[0].mixer].cache_words(cfg)


def describe_kv(cfg: ModelConfig, analysis: Analysis, context: int, batch: int, dtype: str) -> tuple[Part, Part]:
    """(bytes per token, bytes at `context`). Per token is what a long sequence adds; where
    sliding windows or chunks cap some layers, what a short one adds comes first."""
    b1, b2 = analysis.cache_bytes_per_layer(1, dtype), analysis.cache_bytes_per_layer(2, dtype)
    fixed = sum(x for x, s in zip(b1, cfg.layers) if s.kind == "linear")
    kv_kind = _kv_kind(cfg, b1, b2)
    early = sum(b2) - sum(b1)
    late = analysis.kv_cache_bytes_per_token(dtype)
    caps = sorted({s.window or s.chunk for s in cfg.layers if (s.window or s.chunk)})
    if early == late:
        text = f"{fmt_bytes(late)} ({kv_kind})"
    else:
        until = f" up to {fmt_tokens(caps[0])}" if caps else ""
        then = "nothing more" if late == 0 else f"{fmt_bytes(late)}"
        text = f"{fmt_bytes(early)}{until}, then {then} ({kv_kind})"
    if fixed:
        fixed_kinds = dict.fromkeys(MIXERS[s.mixer].cache_words(cfg) for s in cfg.layers if s.kind == "linear")
        text += f" + {fmt_bytes(fixed)} fixed {' + '.join(fixed_kinds)}"
    total = analysis.kv_cache_bytes(context, batch, dtype)
    at = fmt_bytes(total)
    if context > cfg.max_seq_len:
        at += f" (past max {fmt_tokens(cfg.max_seq_len)})"
    per_token = Part(text, {
        "bytes_per_token": late, "bytes_per_token_short": early, "fixed_bytes": fixed, "caps": caps,
        "kind": kv_kind, "dtype": dtype,
    })
    past = context > cfg.max_seq_len
    return per_token, Part(at, {"bytes": total, "tokens": context, "batch": batch, "dtype": dtype,
                               "past_max_seq_len": past}, fmt_bytes(total) + (" !" if past else ""))


_CONVENTION_SHORT = {"all": "", "no_embedding": " (excl. input embedding)", "no_embeddings": " (excl. embedding, head)"}


def describe_published(cfg: ModelConfig, analysis: Analysis, pub) -> Part:
    if pub is None:
        return Part("-", {})
    value, tol = pub.total_figure()
    ok_total = abs(analysis.total_params - value) <= tol * value
    text = pub.total
    data: dict[str, Any] = {
        "total": pub.total, "source": pub.source, "note": pub.note, "by_authors": pub.by_authors,
        "total_agrees": ok_total, "active": pub.active, "active_convention": pub.active_convention,
    }
    if pub.active is not None:
        av, atol = pub.active_figure()
        ours = analysis.active_params_as(pub.active_convention)
        data["active_ours"] = ours
        data["active_agrees"] = abs(ours - av) <= atol * av
        text += f"; {pub.active} active{_CONVENTION_SHORT[pub.active_convention]}"
    if not pub.by_authors:
        text += " (not by the authors)"
    brief = pub.total + (f" / {pub.active}" if pub.active else "")
    if not ok_total or data.get("active_agrees") is False:
        text += " [ours differs]"
        brief += " [differs]"
    return Part(text, data, brief)


@dataclass(frozen=True)
class Description:
    name: str
    verified: bool
    parts: dict[str, Part]
    numbers: dict[str, Any]
    source: str

    def text(self, key: str) -> str:
        return self.parts[key].text

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.parts["family"].text,
            "verified": self.verified,
            "source": self.source,
            "numbers": self.numbers,
            "published": self.parts["published"].data or None,
            "parts": {k: {"text": p.text, **({"data": p.data} if p.data else {})} for k, p in self.parts.items()
                      if k not in ("family", "published")},
        }


def describe(
    name_or_config: str | ModelConfig,
    analysis: Analysis | None = None,
    *,
    context: int = 8192,
    batch: int = 1,
    dtype: str = "bfloat16",
    published: Any = "preset",
) -> Description:
    """Every part of a model in words and data. `published` is a catalog.Published, None, or
    "preset": look it up when the config is exactly a registered preset."""
    a = analysis or analyze(name_or_config)
    cfg = a.config
    dtype_bytes(dtype)  # a clear error before any work
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"batch: expected a whole number of sequences in [1, {MAX_BATCH:,}], got {shown(batch)}")
    pub = preset_published(cfg) if published == "preset" else published
    total, active = a.total_params, a.active_params
    flops = a.flops_per_token(context)
    kv, kv_at = describe_kv(cfg, a, context, batch, dtype)
    numbers = {
        "total_params": total,
        "active_params": active,
        "active_fraction": active / total,
        "embedding_params": a.embedding_params,
        "head_params": a.head_params,
        "n_layers": cfg.n_layers,
        "d_model": cfg.d_model,
        "vocab_size": cfg.vocab_size,
        "max_seq_len": cfg.max_seq_len,
        "context": context,
        "batch": batch,
        "dtype": dtype,
        "flops_per_token": flops,
        "kv_cache_bytes": kv_at.data["bytes"],
        "kv_cache_bytes_per_token": kv.data["bytes_per_token"],
    }
    past = f" (past max {fmt_tokens(cfg.max_seq_len)})" if context > cfg.max_seq_len else ""
    parts = {
        "family": Part(cfg.family or "-"),
        "params": Part(fmt_count(total), {"total": total, "embedding": a.embedding_params, "head": a.head_params}),
        "active": Part(f"{fmt_count(active)} ({active / total:.1%})" if active != total else f"{fmt_count(active)} (all)",
                       {"active": active, "fraction": active / total}),
        "published": describe_published(cfg, a, pub),
        "layers": Part(f"{cfg.n_layers} x {cfg.d_model}, vocab {fmt_count(cfg.vocab_size)}",
                       {"n_layers": cfg.n_layers, "d_model": cfg.d_model, "vocab_size": cfg.vocab_size},
                       f"{cfg.n_layers} x {cfg.d_model}"),
        "context": Part(fmt_tokens(cfg.max_seq_len), {"max_seq_len": cfg.max_seq_len}),
        "norm": describe_norm(cfg),
        "position": describe_position(cfg),
        "attention": describe_attention(cfg),
        "pattern": describe_pattern(cfg),
        "ffn": describe_ffn(cfg),
        "kv": kv,
        "kv_at": kv_at,
        "flops": Part(fmt_flops(flops) + past, {"flops_per_token": flops, "context": context},
                      fmt_flops(flops) + (" !" if past else "")),
    }
    return Description(cfg.name, verified(cfg), parts, numbers, cfg.source)


# ---- module trees ---------------------------------------------------------------------------

def _numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _signature(module) -> tuple:
    """What makes two layers interchangeable in a printout: classes and parameter shapes."""
    return tuple((n, type(m).__name__) for n, m in module.named_modules()) + tuple(
        (n, tuple(p.shape)) for n, p in module.named_parameters()
    )


def module_tree(model, cfg: ModelConfig) -> list[str]:
    """The nn.Module tree of a built model with parameter counts per module; consecutive
    identical layers collapse into one entry ("layers.3-60: 58 x PreNormBlock ..."), and a
    kind of layer already shown is not expanded again. Walks the module API only, so this
    file needs no torch."""
    lines: list[str] = []
    specs = cfg.layers

    def leaf(m) -> str:
        # parameter shapes say more than extra_repr, and read the same for every module kind
        shapes = [f"{n} {'x'.join(str(d) for d in p.shape)}" for n, p in m.named_parameters()]
        return f"{type(m).__name__} ({', '.join(shapes)})" if shapes else type(m).__name__

    def visit(name: str, m, depth: int) -> None:
        pad = "  " * depth
        children = list(m.named_children())
        n = _numel(m)
        lines.append(f"{pad}{name}: {leaf(m) if not children else type(m).__name__}  {fmt_count(n) if n else '0'}")
        if name.split(".")[-1] == "layers" and children and len(children) == len(specs):
            layers(name, [c for _, c in children], depth + 1)
            return
        for cname, child in children:
            visit(cname, child, depth + 1)

    def layers(prefix: str, mods: list, depth: int) -> None:
        pad = "  " * depth
        sigs = [(_signature(m), layer_label(cfg, spec)) for m, spec in zip(mods, specs)]
        # A repeating plan (5 sliding : 1 global) is shown once, then named as a repeat.
        period = _period(sigs) if len(set(sigs)) > 1 else None
        upto = period if period is not None else len(mods)
        shown: dict[tuple, str] = {}
        i = 0
        while i < upto:
            j = i
            while j + 1 < upto and sigs[j + 1] == sigs[i]:
                j += 1
            each = _numel(mods[i])
            span = f"{i}" if i == j else f"{i}-{j}"
            count = j - i + 1
            head = f"{count} x {type(mods[i]).__name__}" if count > 1 else type(mods[i]).__name__
            tail = f"{fmt_count(each)} each" if count > 1 else fmt_count(each)
            label = sigs[i][1]
            if sigs[i] in shown:
                lines.append(f"{pad}{prefix}.{span}: {head} [{label}], {tail} (as {prefix}.{shown[sigs[i]]})")
            else:
                lines.append(f"{pad}{prefix}.{span}: {head} [{label}], {tail}")
                shown[sigs[i]] = span
                for cname, child in mods[i].named_children():
                    visit(cname, child, depth + 1)
            i = j + 1
        if upto < len(mods):
            rest = sum(_numel(m) for m in mods[upto:])
            lines.append(f"{pad}{prefix}.{upto}-{len(mods) - 1}: {prefix}.0-{upto - 1} repeated, "
                         f"{len(mods) - upto} more layers, {fmt_count(rest)}")

    visit(cfg.name or "model", model, 0)
    return lines


def analytic_tree(cfg: ModelConfig, analysis: Analysis | None = None) -> list[str]:
    """The same breakdown from the config alone, for models that cannot be built yet."""
    a = analysis or analyze(cfg)
    lines = [f"{cfg.name or 'model'}: {fmt_count(a.total_params)}"]
    emb = "token embedding" + (" + learned positions" if cfg.position == "learned" else "")
    lines.append(f"  embedding ({emb}): {fmt_count(a.embedding_params)}")
    by_index = {c.index: c for c in a.layers}
    kinds = [(layer_label(cfg, spec), c.params) for spec, c in zip(cfg.layers, a.layers)]
    period = _period(kinds) if len(set(kinds)) > 1 else None  # a repeating plan is shown once
    upto = period or cfg.n_layers
    for run in layer_runs(cfg, a):
        if run.start >= upto:
            break
        run = replace(run, end=min(run.end, upto - 1))
        c = by_index[run.start]
        each = f"{fmt_count(run.params)} each" if run.count > 1 else fmt_count(run.params)
        head = f"{run.count} x " if run.count > 1 else ""
        lines.append(f"  layers.{run.span}: {head}[{run.label}], {each}")
        ffn = f"{fmt_count(c.ffn_params)} ({fmt_count(c.ffn_active)} active)" if c.ffn_params != c.ffn_active else fmt_count(c.ffn_params)
        lines.append(f"    mixer ({c.mixer}): {fmt_count(c.mixer_params)}, ffn ({c.ffn}): {ffn}, norms: {fmt_count(c.norm_params)}")
    if upto < cfg.n_layers:
        rest = sum(c.params for c in a.layers[upto:])
        lines.append(f"  layers.{upto}-{cfg.n_layers - 1}: layers.0-{upto - 1} repeated, "
                     f"{cfg.n_layers - upto} more layers, {fmt_count(rest)}")
    if a.final_norm_params:
        lines.append(f"  final norm{' + embedding norm' if cfg.embed_norm else ''}: {fmt_count(a.final_norm_params)}")
    lines.append(f"  head: {fmt_count(a.head_params)}" + (" (tied to the embedding)" if cfg.tie_embeddings else ""))
    return lines
