"""Decode (batch 1 and 8) and prefill: archlab vs HF transformers vs llama.cpp on the same weights.

The weights: a GGUF (default SmolLM2-135M-Instruct Q4_1). archlab loads it as it does for a
user: "archlab" dequantized to `dtype` (archlab.load(path, dtype)), and for a GGUF also "archlab
packed", the file's blocks kept (quant="keep", the C decode kernel of quant/gemv.c), and in a
full run "archlab packed compiled" (generate(compile=True)); HF gets archlab's dense
export (archlab.save), as benchmarks/decode_speed.py does, since transformers would dequantize
the GGUF anyway; llama.cpp runs the file as is. `tiny:PRESET` builds a small random model
instead (no GGUF, so no llama.cpp), for smoke tests. Prompts are fixed random token ids, so no
tokenizer is involved; generation is greedy with stop tokens off, the same number of tokens on
every side.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import torch

from .ceilings import bandwidth
from .timing import interleave

PREFILL = 256


def dense_hf_copy(path: Path, tmp: Path | None = None) -> Path:
    """The HF directory HF transformers runs for `path`: the path itself, or for a GGUF archlab's
    dense export of it (transformers would dequantize it anyway), written under `tmp` (a new
    temporary folder when None)."""
    import archlab

    if path.suffix != ".gguf":
        return path
    out = Path(tmp if tmp is not None else tempfile.mkdtemp(prefix="archlab-bench-")) / "dense"
    archlab.save(archlab.load(path), out)
    return out


def _weights(run, tmp: Path) -> tuple[Path, Path, Path | None]:
    """(what archlab loads, the HF directory, the GGUF for llama.cpp or None)."""
    import archlab
    from ..hub import resolve_model

    if run.model.startswith("tiny:"):
        torch.manual_seed(0)
        model = archlab.build(archlab.tiny(run.model[5:], d_model=64, n_layers=2, vocab_size=256, max_seq_len=512))
        archlab.save(model, tmp / "dense")
        return tmp / "dense", tmp / "dense", None
    path = resolve_model(run.model)
    return path, dense_hf_copy(path, tmp), path if path.suffix == ".gguf" else None


def _hf(run, path: Path, dtype):
    try:
        import transformers
    except ImportError:
        return None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers.AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="sdpa").to(run.device).eval()


def _llama(run, gguf: Path | None):
    if gguf is None:
        return None, "no GGUF file (a tiny: or HF model)"
    try:
        from llama_cpp import Llama
    except ImportError:
        return None, "llama-cpp-python is not installed (pip install 'archlab[bench]', a ~25-minute build on a small CPU)"
    try:
        llm = Llama(model_path=str(gguf), n_ctx=PREFILL + 128, n_batch=PREFILL + 128, n_threads=torch.get_num_threads(),
                    n_gpu_layers=-1 if run.device.startswith("cuda") else 0, verbose=False)
    except (ValueError, RuntimeError, OSError) as e:  # a file llama.cpp refuses (no tokenizer, an architecture it lacks)
        return None, f"llama.cpp could not load {gguf.name} ({e})"
    return llm, None


def _llama_decode(llm, prompt: list[int], n: int) -> list[int]:
    # reset first: generate() would otherwise reuse the KV cache of the previous round's equal prompt
    # (its prefix match, llama_cpp/llama.py); temp 0 is its greedy sampler; it never stops by itself
    llm.reset()
    return list(itertools.islice(llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True), n))


def _llama_prefill(llm, prompt: list[int]) -> None:
    llm.reset()
    llm.eval(prompt)


def _weight_bytes(model) -> int:
    # a packed model's integers are buffers too (int8 / uint8), and so are its float32 scales
    return sum(p.nbytes for p in model.parameters()) + sum(b.nbytes for b in model.buffers()
                                                            if b.dtype.is_floating_point or b.dtype in (torch.int8, torch.uint8))


def suite(run) -> list[dict]:
    import archlab
    from ..analysis import analyze

    n_new = 16 if run.quick else 64
    rows = []
    with tempfile.TemporaryDirectory(prefix="archlab-bench-") as tmp:
        path, hf_path, gguf = _weights(run, Path(tmp))
        llm, why = _llama(run, gguf)
        if why:
            run.note(f"llama.cpp column skipped: {why}")
        for dt_name in run.dtypes:
            dtype = getattr(torch, dt_name)
            ours = archlab.load(path, dtype=dtype, device=run.device).eval()
            packed = archlab.load(path, dtype=dtype, device=run.device, quant="keep").eval() if gguf is not None else None
            compiled = packed is not None and not run.quick and dt_name == "float32"
            ref = _hf(run, hf_path, dtype)
            if ref is None:
                run.note("HF column skipped: transformers is not installed")
            V = ours.config.vocab_size
            label = run.model if run.model.startswith("tiny:") else path.name
            g = torch.Generator().manual_seed(0)
            wbytes = {"archlab": _weight_bytes(ours)}
            if packed is not None:
                wbytes["archlab packed"] = wbytes["archlab packed compiled"] = _weight_bytes(packed)
            fpt = analyze(ours.config).flops_per_token(PREFILL // 2)  # mean context of a causal prefill
            gemm = run.ceilings["gemm_flops"].get(dt_name) if run.ceilings else None
            bw = bandwidth(run.ceilings) if run.ceilings else None
            for batch in (1, 8):
                ids = torch.randint(0, V, (batch, 8), generator=g).to(run.device)
                fns = {"archlab": lambda ids=ids: archlab.generate(ours, ids, n_new)}
                if packed is not None:
                    fns["archlab packed"] = lambda ids=ids: archlab.generate(packed, ids, n_new)
                if compiled:
                    fns["archlab packed compiled"] = lambda ids=ids: archlab.generate(packed, ids, n_new, compile=True)
                if ref is not None:
                    fns["hf"] = lambda ids=ids: ref.generate(ids, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=False,
                                                             eos_token_id=None, pad_token_id=0)
                if llm is not None and batch == 1:
                    fns["llama.cpp"] = lambda ids=ids: _llama_decode(llm, ids[0].tolist(), n_new)
                with torch.no_grad():
                    same = None
                    if ref is not None:
                        theirs = fns["hf"]()[:, ids.shape[1]:].tolist()
                        same = {k: fns[k]().tolist() == theirs for k in fns if k.startswith("archlab")}
                    t = interleave(fns, run.gate, run.device, warmup=1, repeats=run.repeats)
                rate = {k: batch * n_new / t.median(k) for k in fns}
                steps = {k: v / batch for k, v in rate.items()}
                size = {**wbytes, "hf": wbytes["archlab"], "llama.cpp": gguf.stat().st_size if gguf else None}
                frac = {k: steps[k] * size[k] / bw for k in fns} if bw else None
                peak = run.machine.get("peak_memory_bandwidth")  # a GPU's datasheet HBM bandwidth
                hbm = {k: steps[k] * size[k] / peak for k in fns if k != "llama.cpp"} if peak else None
                rows.append(dict(suite=f"decode-b{batch}", fraction_of_datasheet_bandwidth=hbm, case=f"{label} {dt_name}", dtype=dt_name,
                                 unit="tok/s", values=rate, ratio_to_hf=_ratios(t, fns), fraction_of_ceiling=frac,
                                 ceiling="memory read bandwidth (weight bytes per step)", same_tokens_as_hf=same,
                                 new_tokens=n_new, batch=batch, timing=t.summary()))
                run.log(f"  decode b{batch} {dt_name}: " + ", ".join(f"{k} {v:.1f}" for k, v in rate.items()) + " tok/s")
            prompt = torch.randint(0, V, (1, PREFILL), generator=g).to(run.device)
            fns = {"archlab": lambda: ours(prompt)}
            if packed is not None:
                fns["archlab packed"] = lambda: packed(prompt)
            if ref is not None:
                fns["hf"] = lambda: ref(prompt)
            if llm is not None:
                fns["llama.cpp"] = lambda: _llama_prefill(llm, prompt[0].tolist())
            with torch.no_grad():
                t = interleave(fns, run.gate, run.device, warmup=1, repeats=run.repeats)
            rate = {k: PREFILL / t.median(k) for k in fns}
            frac = {k: v * fpt / gemm for k, v in rate.items()} if gemm else None
            rows.append(dict(suite="prefill", case=f"{label} {dt_name}, {PREFILL} tokens",
                             dtype=dt_name, unit="tok/s", values=rate, ratio_to_hf=_ratios(t, fns),
                             fraction_of_ceiling=frac, ceiling=f"{dt_name} GEMM FLOP/s (analyze() FLOPs/token)",
                             timing=t.summary()))
            run.log(f"  prefill {dt_name}: " + ", ".join(f"{k} {v:.0f}" for k, v in rate.items()) + " tok/s")
            del ours, ref, packed
    return rows


def _ratios(t, fns) -> dict | None:
    return {k: t.ratio(k, "hf") for k in fns} if "hf" in fns else None
