"""`archlab compare`, `inspect` and `presets`, end to end through `archlab.cli.main`, and the
part descriptions they print, on hand-made configs that use every part as well as the presets."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

import archlab
from archlab.analysis import Analysis, analyze
from archlab.cli import main
from archlab.model_config import (
    AttentionConfig,
    AttnTemperature,
    DeltaNetConfig,
    FFNConfig,
    LengthTemperature,
    MLAConfig,
    ModelConfig,
    MoEConfig,
    NormConfig,
    RopeConfig,
    RopeScaling,
    RouterConfig,
)
from archlab.describe import (
    UNVERIFIED,
    describe,
    fmt_bytes,
    fmt_count,
    fmt_flops,
    fmt_tokens,
    index_set,
    layer_map,
    layer_runs,
    parse_tokens,
    pattern,
    verified,
)
from archlab.catalog import published

# ---- hand-made configs, one per family of parts ------------------------------------------------

UNIT = NormConfig("rmsnorm", unit_offset=True)


def sliding_sandwich() -> ModelConfig:
    """Gemma 3's parts: 5 sliding : 1 global, two RoPEs, (1+w) RMSNorm, sandwich, QK-norm, MQA, GeGLU."""
    return ModelConfig(
        name="t-sliding", vocab_size=256, d_model=64, n_layers=12, max_seq_len=1024, norm=UNIT, block="sandwich",
        position=RopeConfig(theta=1e6, scaling=RopeScaling("linear", 8.0, 128)), rope_local=RopeConfig(theta=1e4),
        attention=AttentionConfig(n_heads=4, n_kv_heads=1, head_dim=16, window=64, qk_norm=UNIT),
        ffn=FFNConfig(hidden=384, kind="glu", activation="gelu_tanh"), tie_embeddings=True,
        layer_types=tuple("sliding" if (i + 1) % 6 else "global" for i in range(12)),
    )


def hybrid() -> ModelConfig:
    """Qwen3-Next's parts: 3 DeltaNet : 1 gated attention, partial rotary, MoE with a gated shared expert."""
    return ModelConfig(
        name="t-hybrid", vocab_size=256, d_model=64, n_layers=8, max_seq_len=4096, norm=UNIT,
        position=RopeConfig(theta=5e6, partial=0.25),
        attention=AttentionConfig(n_heads=4, n_kv_heads=2, head_dim=32, qk_norm=UNIT, output_gate=True),
        linear_attention=DeltaNetConfig(n_k_heads=2, n_v_heads=4, k_head_dim=16, v_head_dim=16),
        moe=MoEConfig(n_experts=8, top_k=2, hidden=32, n_shared=1, shared_gate=True, router=RouterConfig(norm_topk=True)),
        layer_types=tuple("linear" if (i + 1) % 4 else "global" for i in range(8)),
    )


def chunked_nope() -> ModelConfig:
    """Llama 4's parts: 3 chunked : 1 global NoPE, L2 QK-norm in RoPE layers only, MoE every 2nd layer."""
    return ModelConfig(
        name="t-chunked", vocab_size=256, d_model=64, n_layers=8, max_seq_len=2048,
        position=RopeConfig(theta=5e5, scaling=RopeScaling("llama3", 8.0, 256)),
        attention=AttentionConfig(n_heads=4, n_kv_heads=2, chunk=32, qk_norm=NormConfig("l2norm"),
                                  qk_norm_in_nope_layers=False, temperature=AttnTemperature()),
        ffn=FFNConfig(hidden=256),
        moe=MoEConfig(n_experts=4, top_k=1, hidden=64, n_shared=1, router=RouterConfig(score="sigmoid", weights_on="input")),
        layer_types=tuple("chunked" if (i + 1) % 4 else "global" for i in range(8)),
        ffn_types=tuple("moe" if i % 2 else "dense" for i in range(8)),
        rope_layers=tuple(bool((i + 1) % 4) for i in range(8)),
    )


