"""Tiny GGUF files written from random HF models the way llama.cpp's convert_hf_to_gguf.py writes
them, for the architectures archlab reads through its HF families: tensor names from gguf-py's
own TensorNameMap (not from archlab's tables), metadata with the GGUFWriter calls each model
class's set_gguf_parameters makes, and the converter's layout changes (experts stacked per
projection, Gemma's norms stored as 1 + w, no Q/K permutation outside LlamaModel)."""

from __future__ import annotations

import numpy as np
import pytest

from gguf_metadata import metadata

gguf = pytest.importorskip("gguf")
Q = gguf.GGMLQuantizationType

ARCH = {"qwen2": gguf.MODEL_ARCH.QWEN2, "qwen2moe": gguf.MODEL_ARCH.QWEN2MOE, "qwen3": gguf.MODEL_ARCH.QWEN3, "qwen3moe": gguf.MODEL_ARCH.QWEN3MOE,
        "gemma3": gguf.MODEL_ARCH.GEMMA3, "olmo2": gguf.MODEL_ARCH.OLMO2, "smollm3": gguf.MODEL_ARCH.SMOLLM3,
        "gpt2": gguf.MODEL_ARCH.GPT2, "bloom": gguf.MODEL_ARCH.BLOOM, "gptneox": gguf.MODEL_ARCH.GPTNEOX,
        "deepseek2": gguf.MODEL_ARCH.DEEPSEEK2, "gpt-oss": gguf.MODEL_ARCH.GPT_OSS, "glm4moe": gguf.MODEL_ARCH.GLM4_MOE,
        "mixtral": gguf.MODEL_ARCH.LLAMA, "qwen3next": gguf.MODEL_ARCH.QWEN3NEXT, "llama4": gguf.MODEL_ARCH.LLAMA4}  # LlamaModel writes MixtralForCausalLM as `llama`
# LlamaModel and its subclasses permute each head's Q/K rows (LlamaModel.permute)
PERMUTED = {"smollm3", "mixtral"}


