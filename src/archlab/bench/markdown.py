"""The Markdown rendering of a bench result: the machine, the ceilings, one table per suite."""

from __future__ import annotations


def _num(x) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}" if abs(x) >= 10 else f"{x:.2f}"


def _pct(x) -> str:
    return "-" if x is None else f"{x:.0%}" if x >= 0.01 else f"{x:.1%}"


def machine(res: dict) -> list[str]:
    m, c = res["machine"], res["ceilings"]
    bw, gemm = c["memory_bandwidth"], c["gemm_flops"]
    lines = [f"- CPU: {m['cpu']}, {m['usable_cpus']} usable of {m['logical_cpus']} logical CPUs, "
             f"torch threads {m['torch_threads']}; flags: {', '.join(m['cpu_flags']) or '-'}",
             f"- memory: {m['memory_bytes'] / 2**30:.0f} GiB" if m.get("memory_bytes") else "- memory: unknown",
             f"- versions: archlab {m['archlab']}, torch {m['torch']}, transformers {m['transformers'] or 'absent'}, "
             f"llama-cpp-python {m['llama_cpp_python'] or 'absent'}, Python {m['python']}"]
    if m.get("device_name"):
        lines.append(f"- device: {m['device_name']} (CUDA {m['cuda']}), datasheet peak "
                     f"{_num((m.get('peak_bf16_flops') or 0) / 1e12)} TFLOP/s bf16, {_num((m.get('peak_memory_bandwidth') or 0) / 1e9)} GB/s")
    lines.append(f"- measured ceilings on {res['settings']['device']}: memory read {bw['read_bytes_s'] / 1e9:.1f} GB/s "
                 f"(copy {bw['copy_bytes_s'] / 1e9:.1f} GB/s, {bw['bytes'] / 2**20:.0f} MiB), GEMM {gemm['n']}^3 "
                 f"float32 {gemm['float32'] / 1e9:.0f} GFLOP/s, bfloat16 {gemm['bfloat16'] / 1e9:.0f} GFLOP/s")
    q = res["quiet"]
    lines.append(f"- quiet gate: {'on' if res['settings']['quiet_gate'] else 'off'} (others < {res['settings']['threshold']:.0%}); "
                 f"{q['disturbed_rounds']} of {q['rounds']} rounds disturbed, waited {q['waited_s']:.0f} s, "
                 f"gave up waiting {q['gave_up_waiting']} times; median others' share {_pct(q['median_others_share'])}")
    return lines


def _kept(t: dict) -> str:
    return f"{t['kept']}/{t['rounds']}" + (" (all disturbed)" if t["all_disturbed"] else "")


def table(rows: list[dict]) -> list[str]:
    names = list(dict.fromkeys(k for r in rows for k in r["values"]))
    extra = list(dict.fromkeys(k for r in rows for k in (r.get("speedup") or {})))
    ratios = any(r.get("ratio_to_hf") for r in rows)
    frac = any(r.get("fraction_of_ceiling") for r in rows)
    head = ["case"] + [f"{n} ({rows[0]['unit']})" for n in names]
    head += [f"{n}/HF" for n in names if n != "hf"] if ratios else []
    head += [f"absorbed {e}" if rows[0]["suite"] == "mla" else e for e in extra]
    head += [f"{n} of ceiling" for n in names] if frac else []
    hbm = [n for n in names if any((r.get("fraction_of_datasheet_bandwidth") or {}).get(n) for r in rows)]
    head += [f"{n} of datasheet bandwidth" for n in hbm]
    if rows[0]["suite"] == "mla":
        head += ["cache bytes absorbed / naive-kv", "ratio"]
    head.append("rounds kept")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["case"]] + [_num(r["values"].get(n)) for n in names]
        if ratios:
            cells += [f"{r['ratio_to_hf'][n]:.2f}x" if r.get("ratio_to_hf") and n in r["ratio_to_hf"] else "-"
                      for n in names if n != "hf"]
        cells += [f"{r['speedup'][e]:.2f}x" if e in (r.get("speedup") or {}) else "-" for e in extra]
        if frac:
            f = r.get("fraction_of_ceiling") or {}
            cells += [_pct(f.get(n)) for n in names]
        cells += [_pct((r.get("fraction_of_datasheet_bandwidth") or {}).get(n)) for n in hbm]
        if r["suite"] == "mla":
            b = r["cache_bytes"]
            cells += [f"{b['absorbed']:,} / {b['naive-kv']:,}", f"{r['cache_ratio']:.0f}x"]
        cells.append(_kept(r["timing"]))
        out.append("| " + " | ".join(cells) + " |")
    return out


TITLES = {"decode-b1": "Decode, batch 1", "decode-b8": "Decode, batch 8", "prefill": "Prefill",
          "train": "Training step (fwd + bwd + AdamW)", "train-mfu": "Training MFU (GPU, bf16)",
          "moe": "MoE layer, 64 experts top-8: grouped vs per-expert loop", "mla": "MLA decode per token"}


def render(res: dict) -> str:
    s = res["settings"]
    out = [f"# archlab bench ({'quick, ' if s['quick'] else ''}{res['started']}, {res['seconds']:.0f} s)", ""]
    out += machine(res) + [""]
    for suite in dict.fromkeys(r["suite"] for r in res["rows"]):
        rows = [r for r in res["rows"] if r["suite"] == suite]
        out += [f"## {TITLES.get(suite, suite)}", ""] + table(rows) + [""]
    if res["notes"]:
        out += ["Notes:", ""] + [f"- {n}" for n in res["notes"]] + [""]
    return "\n".join(out)