def mla_moe() -> ModelConfig:
    """DeepSeek-V3's parts: MLA with a compressed query, 2 dense layers first, sigmoid group-limited routing, YaRN."""
    return ModelConfig(
        name="t-mla", vocab_size=256, d_model=64, n_layers=6, max_seq_len=4096,
        position=RopeConfig(scaling=RopeScaling("yarn", 40.0, 64, mscale=1.0, mscale_all_dim=1.0)),
        attention=MLAConfig(n_heads=4, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, q_lora_rank=48),
        ffn=FFNConfig(hidden=192),
        moe=MoEConfig(n_experts=16, top_k=4, hidden=32, n_shared=1, router=RouterConfig(
            score="sigmoid", norm_topk=True, scale=2.5, n_groups=8, topk_groups=4, group_score="top2_sum", score_bias=True)),
        ffn_types=("dense",) * 2 + ("moe",) * 4,
    )


def gpt_like() -> ModelConfig:
    """GPT-1/2's parts: learned positions, LayerNorm with bias, post-norm, GELU MLP 4x, biases."""
    return ModelConfig(
        name="t-gpt", vocab_size=256, d_model=64, n_layers=2, max_seq_len=128, position="learned",
        norm=NormConfig("layernorm", eps=1e-5, bias=True), block="post",
        attention=AttentionConfig(n_heads=4, qkv_bias=True, out_bias=True),
        ffn=FFNConfig(hidden=256, kind="mlp", activation="gelu", bias=True), tie_embeddings=True,
    )


def alibi_parallel() -> ModelConfig:
    """BLOOM's and GPT-NeoX's parts: ALiBi, a parallel block, a norm after the embedding."""
    return ModelConfig(
        name="t-alibi", vocab_size=256, d_model=64, n_layers=2, max_seq_len=128, position="alibi",
        norm=NormConfig("layernorm", bias=True), block="parallel", embed_norm=True,
        attention=AttentionConfig(n_heads=4), ffn=FFNConfig(hidden=256, kind="mlp", activation="gelu"),
    )


def odds() -> ModelConfig:
    """GPT-OSS, Grok, OLMo 2 and SmolLM3 odds: sinks, softcap, output-norm, QK-norm across heads,
    NoPE every 4th layer, every layer sliding, clamped SwiGLU experts with biases."""
    return ModelConfig(
        name="t-odds", vocab_size=256, d_model=64, n_layers=8, max_seq_len=1024, block="output",
        attention=AttentionConfig(n_heads=4, n_kv_heads=2, window=128, sinks=True, softcap=30.0, qk_norm=NormConfig(),
                                  qk_norm_scope="all", temperature=LengthTemperature(64)),
        moe=MoEConfig(n_experts=4, top_k=2, hidden=32, bias=True, swiglu_limit=7.0, router=RouterConfig(logit_bias=True)),
        layer_types=("sliding",) * 8, rope_layers=tuple(bool((i + 1) % 4) for i in range(8)),
    )


HAND_MADE = [sliding_sandwich, hybrid, chunked_nope, mla_moe, gpt_like, alibi_parallel, odds]


