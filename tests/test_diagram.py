"""`archlab diagram`: the layout from the config, drawn in the terminal (<= 100 columns) and
as SVG. The numbers shown are analyze()'s, each part sits where the config puts it, and a
change of one knob changes the diagram in that part's box only."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import archlab
from archlab.analysis import _BLOCK_NORMS, analyze
from archlab.cli import main
from archlab.describe import fmt_bytes, fmt_count, fmt_flops
from archlab.diagram import CONTEXT, layout, svg, terminal
from archlab.diagram_svg import CHAR_W
from archlab.model_config import BLOCK_KINDS, AttentionConfig, ConfigError, NormConfig, Pattern

PRESETS = archlab.presets()
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("name", PRESETS + ["long-name"])
def test_every_preset_renders_within_100_columns_and_its_svg_inside_the_viewbox(name):
    if name == "long-name":  # a hand-made config's name can be as long as its author likes
        name = archlab.config("llama-3-8b").replace(name="my-" * 70 + "model", family="f" * 120)
    text = terminal(name)
    assert max(len(line) for line in text.splitlines()) <= 100
    root = ET.fromstring(svg(name))
    x0, y0, w, h = (float(v) for v in root.get("viewBox").split())
    texts = list(root.iter(f"{SVG_NS}text"))
    assert texts
    for t in texts:
        x, y, size = float(t.get("x")), float(t.get("y")), float(t.get("font-size"))
        # the text's extent in a monospace font (CHAR_W per character at 12 px, scaled)
        width = len(t.text) * CHAR_W * size / 12
        left = x - width / 2 if t.get("text-anchor") == "middle" else x
        assert x0 <= left and left + width <= x0 + w, (t.text, left, width)
        assert y0 + size <= y + 4 and y <= y0 + h, (t.text, y)
    # standalone: no reference outside the document
    assert not re.search(r'(href|src)="(?!#)', svg(name)) and "url(http" not in svg(name)


@pytest.mark.parametrize("name", PRESETS)
def test_numbers_shown_are_analyze_numbers(name):
    cfg = archlab.config(name)
    a = analyze(cfg)
    lay = layout(cfg)
    v = lay.values
    assert v["total_params"] == a.total_params and v["active_params"] == a.active_params
    assert v["kv_bytes_per_token"] == a.kv_cache_bytes_per_token("bfloat16")
    assert v["flops_per_token"] == a.flops_per_token(CONTEXT)
    assert sum(p * int(run.split("-")[-1]) - p * int(run.split("-")[0]) + p for run, (p, _) in v["block_params"].items()) \
        == sum(c.params for c in a.layers)
    shown = "\n".join(lay.numbers.lines)
    assert fmt_count(a.total_params) in shown and fmt_flops(a.flops_per_token(CONTEXT)) in shown
    late = a.kv_cache_bytes_per_token("bfloat16")  # what a long sequence adds per token
    early = sum(a.cache_bytes_per_layer(2)) - sum(a.cache_bytes_per_layer(1))  # what a short one adds
    assert fmt_bytes(early) in shown and (fmt_bytes(late) in shown if late else "then nothing more" in shown)
    for c in a.layers:
        assert f"block params {fmt_count(c.params)}" in shown
    mixer = "\n".join(lay.boxes()["attention"].lines)
    assert all(fmt_count(c.mixer_params) in mixer for c in a.layers)
    ffn = "\n".join(lay.boxes()["ffn"].lines)
    assert all(fmt_count(c.ffn_params) in ffn for c in a.layers)
    assert fmt_count(a.embedding_params - (cfg.max_seq_len * cfg.d_model if cfg.position == "learned" else 0)) \
        in lay.boxes()["embedding"].lines[0]


# The order of each residual layout's steps, read off the forward of its Block (nn/block.py):
# pre x + f(norm(x)); post norm(x + f(x)); sandwich x + norm(f(norm(x))); output x + norm(f(x));
# parallel x + attn(norm(x)) + ffn(norm'(x)); normed_residual norm(x) + f(norm(x)).
PLANS = {
    "pre": "split norm attention add split norm ffn add",
    "post": "split attention add norm split ffn add norm",
    "sandwich": "split norm attention norm add split norm ffn norm add",
    "output": "split attention norm add split ffn norm add",
    "parallel": "parallel",
    "normed_residual": "norm split attention add norm split ffn add",
}


@pytest.mark.parametrize("block", BLOCK_KINDS)
def test_norms_sit_where_the_block_puts_them(block):
    cfg = archlab.config("llama-3-8b").replace(block=block)
    lay = layout(cfg)
    steps = " ".join(s.kind if s.kind != "box" else s.boxes[0].part for s in lay.block)
    assert steps == PLANS[block]
    norms = [k for k in lay.boxes() if k.startswith("norm.") and k != "norm.final"]
    assert len(norms) == _BLOCK_NORMS[block]
    if block == "parallel":
        assert [b.part for b in lay.block[0].boxes] == ["norm", "attention"]
        assert [b.part for b in lay.block[0].right] == ["norm", "ffn"]
    assert ("norm.final" in lay.boxes()) == (block != "post")  # post-norm ends normalised already
    text = terminal(cfg)
    assert text.count("(+)") == (1 if block == "parallel" else 2)


def test_the_five_diagrams_show_their_defining_parts():
    t = {n: terminal(n) for n in ("gpt2", "llama-3-8b", "deepseek-v3", "gemma-3-27b", "qwen3-next-80b-a3b")}
    assert "learned positions" in t["gpt2"] and "tied to the token embedding" in t["gpt2"]
    assert "GQA: 32 query, 8 KV heads of 128" in t["llama-3-8b"] and "untied" in t["llama-3-8b"]
    assert "KV latent 512" in t["deepseek-v3"] and "mmmMMMM" in t["deepseek-v3"] and "MoE in layers 3-60" in t["deepseek-v3"]
    assert "sssssgssss" in t["gemma-3-27b"] and "(post)" in t["gemma-3-27b"] and "QK-norm" in t["gemma-3-27b"]
    assert "LLLGLLLG" in t["qwen3-next-80b-a3b"] and "Gated DeltaNet" in t["qwen3-next-80b-a3b"]


def _kv(cfg):
    a = cfg.resolved_attention
    return [k for k in range(1, a.n_heads + 1) if a.n_heads % k == 0 and k != a.n_kv_heads]


# knob: (applies to, change, the box that must change, the parts that may change)
def _knobs(cfg, draw):
    att = isinstance(cfg.attention, AttentionConfig)
    softmax = any(s.kind != "linear" for s in cfg.layers)
    dense = any(s.ffn == "dense" for s in cfg.layers)
    moe = any(s.ffn == "moe" for s in cfg.layers)
    yield "block", True, lambda: {"block": draw(st.sampled_from([b for b in BLOCK_KINDS if b != cfg.block]))}, "block", {"norm", "numbers"}
    yield "norm", True, lambda: {"norm": NormConfig(draw(st.sampled_from(["layernorm", "rmsnorm"])), eps=1e-3)}, "norm.final" if cfg.block != "post" else "norm.ffn", {"norm", "numbers"}
    yield "kv_heads", att and _kv(cfg), lambda: {"attention": {"n_kv_heads": draw(st.sampled_from(_kv(cfg)))}}, "attention", {"attention", "numbers"}
    yield "sinks", att, lambda: {"attention": {"sinks": not cfg.attention.sinks}}, "attention", {"attention", "numbers"}
    yield "qk_norm", att, lambda: {"attention": {"qk_norm": None if cfg.attention.qk_norm else NormConfig("rmsnorm")}}, "attention", {"attention", "numbers"}
    yield "window", att and softmax and cfg.linear_attention is None, lambda: {
        "attention": {"window": 64, "chunk": None}, "rope_local": None,
        "layer_types": Pattern(("sliding", "global")), "rope_layers": None}, "layers", {"attention", "layers", "numbers"}
    yield "ffn_kind", dense, lambda: {"ffn": {"kind": "mlp" if cfg.ffn.kind == "glu" else "glu"}}, "ffn", {"ffn", "numbers"}
    yield "top_k", moe and cfg.moe.n_experts > 2, lambda: {"moe": {"top_k": 1 if cfg.moe.top_k != 1 else 2}}, "ffn", {"ffn", "numbers"}
    yield "tie", True, lambda: {"tie_embeddings": not cfg.tie_embeddings}, "head", {"head", "numbers"}
    yield "nope", cfg.position_kind == "rope" and softmax, lambda: {"rope_layers": Pattern((True, True, True, False))}, "layers", {"attention", "layers"}
    # (MLA with learned positions fails with an AttributeError in resolved_attention, not a
    # ConfigError: reported, left to model_config's owner; MLA always has its RoPE key)
    yield "learned", att and cfg.linear_attention is None, lambda: {"position": "learned", "rope_local": None, "rope_layers": None}, "embedding", {"embedding", "attention", "layers", "numbers"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_one_knob_changes_its_box_only(data):
    cfg = archlab.config(data.draw(st.sampled_from(PRESETS), label="preset"))
    knobs = [k for k in _knobs(cfg, data.draw) if k[1]]
    name, _, change, must, may = data.draw(st.sampled_from(knobs), label="knob")
    try:
        new = cfg.replace(**change())
        new.layers  # noqa: B018  (the per-layer rules are checked when resolved)
    except ConfigError:
        assume(False)
    before, after = layout(cfg).boxes(), layout(new).boxes()
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assume(new.resolved() != cfg.resolved())
    assert must in changed, (name, changed)
    parts = {(after.get(k) or before[k]).part for k in changed}
    assert parts <= may, (name, changed)


def test_cli_diagram_prints_and_writes_svg(tmp_path, capsys):
    out = tmp_path / "d.svg"
    assert main(["diagram", "gemma-3-27b", "--svg", str(out)]) == 0
    text = capsys.readouterr().out
    assert "decoder block x 62, sandwich" in text and max(map(len, text.splitlines())) <= 100
    assert ET.fromstring(out.read_text()).tag == f"{SVG_NS}svg"
    assert main(["diagram", "no-such-model"]) == 2


@pytest.mark.parametrize("name", ["llama-4-scout", "smollm3-3b", "deepseek-v3", "gemma-3-27b"])
def test_svg_strip_has_one_cell_per_layer_lettered_as_the_plan(name):
    cfg = archlab.config(name)
    root = ET.fromstring(svg(cfg))
    cells = [t.text for t in root.iter(f"{SVG_NS}text") if t.get("text-anchor") == "middle"]
    assert len(cells) == cfg.n_layers
    for spec, text in zip(cfg.layers, cells):
        assert (text[0].isupper()) == (spec.ffn == "moe")
        assert text.endswith("^") == (spec.kind != "linear" and spec.rope is None and cfg.position_kind == "rope")


@pytest.mark.parametrize("kv, kind", [(32, "MHA"), (8, "GQA"), (1, "MQA")])
def test_attention_kind_is_named_in_the_attention_box(kv, kind):
    cfg = archlab.config("llama-3-8b").replace(attention={"n_kv_heads": kv})
    box = layout(cfg).boxes()["attention"]
    assert box.title.startswith(f"{kind} 32/{kv}")
    assert f"{kv} KV head" in box.lines[0] or (kv == 32 and "32 heads of 128" in box.lines[0])


@pytest.mark.parametrize("kind, activation, name", [("mlp", "gelu", "GELU MLP"), ("glu", "silu", "SwiGLU"), ("glu", "gelu_tanh", "GeGLU")])
def test_ffn_kind_is_named_in_the_ffn_box(kind, activation, name):
    cfg = archlab.config("llama-3-8b").replace(ffn={"kind": kind, "activation": activation})
    assert layout(cfg).boxes()["ffn"].title.startswith(name)
    assert "mlp" not in layout(cfg).boxes()["attention"].title.lower()


def test_mla_and_deltanet_are_named():
    assert layout("deepseek-v3").boxes()["attention"].title.startswith("MLA")
    att = layout("qwen3-next-80b-a3b").boxes()["attention"]
    assert "Gated DeltaNet" in att.title and any("36/48 layers" in line for line in att.lines)
