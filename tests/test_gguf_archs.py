"""archlab.load of GGUF files of every architecture besides llama that archlab reads: tiny
files written from random HF models the way llama.cpp's converter writes them (gguf_convert.py).
F32 files must give back the HF model they were written from; quantized ones must compute what
HF transformers' own GGUF loader computes from the same file, where HF reads the architecture."""

from __future__ import annotations

import pytest
import torch

import archlab
from archlab.io.gguf import GGUFFile, read_gguf_config
from gguf_convert import Q, write_gguf
from hf_reference import make_hf

transformers = pytest.importorskip("transformers")

_SMALL = dict(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=128, bos_token_id=0, eos_token_id=1, pad_token_id=None)


def _qwen2(**kw):
    return transformers.Qwen2Config(**{**_SMALL, "rope_parameters": {"rope_type": "default", "rope_theta": 1e4}, **kw})


def _qwen2moe(**kw):
    # what llama.cpp's qwen2moe computes: every layer MoE, no top-k renormalisation, no window;
    # the shared expert 48 wide, not a multiple of the routed experts' 32
    return transformers.Qwen2MoeConfig(**{**_SMALL, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
                                          "shared_expert_intermediate_size": 48, "norm_topk_prob": False,
                                          "decoder_sparse_step": 1, "mlp_only_layers": [], "use_sliding_window": False,
                                          "rope_parameters": {"rope_type": "default", "rope_theta": 1e4}, **kw})


def _qwen3(**kw):
    return transformers.Qwen3Config(**{**_SMALL, "head_dim": 16, **kw})


def _qwen3moe(**kw):
    return transformers.Qwen3MoeConfig(**{**_SMALL, "head_dim": 16, "num_experts": 4, "num_experts_per_tok": 2,
                                          "moe_intermediate_size": 32, "norm_topk_prob": True, **kw})


def _gemma3(**kw):
    # 7 layers: the 6th is global (sliding_window_pattern 6), the others slide
    return transformers.Gemma3TextConfig(**{**_SMALL, "num_hidden_layers": 7, "head_dim": 32, "query_pre_attn_scalar": 32,
                                            "sliding_window": 8, **kw})


def _olmo2(**kw):
    return transformers.Olmo2Config(**{**_SMALL, **kw})


def _smollm3(**kw):
    # 4 layers: the 4th is NoPE
    return transformers.SmolLM3Config(**{**_SMALL, "num_hidden_layers": 4, **kw})


_GPT_SMALL = dict(vocab_size=300, bos_token_id=0, eos_token_id=1)