# ---- describe ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make, expected", [
    (sliding_sandwich, {
        "norm": "RMSNorm(1+w), sandwich, QK-norm",
        "position": "RoPE 1M linear x8 global / 10K sliding",
        "attention": "MQA: 4 query, 1 KV head of 16",
        "pattern": "5 sliding(64) : 1 global",
        "ffn": "GeGLU 6x (384)",
        "kv": "768 B up to 64, then 128 B (K,V 1 x 16)",
    }),
    (hybrid, {
        "norm": "RMSNorm(1+w), pre-norm, QK-norm",
        "position": "RoPE 5M on 25% (8/32 dims)",
        "attention": "GQA: 4 query, 2 KV heads of 32, output gate; Gated DeltaNet: 2 QK / 4 V heads of 16",
        "pattern": "3 DeltaNet : 1 gated attention",
        "ffn": "MoE 8 experts of 32, top-2 + 1 shared (gated), softmax",
    }),
    (chunked_nope, {
        "norm": "RMSNorm, pre-norm, QK L2-norm (RoPE layers)",
        "position": "RoPE 500K llama3 x8; NoPE in the 2 global layers",
        "attention": "GQA: 4 query, 2 KV heads of 16, NoPE temperature",
        "pattern": "3 chunked(32) : 1 global",
        "ffn": "MoE 4 experts of 64, top-1 + 1 shared, sigmoid; MoE every 2nd layer, else dense SwiGLU 4x (256)",
        "kv": "1.00 KiB up to 32, then 256 B (K,V 2 x 16)",
    }),
    (mla_moe, {
        "norm": "RMSNorm, pre-norm",
        "position": "RoPE 10K YaRN x40, decoupled 8-dim key",
        "attention": "MLA: 4 heads, KV latent 32 + 8 RoPE, Q latent 48",
        "pattern": "all global",
        "ffn": "MoE 16 experts of 32, top-4 + 1 shared, sigmoid, 8 groups (top-4); first 2 layers dense SwiGLU 3x (192)",
        "kv": "480 B (MLA latent 32 + RoPE key 8)",
    }),
    (gpt_like, {
        "norm": "LayerNorm, post-norm",
        "position": "learned (128 positions)",
        "attention": "MHA: 4 heads of 16, QKV bias",
        "ffn": "GELU MLP 4x (256)",
        "kv": "512 B (K,V 4 x 16)",
    }),
    (alibi_parallel, {
        "norm": "LayerNorm, parallel, embedding norm",
        "position": "ALiBi",
        "attention": "MHA: 4 heads of 16",
    }),
    (odds, {
        "norm": "RMSNorm, output-norm, QK-norm (all heads)",
        "position": "RoPE 10K; NoPE every 4th layer (2/8)",
        "attention": "GQA: 4 query, 2 KV heads of 16, sinks, softcap 30, length temperature",
        "pattern": "all sliding(128)",
        "ffn": "MoE 4 experts of 32, top-2, softmax, clamped SwiGLU",
        "kv": "1.00 KiB up to 128, then nothing more (K,V 2 x 16)",
    }),
])
def test_describe_hand_made_configs(make, expected):
    d = describe(make())
    for key, text in expected.items():
        assert d.text(key) == text, key


def test_describe_kv_of_a_hybrid_counts_the_fixed_state():
    cfg = hybrid()
    a = analyze(cfg)
    d = describe(cfg, a, context=1000)
    kv = d.parts["kv"].data
    # what the DeltaNet layers' caches of the built model allocate in bfloat16 (conv history in
    # the cache dtype, the recurrent state in float32), counted by torch
    import torch
    from measured import allocated_bytes

    cache = archlab.build(cfg).new_cache(1, 1, dtype=torch.bfloat16)
    linear = [layer for layer, kind in zip(cache.layers, cfg.layer_types) if kind == "linear"]
    assert linear and kv["fixed_bytes"] == allocated_bytes(*linear)
    assert kv["bytes_per_token"] == a.kv_cache_bytes_per_token()
    assert "fixed DeltaNet state" in d.text("kv")
    assert d.parts["kv_at"].data["bytes"] == a.kv_cache_bytes(1000)


@pytest.mark.parametrize("make", HAND_MADE)
def test_describe_numbers_are_the_analysis(make):
    cfg = make()
    a = analyze(cfg)
    d = describe(cfg, context=100, batch=3, dtype="float32")
    n = d.numbers
    assert (n["total_params"], n["active_params"]) == (a.total_params, a.active_params)
    assert n["flops_per_token"] == a.flops_per_token(100)
    assert n["kv_cache_bytes"] == a.kv_cache_bytes(100, 3, "float32")
    assert d.parts["published"].text == "-"  # nobody published a hand-made model
    json.dumps(d.to_dict())  # every part's data is plain JSON


@pytest.mark.parametrize("name", archlab.presets())
def test_describe_every_preset(name):
    d = describe(name)
    for key in ("norm", "position", "attention", "pattern", "ffn", "kv"):
        assert d.text(key) and "None" not in d.text(key)
    agrees = d.parts["published"].data.get("total_agrees", True) and d.parts["published"].data.get("active_agrees", True)
    assert ("[ours differs]" not in d.text("published")) == agrees  # a disagreement is shown, never hidden


