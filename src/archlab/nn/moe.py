"""Mixture of experts: a router picks top_k of n_experts GLUs per token; shared experts
(DeepSeek, Llama 4, Qwen3-Next) see every token.

Shape suffixes: N tokens, D d_model, E experts, F expert hidden size, K top_k, G groups.
Experts are stored stacked, gate/up as (E, F, D) and down as (E, D, F), so one parameter
holds all experts of a layer (how grouped-GEMM kernels and expert sharding want them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..model_config import FFNConfig, MoEConfig
from .ffn import ACTIVATIONS, GLU


class Router(nn.Module):
    """Scores experts and returns each token's top_k expert ids and weights (float32).

    Routing runs in float32 whatever the model dtype, as DeepSeek's reference does: the
    choice of experts is discrete, and low precision would flip near-ties."""

    def __init__(self, d_model: int, cfg: MoEConfig):
        super().__init__()
        self.cfg = cfg.router
        self.n_experts, self.top_k = cfg.n_experts, cfg.top_k
        self.weight = nn.Parameter(torch.empty(cfg.n_experts, d_model))
        self.bias = nn.Parameter(torch.empty(cfg.n_experts)) if cfg.router.logit_bias else None
        # Selection-only bias (DeepSeek-V3): a buffer, learned by a balancing rule, not by gradients.
        self.score_bias = nn.Buffer(torch.empty(cfg.n_experts, dtype=torch.float32)) if cfg.router.score_bias else None
        # A trainer that balances with an auxiliary loss sets track_balance; each forward with
        # gradients then leaves its balance loss here for the trainer to add (training/balance.py).
        self.track_balance = False
        self.balance_loss: torch.Tensor | None = None

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=0.02)
        for b in (self.bias, self.score_bias):
            if b is not None:
                nn.init.zeros_(b)

    def forward(self, x_ND: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.cfg
        logits_NE = F.linear(x_ND.float(), self.weight.float(), None if self.bias is None else self.bias.float())
        if r.logit_softcap is not None:
            logits_NE = r.logit_softcap * torch.tanh(logits_NE / r.logit_softcap)
        scores_NE = logits_NE.softmax(dim=-1) if r.score == "softmax" else logits_NE.sigmoid()
        choice_NE = scores_NE if self.score_bias is None else scores_NE + self.score_bias.float()
        weights_NE = scores_NE
        if r.n_groups > 1:
            N, E, G = choice_NE.shape[0], self.n_experts, r.n_groups
            grouped_NGe = choice_NE.view(N, G, E // G)
            if r.group_score == "max":
                group_NG = grouped_NGe.max(dim=-1).values
            else:  # "top2_sum"
                group_NG = grouped_NGe.topk(2, dim=-1).values.sum(dim=-1)
            best_groups = group_NG.topk(r.topk_groups, dim=-1, sorted=False).indices
            keep_NG = torch.zeros_like(group_NG, dtype=torch.bool).scatter_(1, best_groups, True)
            keep_NE = keep_NG.repeat_interleave(E // G, dim=1)
            if r.dropped_groups == "zeroed":  # HF deepseek_v2: dropped experts may be picked, but weigh 0
                choice_NE = choice_NE.masked_fill(~keep_NE, 0.0)
                weights_NE = scores_NE.masked_fill(~keep_NE, 0.0)
            else:
                choice_NE = choice_NE.masked_fill(~keep_NE, float("-inf"))
        idx_NK = choice_NE.topk(self.top_k, dim=-1, sorted=False).indices
        if self.track_balance and torch.is_grad_enabled():
            self.balance_loss = balance_loss(scores_NE, idx_NK, self.n_experts)
        w_NK = weights_NE.gather(1, idx_NK)
        if r.norm_topk:
            w_NK = w_NK / (w_NK.sum(dim=-1, keepdim=True) + 1e-20)
        return w_NK * r.scale, idx_NK


def balance_loss(scores_NE: torch.Tensor, idx_NK: torch.Tensor, n_experts: int) -> torch.Tensor:
    """The Switch Transformer's auxiliary load-balancing loss (Fedus et al. 2021, eq. 4),
    E * sum_e f_e * P_e: f_e the share of token-slots routed to expert e (no gradient), P_e the
    mean probability the router gives e. It is 1 when routing is uniform and grows as load
    and probability concentrate on the same experts. Sigmoid scores are normalised per token
    first, as DeepSeek-V3's sequence-wise balance loss does (its eq. 18-19). Slot shares are
    divided by N * top_k, so the uniform value is 1 for any top_k (HF's Mixtral loss is top_k
    times this)."""
    N, K = idx_NK.shape
    probs_NE = scores_NE / scores_NE.sum(dim=-1, keepdim=True)
    share_E = torch.zeros(n_experts, device=idx_NK.device, dtype=torch.float32)
    share_E = share_E.index_add_(0, idx_NK.reshape(-1), torch.ones(N * K, device=idx_NK.device)) / (N * K)
    return n_experts * (share_E * probs_NE.float().mean(dim=0)).sum()


def clamped_swiglu(gate: torch.Tensor, up: torch.Tensor, limit: float, alpha: float) -> torch.Tensor:
    """GPT-OSS's expert activation: SwiGLU with sigmoid(alpha x) in place of silu's sigmoid(x)
    (alpha 1.702 in the release), both inputs clamped (gate from above, up both ways) and 1
    added to up (OpenAI's reference gpt_oss/torch/model.py: swiglu; HF GptOssExperts._apply_gate)."""
    gate = gate.clamp(max=limit)
    up = up.clamp(min=-limit, max=limit)
    return (up + 1) * gate * torch.sigmoid(alpha * gate)


def _reset_load(module: "Experts", incompatible_keys) -> None:
    # New weights, new statistics. And checkpoint loaders build on the meta device and assign
    # the loaded tensors: the counter, in no state_dict, would stay on meta (and block
    # model.to(device)); it starts where the weights landed.
    if module.load.is_meta:
        module.load = torch.zeros(module.load.shape, dtype=module.load.dtype, device=module.down.device)
    else:
        module.load.zero_()


def _add_bias(t_S: torch.Tensor, bias_E: torch.Tensor, expert_S: torch.Tensor) -> torch.Tensor:
    """t_S plus each slot's expert's bias. Gathered in float32 at least: the bias's gradient
    sums over every slot of its expert, and a bfloat16 scatter-add would round at each
    addition. The sum rounds once to t's dtype, as a bfloat16 add does anyway."""
    wide = torch.promote_types(bias_E.dtype, torch.float32)
    return (t_S + bias_E.to(wide).index_select(0, expert_S)).to(t_S.dtype)


# torch._grouped_mm runs float32/float16 too, but its CUDA kernel is bfloat16's only (the
# others fall back to a host loop over offsets copied to the CPU: a sync), and torch.compile's
# shape rule for it admits bfloat16 only. Its kernels need every stride a multiple of 16 bytes.
_GROUPED_DTYPES = (torch.bfloat16,)
_GROUPED_ALIGN = 16
# the padded path's (E, C) rows may be at most this multiple of the token-slots; beyond it the
# split path, which skips idle experts, does less work
_PAD_WASTE = 2.0


class _TakeRows(torch.autograd.Function):
    """x[rows] for rows that never repeat: its gradient is a copy into zeros, not the
    scatter-add that indexing's backward does to allow repeats."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(rows)
        ctx.n = x.shape[0]
        return x.index_select(0, rows)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (rows,) = ctx.saved_tensors
        return grad.new_zeros(ctx.n, *grad.shape[1:]).index_copy(0, rows, grad), None


class Experts(nn.Module):
    """n_experts GLUs with stacked weights. Tokens are sorted by expert so each expert runs
    one dense matmul over exactly the tokens routed to it.

    weights_on="output" weighs each expert's output by its router weight (most models);
    "input" scales the token before the expert instead (Llama 4).

    Three equal ways to run the experts over the sorted tokens:
      split    one matmul per expert on its slice. Slicing needs the counts on the host: a
               sync on an accelerator, a graph break under torch.compile. Float64 works.
      padded   each expert's slots copied into a zero-padded (E, C, D) block, C the busiest
               expert's count, then three batched matmuls (torch.bmm) for all experts at
               once: the padding is wasted work, but on the CPU one bmm beats E small
               matmuls and their autograd nodes several times over (benchmarks/moe_speed.py).
               C is read on the host, as split reads the counts.
      grouped  torch._grouped_mm over all slices at once, delimited by offsets that stay on
               the device: no host sync and fixed shapes whatever the routing (a grouped GEMM
               on CUDA, a loop in C++ on the CPU). Needs d_model and hidden a multiple of
               16 bytes; sync-free and traceable in bfloat16 only (see _GROUPED_DTYPES).
    By default bfloat16 on CUDA or under torch.compile takes the grouped path; eager runs
    elsewhere take the padded one when padding at most doubles the rows (_PAD_WASTE: so not
    when a few tokens reach a few of many experts, as in decoding, where it would read every
    expert's weights), else the split one. grouped=True forces grouped (float32 and float16
    run too, outside torch.compile), False split, "padded" padded.
    torch._grouped_mm on the CPU (torch 2.13) is a loop over groups, 2-10x slower than bmm
    in float32, which is why eager CPU does not take it."""

    residual_writers = ("down",)

    def __init__(self, d_model: int, cfg: MoEConfig):
        super().__init__()
        E, Fh, D = cfg.n_experts, cfg.hidden, d_model
        self.act = ACTIVATIONS[cfg.activation]
        self.limit, self.alpha = cfg.swiglu_limit, cfg.swiglu_alpha
        self.weights_on_input = cfg.router.weights_on == "input"
        self.gate = nn.Parameter(torch.empty(E, Fh, D))
        self.up = nn.Parameter(torch.empty(E, Fh, D))
        self.down = nn.Parameter(torch.empty(E, D, Fh))
        if cfg.bias:
            self.gate_bias = nn.Parameter(torch.empty(E, Fh))
            self.up_bias = nn.Parameter(torch.empty(E, Fh))
            self.down_bias = nn.Parameter(torch.empty(E, D))
        else:
            self.gate_bias = self.up_bias = self.down_bias = None
        # None: chosen per call (see the class docstring); True grouped, False split, "padded".
        # Tests force each.
        self.grouped: bool | str | None = None
        # Tokens routed to each expert since the last reset (Transformer.expert_load). Not
        # persistent: a statistic of the run, not a weight, and HF checkpoints load strictly.
        self.load = nn.Buffer(torch.zeros(E, dtype=torch.int64), persistent=False)
        self.register_load_state_dict_post_hook(_reset_load)

    def reset_parameters(self) -> None:
        for p in (self.gate, self.up, self.down):
            nn.init.normal_(p, std=0.02)
        for b in (self.gate_bias, self.up_bias, self.down_bias):
            if b is not None:
                nn.init.zeros_(b)

    def _expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        g, u = x @ self.gate[e].T, x @ self.up[e].T  # (n_e, F)
        if self.gate_bias is not None:
            g, u = g + self.gate_bias[e], u + self.up_bias[e]
        h = clamped_swiglu(g, u, self.limit, self.alpha) if self.limit is not None else self.act(g) * u
        y = h @ self.down[e].T  # (n_e, D)
        return y if self.down_bias is None else y + self.down_bias[e]

    def _path(self, x: torch.Tensor, S: int) -> str:
        if self.grouped is not None:
            return {True: "grouped", False: "split", "padded": "padded"}[self.grouped]
        E, Fh, D = self.gate.shape
        aligned = (D * x.element_size()) % _GROUPED_ALIGN == 0 and (Fh * x.element_size()) % _GROUPED_ALIGN == 0
        wanted = x.device.type == "cuda" or torch.compiler.is_compiling()
        if wanted and aligned and x.dtype in _GROUPED_DTYPES and hasattr(torch, "_grouped_mm"):  # torch >= 2.8
            return "grouped"
        # at least E rows (one per expert): with fewer slots than that, split at once
        return "padded" if not torch.compiler.is_compiling() and E <= _PAD_WASTE * S else "split"

    def _grouped(self, x_SD: torch.Tensor, expert_S: torch.Tensor, counts_E: torch.Tensor, ends_E: torch.Tensor) -> torch.Tensor:
        """Every expert over its slice of x_SD (S token-slots sorted by expert, counts_E of
        them for expert e, ending at ends_E[e]) as three grouped matmuls."""
        S, E = x_SD.shape[0], counts_E.shape[0]
        # Each expert's rows start on a 16-byte boundary: in the weight gradient the slots are
        # the contracted dimension, so where a group starts is a pointer the kernel needs
        # aligned. Padding to a multiple of `a` rows per expert adds at most E * (a - 1) rows;
        # that bound, not the routing, fixes the shapes. Padding rows are zero.
        a = max(1, _GROUPED_ALIGN // x_SD.element_size())
        padded_E = (counts_E + a - 1) // a * a
        padded_ends_E = padded_E.cumsum(0)
        shift_E = (padded_ends_E - padded_E) - (ends_E - counts_E)  # padded start - start
        row_S = torch.arange(S, device=x_SD.device) + shift_E[expert_S]  # each slot's padded row
        R = -(-(S + E * (a - 1)) // a) * a

        def spread(t: torch.Tensor) -> torch.Tensor:
            return t.new_zeros(R, t.shape[1]).index_copy(0, row_S, t)

        offs = padded_ends_E.to(torch.int32)
        x_RD = spread(x_SD)
        g = torch._grouped_mm(x_RD, self.gate.transpose(-2, -1), offs=offs)[row_S]  # (S, F)
        u = torch._grouped_mm(x_RD, self.up.transpose(-2, -1), offs=offs)[row_S]
        if self.gate_bias is not None:
            g, u = _add_bias(g, self.gate_bias, expert_S), _add_bias(u, self.up_bias, expert_S)
        h = clamped_swiglu(g, u, self.limit, self.alpha) if self.limit is not None else self.act(g) * u
        y = torch._grouped_mm(spread(h), self.down.transpose(-2, -1), offs=offs)[row_S]  # (S, D)
        return y if self.down_bias is None else _add_bias(y, self.down_bias, expert_S)

    def _padded(self, x_ND: torch.Tensor, idx_NK: torch.Tensor, w_NK: torch.Tensor, expert_S: torch.Tensor,
                order: torch.Tensor, counts_E: torch.Tensor, ends_E: torch.Tensor) -> torch.Tensor | None:
        """Every expert over its slots as three bmm over a zero-padded (E, C, .) block; None
        when the padding would more than double the rows (the caller then splits).

        The slots move by copies and gathers on indices that never repeat (each slot has its
        own row), so their backward passes are gathers and copies too: no scatter-add, which
        on the CPU costs more than the matmuls. Padding rows never reach the output, so their
        (with biases nonzero) values get no gradient."""
        (N, K), E, D = idx_NK.shape, counts_E.shape[0], x_ND.shape[1]
        S = N * K
        C = int(counts_E.max())  # host read, as the split path reads all the counts
        if E * C > _PAD_WASTE * S and self.grouped is None:
            return None
        # sorted slot i of expert e sits in row e * C + (i - start of e); slot order[i] is it
        row_sorted = torch.arange(S, device=x_ND.device) + (expert_S * C - (ends_E - counts_E)[expert_S])
        row_S = torch.empty_like(row_sorted).index_copy_(0, order, row_sorted)  # per slot n * K + k
        x_SD = x_ND.unsqueeze(1).expand(N, K, D).reshape(S, D)
        w_S = w_NK.reshape(S, 1)  # float32
        if self.weights_on_input:
            x_SD = (x_SD * w_S).to(x_ND.dtype)
        x_ECD = x_SD.new_zeros(E * C, D).index_copy(0, row_S, x_SD).view(E, C, D)
        g = torch.bmm(x_ECD, self.gate.transpose(1, 2))  # (E, C, F)
        u = torch.bmm(x_ECD, self.up.transpose(1, 2))
        if self.gate_bias is not None:
            g, u = g + self.gate_bias[:, None], u + self.up_bias[:, None]
        h = clamped_swiglu(g, u, self.limit, self.alpha) if self.limit is not None else self.act(g) * u
        y = torch.bmm(h, self.down.transpose(1, 2))  # (E, C, D)
        if self.down_bias is not None:
            y = y + self.down_bias[:, None]
        y_SD = _TakeRows.apply(y.reshape(E * C, D), row_S)
        if not self.weights_on_input:
            y_SD = (y_SD * w_S).to(x_ND.dtype)
        return y_SD.view(N, K, D).sum(dim=1)

    def forward(self, x_ND: torch.Tensor, idx_NK: torch.Tensor, w_NK: torch.Tensor) -> torch.Tensor:
        E, (N, K) = self.gate.shape[0], idx_NK.shape
        expert_S, order = idx_NK.reshape(-1).sort(stable=True)  # token-slots grouped by expert
        # where each expert's slots end; searchsorted, unlike bincount, has a fixed-size output
        # computed on the device (no atomics, so deterministic)
        ends_E = torch.searchsorted(expert_S, torch.arange(E, device=expert_S.device, dtype=expert_S.dtype), right=True)
        counts_E = torch.diff(ends_E, prepend=ends_E.new_zeros(1))
        with torch.no_grad():
            self.load += counts_E
        if self._path(x_ND, N * K) == "padded":
            y_ND = self._padded(x_ND, idx_NK, w_NK, expert_S, order, counts_E, ends_E)
            if y_ND is not None:
                return y_ND
        token = order // K
        w_sorted = w_NK.reshape(-1)[order, None]  # float32
        x_sorted = x_ND[token]  # (N*K, D)
        if self.weights_on_input:
            x_sorted = (x_sorted * w_sorted).to(x_ND.dtype)
        if self._path(x_sorted, N * K) == "grouped":
            y_sorted = self._grouped(x_sorted, expert_S, counts_E, ends_E)
        else:
            outs = []
            # An expert with no tokens still runs (on zero rows) while gradients are recorded, so
            # every parameter is in the graph: data-parallel training expects a gradient for
            # each one (DDP's reducer, FSDP's reduce-scatter), zero for an idle expert.
            train = torch.is_grad_enabled()
            for e, x_e in enumerate(x_sorted.split(counts_E.tolist())):
                outs.append(self._expert(e, x_e) if x_e.shape[0] or train else x_e)
            y_sorted = torch.cat(outs)
        if not self.weights_on_input:
            y_sorted = (y_sorted * w_sorted).to(x_ND.dtype)
        return torch.zeros_like(x_ND).index_add_(0, token, y_sorted)


class MoE(nn.Module):
    def __init__(self, d_model: int, cfg: MoEConfig):
        super().__init__()
        self.router = Router(d_model, cfg)
        self.experts = Experts(d_model, cfg)
        self.shared = (
            GLU(d_model, FFNConfig(hidden=cfg.shared_width, kind="glu", activation=cfg.activation, bias=cfg.shared_bias))
            if cfg.n_shared
            else None
        )
        # Qwen3-Next scales the shared expert by a learned per-token sigmoid gate
        self.shared_gate = nn.Linear(d_model, 1, bias=False) if cfg.shared_gate else None
        self.output_scale = cfg.output_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x_ND = x.reshape(-1, shape[-1])
        w_NK, idx_NK = self.router(x_ND)
        y_ND = self.experts(x_ND, idx_NK, w_NK)
        if self.shared is not None:
            shared = self.shared(x_ND)
            if self.shared_gate is not None:
                shared = torch.sigmoid(self.shared_gate(x_ND)) * shared
            y_ND = y_ND + shared
        if self.output_scale != 1.0:
            y_ND = y_ND * self.output_scale
        return y_ND.view(shape)
