"""Published config.json files of presets whose family readers have their cases elsewhere
(Qwen3's dense sizes, Mistral Small 3.1's text model), registered into families.py's
HUB_CONFIGS (families.py imports this module at its end): each must read as its preset."""

from __future__ import annotations

from families import hub_config


def _qwen3_hub(**kw) -> dict:
    """A Qwen3 dense config.json as Qwen publishes it."""
    return {"architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
            "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
            "initializer_range": 0.02, "max_position_embeddings": 40960, "model_type": "qwen3", "num_key_value_heads": 8,
            "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None,
            "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": True, "use_sliding_window": False,
            "vocab_size": 151936, **kw}


# Qwen/Qwen3-4B, -14B and -32B, as copied in github.com/citsjtu2020/LLM-Prof sglang/Model_Config.md
hub_config("qwen3-4b", _qwen3_hub(hidden_size=2560, intermediate_size=9728, max_window_layers=36, num_attention_heads=32,
                                  num_hidden_layers=36, tie_word_embeddings=True, transformers_version="4.51.2",
                                  use_cache=False))
hub_config("qwen3-14b", _qwen3_hub(hidden_size=5120, intermediate_size=17408, max_window_layers=40, num_attention_heads=40,
                                   num_hidden_layers=40, tie_word_embeddings=False))
hub_config("qwen3-32b", _qwen3_hub(hidden_size=5120, intermediate_size=25600, max_window_layers=64, num_attention_heads=64,
                                   num_hidden_layers=64, tie_word_embeddings=False))

# the text_config of mistralai/Mistral-Small-3.1-24B-Base-2503 (Mistral3ForConditionalGeneration),
# which the mistral reader reads as a config.json of its own; the verbatim copy FLUX.2-dev ships
# as its text encoder (github.com/aigc-apps/VideoX-Fun, ComfyUI FLUX.2 loader)
hub_config("mistral-small-3.1-24b", {
    "attention_dropout": 0.0, "dtype": "bfloat16", "head_dim": 128, "hidden_act": "silu", "hidden_size": 5120,
    "initializer_range": 0.02, "intermediate_size": 32768, "max_position_embeddings": 131072, "model_type": "mistral",
    "num_attention_heads": 32, "num_hidden_layers": 40, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
    "rope_theta": 1000000000.0, "sliding_window": None, "use_cache": True, "vocab_size": 131072})
