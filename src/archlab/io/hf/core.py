"""The machinery shared by every HF family: the HFFamily registry, config.json reading
helpers (RoPE's are rope.py's), their inverses for writing it, and loading through the
mapping engine (io/mapping.py), which pairs our tensor names with a checkpoint's and checks
the whole checkpoint. Each family lives in a module of its own (gpt2.py, llama.py, ...) and
registers an HFFamily; saving is save.py's."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from ...memory import check_load_memory
from ...model import build
from ...model_config import ConfigError, FFNConfig, ModelConfig, MoEConfig
from ..files import CONFIG_CAP, read_json
from ..mapping import load_state
from ..safetensors_dir import CheckpointError, TensorSource
from .bounds import check_bounds
from .values import check_values

def base_model_alternatives(rules: list[Rule], prefix: str = "transformer.") -> list[Rule]:
    """Many hub checkpoints were saved from the bare base model (GPT2Model, BloomModel,
    OpenAIGPTModel): their tensors lack the `transformer.` that save_pretrained of the LM model
    writes (openai-community/gpt2's model.safetensors holds `h.0.attn.c_attn.weight`). Each
    rule reads either layout; saving writes the prefixed one."""
    out = []
    for r in rules:
        if all(t.startswith(prefix) for t in r.theirs):
            r = replace(r, alternative=replace(r, theirs=tuple(t[len(prefix):] for t in r.theirs)))
        out.append(r)
    return out


def _state_as_is(state: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    return state


@dataclass
class HFFamily:
    model_types: tuple[str, ...]
    read_config: Callable[[dict[str, Any]], ModelConfig]
    rules: Callable[[ModelConfig, dict], list[Rule]]  # (config, config.json) -> rules
    # checkpoint tensors that carry nothing the model needs (recomputed buffers and the like)
    ignore: tuple[str, ...] = ()
    # ---- saving: written as model_types[0]; a family without write_config is only read ----
    architecture: str = ""  # config.json "architectures"
    mixer: str = "attention"  # the attention kind (AttentionConfig / MLAConfig) it holds
    # what in a config this family cannot express; empty: it writes the config exactly
    problems: Callable[[ModelConfig], list[str]] = lambda cfg: []
    write_config: Callable[[ModelConfig], dict[str, Any]] | None = None
    # our state dict -> what the rules save (tensors the family has and ours lacks, made explicit)
    prepare_state: Callable[[dict[str, torch.Tensor], ModelConfig], dict[str, torch.Tensor]] = _state_as_is
    # patterns of checkpoint tensors to ignore that depend on the config (DeepSeek-V3's MTP layers)
    extra_ignore: Callable[[dict, ModelConfig], list[str]] = lambda hf, cfg: []
    # patterns of checkpoint tensors HF's model holds with no elements for this config (the
    # zero-width shared expert of n_shared_experts=0): skipped once checked to be empty
    empty_tensors: Callable[[dict, ModelConfig], list[str]] = lambda hf, cfg: []


# ---- reading config.json ----------------------------------------------------------------

def ffn_parts(ffn: FFNConfig | None, moe: MoEConfig | None, ffn_types: tuple[str, ...] | None) -> dict[str, Any]:
    """The FFN fields of a ModelConfig from what config.json describes. It always gives a dense
    width (intermediate_size) and may give experts, used or not; a ModelConfig holds only the
    parts some layer uses (it rejects a knob nothing reads)."""
    kinds = set(ffn_types) if ffn_types is not None else {"moe" if moe is not None else "dense"}
    return {
        "ffn": ffn if "dense" in kinds else None,
        "moe": moe if "moe" in kinds else None,
        "ffn_types": ffn_types,
    }


_MISSING = object()


def get_field(hf: dict, key: str, default: Any = _MISSING) -> Any:
    if key in hf and hf[key] is not None:
        return hf[key]
    if default is _MISSING:
        raise CheckpointError(f"config.json: field {key!r} is missing (needed for model_type {hf.get('model_type')!r})")
    return default


ACTIVATIONS_IN = {
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu": "gelu",
    "silu": "silu",
    "swish": "silu",
    "relu": "relu",
    "quick_gelu": "quick_gelu",
    "tanh": "tanh",  # activations.py ACT2CLS: nn.Tanh
}


def in_config_json_names(e: Exception, names: dict[str, str], fields: str = "") -> CheckpointError:
    """A model-config refusal said in config.json's terms: each of archlab's field names in
    `names` (e.g. "moe.top_k", or a bare "n_experts" in the text) replaced by the config.json
    field that feeds it, so that the refusal names what the user can change. Another error (a
    TypeError from a value of the wrong type) is prefixed by `fields`, the config.json fields read."""
    if not isinstance(e, ConfigError):
        return CheckpointError(f"config.json: {fields}: {e}")
    msg = str(e)
    for ours in sorted(names, key=len, reverse=True):  # moe.router.n_groups before n_groups
        msg = re.sub(r"(?<![\w.])" + re.escape(ours) + r"\b", names[ours], msg)
    return CheckpointError(f"config.json: {msg}")


# archlab's MoEConfig fields -> the config.json fields of the DeepSeek line (DeepSeek-V2/V3, GLM-4.5)
DEEPSEEK_MOE_NAMES = {
    "moe.n_experts": "n_routed_experts", "n_experts": "n_routed_experts", "moe.top_k": "num_experts_per_tok",
    "moe.hidden": "moe_intermediate_size", "moe.n_shared": "n_shared_experts", "n_shared": "n_shared_experts",
    "moe.router.n_groups": "n_group", "n_groups": "n_group", "moe.router.topk_groups": "topk_group",
    "topk_groups": "topk_group", "moe.router.group_score": "n_group (groups ranked by their two best experts)",
}
# and of the other MoE families: Qwen (num_experts), Mixtral / GPT-OSS / Llama 4 (num_local_experts)
QWEN_MOE_NAMES = {"moe.n_experts": "num_experts", "n_experts": "num_experts", "moe.top_k": "num_experts_per_tok",
                  "moe.hidden": "moe_intermediate_size"}
LOCAL_MOE_NAMES = {"moe.n_experts": "num_local_experts", "n_experts": "num_local_experts",
                   "moe.top_k": "num_experts_per_tok", "moe.hidden": "intermediate_size"}


def activation(hf: dict, key: str) -> str:
    name = get_field(hf, key)
    if name not in ACTIVATIONS_IN:
        raise CheckpointError(f"config.json: {key}={name!r} is not supported (supported: {sorted(ACTIVATIONS_IN)})")
    return ACTIVATIONS_IN[name]


# ---- writing config.json: the inverse of the readers --------------------------------------

# our activation -> the HF name that computes exactly it (gelu_pytorch_tanh is F.gelu(approximate="tanh"))
HF_ACTIVATION = {"gelu_tanh": "gelu_pytorch_tanh", "gelu": "gelu", "silu": "silu", "relu": "relu", "quick_gelu": "quick_gelu",
                 "tanh": "tanh"}


def common_problems(cfg: ModelConfig) -> list[str]:
    p = []
    if cfg.block != "pre":
        p.append(f"block={cfg.block!r} (its blocks normalise each sublayer's input: block='pre')")
    if any(s.kind == "sliding" for s in cfg.layers):
        p.append("layer_types has 'sliding' layers (it has no sliding-window attention)")
    return p



FAMILIES: dict[str, HFFamily] = {}
# The order families are tried in when saving: the first that expresses a config exactly wins.
SAVE_ORDER: list[HFFamily] = []


def register(f: HFFamily) -> HFFamily:
    for t in f.model_types:
        if t in FAMILIES:
            raise RuntimeError(f"HF model_type {t!r} registered twice")
        FAMILIES[t] = f
    if f.write_config is not None:
        SAVE_ORDER.append(f)
    return f


def enable_saving(model_type: str, *, architecture: str, write_config: Callable[[ModelConfig], dict[str, Any]],
                  problems: Callable[[ModelConfig], list[str]] = lambda cfg: [], **parts: Any) -> HFFamily:
    """Give the registered reader of `model_type` its saving side, kept in a module of its own
    (the readers and the writers change for different reasons). Families are tried for saving
    in the order this is called, after those registered with a write_config."""
    f = FAMILIES[model_type]
    if f.write_config is not None or f.model_types[0] != model_type:
        raise RuntimeError(f"HF model_type {model_type!r}: saving enabled twice, or not its family's first name")
    f.architecture, f.write_config, f.problems = architecture, write_config, problems
    for k, v in parts.items():
        setattr(f, k, v)
    SAVE_ORDER.append(f)
    return f


# ---- loading --------------------------------------------------------------------------------

# archlab's ModelConfig fields -> the config.json fields that feed them, first found wins (the
# llama line's names, GPT-2's): a model-config refusal then names what the user can change
_COMMON_NAMES = {
    "d_model": ("hidden_size", "n_embd"), "n_layers": ("num_hidden_layers", "n_layer"),
    "vocab_size": ("vocab_size",), "max_seq_len": ("max_position_embeddings", "n_positions"),
    "n_heads": ("num_attention_heads", "n_head"), "n_kv_heads": ("num_key_value_heads",),
    "ffn.hidden": ("intermediate_size", "n_inner"), "head_dim": ("head_dim",),
    "logit_softcap": ("final_logit_softcapping",),
}


def _common_names(hf: dict) -> dict[str, str]:
    out = {}
    for ours, theirs in _COMMON_NAMES.items():
        given = [t for t in theirs if t in hf]
        if given and given[0] != ours:
            out[ours] = out["attention." + ours] = given[0]
    return out


def read_config(directory: str | Path) -> tuple[dict, HFFamily, ModelConfig]:
    path = Path(directory) / "config.json"
    if not path.exists():
        raise CheckpointError(f"{directory}: no config.json (an HF-format model directory needs one)")
    hf = read_json(path, CONFIG_CAP, directory)  # capped, regular, inside the folder: not /dev/zero, not a FIFO
    check_bounds(hf, path)
    model_type = hf.get("model_type")
    if not isinstance(model_type, str) or model_type not in FAMILIES:
        raise CheckpointError(
            f"{path}: model_type {model_type!r} is not supported; supported: {', '.join(sorted(FAMILIES))}"
        )
    family = FAMILIES[model_type]
    try:
        check_values(hf)
        cfg = family.read_config(hf)
    except CheckpointError:
        raise  # its message names config.json and the field already
    except ConfigError as e:
        raise CheckpointError(f"{path}: {str(in_config_json_names(e, _common_names(hf)))[len('config.json: '):]}") from None
    except (TypeError, KeyError, AttributeError, ValueError, OverflowError, ZeroDivisionError, RecursionError) as e:
        # a value check_values does not know that a reader trips on: still the file's fault
        raise CheckpointError(f"{path}: a value a {model_type} reader cannot use ({type(e).__name__}: {e})") from None
    return hf, family, cfg.replace(name=Path(directory).resolve().name, source=str(path))


def _fp8_block(hf: dict) -> tuple[int, int]:
    q = hf.get("quantization_config") or {}
    block = q.get("weight_block_size") or [128, 128]
    if len(block) != 2 or not all(isinstance(b, int) and b > 0 for b in block):
        raise CheckpointError(f"config.json: quantization_config.weight_block_size={block!r}; expected two positive integers")
    return block[0], block[1]


_FP8 = ("F8_E4M3", "F8_E5M2")
# safetensors' integer and bool dtype names (its README's dtype list)
_INTEGER = ("BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64")


class HFCheckpoint(TensorSource):
    """A safetensors directory read as its config.json says. FP8 weights stored with a
    per-block inverse scale (DeepSeek-V3's and Kimi K2's releases: `X.weight` in float8_e4m3fn,
    `X.weight_scale_inv` of one float per 128 x 128 block) are dequantized: weight * scale of
    its block; the scales are consumed with their weights."""

    def __init__(self, directory: str | Path, hf: dict):
        super().__init__(directory)
        self.hf = hf

    def companions(self, name: str) -> list[str]:
        scale = name + "_scale_inv"
        return [scale] if scale in self and self.dtype_name(name) in _FP8 else []

    def problems(self, names: list[str]) -> list[str]:
        # MXFP4's packed codes and exponents (GPT-OSS's release, io/mxfp4.py) are bytes
        mxfp4 = [n for n in names if n.endswith(("_blocks", "_scales"))]
        return [
            f"{n}: MXFP4 {'codes' if n.endswith('_blocks') else 'exponents'} must be stored as U8 (uint8), "
            f"stored as {self.dtype_name(n)}"
            for n in mxfp4 if self.dtype_name(n) != "U8"
        ] + [  # every other weight is a float: an integer one would reach load_state_dict as a RuntimeError
            f"{n}: stored as {self.dtype_name(n)}, an integer type; the model's weights are floating point"
            for n in names if n not in mxfp4 and self.dtype_name(n) in _INTEGER
        ]

    def read(self, name: str) -> torch.Tensor:
        t = self._dequantized(name)
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            # HF loads them silently; every output they reach is then NaN with nothing to say why.
            # A weight is never meant to be NaN or infinite: a corrupted file, or a run that diverged.
            bad = ~torch.isfinite(t)
            first = tuple(int(i) for i in bad.nonzero()[0])
            raise CheckpointError(
                f"{self._where[name]}: tensor {name!r} holds {int(torch.isnan(t).sum())} NaN and "
                f"{int(torch.isinf(t).sum())} infinite values (the first at index {first}); a weight is a finite "
                "number, so the file is corrupted or the training that wrote it diverged"
            )
        return t

    def _dequantized(self, name: str) -> torch.Tensor:
        t = super().read(name)
        if t.dtype not in (torch.float8_e4m3fn, torch.float8_e5m2):
            return t
        scale_name = name + "_scale_inv"
        if scale_name not in self:
            raise CheckpointError(f"{self.directory}: tensor {name!r} is {t.dtype} but has no {scale_name!r} to dequantize it with")
        scale = super().read(scale_name).float()
        br, bc = _fp8_block(self.hf)
        rows, cols = t.shape
        if scale.shape != (-(-rows // br), -(-cols // bc)):
            raise CheckpointError(
                f"{self.directory}: {scale_name!r} has shape {tuple(scale.shape)}; {name!r} {tuple(t.shape)} in blocks of "
                f"{br} x {bc} needs {(-(-rows // br), -(-cols // bc))}"
            )
        full = scale.repeat_interleave(br, dim=0)[:rows].repeat_interleave(bc, dim=1)[:, :cols]
        return t.float() * full


def convert_state(
    src: HFCheckpoint,
    family: HFFamily,
    cfg: ModelConfig,
    hf: dict,
    expected: dict[str, torch.Size],
    dtype: torch.dtype,
    extra_ignore: tuple[str, ...] = (),
) -> dict[str, torch.Tensor]:
    """Checkpoint tensors -> our state dict, checked against `expected` (name -> shape)."""
    return load_state(
        family.rules(cfg, hf), cfg, expected, src, dtype, described_by="config.json", ignore=family.ignore + extra_ignore
    )


def _checked_empty(src: HFCheckpoint, patterns: list[str]) -> list[str]:
    """`patterns`, once every checkpoint tensor they match is found to hold no elements: one
    that holds some is a weight the model config.json describes has no place for."""
    for name in src.names():
        if any(re.search(p, name) for p in patterns) and math.prod(src.shape(name)):
            raise CheckpointError(
                f"{src.directory}: tensor {name!r} has shape {tuple(src.shape(name))}, but the model config.json "
                "describes holds it with no elements (a zero-width module, such as n_shared_experts=0's shared expert)"
            )
    return patterns


def load_hf(directory: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device | None = None,
            check_memory: bool = True):
    hf, family, cfg = read_config(directory)
    if check_memory:
        check_load_memory(cfg, dtype, device, source=directory)
    src = HFCheckpoint(directory, hf)
    model = build(cfg, dtype=dtype, device="meta")
    expected = {k: v.shape for k, v in model.state_dict().items()}
    extra = []
    if cfg.tie_embeddings:
        extra.append(r"^lm_head\.weight$")  # a tied head stored anyway is the embedding
    extra += family.extra_ignore(hf, cfg)
    extra += _checked_empty(src, family.empty_tensors(hf, cfg))
    state = convert_state(src, family, cfg, hf, expected, dtype, tuple(extra))
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device) if device is not None else model
