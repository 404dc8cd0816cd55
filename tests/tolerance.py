"""How far archlab's float32 logits may be from HF's: per model type, near the measured noise.

Two limits, the smaller one applies:

1. TOLERANCE, per model type: 4x the largest |logit difference| measured over random configs
   known to be equal (`python scripts/sweep_hf.py --measure`: configs in no open class of
   sweep_known.py, drawn so or made so, that pass limit 2 with greedy tokens equal), rounded up
   to two significant digits. A flat 1e-4 hid wrong epsilons: 20 of 47 configs failing only by
   DeepSeek's latent-norm eps differed by 1.7e-5..1e-4, and 1e-5 for 1e-6 moves a random
   GPT-1's logits by 7e-5 (tests/test_sweep_hf.py::test_wrong_epsilon_is_caught).
2. NOISE_RATIO x HF's own float32 error on the same config and inputs (max |HF float32 - HF
   float64|, sweep_check.hf_noise). Random models differ widely in how much they amplify
   rounding: a 4-layer random Gemma 3 moves its logits by 4e-4 between float32 and float64,
   a 1-layer Llama by 1e-6. Over ~5,000 known-equal configs (seeds 0, 1, 3; 4,500 draws
   each of the first two, 3,600 of the third) archlab's difference stayed within 3.05x of HF's
   own (99th percentile 1.5x), so 8x leaves room without hiding a real difference on calm
   configs. Never below NOISE_MIN, the rounding of the logits themselves.
"""

from __future__ import annotations

NOISE_RATIO = 8.0
NOISE_MIN = 4e-6

# model type -> (limit, largest |logit difference| measured among known-equal configs, how many);
# measured with `scripts/sweep_hf.py --measure --cases 250 --seed 1` (torch 2.13.0 CPU, transformers
# 5.23.0, 2026-11-30, after the sweep's open classes were fixed, so over every config HF runs and
# archlab loads). Gemma 3 and Qwen3-Next are high because their random models amplify rounding
# (HF's own float32 error reaches 4e-4 on such configs): there limit 2 decides.
TOLERANCE: dict[str, tuple[float, float, int]] = {  # model type: (limit, measured floor, configs)
    'bloom': (1.3e-05, 3.22e-06, 250),
    'deepseek_v2': (1.4e-05, 3.46e-06, 242),
    'deepseek_v3': (1.3e-05, 3.16e-06, 233),
    'gemma3_text': (0.0013, 0.00031, 140),
    'glm4_moe': (2.5e-05, 6.2e-06, 227),
    'gpt2': (1.2e-05, 2.98e-06, 250),
    'gpt_neox': (1.8e-05, 4.29e-06, 225),
    'gpt_oss': (1.3e-05, 3.1e-06, 187),
    'llama': (2.1e-05, 5.02e-06, 160),
    'llama4_text': (2.8e-05, 6.79e-06, 181),
    'mistral': (2.4e-05, 5.84e-06, 177),
    'mixtral': (2.3e-05, 5.72e-06, 128),
    'olmo2': (2.2e-05, 5.3e-06, 166),
    'openai-gpt': (7.2e-06, 1.79e-06, 206),
    'qwen2': (2.7e-05, 6.56e-06, 209),
    'qwen2_moe': (2.7e-05, 6.74e-06, 192),
    'qwen3': (1.6e-05, 3.81e-06, 124),
    'qwen3_moe': (1.9e-05, 4.53e-06, 167),
    'qwen3_next': (0.00037, 9.01e-05, 235),
    'smollm3': (3.1e-05, 7.51e-06, 168),
}

DEFAULT = 1e-4  # a model type not measured yet


def atol(model_type: str) -> float:
    return TOLERANCE[model_type][0] if model_type in TOLERANCE else DEFAULT


def limit(model_type: str, hf_noise: float | None, table: bool = True) -> float:
    """The largest |logit difference| allowed on one config; `table=False` (measuring) uses the
    noise-relative limit alone."""
    fixed = atol(model_type) if table else float("inf")
    if hf_noise is None:  # HF's model cannot run in float64 (never seen; a safe fallback)
        return fixed if table else DEFAULT
    return min(fixed, max(NOISE_RATIO * hf_noise, NOISE_MIN))


def proposed(floors: dict[str, tuple[float, int]]) -> dict[str, tuple[float, float, int]]:
    """The TOLERANCE table from measured (floor, count) per model type: 4x, rounded up to two
    significant digits."""
    import math

    out = {}
    for t, (floor, n) in sorted(floors.items()):
        x = 4 * max(floor, NOISE_MIN / 4)
        e = math.floor(math.log10(x)) - 1
        out[t] = (float(f"{math.ceil(x / 10**e) * 10**e:.2g}"), floor, n)
    return out
