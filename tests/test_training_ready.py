"""What training needs of the model beyond a correct forward: depth-scaled init of every
residual writer, a forward with no host sync (so torch.compile traces it whole), a loss that
never holds all the logits, and per-layer expert load counters."""

import math
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import archlab
from archlab.model_config import MoEConfig, RouterConfig
from archlab.nn.moe import Experts
from marks import slow_except

# ---- initialisation -----------------------------------------------------------------------

# Named independently of the modules' own declarations: what a block adds to the residual
# stream is the output of its mixer's `wo` and of its FFN's `down` (dense, routed, shared).
RESIDUAL = re.compile(r"^layers\.\d+\.(attn\.wo\.weight|ffn\.down\.weight|ffn\.experts\.down|ffn\.shared\.down\.weight)$")


def _close_std(t: torch.Tensor, std: float) -> bool:
    # the sample std of n normal draws has relative error ~ 1/sqrt(2n); 6 of those never fails by chance
    n = t.numel()
    return abs(t.float().std().item() / std - 1) < 6 / math.sqrt(2 * n) and abs(t.float().mean().item()) < 6 * std / math.sqrt(n)


@pytest.mark.parametrize("name", archlab.presets())
def test_every_residual_writer_is_depth_scaled(name):
    torch.manual_seed(0)
    cfg = archlab.tiny(name)
    model = archlab.build(cfg)
    declared = {id(p) for p in model.residual_params()}
    params = dict(model.named_parameters())
    assert {n for n, p in params.items() if id(p) in declared} == {n for n in params if RESIDUAL.match(n)}
    for i, layer in enumerate(model.layers):  # every sublayer writes through something
        assert any(id(p) in declared for p in layer.attn.parameters()), f"layer {i} attention"
        assert any(id(p) in declared for p in layer.ffn.parameters()), f"layer {i} ffn"

    residual_std = 0.02 / math.sqrt(2 * cfg.n_layers)
    for n, p in params.items():
        if p.dim() < 2 or n.endswith("attn.conv"):  # vectors, and DeltaNet's depthwise filter (its own init)
            continue
        if n.endswith("bias"):  # the stacked experts' biases (E, F)
            assert not p.any(), n
            continue
        std = residual_std if id(p) in declared else 0.02
        assert _close_std(p.detach(), std), f"{n}: std {p.std().item():.5f}, expected {std:.5f}"


def test_routed_experts_down_is_scaled():
    # the stacked (E, D, F) parameter is no nn.Linear: it was once left at 0.02
    torch.manual_seed(0)
    cfg = archlab.tiny("deepseek-v3")
    model = archlab.build(cfg)
    downs = [layer.ffn.experts.down for layer in model.layers if hasattr(layer.ffn, "experts")]
    assert downs
    for d in downs:
        assert _close_std(d.detach(), 0.02 / math.sqrt(2 * cfg.n_layers))


# ---- no host sync ----------------------------------------------------------------------------

# Every family, and where a family has both, its dense and MoE members; together they cover
# every part (learned/ALiBi/RoPE/NoPE positions, post/parallel/sandwich/output blocks, sliding
# and chunked windows, MLA, DeltaNet, sinks, softcaps, temperatures, every router).
FAMILIES = [
    "gpt2", "gpt-1", "gpt-neox-20b", "bloom-176b", "llama-3-8b", "mistral-7b", "mixtral-8x7b",
    "deepseek-v2-lite", "deepseek-v3", "olmo-2-7b", "gemma-3-27b", "llama-4-maverick", "qwen3-8b",
    "qwen3-30b-a3b", "smollm3-3b", "kimi-k2", "glm-4.5", "gpt-oss-20b", "grok-2.5", "qwen3-next-80b-a3b",
]


def _compile(model):
    torch._dynamo.reset()
    # fullgraph: any graph break (.item(), .tolist(), a shape that depends on data) raises
    return torch.compile(model, backend="eager", fullgraph=True)


# the quick run compiles one dense and one MoE model; the full run compiles every family
@pytest.mark.parametrize("name", slow_except(FAMILIES, ("llama-3-8b", "mixtral-8x7b")))
def test_training_forward_compiles_as_one_graph(name):
    """A graph break is where the forward would read a tensor back to the host. MoE models run
    in bfloat16: torch 2.13 lets torch.compile trace torch._grouped_mm (the experts' sync-free
    path) in bfloat16 only; in float32 the experts take the per-expert split, which needs the
    counts on the host and so cannot be one graph."""
    torch.manual_seed(0)
    cfg = archlab.tiny(name)
    model = archlab.build(cfg, dtype=torch.bfloat16 if cfg.moe is not None else torch.float32)
    ids = torch.randint(0, cfg.vocab_size, (2, 24))
    expected = model(ids)
    model.reset_expert_load()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dynamo's note that it traces through lru_cache
        compiled = _compile(model)
        logits = compiled(ids)
        loss = compiled(ids[:, :-1], targets=ids[:, 1:])
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)
    loss.backward()
    assert model.tok_emb.weight.grad is not None
    if cfg.moe is not None:  # the counters updated inside the graph
        assert (model.expert_load().sum(-1) == (2 * 24 + 2 * 23) * cfg.moe.top_k).all()


