"""Training step: archlab vs HF transformers on the same tiny models as benchmarks/train_speed.py
(LLaMA-style and Mixtral-style MoE, fp32 and bf16 autocast), and on CUDA archlab's bf16 MFU for
GPT-2 124M and a ~1B LLaMA-style model, from analyze()'s FLOPs per token and the device's peak.

One step is what archlab.train's inner loop does (training/loop.py): forward with targets and
backward under autocast, clip_grad_norm_(1.0), AdamW (betas 0.9/0.95, weight decay 0.1 on
matrices only), zero_grad. HF gets the identical step with its own loss (labels= and
shift_labels=, so no position is dropped). Logits must agree (< 1e-4) before anything is timed.
A full run (not --quick) adds "archlab compiled": the same step on torch.compile(model), as
archlab.train(compile=True) runs it (the compile happens in the warm-up round, not timed).
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
from pathlib import Path
import tempfile

import torch

from .timing import interleave

SIZE = dict(d_model=256, n_layers=4, n_heads=4, vocab_size=256)  # benchmarks/train_speed.py's models
MODELS = ("llama-3-8b", "mixtral-8x7b")


def optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    # loop.py's grouping and settings, so both libraries pay for the same optimizer arithmetic
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    fused = params[0].device.type == "cuda"
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), foreach=False if not fused else None, fused=fused or None)


def hf_model(path: Path, kind: str):
    import transformers

    extra = {}
    if kind == "gpt2":
        # HF's GPT-2 defaults to 0.1 dropout wherever the saved config is silent; archlab trains without
        extra = dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa", **extra)


def hf_mixtral(cfg):
    import transformers

    a, moe = cfg.attention, cfg.moe
    hf = transformers.MixtralConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=moe.hidden,
        num_hidden_layers=cfg.n_layers, num_attention_heads=a.n_heads, num_key_value_heads=a.n_kv_heads,
        head_dim=cfg.d_model // a.n_heads, max_position_embeddings=cfg.max_seq_len, rms_norm_eps=cfg.norm.eps,
        num_local_experts=moe.n_experts, num_experts_per_tok=moe.top_k, tie_word_embeddings=cfg.tie_embeddings,
        rope_parameters={"rope_theta": cfg.position.theta, "rope_type": "default"}, sliding_window=a.window,
    )
    return transformers.MixtralForCausalLM(hf)


def ours_loss(model, ids, targets):
    return model(ids, targets=targets)


def hf_loss(model, ids, targets):
    targets = targets.contiguous()  # HF's ForCausalLMLoss views them flat
    return model(input_ids=ids, labels=targets, shift_labels=targets).loss


def stepper(model, loss_fn, autocast, lr: float = 1e-3):
    model.train()
    opt = optimizer(model, lr)

    def step(ids, targets):
        with autocast():
            loss = loss_fn(model, ids, targets)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss
    return step


def pair(preset: str, workdir: Path, seq_len: int, device: str):
    """(archlab model, HF model, config, how the weights went) holding the same weights."""
    import archlab

    torch.manual_seed(0)
    cfg = archlab.tiny(preset, **SIZE, max_seq_len=max(seq_len, 256))
    path = workdir / preset
    try:
        ours = archlab.build(cfg)
        archlab.save(ours, path)
        route = "archlab.save -> HF"
    except archlab.ConfigError:
        if cfg.moe is None:
            raise
        hf_mixtral(cfg).save_pretrained(path)  # archlab has no Mixtral writer: the weights go the other way
        ours = archlab.load(path, dtype=torch.float32)
        route = "HF save_pretrained -> archlab.load"
    return ours.to(device), hf_model(path, cfg.family).to(device), cfg, route


def _autocast(device: str, dt_name: str):
    return nullcontext if dt_name == "float32" else (lambda: torch.autocast(device.split(":")[0], dtype=torch.bfloat16))


def suite(run) -> list[dict]:
    from ..analysis import analyze

    batch, seq = (2, 64) if run.quick else (8, 256)
    rows = []
    with tempfile.TemporaryDirectory(prefix="archlab-bench-train-") as tmp:
        for preset in MODELS:
            ours, ref, cfg, route = pair(preset, Path(tmp), seq, run.device)
            twin = None if run.quick else copy.deepcopy(ours)
            init_ours, init_ref = ({k: v.clone() for k, v in m.state_dict().items()} for m in (ours, ref))
            g = torch.Generator().manual_seed(1)
            data = torch.randint(0, cfg.vocab_size, (batch, seq + 1), generator=g).to(run.device)
            ids, targets = data[:, :-1], data[:, 1:]
            with torch.no_grad():
                d = float((ours.eval()(ids) - ref.eval()(input_ids=ids).logits).abs().max())
            if d >= 1e-4:
                run.note(f"train {preset}: logits differ by {d:.1e}; not timed")
                continue
            flops = 3 * analyze(cfg).flops_per_token((seq + 1) // 2) * batch * seq  # fwd + bwd = 3x fwd
            for dt_name in run.dtypes:
                ours.load_state_dict(init_ours), ref.load_state_dict(init_ref)
                ac = _autocast(run.device, dt_name)
                fns = {"archlab": lambda s=stepper(ours, ours_loss, ac): s(ids, targets),
                       "hf": lambda s=stepper(ref, hf_loss, ac): s(ids, targets)}
                if twin is not None:
                    twin.load_state_dict(init_ours)
                    fns["archlab compiled"] = lambda s=stepper(torch.compile(twin), ours_loss, ac): s(ids, targets)
                t = interleave(fns, run.gate, run.device, warmup=1, repeats=run.repeats)
                rate = {k: batch * seq / t.median(k) for k in fns}
                gemm = run.ceilings["gemm_flops"].get(dt_name) if run.ceilings else None
                rows.append(dict(suite="train", case=f"{cfg.name} {dt_name}", dtype=dt_name, unit="tok/s", values=rate,
                                 ratio_to_hf={k: t.ratio(k, "hf") for k in fns}, weights=route, max_logit_diff=d,
                                 fraction_of_ceiling={k: flops / t.median(k) / gemm for k in fns} if gemm else None,
                                 ceiling=f"{dt_name} GEMM FLOP/s", batch=batch, seq_len=seq, timing=t.summary()))
                run.log(f"  train {cfg.name} {dt_name}: " + ", ".join(f"{k} {v:.2f}x" for k, v in rows[-1]["ratio_to_hf"].items()
                                                                      if k != "hf") + " HF")
    if run.device.startswith("cuda"):
        rows += mfu(run)
    return rows


def gpu_models():
    import archlab

    # Llama-3.2-1B's shape (config.json of meta-llama/Llama-3.2-1B: hidden 2048, 16 layers, 32 heads,
    # 8 KV heads, intermediate 8192, vocab 128256, tied embeddings) on llama-3-8b's architecture
    llama_1b = archlab.config("llama-3-8b").replace(
        name="llama-1b", d_model=2048, n_layers=16, vocab_size=128256, tie_embeddings=True,
        attention=archlab.config("llama-3-8b").attention.__class__(
            **{**archlab.config("llama-3-8b").attention.__dict__, "n_heads": 32, "n_kv_heads": 8}),
        ffn=archlab.config("llama-3-8b").ffn.__class__(**{**archlab.config("llama-3-8b").ffn.__dict__, "hidden": 8192}))
    return [archlab.config("gpt2"), llama_1b]


def mfu(run) -> list[dict]:
    """archlab's bf16 training step on CUDA as a fraction of the device's dense bf16 peak."""
    import archlab
    from ..analysis import analyze

    peak = run.machine.get("peak_bf16_flops")
    batch, seq = (2, 256) if run.quick else (8, 1024)
    rows = []
    for cfg in gpu_models():
        torch.manual_seed(0)
        model = archlab.build(cfg).to(run.device)
        data = torch.randint(0, cfg.vocab_size, (batch, seq + 1), device=run.device)
        step = stepper(model, ours_loss, _autocast(run.device, "bfloat16"))
        t = interleave({"archlab": lambda: step(data[:, :-1], data[:, 1:])}, run.gate, run.device,
                       warmup=2, repeats=run.repeats)
        # causal attention: a token sees (seq + 1) / 2 tokens on average
        flops = 3 * analyze(cfg).flops_per_token((seq + 1) // 2) * batch * seq / t.median("archlab")
        rows.append(dict(suite="train-mfu", case=f"{cfg.name} bf16, {batch}x{seq}", dtype="bfloat16", unit="tok/s",
                         values={"archlab": batch * seq / t.median("archlab")}, achieved_flops=flops,
                         fraction_of_ceiling={"archlab": flops / peak} if peak else None,
                         ceiling=f"{run.machine.get('device_name')} bf16 dense peak (datasheet)", timing=t.summary()))
        run.log(f"  mfu {cfg.name}: {flops / 1e12:.1f} TFLOP/s" + (f", {flops / peak:.0%} MFU" if peak else ""))
        del model, step
        torch.cuda.empty_cache()
    return rows