def test_describe_presets_key_differences():
    assert describe("deepseek-v3").text("ffn").startswith("MoE 256 experts of 2048, top-8 + 1 shared, sigmoid, 8 groups")
    assert describe("gemma-3-27b").text("pattern") == "5 sliding(1K) : 1 global"
    assert describe("qwen3-next-80b-a3b").text("pattern") == "3 DeltaNet : 1 gated attention"
    assert describe("llama-4-maverick").text("position").endswith("NoPE in the 12 global layers")
    assert describe("smollm3-3b").text("position") == "RoPE 5M; NoPE every 4th layer (9/36)"
    assert describe("gpt-oss-20b").text("attention").endswith("sinks")
    assert describe("gpt2").text("ffn") == "GELU MLP 4x (3072)"
    assert describe("llama-3-8b").text("attention") == "GQA: 32 query, 8 KV heads of 128"


def test_verification_marks():
    assert "grok-2.5" in UNVERIFIED and not verified(archlab.config("grok-2.5"))
    assert not verified(archlab.tiny("grok-2.5"))  # the source's "not verified" travels with it
    assert verified(archlab.config("llama-3-8b"))


def test_pattern_and_number_helpers():
    assert pattern(["global"] * 4) == "all global"
    assert pattern(["a", "a", "b"] * 3 + ["a"]) == "2 a : 1 b"
    assert pattern(["dense"] * 3 + ["moe"] * 5) == "3 dense, then 5 moe"
    assert pattern(["a", "b", "b", "a", "c", "a", "a", "b"]) == "4 a, 3 b, 1 c"
    assert index_set([0, 1, 2]) == "0-2"
    assert index_set([5, 11, 17, 23]) == "5, 11, ..., 23 (every 6th)"
    assert (fmt_count(124_439_808), fmt_count(8_030_261_248), fmt_count(999_999_999)) == ("124.4M", "8.03B", "1.00B")
    assert (fmt_bytes(131072), fmt_bytes(100), fmt_bytes(3 * 1024**3)) == ("128.0 KiB", "100 B", "3.00 GiB")
    assert (fmt_tokens(8192), fmt_tokens(1 << 20), fmt_tokens(1000)) == ("8K", "1M", "1,000")
    assert (parse_tokens("8192"), parse_tokens("32k"), parse_tokens("1M")) == (8192, 32768, 1 << 20)
    for bad in ("0", "-5", "abc", "1.5"):
        with pytest.raises(ValueError):
            parse_tokens(bad)


def test_layer_runs_and_map():
    runs = layer_runs(archlab.config("deepseek-v3"))
    assert [(r.span, r.label) for r in runs] == [
        ("0-2", "global MLA, dense FFN, RoPE"), ("3-60", "global MLA, MoE FFN, RoPE")]
    lines = layer_map(chunked_nope())
    assert lines[0].split()[1] == "cCcGcCcG"
    assert lines[1].index("^") == lines[0].index("G")  # NoPE marks sit under the global layers


# ---- compare --------------------------------------------------------------------------------

NAMES = ["gpt2", "llama-3-8b", "deepseek-v3"]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_compare_table_holds_each_models_numbers(capsys):
    rc, out, err = _run(capsys, "compare", *NAMES, "--width", "200")
    assert rc == 0 and not err
    header = next(line for line in out.splitlines() if all(n in line for n in NAMES))
    assert header.split() == NAMES  # models are the columns
    for name in NAMES:
        a = analyze(name)
        for text in (fmt_count(a.total_params), fmt_count(a.active_params), fmt_bytes(a.kv_cache_bytes(8192)),
                     fmt_flops(a.flops_per_token(8192)), fmt_bytes(a.kv_cache_bytes_per_token())):
            assert text in out, (name, text)
    assert Analysis.CONVENTIONS in out
    assert "past the max context of gpt2" in out  # 8K tokens is more than GPT-2 was built for


def test_compare_wraps_to_the_width(capsys):
    rc, out, _ = _run(capsys, "compare", *NAMES, "--width", "90")
    assert rc == 0
    table = out[: out.index("Conventions")]
    assert max(len(line) for line in table.splitlines()) <= 90
    assert "MoE 256 experts" in out