def test_out_of_range_ids_under_compile_still_raise():
    model = archlab.build(archlab.tiny("gpt2"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = _compile(model)
        compiled(torch.tensor([[1, 2, 3]]))
        with pytest.raises(RuntimeError, match=r"token ids must be in \[0, 512\)"):
            compiled(torch.tensor([[1, 2, 512]]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("variant", ["plain", "gpt-oss", "gpt-oss-alpha", "weights-on-input"])
def test_grouped_experts_equal_split_experts(variant, dtype):
    """The sync-free path (torch._grouped_mm) and the padded bmm path against the per-expert
    split, outputs and gradients, with an expert that gets no token and groups that need
    padding (and, padded, expert 1's 7 slots setting the padded rows for all)."""
    torch.manual_seed(0)
    kw = {
        "plain": {},
        "gpt-oss": {"bias": True, "swiglu_limit": 7.0},
        "gpt-oss-alpha": {"bias": True, "swiglu_limit": 7.0, "swiglu_alpha": 1.2},  # both paths read it
        "weights-on-input": {"router": RouterConfig(weights_on="input")},
    }[variant]
    experts = Experts(16, MoEConfig(n_experts=5, top_k=2, hidden=24, **kw))
    experts.reset_parameters()
    for b in (experts.gate_bias, experts.up_bias, experts.down_bias):
        if b is not None:
            b.data.normal_()
    experts.to(dtype)
    x = torch.randn(9, 16, dtype=dtype, requires_grad=True)
    idx = torch.tensor([[0, 1], [1, 2], [1, 0], [3, 1], [0, 2], [1, 3], [2, 0], [1, 0], [3, 2]])  # 4 gets nothing
    w = torch.rand(9, 2)
    out = {}
    for grouped in (False, True, "padded"):
        experts.grouped = grouped
        y = experts(x, idx, w)
        grads = torch.autograd.grad(y, [x, *experts.parameters()], torch.ones_like(y).normal_(generator=torch.Generator().manual_seed(1)))
        out[grouped] = (y, grads)
    for fast in (True, "padded"):
        torch.testing.assert_close(out[fast][0], out[False][0])
        for a, b in zip(out[fast][1], out[False][1]):
            torch.testing.assert_close(a, b)


def test_experts_default_path_follows_the_padding():
    """Eager CPU pads when the slots fill the experts (training, prefill) and splits when
    padding would more than double the rows (decoding one token over many experts): both give
    the split path's values."""
    torch.manual_seed(0)
    experts = Experts(16, MoEConfig(n_experts=8, top_k=2, hidden=24))
    experts.reset_parameters()
    ran = []
    experts._padded = lambda *a, _f=experts._padded: ran.append(1) or _f(*a)  # records that it ran
    for n in (64, 1):
        x, idx, w = torch.randn(n, 16), torch.rand(n, 8).topk(2, dim=-1).indices, torch.rand(n, 2)
        ran.clear()
        experts.grouped = None
        y = experts(x, idx, w)
        experts.grouped = False
        torch.testing.assert_close(y, experts(x, idx, w))
        assert ran == ([1] if n == 64 else [])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["llama-3-8b", "deepseek-v3", "gpt-oss-20b", "qwen3-next-80b-a3b", "bloom-176b"])
def test_no_host_sync_on_cuda(name):
    cfg = archlab.tiny(name)
    model = archlab.build(cfg, dtype=torch.bfloat16, device="cuda")
    ids = torch.randint(0, cfg.vocab_size, (2, 64), device="cuda")
    model(ids, targets=ids).backward()  # warm-up: per-device tables are copied once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        model(ids, targets=ids).backward()
        model.expert_load()
    finally:
        torch.cuda.set_sync_debug_mode("default")


# ---- loss --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gpt2", "grok-2.5", "deepseek-v3", "gemma-3-27b", "qwen3-next-80b-a3b"])
def test_loss_equals_cross_entropy_of_logits(name):
    """gpt2: tied head; grok-2.5: logit scale and softcap; deepseek-v3: MLA and MoE; gemma:
    tied, embedding scale; qwen3-next: DeltaNet. Float64, chunks that do not divide the tokens,
    ignored targets."""
    torch.manual_seed(0)
    cfg = archlab.tiny(name)
    model = archlab.build(cfg, dtype=torch.float64)
    model.loss_chunk = 7
    ids = torch.randint(0, cfg.vocab_size, (2, 19))
    targets = torch.randint(0, cfg.vocab_size, (2, 19))
    targets[0, :3] = -100
    targets[1, -1] = -100

    params = list(model.parameters())
    expected = F.cross_entropy(model(ids).flatten(0, 1), targets.flatten())
    expected_grads = torch.autograd.grad(expected, params, allow_unused=True)
    loss = model(ids, targets=targets)
    grads = torch.autograd.grad(loss, params, allow_unused=True)

    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=0)
    for (n, _), g, e in zip(model.named_parameters(), grads, expected_grads):
        if e is None:
            assert g is None or not g.any(), n
        else:
            torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-14, msg=n)
    with torch.no_grad():
        torch.testing.assert_close(model(ids, targets=targets), expected, rtol=1e-12, atol=0)


def test_hidden_states_path():
    torch.manual_seed(0)
    model = archlab.build(archlab.tiny("grok-2.5"))
    ids = torch.randint(0, 512, (2, 10))
    h = model(ids, return_hidden=True)
    assert h.shape == (2, 10, model.config.d_model)
    assert torch.equal(model.logits(h), model(ids))


def test_loss_argument_errors():
    model = archlab.build(archlab.tiny("gpt2"))
    ids = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(ValueError, match=r"targets: expected an integer tensor shaped like input_ids \(2, 5\), got \(2, 4\)"):
        model(ids, targets=ids[:, 1:])
    with pytest.raises(ValueError, match=r"targets and return_hidden=True"):
        model(ids, targets=ids, return_hidden=True)


class _WidestVocabTensor(TorchDispatchMode):
    """Records the most rows of any newly allocated (..., vocab) tensor an op produces
    (forward and backward, recomputation included); views of existing tensors don't count."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab, self.rows = vocab, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.dim() and t.shape[-1] == self.vocab and t.untyped_storage().data_ptr() not in inputs:
                self.rows = max(self.rows, t.numel() // self.vocab)
        return out


@pytest.mark.parametrize("name", ["gpt2", "grok-2.5", "mixtral-8x7b"])
def test_loss_never_holds_all_logits(name):
    torch.manual_seed(0)
    # a prime vocabulary, so that no other width (grok's fused shared-expert gate/up is 2 x 256
    # wide) passes for logits in _WidestVocabTensor
    cfg = archlab.tiny(name, vocab_size=509)
    model = archlab.build(cfg)
    ids = torch.randint(0, cfg.vocab_size, (4, 64))

    def widest(fn):
        with _WidestVocabTensor(cfg.vocab_size) as mode:
            fn().backward()
        return mode.rows

    assert widest(lambda: F.cross_entropy(model(ids).flatten(0, 1), ids.flatten())) == 4 * 64
    for chunk in (16, 100):
        model.loss_chunk = chunk
        assert widest(lambda: model(ids, targets=ids)) == chunk


# ---- expert load -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["deepseek-v3", "mixtral-8x7b", "gpt-oss-20b", "llama-4-maverick", "qwen3-next-80b-a3b"])
def test_expert_load_counts_routed_tokens(name):
    torch.manual_seed(0)
    cfg = archlab.tiny(name)
    model = archlab.build(cfg)
    moe_layers = [layer.ffn for layer in model.layers if hasattr(layer.ffn, "experts")]
    assert len(moe_layers) == sum(s.ffn == "moe" for s in cfg.layers)
    assert model.expert_load().shape == (len(moe_layers), cfg.moe.n_experts)
    assert not model.expert_load().any()  # built at zero

    chosen = []
    hooks = [m.router.register_forward_hook(lambda mod, inp, out: chosen.append(out[1])) for m in moe_layers]
    ids = torch.randint(0, cfg.vocab_size, (3, 17))
    logits = model(ids)
    for h in hooks:
        h.remove()
    load = model.expert_load()
    assert (load.sum(-1) == 3 * 17 * cfg.moe.top_k).all()
    for row, idx in zip(load, chosen):
        assert torch.equal(row, torch.bincount(idx.flatten(), minlength=cfg.moe.n_experts))

    assert torch.equal(model(ids), logits)  # counting changes nothing the model computes
    assert torch.equal(model.expert_load(), 2 * load)  # and accumulates
    model.reset_expert_load()
    assert not model.expert_load().any()


def test_expert_load_is_not_state():
    cfg = archlab.tiny("deepseek-v3")
    model = archlab.build(cfg)
    assert not any("load" in k for k in model.state_dict())
    # as the checkpoint loaders do: build on meta, assign the loaded tensors
    loaded = archlab.build(cfg, device="meta")
    loaded.load_state_dict(model.state_dict(), strict=True, assign=True)
    assert loaded.expert_load().device.type == "cpu" and not loaded.expert_load().any()
    ids = torch.randint(0, cfg.vocab_size, (1, 8))
    assert torch.equal(loaded(ids), model(ids))
    assert torch.equal(loaded.expert_load(), model.expert_load())


def test_dense_model_has_no_expert_load():
    model = archlab.build(archlab.tiny("llama-3-8b"))
    assert model.expert_load().shape == (0, 0)
    model.reset_expert_load()
