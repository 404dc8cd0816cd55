"""MLA decode: absorbed (archlab's, from the latent cache) against two naive ways, per token,
at long contexts, with the cache bytes each needs.

  absorbed        archlab's MLA (nn/mla.py, absorb=True): attention over the cached
                  [latent | rope key], W_UK folded into the query, W_UV applied after.
  naive-latent    the same latent cache, but K and V decompressed for the whole context at
                  every step (nn/mla.py with absorb=False): small cache, much more arithmetic.
  naive-kv        HF's way (modeling_deepseek_v3.py, DeepseekV3Attention): K and V are
                  decompressed once per token and cached per head, H x (qk_head_dim + v_head_dim)
                  numbers a token instead of kv_lora_rank + qk_rope_head_dim. Written here (archlab
                  has no such cache) from the layer's own weights; tests/test_bench.py holds all
                  three to the same logits.

The model is DeepSeek-V3's MLA with every width divided by 8 and its 128 heads kept, so the
ratios that decide the result stay real: cache 128 x (24 + 16) = 5,120 vs 64 + 8 = 72 numbers a
token, 71x, as the real 128 x (192 + 128) = 40,960 vs 576 (config.json of deepseek-ai/DeepSeek-V3:
kv_lora_rank 512, q_lora_rank 1536, qk_nope_head_dim 128, qk_rope_head_dim 64, v_head_dim 128,
num_attention_heads 128).
"""

from __future__ import annotations

import types
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ..nn.mla import MLA
from ..nn.position import apply_rope
from .timing import interleave

METHODS = ("absorbed", "naive-latent", "naive-kv")


def config(max_seq_len: int, n_heads: int = 128, d_model: int = 256):
    import archlab

    mla = archlab.MLAConfig(n_heads=n_heads, kv_lora_rank=64, q_lora_rank=192, qk_nope_head_dim=16,
                            qk_rope_head_dim=8, v_head_dim=16)
    return archlab.tiny("deepseek-v3", d_model=d_model, n_heads=n_heads, n_layers=1, vocab_size=256,
                        max_seq_len=max_seq_len, attention=mla)


def _kv_step(self: MLA, x: torch.Tensor, ctx, cache=None) -> torch.Tensor:
    """HF's decode: this token's K and V decompressed into a per-head cache, attention over it."""
    B, T, _ = x.shape
    H = self.n_heads
    q = self.query(x).view(B, T, H, self.nope + self.rope_dim).transpose(1, 2)  # (B, H, T, dqk)
    q_nope, q_pe = q.split([self.nope, self.rope_dim], dim=-1)
    c, k_pe = self.wkv_a(x).split([self.rank, self.rope_dim], dim=-1)
    c = self.kv_norm(c)
    if self.rope is not None:
        cos, sin = ctx.rope[self.rope]
        q_pe = apply_rope(q_pe, cos, sin)
        k_pe = apply_rope(k_pe.unsqueeze(1), cos, sin).squeeze(1)
    kv = self.wkv_b(c).view(B, T, H, self.nope + self.v_dim).transpose(1, 2)  # (B, H, T, dn + dv)
    k_nope, v = kv.split([self.nope, self.v_dim], dim=-1)
    k = torch.cat((k_nope, k_pe.unsqueeze(1).expand(B, H, T, self.rope_dim)), dim=-1)
    s = ctx.start
    if T > 1 and s > 0:
        raise ValueError("naive-kv: a prefill after cached tokens is not needed by the benchmark")
    self.k_cache[:, :, s:s + T] = k
    self.v_cache[:, :, s:s + T] = v
    y = F.scaled_dot_product_attention(torch.cat((q_nope, q_pe), dim=-1), self.k_cache[:, :, : s + T],
                                       self.v_cache[:, :, : s + T], is_causal=T > 1, scale=self.scale)
    return self.wo(y.transpose(1, 2).reshape(B, T, H * self.v_dim))


def _mla_layers(model) -> list[MLA]:
    return [m for m in model.modules() if isinstance(m, MLA)]


@contextmanager
def method(model, name: str, batch: int = 1, capacity: int = 0):
    """Run `model` with one of METHODS; naive-kv allocates its per-head K/V cache (capacity tokens)."""
    layers = _mla_layers(model)
    saved = [(m.absorb, m.__dict__.get("forward")) for m in layers]
    try:
        for m in layers:
            if name == "naive-kv":
                p = next(m.parameters())
                m.k_cache = torch.zeros(batch, m.n_heads, capacity, m.nope + m.rope_dim, dtype=p.dtype, device=p.device)
                m.v_cache = torch.zeros(batch, m.n_heads, capacity, m.v_dim, dtype=p.dtype, device=p.device)
                m.forward = types.MethodType(_kv_step, m)
            else:
                m.absorb = name == "absorbed"
        yield layers
    finally:
        for m, (absorb, fwd) in zip(layers, saved):
            m.absorb = absorb
            m.__dict__.pop("forward", None)
            if fwd is not None:
                m.forward = fwd
            for attr in ("k_cache", "v_cache"):
                m.__dict__.pop(attr, None)


def kv_bytes(layers) -> int:
    return sum(m.k_cache.nbytes + m.v_cache.nbytes for m in layers)


def suite(run) -> list[dict]:
    import archlab

    contexts = [128, 512] if run.quick else [1024, 2048, 4096, 8192, 16384]
    heads = 16 if run.quick else 128
    torch.manual_seed(0)
    model = archlab.build(config(max(contexts) + 8, n_heads=heads)).to(run.device).eval()
    tok = torch.tensor([[1]], device=run.device)
    rows = []
    for S in contexts:
        caches, fns, nbytes = {}, {}, {}
        for name in METHODS:
            cache = model.new_cache(1, S + 1)
            for t in cache.tensors():
                t.normal_()  # a filled context; which numbers does not change the time
            cache.length = S
            caches[name] = cache
        with torch.no_grad():
            for name in ("absorbed", "naive-latent"):
                nbytes[name] = caches[name].nbytes

                def step(name=name):
                    with method(model, name):
                        caches[name].length = S
                        model(tok, cache=caches[name])
                fns[name] = step
            with method(model, "naive-kv", capacity=S + 1) as layers:
                for m in layers:
                    m.k_cache.normal_(), m.v_cache.normal_()
                kv_state = [(m.k_cache, m.v_cache) for m in layers]
                nbytes["naive-kv"] = kv_bytes(layers)

            def kv(S=S):
                with method(model, "naive-kv", capacity=0) as layers:
                    for m, (k, v) in zip(layers, kv_state):
                        m.k_cache, m.v_cache = k, v
                    caches["naive-kv"].length = S
                    model(tok, cache=caches["naive-kv"])
            fns["naive-kv"] = kv
            t = interleave(fns, run.gate, run.device, warmup=1, repeats=run.repeats)
        del kv_state
        rows.append(dict(
            suite="mla", case=f"context {S:,}", unit="ms/token",
            values={k: 1e3 * t.median(k) for k in METHODS},
            speedup={"vs naive-latent": t.ratio("absorbed", "naive-latent"), "vs naive-kv": t.ratio("absorbed", "naive-kv")},
            cache_bytes=nbytes, cache_ratio=nbytes["naive-kv"] / nbytes["absorbed"], timing=t.summary(),
            model=dict(n_heads=heads, kv_lora_rank=64, qk_head_dim=24, v_head_dim=16, layers=1),
        ))
        run.log(f"  mla {S}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in rows[-1]["values"].items()))
    return rows