def _gpt2(**kw):
    return transformers.GPT2Config(**{**_GPT_SMALL, "n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 128, **kw})


def _bloom(**kw):
    return transformers.BloomConfig(**{**_GPT_SMALL, "hidden_size": 64, "n_layer": 2, "n_head": 4, **kw})


def _gptneox(**kw):
    return transformers.GPTNeoXConfig(**{**_GPT_SMALL, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                                         "intermediate_size": 96, "max_position_embeddings": 128, **kw})


def _gpt_oss(**kw):
    return transformers.GptOssConfig(**{**_SMALL, "head_dim": 16, "num_local_experts": 4, "num_experts_per_tok": 2,
                                        "sliding_window": 8, "layer_types": None, **kw})


def _glm4_moe(**kw):
    # GLM-4.5's shape: q/k/v biases, partial RoPE (0.5), sigmoid routing with groups, a dense first layer
    return transformers.Glm4MoeConfig(**{**_SMALL, "num_hidden_layers": 3, "head_dim": 16, "attention_bias": True,
                                         "n_routed_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 24,
                                         "n_shared_experts": 1, "first_k_dense_replace": 1, "n_group": 2, "topk_group": 1,
                                         "routed_scaling_factor": 2.5, "norm_topk_prob": True, **kw})


def _qwen3_next(**kw):
    # 4 layers: 3 Gated DeltaNet, then full attention (full_attention_interval 4); 4 value heads
    # over 2 key heads, so the per-key-head grouping of in_proj_qkvz matters
    return transformers.Qwen3NextConfig(**{**_SMALL, "num_hidden_layers": 4, "head_dim": 16, "num_experts": 4,
                                           "num_experts_per_tok": 2, "moe_intermediate_size": 16,
                                           "shared_expert_intermediate_size": 32, "linear_num_key_heads": 2,
                                           "linear_num_value_heads": 4, "linear_key_head_dim": 8, "linear_value_head_dim": 8,
                                           "linear_conv_kernel_dim": 3, "full_attention_interval": 4, "norm_topk_prob": True,
                                           "layer_types": None, **kw})


def _llama4(**kw):
    # Scout's layer plan on 4 layers (3 chunked RoPE + 1 NoPE), MoE every 2nd layer, QK norm; the
    # chunk and temperature constants are llama.cpp's (8192), which the metadata cannot change
    return transformers.Llama4TextConfig(**{**_SMALL, "intermediate_size": 32, "intermediate_size_mlp": 96,
                                            "num_hidden_layers": 4, "head_dim": 16, "num_local_experts": 4,
                                            "num_experts_per_tok": 1, "interleave_moe_layer_step": 2,
                                            "attention_chunk_size": 8192, "floor_scale": 8192, "attn_scale": 0.1,
                                            "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}, **kw})


def _deepseek(case: str):
    from families import CASES as FAMILY_CASES  # the tiny DeepSeek configs of the HF parity tests

    return lambda **kw: FAMILY_CASES[case].hf_config()


# arch -> (tiny HF config, whether HF's GGUF loader reads the architecture)
CASES = {
    "qwen2": (_qwen2, True),
    "qwen2-tied": (lambda **kw: _qwen2(tie_word_embeddings=True, **kw), True),
    # Qwen2.5's long-context setting (its model cards: rope_scaling yarn, factor 4, 32768); HF's
    # GGUF loader ignores rope.scaling.* for qwen2
    "qwen2-yarn": (lambda **kw: _qwen2(rope_parameters={"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0,
                                                        "original_max_position_embeddings": 32}, **kw), False),
    "qwen2moe": (_qwen2moe, True),
    # a shared expert a whole number of routed experts wide (Qwen1.5-MoE-A2.7B: 4 x 1408), tied, no q/k/v biases
    # (HF's GGUF loader would assume Qwen2MoeConfig's qkv_bias and widths: only the F32 check)
    "qwen2moe-tied-shared2-nobias": (lambda **kw: _qwen2moe(tie_word_embeddings=True, shared_expert_intermediate_size=64,
                                                            qkv_bias=False, **kw), False),
    "qwen3": (_qwen3, True),
    "qwen3-tied": (lambda **kw: _qwen3(tie_word_embeddings=True, **kw), True),
    "qwen3moe": (_qwen3moe, True),
    "gemma3": (lambda **kw: _gemma3(**{"head_dim": 256, "query_pre_attn_scalar": 256, **kw}), True),
    "gemma3-headdim32": (_gemma3, False),
    "gemma3-linear-rope": (lambda **kw: _gemma3(**kw, rope_parameters={
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
        "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}), False),
    "olmo2": (_olmo2, False),
    "smollm3": (_smollm3, False),
    "smollm3-untied": (lambda **kw: _smollm3(tie_word_embeddings=False, **kw), False),
    "gpt2": (_gpt2, True),
    "bloom": (_bloom, True),
    "gptneox": (_gptneox, False),
    "gptneox-sequential-untied": (lambda **kw: _gptneox(use_parallel_residual=False, tie_word_embeddings=False, **kw), False),
    # HF's GGUF loader fails on gpt-oss files: it reads rope.scaling.factor as an array
    # (load_gguf_checkpoint, `float(value)`), ignores key_length and leaves the experts unloaded
    "gpt-oss": (_gpt_oss, False),
    "mixtral": (lambda **kw: transformers.MixtralConfig(**{**_SMALL, "num_local_experts": 4, "num_experts_per_tok": 2,
                                                           "sliding_window": None, **kw}), False),
    "glm4moe": (_glm4_moe, False),
    "qwen3next": (_qwen3_next, False),
    "llama4": (_llama4, False),
    # Maverick's 128 experts: llama.cpp turns the QK norm off by that count, as Maverick's config does
    "llama4-maverick": (lambda **kw: _llama4(num_local_experts=128, use_qk_norm=False, **kw), False),
    # Llama 4 Scout Instruct's band-less Llama 3 scaling (low_freq_factor = high_freq_factor = 1)
    "llama4-llama3-bandless": (lambda **kw: _llama4(rope_parameters={
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 16.0, "low_freq_factor": 1.0, "high_freq_factor": 1.0,
        "original_max_position_embeddings": 32}, **kw), False),
    "llama4-llama3-rope": (lambda **kw: _llama4(rope_parameters={
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 32}, **kw), False),
    "glm4moe-qknorm-nonorm": (lambda **kw: _glm4_moe(use_qk_norm=True, norm_topk_prob=False, n_group=1, topk_group=1, **kw), False),
    "deepseek2-v3": (_deepseek("dsv3-qlora-groups-yarn"), False),
    "deepseek2-v3-nonorm-oldlayout": (_deepseek("dsv3-noqlora-nonorm"), False),
    "deepseek2-v2": (_deepseek("dsv2-qlora-groups-yarn"), False),
    "deepseek2-v2lite": (_deepseek("dsv2-lite-greedy"), False),
}


def _arch(case: str) -> str:
    return "gpt-oss" if case.startswith("gpt-oss") else case.split("-")[0]


def _ids(vocab: int, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, shape, generator=g) for shape in ((1, 1), (2, 9), (2, 23))]


def _worst(ours, ref, vocab: int) -> float:
    """Largest |logit difference| of `ours` from `ref` (ids -> logits) over a few batches."""
    worst = 0.0
    with torch.no_grad():
        for ids in _ids(vocab):
            expected = ref(ids)
            assert expected.std() > 0.1
            worst = max(worst, (ours(ids) - expected).abs().max().item())
    return worst


@pytest.mark.filterwarnings("ignore:.*gemma3 attention scale")  # test_gguf_arch_choices.py
@pytest.mark.filterwarnings("ignore:.*gptneox MLP activation")  # test_gguf_arch_choices.py
@pytest.mark.filterwarnings("ignore:.*gpt-oss YaRN")  # test_gguf_arch_choices.py
@pytest.mark.parametrize("case", list(CASES))
def test_f32_gguf_equals_source_hf_model(tmp_path, case, parity_report):
    config, _ = CASES[case]
    ref = make_hf(config(), seed=len(case))
    path = write_gguf(tmp_path / f"{case}.gguf", _arch(case), ref, split_kv_b="oldlayout" not in case)
    ours = archlab.load(path).eval()
    assert read_gguf_config(path) == ours.config
    assert ours.config.tie_embeddings is ref.config.tie_word_embeddings
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    worst = _worst(ours, lambda ids: ref(ids).logits, ref.config.vocab_size)
    parity_report("gguf", f"{case}-f32-vs-source", worst)
    assert worst < 1e-4, f"max |logit difference| {worst:.2e}"


def _quant_types(name: str):
    # a mix the reader dequantizes: Q8_0 attention, Q4_1 MLP/experts, F16 elsewhere
    if ".attn_" in name:
        return Q.Q8_0
    if ".ffn_" in name and "inp" not in name:
        return Q.Q4_1
    return Q.F16


# HF's GGUF loader reads a few fields from its config classes' defaults, not from the file; the
# tiny models keep those fields where HF and llama.cpp agree: Qwen3Config's head_dim 128 (HF
# ignores qwen3.attention.key_length), Qwen3MoeConfig's moe_intermediate_size 768 (it ignores
# expert_feed_forward_length), Gemma3TextConfig's query_pre_attn_scalar 256, which llama.cpp's
# 1/sqrt(head_dim) equals for head_dim 256 (every Gemma 3 but 27B), GPT2Config's n_positions 1024
# (HF reads gpt2.context_length as n_ctx, which GPT2Config no longer has)
_HF_GGUF_CONFIG = {"qwen3": {"head_dim": 128}, "qwen3-tied": {"head_dim": 128}, "qwen3moe": {"moe_intermediate_size": 768},
                   # Qwen2MoeConfig's 1408 and 5632: HF ignores expert_(shared_)feed_forward_length
                   "qwen2moe": {"moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632},
                   "gpt2": {"n_positions": 1024},
                   }


@pytest.mark.parametrize("case", [c for c, (_, hf_reads) in CASES.items() if hf_reads])
def test_quantized_gguf_equals_hf_gguf_loader(tmp_path, case, parity_report):
    config, _ = CASES[case]
    src = make_hf(config(**_HF_GGUF_CONFIG.get(case, {})), seed=len(case))
    # a token list, as every real file has (HF's gpt2 reads its vocabulary size from it alone)
    tokens = lambda w: w.add_token_list([f"t{i}" for i in range(src.config.vocab_size)])  # noqa: E731
    path = write_gguf(tmp_path / f"{case}.gguf", _arch(case), src, types=_quant_types, vocab=tokens)
    ours = archlab.load(path).eval()
    ref = transformers.AutoModelForCausalLM.from_pretrained(
        tmp_path, gguf_file=path.name, dtype=torch.float32, attn_implementation="eager").eval()
    worst = _worst(ours, lambda ids: ref(ids).logits, src.config.vocab_size)
    parity_report("gguf", f"{case}-quant-vs-hf-gguf", worst)
    assert worst < 1e-4, f"max |logit difference| {worst:.2e}"
    with torch.no_grad():  # the quantization really changed the weights
        ids = _ids(src.config.vocab_size)[1]
        assert (ours(ids) - src(ids).logits).abs().max() > 1e-3


@pytest.mark.filterwarnings("ignore:.*gptneox MLP activation")
@pytest.mark.filterwarnings("ignore:.*gemma3 attention scale")
@pytest.mark.filterwarnings("ignore:.*gpt-oss YaRN")
@pytest.mark.parametrize("case", [c for c, (_, hf_reads) in CASES.items() if not hf_reads])
def test_quantized_gguf_equals_its_dequantized_f32_copy(tmp_path, case, parity_report):
    """Where HF's GGUF loader does not read the architecture: the quantized file computes what an
    F32 file of the same values computes (dequantized by gguf-py, not by archlab's reader), and
    F32 files equal the source HF model (test_f32_gguf_equals_source_hf_model)."""
    gguf = pytest.importorskip("gguf")
    config, _ = CASES[case]
    src = make_hf(config(), seed=len(case))
    quant = write_gguf(tmp_path / "q.gguf", _arch(case), src, types=_quant_types)
    reader = gguf.GGUFReader(str(quant))
    w = gguf.GGUFWriter(str(tmp_path / "f.gguf"), GGUFFile(quant).architecture)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        value = field.contents()
        sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(field.name, value, field.types[0], sub_type=sub)
    for t in reader.tensors:
        shape = tuple(int(d) for d in reversed(t.shape))
        w.add_tensor(t.name, gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape).astype("float32"))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    ours, f32 = archlab.load(quant).eval(), archlab.load(tmp_path / "f.gguf").eval()
    assert {GGUFFile(quant).type_name(n) for n in GGUFFile(quant).tensors} >= {"Q8_0", "Q4_1"}
    worst = _worst(ours, f32, src.config.vocab_size)
    parity_report("gguf", f"{case}-quant-vs-dequantized-f32", worst)
    assert worst < 1e-5