def test_compare_many_models_one_per_row(capsys):
    rc, out, _ = _run(capsys, "compare", "--all", "--width", "120", "--context", "32K")
    assert rc == 0
    lines = out.splitlines()
    assert max(len(line) for line in out[: out.index("Conventions")].splitlines()) <= 120
    for name in archlab.presets():
        starts = [line for line in lines if line.split(" ")[0].rstrip("*") == name]
        assert len(starts) == 2, name  # one row in the numbers table, one in the parts table
        assert fmt_bytes(analyze(name).kv_cache_bytes(32768)) in starts[0]
    unverified = ", ".join(n for n in archlab.presets() if not verified(archlab.config(n)))
    assert "grok-2.5" in unverified
    assert f"* not verified against a reference implementation ({unverified}); see each preset's source." in out


def test_compare_json(capsys):
    rc, out, _ = _run(capsys, "compare", *NAMES, "grok-2.5", "--json", "--context", "32768", "--batch", "4", "--dtype", "float32")
    assert rc == 0
    data = json.loads(out)
    assert (data["context"], data["batch"], data["dtype"]) == (32768, 4, "float32")
    assert data["conventions"] == Analysis.CONVENTIONS
    assert [m["name"] for m in data["models"]] == [*NAMES, "grok-2.5"]
    for m in data["models"]:
        a = analyze(m["name"])
        n = m["numbers"]
        assert n["total_params"] == a.total_params
        assert n["active_params"] == a.active_params
        assert n["flops_per_token"] == a.flops_per_token(32768)
        assert n["kv_cache_bytes"] == a.kv_cache_bytes(32768, 4, "float32")
        assert n["kv_cache_bytes_per_token"] == a.kv_cache_bytes_per_token("float32")
        pub = published(m["name"])
        assert m["published"]["total"] == pub.total and m["published"]["source"] == pub.source
        assert m["parts"]["attention"]["text"] == describe(m["name"]).text("attention")
        assert m["verified"] == (m["name"] != "grok-2.5")
    deepseek = data["models"][2]
    assert deepseek["published"]["active"] == "37B"
    assert deepseek["published"]["active_ours"] == analyze("deepseek-v3").active_params_as("no_embedding")
    assert deepseek["parts"]["ffn"]["data"]["moe"]["n_experts"] == 256


def _md_cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


@pytest.mark.parametrize("names", [NAMES, ["--all"]])
def test_compare_markdown_is_a_table(capsys, names):
    rc, out, _ = _run(capsys, "compare", *names, "--markdown")
    assert rc == 0
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    block = [line for line in lines[first:] if line.startswith("|")]
    assert lines[first + len(block)] == ""  # one contiguous table
    width = len(_md_cells(block[0]))
    assert all(len(_md_cells(line)) == width for line in block)
    assert all(set(c) <= set("- ") and c for c in _md_cells(block[1]))
    if names == NAMES:
        assert _md_cells(block[0])[1:] == NAMES
        assert len(block) == 2 + 14
    else:
        assert len(block) == 2 + len(archlab.presets())
    assert "```text" in out and "Conventions" in out


@pytest.mark.parametrize("argv, message", [
    (["compare", "lama-3-8b"], "unknown preset 'lama-3-8b'; did you mean 'llama-3-8b'"),
    (["compare", "gpt2", "deepseek-v9", "nothing-like-it"], "unknown preset 'nothing-like-it'"),
    (["compare", "gpt2", "--context", "0"], "--context: must be at least 1 token"),
    (["compare", "gpt2", "--context", "-4096"], "--context"),
    (["compare", "gpt2", "--context", "lots"], "--context: expected a number of tokens"),
    (["compare", "gpt2", "--dtype", "float13"], "unknown cache dtype 'float13'"),
    (["compare", "gpt2", "--batch", "0"], "--batch: must be at least 1"),
    (["compare"], "name at least one preset, or pass --all"),
    (["compare", "gpt2", "--json", "--markdown"], "not allowed with argument"),
    (["inspect", "deepseek-v4"], "did you mean 'deepseek-v3'"),
    (["report", "gpt3", "-o", "x.html"], "unknown preset 'gpt3'"),
])
def test_bad_input_exits_2_with_a_message(capsys, argv, message):
    rc, out, err = _run(capsys, *argv)
    assert rc == 2
    assert message in err
    assert "Traceback" not in err and not out