def _qwen3_next_tensor(hf_name: str, a: np.ndarray, c) -> dict[str, np.ndarray] | None:
    """Qwen3NextModel.modify_tensors' changes, as (HF-style name -> array), or None for none."""
    if hf_name.endswith(".A_log"):
        return {hf_name: -np.exp(a)}
    if hf_name.endswith(".dt_bias"):
        return {hf_name.removesuffix(".dt_bias") + ".dt_proj.bias": a}
    if "conv1d" in hf_name:
        return {hf_name: a.squeeze()}
    if hf_name.endswith("norm.weight") and not hf_name.endswith("linear_attn.norm.weight"):
        return {hf_name: a + 1}
    if hf_name.endswith("in_proj_qkvz.weight"):
        dk, dv, hk, hv = c.linear_key_head_dim, c.linear_value_head_dim, c.linear_num_key_heads, c.linear_num_value_heads
        grouped = a.T.reshape(c.hidden_size, hk, 2 * dk + 2 * (hv // hk) * dv)
        q, k, v, z = np.split(grouped, np.cumsum([dk, dk, hv // hk * dv]), axis=-1)
        qkv = np.concatenate([t.reshape(c.hidden_size, -1) for t in (q, k, v)], axis=-1).T
        i = hf_name.split(".")[2]
        return {f"blk.{i}.attn_qkv.weight": qkv, f"blk.{i}.attn_gate.weight": z.reshape(c.hidden_size, -1).T}
    return None


def _tensors(arch: str, model, split_kv_b: bool = True) -> dict[str, np.ndarray]:
    """GGUF name -> array (torch order) of every tensor the converter writes."""
    c = model.config
    names = gguf.get_tensor_name_map(ARCH[arch], c.num_hidden_layers)
    out = {}
    for hf_name, t in model.state_dict().items():
        if hf_name in ("lm_head.weight", "embed_out.weight") and c.tie_word_embeddings:
            continue
        if hf_name.endswith((".attn.bias", ".attn.masked_bias")):  # GPT-2's causal-mask buffers
            continue
        a = t.detach().float().numpy()
        if arch == "qwen2moe" and hf_name.endswith("shared_expert_gate.weight"):
            # (D,): the converter squeezed every tensor (data_torch.squeeze(), dropped later) when
            # the published Qwen1.5-MoE / Qwen2-57B files were written; qwen3next keeps (1, D)
            a = a.squeeze(0)
        if arch == "qwen3next" and (changed := _qwen3_next_tensor(hf_name, a, c)) is not None:
            direct = {k: v for k, v in changed.items() if k.startswith("blk.")}
            out.update(direct)
            if direct:
                continue
            (hf_name, a), = changed.items()
        if arch == "bloom":
            hf_name = hf_name.removeprefix("transformer.")  # BloomModel.modify_tensors
        if arch in ("bloom", "gptneox") and "query_key_value" in hf_name:
            # per-head [q_h; k_h; v_h] -> [all q; all k; all v] (BloomModel / GPTNeoXModel.modify_tensors)
            n_head = getattr(c, "n_head", None) or c.num_attention_heads
            a = a.reshape(n_head, 3, -1, *a.shape[1:]).swapaxes(0, 1).reshape(a.shape)
        if arch == "gpt2" and hf_name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
            a = a.T  # GPT2Model.modify_tensors
        if arch in PERMUTED and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
            n_head = c.num_attention_heads if "q_proj" in hf_name else c.num_key_value_heads
            a = a.reshape(n_head, 2, a.shape[0] // n_head // 2, *a.shape[1:]).swapaxes(1, 2).reshape(a.shape)
        stem, _, kind = hf_name.rpartition(".")
        if arch == "gpt-oss" and stem.endswith("mlp.experts"):  # GptOssModel.modify_tensors, unquantized experts
            i = stem.split(".")[2]
            if kind == "gate_up_proj":  # (E, D, 2F), gate / up interleaved
                a = a.swapaxes(1, 2)
                out[f"blk.{i}.ffn_gate_exps.weight"], out[f"blk.{i}.ffn_up_exps.weight"] = a[:, ::2], a[:, 1::2]
            elif kind == "gate_up_proj_bias":
                out[f"blk.{i}.ffn_gate_exps.bias"], out[f"blk.{i}.ffn_up_exps.bias"] = a[..., ::2], a[..., 1::2]
            elif kind == "down_proj":  # (E, F, D)
                out[f"blk.{i}.ffn_down_exps.weight"] = a.swapaxes(1, 2)
            else:
                out[f"blk.{i}.ffn_down_exps.bias"] = a
            continue
        if kind == "sinks":  # GptOssModel.filter_tensors: sinks -> sinks.weight
            stem, kind = f"{stem}.sinks", "weight"
        if arch == "llama4" and stem.endswith("feed_forward.experts"):  # the shapes llama.cpp's llama4 loads
            i = stem.split(".")[2]
            if kind == "gate_up_proj":  # (E, D, 2F), [gate | up] halves
                half = a.shape[-1] // 2
                out[f"blk.{i}.ffn_gate_exps.weight"] = a[..., :half].swapaxes(1, 2)
                out[f"blk.{i}.ffn_up_exps.weight"] = a[..., half:].swapaxes(1, 2)
            else:  # down_proj (E, F, D) -> (E, D, F): Llama4Model.modify_tensors transposes it
                out[f"blk.{i}.ffn_down_exps.weight"] = a.swapaxes(1, 2)
            continue
        if stem.endswith("mlp.experts") and kind == "gate_up_proj":  # HF v5 fused: (E, 2F, D), gate first
            i = stem.split(".")[2]
            half = a.shape[1] // 2
            out[f"blk.{i}.ffn_gate_exps.weight"], out[f"blk.{i}.ffn_up_exps.weight"] = a[:, :half], a[:, half:]
            continue
        if stem.endswith("mlp.experts"):  # down_proj (E, D, F)
            stem, kind = f"{stem}.{kind}", "weight"
        if kind == "e_score_correction_bias":  # TextModel.modify_tensors
            stem, kind = f"{stem}.e_score_correction", "bias"
        if split_kv_b and stem.endswith("kv_b_proj"):
            # DeepseekV2Model.modify_tensors: per head, k_b (transposed) and v_b
            c = model.config
            kv_b = a.reshape(c.num_attention_heads, c.qk_nope_head_dim + c.v_head_dim, -1)
            i = stem.split(".")[2]
            out[f"blk.{i}.attn_k_b.weight"] = np.ascontiguousarray(kv_b[:, :c.qk_nope_head_dim].swapaxes(1, 2))
            out[f"blk.{i}.attn_v_b.weight"] = np.ascontiguousarray(kv_b[:, c.qk_nope_head_dim:])
            continue
        if kind not in ("weight", "bias") and (bare := names.get_name(hf_name)) is not None:
            out[bare] = a  # a tensor without a suffix (Mamba-style ssm_a)
            continue
        gguf_name = names.get_name(stem)
        assert gguf_name is not None, f"gguf-py has no name for {hf_name}"
        if arch == "gemma3" and hf_name.endswith("norm.weight"):
            a = a + 1.0  # Gemma3Model.modify_tensors: norm_shift
        out[f"{gguf_name}.{kind}"] = a
    return out


def write_gguf(path, arch: str, model, types=None, vocab=None, split_kv_b: bool = True, fuse_gate_up: bool = False):
    """`model` as llama.cpp's converter writes it; `types(gguf_name)` picks each matrix's
    quantization (norms and biases stay F32, as the converter keeps 1-D tensors); `vocab(writer)`
    adds a vocabulary's metadata."""
    w = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[ARCH[arch]])
    metadata(w, arch, model.config, split_kv_b)
    if arch == "glm4moe":  # the MTP layer after the decoder layers (Glm4MoeModel: block_count + nextn)
        L, d = model.config.num_hidden_layers, model.config.hidden_size
        w.add_tensor(f"blk.{L}.nextn.eh_proj.weight", np.zeros((d, 2 * d), np.float32))
        w.add_tensor(f"blk.{L}.attn_norm.weight", np.ones(d, np.float32))
    if vocab is not None:
        vocab(w)
    tensors = _tensors(arch, model, split_kv_b)
    rope = getattr(model.config, "rope_parameters", None) or {}  # GPT-2 and BLOOM have no RoPE
    if rope.get("rope_type") == "llama3":  # LlamaModel.generate_extra_tensors: the divisor of each frequency
        from test_gguf import llama3_rope_freqs

        tensors["rope_freqs.weight"] = llama3_rope_freqs(
            rope["rope_theta"], model.config.head_dim, rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"],
            rope["original_max_position_embeddings"])
    if fuse_gate_up:  # TextModel.modify_tensors with fuse_gate_up_exps: (E, 2F, D), gate first
        for i in range(model.config.num_hidden_layers):
            if f"blk.{i}.ffn_gate_exps.weight" in tensors:
                gate, up = tensors.pop(f"blk.{i}.ffn_gate_exps.weight"), tensors.pop(f"blk.{i}.ffn_up_exps.weight")
                tensors[f"blk.{i}.ffn_gate_up_exps.weight"] = np.concatenate([gate, up], axis=1)
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        qtype = Q.F32 if a.ndim == 1 or types is None else types(name)
        if qtype not in (Q.F32, Q.F16) and a.shape[-1] % gguf.GGML_QUANT_SIZES[qtype][0]:
            qtype = Q.F16  # rows shorter than a block stay F16, as llama-quantize leaves them
        if qtype == Q.F32:
            w.add_tensor(name, np.ascontiguousarray(a))
        elif qtype == Q.F16:
            w.add_tensor(name, a.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(np.ascontiguousarray(a), qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
