"""The static decode step (Transformer.decode_step: a tensor slot, attention over each cache's
whole buffer, masked) computes what the ordinary cached forward computes, for every attention
kind; generate(compile=...) gives the tokens the ordinary generate gives, without recompiling
per token. The ordinary cached forward is itself checked against a full forward and against
HF (test_generate.py, test_families.py)."""

from __future__ import annotations

import pytest
import torch

import archlab
from marks import slow_except
from test_generate import ATOL, CONFIGS, _model

# one of each kind the quick run keeps: full GQA, sliding ring (wrapping), MLA absorbed, DeltaNet
# with gated attention, chunked (Llama 4), sinks + sliding (GPT-OSS), softcap (Grok), ALiBi
# (BLOOM), learned positions (GPT-2), embedding multiplier + local/global RoPE (Gemma 3)
QUICK = {"llama-3-8b", "llama-sliding", "deepseek-v3", "qwen3-next-80b-a3b", "llama-4-scout", "gpt-oss-20b",
         "grok-2.5", "bloom-176b", "gpt2", "gemma-3-1b"}


def _decode_both(model, ids: torch.Tensor, pad: torch.Tensor | None, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of a prefill then n single-token steps, the ordinary way and the static way; the
    fed tokens are fixed random ids, so both paths see the same inputs whatever they predict."""
    B, P = ids.shape
    feed = torch.randint(0, model.config.vocab_size, (n, B, 1), generator=torch.Generator().manual_seed(1))
    out = []
    for static in (False, True):
        cache = model.new_cache(B, P + n, pad=pad)
        with torch.no_grad():
            steps = [model(ids, cache=cache)[:, -1]]
            if static:
                cache.start_static()
            for t in range(n):
                if static:
                    steps.append(model.decode_step(feed[t], cache)[:, -1])
                    cache.length += 1
                else:
                    steps.append(model(feed[t], cache=cache)[:, -1])
        out.append(torch.stack(steps))
    return out[0], out[1]


@pytest.mark.parametrize("name", slow_except(list(CONFIGS), QUICK))
def test_static_step_equals_cached_forward(name):
    model = _model(CONFIGS[name])
    ids = torch.randint(0, model.config.vocab_size, (2, 6))
    # left-padded second row: the mask hides its padding; 9 steps wrap the window-5 rings
    want, got = _decode_both(model, ids, torch.tensor([0, 2]), 9)
    assert want.std() > 0.1
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["llama-4-scout", "gpt-oss-20b", "gemma-3-1b"])
def test_static_step_across_window_and_chunk_edges(name):
    # these tiny configs hold windows / chunks of 32: decode from slot 28 to 37 so the ring
    # wraps and a chunk boundary (32) is crossed, with and without padding
    model = _model(CONFIGS[name])
    held = {layer.attn.window or layer.attn.chunk for layer in model.layers} - {None}
    assert held == {32}
    ids = torch.randint(0, model.config.vocab_size, (2, 28))
    for pad in (None, torch.tensor([3, 0])):
        want, got = _decode_both(model, ids, pad, 10)
        torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["llama-3-8b", "llama-sliding"])
def test_static_step_without_padding(name):
    model = _model(CONFIGS[name])
    want, got = _decode_both(model, torch.randint(0, model.config.vocab_size, (1, 4)), None, 7)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_static_step_mla_naive_equals_absorbed():
    # the static path runs MLA absorbed by default; forced naive, it must agree as well
    model = _model(CONFIGS["deepseek-v3"])
    ids = torch.randint(0, model.config.vocab_size, (2, 5))
    want, _ = _decode_both(model, ids, torch.tensor([1, 0]), 4)
    for layer in model.layers:
        layer.attn.absorb = False
    _, naive = _decode_both(model, ids, torch.tensor([1, 0]), 4)
    torch.testing.assert_close(naive[1:], want[1:], atol=ATOL, rtol=0)


def test_static_step_advances_slot_in_place():
    model = _model(CONFIGS["llama-3-8b"])
    cache = model.new_cache(1, 8)
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3]]), cache=cache)
        slot = cache.start_static()
        model.decode_step(torch.tensor([[4]]), cache)
    assert cache.slot is slot and int(slot) == 4


def test_compile_argument_is_checked():
    model = _model(CONFIGS["llama-3-8b"])
    with pytest.raises(ValueError, match="compile"):
        archlab.generate(model, [1, 2, 3], 2, compile=1)


def _generate_compiled(model, backend):
    torch._dynamo.reset()
    prompts = [[5, 6, 7, 8, 9, 10], [11, 12, 13]]
    want = archlab.generate(model, prompts, 10)
    single = archlab.generate(model, prompts[1], 10)
    got = archlab.generate(model, prompts, 10, compile=backend)
    # the step is traced once: a recompile at any later token fails here. Not for MoE layers:
    # their per-expert loop splits by routed counts read on the host (nn/moe.py), a graph break
    # whose resumed frames are specialised to each routing pattern
    moe = bool(model._experts())
    with torch._dynamo.config.patch(error_on_recompile=not moe):
        again = archlab.generate(model, [[4, 5, 6, 7, 8], [9, 10, 11, 12]], 10, compile=backend)
    assert got == want
    assert again == archlab.generate(model, [[4, 5, 6, 7, 8], [9, 10, 11, 12]], 10)
    torch._dynamo.reset()
    assert archlab.generate(model, prompts[1], 10, compile=backend) == single


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llama-3-8b", "llama-sliding", "deepseek-v3", "qwen3-next-80b-a3b", "llama-4-scout",
                                  "gpt-oss-20b", "grok-2.5", "bloom-176b", "gpt2", "gemma-3-1b"])
def test_generate_traced_equals_generate(name):
    # dynamo's tracing alone (backend "eager"): graph breaks or guards that recompile per token show here
    _generate_compiled(_model(CONFIGS[name]), "eager")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llama-3-8b", "llama-sliding"])
def test_generate_compiled_equals_generate(name):
    _generate_compiled(_model(CONFIGS[name]), True)


def _byte_model(tmp_path):
    from archlab.tokenizer import byte_tokenizer

    torch.manual_seed(0)
    archlab.save(archlab.build(archlab.tiny("llama-3-8b", vocab_size=256, max_seq_len=64)), tmp_path / "m")
    byte_tokenizer().save(tmp_path / "m")
    return tmp_path / "m"


def test_cli_generate_compile_flag_reaches_stream(tmp_path, monkeypatch, capsys):
    from archlab.cli import main

    path, seen = _byte_model(tmp_path), []
    real = archlab.stream
    monkeypatch.setattr(archlab, "stream", lambda *a, **kw: seen.append(kw["compile"]) or real(*a, **{**kw, "compile": False}))
    assert main(["generate", str(path), "ab", "--max-new-tokens", "3", "--compile"]) == 0
    assert main(["generate", str(path), "ab", "--max-new-tokens", "3"]) == 0
    assert seen == [True, False]


@pytest.mark.slow
def test_cli_generate_compiled_prints_the_same_text(tmp_path, capsys):
    from archlab.cli import main

    path = _byte_model(tmp_path)
    torch._dynamo.reset()
    assert main(["generate", str(path), "ab", "--max-new-tokens", "6"]) == 0
    plain = capsys.readouterr().out
    assert main(["generate", str(path), "ab", "--max-new-tokens", "6", "--compile"]) == 0
    assert capsys.readouterr().out == plain
