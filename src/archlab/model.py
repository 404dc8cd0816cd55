"""Transformer: embed -> [Block] x n_layers -> norm -> head. The same class builds every
architecture; what differs is in the ModelConfig and its per-layer plan."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from . import memory
from .cache import Cache
from .model_config import MLAConfig, ModelConfig
from .nn.block import BLOCKS
from .nn.context import Context
from .nn.moe import Experts
from .nn.norm import make_norm
from .nn.position import rope_cos_sin
from .catalog import resolve as resolve_config


class Transformer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.max_seq_len, c.d_model) if c.position == "learned" else None
        self.embed_norm = make_norm(c.norm, c.d_model) if c.embed_norm else None
        specs = c.layers  # resolved once here, not on every forward (decode runs it per token)
        self.layers = nn.ModuleList(BLOCKS[c.block](c, spec) for spec in specs)
        # the distinct RoPE variants whose cos/sin each forward computes once for all layers
        self._ropes = tuple(dict.fromkeys(spec.rope for spec in specs if spec.rope is not None))
        # a post-norm stack already ends normalised
        self.norm = make_norm(c.norm, c.d_model) if c.block != "post" else None
        # Tied embeddings: no head at all, logits use tok_emb.weight (one tensor, counted once).
        self.head = None if c.tie_embeddings else nn.Linear(c.d_model, c.vocab_size, bias=False)
        # Tokens per chunk of forward(targets=...): each chunk's (chunk, vocab) logits exist only
        # while its loss (and, in backward, its gradient) is computed. 1024 tokens of a 256K
        # vocabulary are 1 GiB of float32 logits, already large next to the activations.
        self.loss_chunk = 1024

    @property
    def rotary_dim(self) -> int:
        a = self.config.resolved_attention
        if isinstance(a, MLAConfig):
            return a.qk_rope_head_dim
        return self.config.rope.rotary_dim(a.head_dim) if self.config.rope is not None else 0

    # ---- initialisation -----------------------------------------------------------------
    @torch.no_grad()
    def init_weights(self) -> None:
        """The one documented initialisation (GPT-2's): weights N(0, 0.02), biases 0, norms 1,
        and every matrix that writes into the residual stream scaled by 1/sqrt(2 * n_layers)
        so the residual's variance does not grow with depth. Which those are each module
        says in `residual_writers` (names of its parameters whose output its block adds to
        the residual: attention and MLA `wo`, DeltaNet `wo`, the dense, shared and routed
        experts' `down`); nothing here guesses from names."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layers)
        writers = {id(p) for p in self.residual_params()}
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=residual_std if id(module.weight) in writers else 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            elif hasattr(module, "reset_parameters") and module is not self:
                module.reset_parameters()  # its matrices N(0, 0.02), as above
                for p in module.parameters(recurse=False):
                    if id(p) in writers:
                        nn.init.normal_(p, std=residual_std)
        self.reset_expert_load()

    def residual_params(self) -> list[nn.Parameter]:
        """Every parameter whose output is added to the residual stream, as the modules declare."""
        return [m.get_parameter(n) for m in self.modules() for n in getattr(m, "residual_writers", ())]

    # ---- expert load --------------------------------------------------------------------
    def _experts(self) -> list[Experts]:
        return [m for m in self.modules() if isinstance(m, Experts)]

    def expert_load(self) -> torch.Tensor:
        """Tokens routed to each expert since the last reset: (n_moe_layers, n_experts), one row
        per MoE layer in layer order (int64, on the model's device; reading it does not sync).
        Each row sums to tokens * top_k. (0, 0) for a model without experts. Every forward
        counts, generation's included; a forward recomputed by activation checkpointing counts
        again. Loading weights (load_state_dict) starts the counts afresh."""
        counters = [e.load for e in self._experts()]
        return torch.stack(counters) if counters else torch.zeros(0, 0, dtype=torch.int64)

    def reset_expert_load(self) -> None:
        with torch.no_grad():
            for e in self._experts():
                e.load.zero_()

    # ---- forward ------------------------------------------------------------------------
    def _check_input(self, input_ids: torch.Tensor) -> None:
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point():
            got = f"{tuple(input_ids.shape)} {input_ids.dtype}" if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
            raise ValueError(f"input_ids: expected an integer tensor of shape [batch, seq], got {got}")
        if input_ids.numel() == 0:
            raise ValueError("input_ids: empty batch or sequence")
        V = self.config.vocab_size
        if input_ids.device.type == "cpu" and not torch.compiler.is_compiling():
            # the ids are on the host already: a clear error costs nothing
            lo, hi = int(input_ids.min()), int(input_ids.max())
            if lo < 0 or hi >= V:
                raise ValueError(f"input_ids: token ids must be in [0, {V}), got values in [{lo}, {hi}]")
        else:
            # Reading the ids back would stall an accelerator on every forward (and break a
            # compiled graph), so the check runs on the device: an error on the CPU, a device-side
            # assert on CUDA (as the embedding's own bounds check would be). generate() checks the
            # ids on the host before they reach the model.
            torch._assert_async(((input_ids >= 0) & (input_ids < V)).all(), f"input_ids: token ids must be in [0, {V})")

    def new_cache(
        self,
        batch: int,
        capacity: int,
        pad: torch.Tensor | None = None,
        dtype: torch.dtype | None = None,
    ) -> Cache:
        """Empty caches for `batch` sequences of up to `capacity` tokens (padding included).
        pad (B,): how many left-padding tokens each row starts with."""
        if capacity > self.config.max_seq_len and self.pos_emb is not None:
            raise ValueError(f"capacity {capacity} exceeds the model's context of {self.config.max_seq_len}")
        emb = self.tok_emb  # an nn.Embedding, or a packed one (archlab.quant) that states its dtype and device
        ref = emb.weight if isinstance(emb, nn.Embedding) else emb
        dtype = dtype or ref.dtype
        return Cache([layer.attn.new_cache(batch, capacity, dtype, ref.device) for layer in self.layers], capacity, pad)

    def forward(
        self,
        input_ids: torch.Tensor,
        cache: Cache | None = None,
        pad: torch.Tensor | None = None,
        *,
        targets: torch.Tensor | None = None,
        return_hidden: bool = False,
    ) -> torch.Tensor:
        """input_ids (B, T) -> logits (B, T, vocab).

        With a cache, the tokens continue the cached sequences (at slots cache.length onwards)
        and the cache advances. pad (B,) marks each row's leading padding tokens (a batch of
        prompts of different lengths, left-padded); with a cache it is the cache's own.

        targets (B, T): return instead the mean cross-entropy of the logits against them
        (targets[b, t] is the token that should follow input_ids[b, t], no shifting; -100 is
        ignored, as in HF), without ever holding all (B, T, vocab) logits: see `loss`.
        return_hidden: return the final (normalised) hidden states (B, T, d_model), before
        the head; `logits` turns them into logits."""
        self._check_input(input_ids)
        if targets is not None and return_hidden:
            raise ValueError("forward: targets and return_hidden=True ask for different outputs; pass one")
        if targets is not None and (not isinstance(targets, torch.Tensor) or targets.shape != input_ids.shape or targets.is_floating_point()):
            got = f"{tuple(targets.shape)} {targets.dtype}" if isinstance(targets, torch.Tensor) else type(targets).__name__
            raise ValueError(f"targets: expected an integer tensor shaped like input_ids {tuple(input_ids.shape)}, got {got}")
        h = self._hidden(input_ids, cache, pad)
        if return_hidden:
            return h
        if targets is not None:
            return self.loss(h, targets)
        return self.logits(h)

    def decode_step(self, input_ids: torch.Tensor, cache: Cache) -> torch.Tensor:
        """Static decoding: logits (B, T, vocab) of input_ids (B, T) written at cache.slot (a
        0-dim tensor, see Cache.start_static), which advances by T in place; cache.length is
        the caller's to advance. Every step has the same shapes and reads nothing back to the
        host, so torch.compile traces it once and CUDA graphs can replay it; attention runs over
        each cache's whole buffer, masked. The caller checks the ids and the room left."""
        slot = cache.slot
        h = self._layers(self.tok_emb(input_ids), cache, cache.pad, slot)
        slot.add_(input_ids.shape[1])
        return self.logits(h)

    def _hidden(self, input_ids: torch.Tensor, cache: Cache | None, pad: torch.Tensor | None) -> torch.Tensor:
        T = input_ids.shape[1]
        start = 0
        if cache is not None:
            start, pad = cache.length, cache.pad
            if start + T > cache.capacity:
                raise ValueError(f"cache holds {cache.capacity} tokens; {start} are used and {T} more do not fit")
        if self.pos_emb is not None and start + T > self.config.max_seq_len:
            raise ValueError(
                f"input_ids: {start + T} tokens exceed the model's context of {self.config.max_seq_len} "
                "(learned absolute positions cannot go further)"
            )
        x = self._layers(self.tok_emb(input_ids), cache, pad, start)  # (B, T, D)
        if cache is not None:
            cache.length += T
        return x

    def _layers(self, x: torch.Tensor, cache: Cache | None, pad: torch.Tensor | None, start) -> torch.Tensor:
        """Embedded tokens x (B, T, D) at slots start.. (an int, or a 0-dim tensor in a static
        step) through the positions, the blocks and the final norm."""
        B, T, _ = x.shape
        slots = start + torch.arange(T, device=x.device)
        positions = slots.expand(B, T) if pad is None else (slots[None] - pad[:, None]).clamp(min=0)
        if self.config.embed_multiplier is not None:
            # in the model's dtype, as Gemma's reference does (sqrt(d) rounds in bfloat16)
            x = x * torch.tensor(self.config.embed_multiplier, dtype=x.dtype)
        if self.pos_emb is not None:
            x = x + self.pos_emb(positions)
        if self.embed_norm is not None:
            x = self.embed_norm(x)
        ctx = Context(
            positions=positions,
            rope={r: rope_cos_sin(r, self.rotary_dim, positions, x.dtype) for r in self._ropes},
            start=start,
            pad=pad,
        )
        for i, layer in enumerate(self.layers):
            x = layer(x, ctx, cache.layers[i] if cache is not None else None)
        if self.norm is not None:
            x = self.norm(x)
        return x

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Final hidden states (..., d_model) -> logits (..., vocab), with the logit scale and
        softcap of the config."""
        if self.head is not None:
            logits = self.head(h)
        elif isinstance(self.tok_emb, nn.Embedding):
            logits = h @ self.tok_emb.weight.T
        else:  # a packed embedding (archlab.quant) multiplies by itself, never expanded
            logits = self.tok_emb.linear(h)
        c = self.config
        if c.logit_multiplier is not None:
            logits = logits * c.logit_multiplier
        if c.logit_softcap is not None:
            logits = c.logit_softcap * torch.tanh(logits / c.logit_softcap)
        return logits

    def _loss_sum(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # in float32 at least, as HF's loss does (a bfloat16 log-softmax over a large vocabulary
        # loses the small probabilities)
        logits = self.logits(h)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        return F.cross_entropy(logits, targets, ignore_index=-100, reduction="sum")

    def loss(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the logits of hidden states h (..., d_model) against targets
        (...), skipping targets of -100 (NaN when every target is skipped, as
        F.cross_entropy). The same value and gradients as cross-entropy over self.logits(h),
        computed `loss_chunk` tokens at a time: each chunk's logits are dropped once its loss
        is summed and recomputed in backward (activation checkpointing), so at most one
        chunk's (loss_chunk, vocab) logits are alive, not all of them."""
        h = h.reshape(-1, h.shape[-1])
        targets = targets.reshape(-1)
        n = self.loss_chunk
        total = h.new_zeros((), dtype=torch.promote_types(h.dtype, torch.float32))
        # split, not slices: backward then joins the chunks' gradients once, instead of
        # padding each to the full (tokens, d_model) and adding
        for h_c, t_c in zip(h.split(n), targets.split(n)):
            if torch.is_grad_enabled():
                # the head has no randomness to replay, so no RNG state to save
                part = checkpoint(self._loss_sum, h_c, t_c, use_reentrant=False, preserve_rng_state=False)
            else:
                part = self._loss_sum(h_c, t_c)
            total = total + part
        return total / (targets != -100).sum()

# ---- building ---------------------------------------------------------------------------
# build lives with the model it builds, so that io (which builds models to load weights into)
# imports it from here and never from the public api above it.

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}


def resolve_dtype(dtype: str | torch.dtype | None, default: torch.dtype = torch.float32) -> torch.dtype:
    if dtype is None:
        return default
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise ValueError(f"dtype: expected a floating-point dtype, got {dtype}")
        return dtype
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in _DTYPES:
        return _DTYPES[dtype.removeprefix("torch.")]
    raise ValueError(f"dtype: unknown dtype {dtype!r}; expected one of {sorted(set(_DTYPES))}")


class _SkipInit(torch.overrides.TorchFunctionMode):
    """torch.nn.init's initialisers as no-ops, for building on the meta device: there they write
    no values anyway, but init.normal_ on a meta tensor runs a Python reference that imports
    torch._dynamo on first use, about 1 s of every `archlab generate` start (measured with
    `python -X importtime`). The real initialisation is init_weights(), after to_empty()."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__module__", None) == "torch.nn.init":
            return args[0] if args else kwargs["tensor"]
        return func(*args, **(kwargs or {}))


def build(
    name_or_config: str | ModelConfig,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    check_memory: bool = True,
) -> Transformer:
    """A freshly initialised model. device="meta" allocates nothing (for counting). A model whose
    weights exceed the device's free memory is refused up front (archlab.memory) unless
    check_memory=False or ARCHLAB_NO_MEMORY_CHECK=1."""
    cfg = resolve_config(name_or_config)
    dt = resolve_dtype(dtype)
    if check_memory:
        memory.check_weights(cfg, dt, device, verb="build")
    with torch.device("meta"), _SkipInit():
        model = Transformer(cfg)
    model = model.to(dtype=dt)
    if device is not None and torch.device(device).type == "meta":
        return model
    model = model.to_empty(device=device or "cpu")
    model.init_weights()
    return model
