"""HF `smollm3`: the Llama block with NoPE layers, which rotate neither queries nor keys.

# diff with llama (modeling_smollm3.py, configuration_smollm3.py)
- `no_rope_layers[i]` is 1 where layer i uses RoPE and 0 where it is NoPE; when config.json
  has no list, SmolLM3Config builds it as int((i + 1) % no_rope_layer_interval != 0), so
  every 4th layer is NoPE by default (SmolLM3-3B: layers 3, 7, ..., 35).
- With use_sliding_window and a sliding_window, the NoPE layers (and only they) slide, unless
  config.json gives `layer_types` itself; layers it names sliding slide whatever
  use_sliding_window says (their mask is built from sliding_window).
- The head is tied to the embedding unless config.json says otherwise (SmolLM3Config's
  default is true), and RoPE theta defaults to 2e6.
"""

from __future__ import annotations

from ...model_config import ModelConfig
from .core import HFFamily, register
from .values import bool_field
from .llama_like import layer_types, llama_like_config, positive_int, rope_layers, sliding_window, with_defaults
from .llama_rules import IGNORE, PRE_NORMS, decoder_rules

# SmolLM3Config defaults (configuration_smollm3.py)
_DEFAULTS = {"num_key_value_heads": 4, "rms_norm_eps": 1e-6, "hidden_act": "silu", "tie_word_embeddings": True,
             "attention_bias": False, "mlp_bias": False, "use_sliding_window": False, "sliding_window": None,
             "no_rope_layer_interval": 4}


def _smollm3_config(hf: dict) -> ModelConfig:
    hf = with_defaults(hf, _DEFAULTS)
    n_layers = positive_int(hf, "num_hidden_layers")
    rotates = rope_layers(hf, n_layers)
    slides = bool_field(hf, "use_sliding_window", False) and hf.get("sliding_window") is not None
    types = layer_types(hf, n_layers, ["sliding_attention" if slides and not r else "full_attention" for r in rotates])
    # Sliding layers listed in layer_types slide by sliding_window even with use_sliding_window
    # false: SmolLM3Model builds their mask with create_sliding_window_causal_mask from
    # config.sliding_window, which eager and SDPA attention apply (only SmolLM3Attention's own
    # `sliding_window`, passed to flash attention, depends on use_sliding_window). A null
    # sliding_window makes HF raise there; sliding_window() refuses it by name.
    return llama_like_config(
        hf, family="smollm", theta=2e6, n_layers=n_layers, layer_types=types, rope_layers=rotates,
        attention={"window": sliding_window(hf, types)}, ffn={"bias": bool_field(hf, "mlp_bias", False)},
    )


register(HFFamily(("smollm3",), _smollm3_config, lambda cfg, hf: decoder_rules(PRE_NORMS), ignore=IGNORE))