def test_unknown_names_are_all_reported(capsys):
    rc, _, err = _run(capsys, "compare", "gpt2", "deepseek-v9", "lama-3-8b")
    assert rc == 2
    assert "'deepseek-v9'; did you mean" in err and "'lama-3-8b'; did you mean 'llama-3-8b'" in err


def test_compare_a_saved_config_file(capsys, tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(hybrid().to_dict()))
    rc, out, _ = _run(capsys, "compare", "gpt2", str(path), "--json")
    assert rc == 0
    assert json.loads(out)["models"][1]["parts"]["pattern"]["text"] == "3 DeltaNet : 1 gated attention"
    path.write_text("{not json")
    rc, _, err = _run(capsys, "compare", str(path))
    assert rc == 2 and "not a readable JSON config" in err


@pytest.mark.slow
def test_the_table_commands_do_not_import_torch():
    code = (
        "import sys, io, contextlib\n"
        "from archlab.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['compare', '--all']) == 0\n"
        "    assert main(['compare', 'gpt2', 'deepseek-v3', '--json']) == 0\n"
        "    assert main(['presets']) == 0\n"
        "    assert main(['inspect', 'deepseek-v3', '--plan']) == 0\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- inspect, presets, config ---------------------------------------------------------------

def test_inspect_deepseek_v3(capsys):
    rc, out, _ = _run(capsys, "inspect", "deepseek-v3")
    assert rc == 0
    assert re.search(r"layers 0-2\s+global MLA, dense FFN, RoPE", out)
    assert re.search(r"layers 3-60\s+global MLA, MoE FFN, RoPE", out)
    assert "mmmMMMMMMM" in out  # the layer map: 3 dense MLA layers, then MoE
    assert "layers.3-60: 58 x PreNormBlock [global MLA, MoE FFN, RoPE]" in out
    assert "experts: Experts (gate 256x2048x7168" in out
    assert f"total {analyze('deepseek-v3').total_params:,} parameters, equal to the analysis" in out


def test_inspect_collapses_a_repeating_plan(capsys):
    rc, out, _ = _run(capsys, "inspect", "gemma-3-27b")
    assert rc == 0
    assert "layers.0-4: 5 x SandwichBlock [sliding(1K) attention, dense FFN, RoPE 10K]" in out
    assert "layers.6-61: layers.0-5 repeated, 56 more layers" in out
    assert re.search(r"global attention, dense FFN, RoPE 1M\s+10 x", out)


def test_inspect_falls_back_to_the_analysis_when_a_part_has_no_module(capsys, tmp_path, monkeypatch):
    def no_module(*args, **kwargs):
        raise NotImplementedError("t-hybrid: no module yet for linear_attention layers")

    monkeypatch.setattr(archlab, "build", no_module)
    path = tmp_path / "hybrid.json"
    path.write_text(json.dumps(hybrid().to_dict()))
    rc, out, _ = _run(capsys, "inspect", str(path))
    assert rc == 0
    assert "cannot build t-hybrid (t-hybrid: no module yet for linear_attention layers)" in out
    assert "the analytic breakdown from the config instead" in " ".join(out.split())  # wrapped to the width
    a = analyze(hybrid())
    assert f"t-hybrid: {fmt_count(a.total_params)}" in out
    assert "layers.0-2: 3 x [Gated DeltaNet, MoE FFN]" in out
    assert "layers.4-7: layers.0-3 repeated, 4 more layers" in out


def test_inspect_plan_only(capsys):
    rc, out, _ = _run(capsys, "inspect", "llama-4-maverick", "--plan")
    assert rc == 0
    assert "Module tree" not in out
    assert "NoPE" in out and "cCcG" in out


def test_presets_lists_every_preset_with_its_size(capsys):
    rc, out, _ = _run(capsys, "presets", "--width", "250")
    assert rc == 0
    rows = {line.split()[0].rstrip("*"): line for line in out.splitlines()[2:] if line and not line.startswith("*")}
    assert list(rows) == archlab.presets()
    for name, line in rows.items():
        assert fmt_count(analyze(name).total_params) in line


def test_config_command_still_works(capsys):
    rc, out, _ = _run(capsys, "config", "gpt2")
    assert rc == 0
    d = json.loads(out)
    assert d["params"] == analyze("gpt2").total_params and d["n_layers"] == 12
