"""HF `gemma3_text` (5 sliding : 1 global layers, local and global RoPE, sandwich (1 + w) norms,
QK-norm, GeGLU, scaled embeddings, query_pre_attn_scalar, softcapping where configured) and the
text decoder of `gemma3`. The checks every family passes run over its cases in
test_families.py (cases in families.py); here, Gemma 3's own."""

from __future__ import annotations

import pytest
import torch
from families import GEMMA3_PRESETS, case
from hf_reference import ATOL, hf_param_count, load_pair, max_logit_diff, record

import archlab
from archlab.errors import CheckpointError
from archlab.io.hf import FAMILIES

transformers = pytest.importorskip("transformers")


def _hf(name: str):
    return case(name).hf_config()


def test_embed_scale_rounds_to_the_weight_dtype(tmp_path):
    """In bfloat16, sqrt(48) = 6.93 becomes 6.94, as in Gemma3TextScaledWordEmbedding: what the
    first layer receives is bit-equal to HF's."""
    hf_config = _hf("gemma3-1b-like")
    ref, ours = load_pair(hf_config, tmp_path, seed=5)
    ref, ours = ref.to(torch.bfloat16), archlab.load(tmp_path, dtype="bfloat16")
    seen = {}

    def keep(name):
        def hook(module, args, kwargs):
            seen[name] = args[0] if args else kwargs["hidden_states"]
        return hook

    ours.layers[0].register_forward_pre_hook(keep("ours"), with_kwargs=True)
    ref.model.layers[0].register_forward_pre_hook(keep("hf"), with_kwargs=True)
    ids = torch.randint(0, hf_config.vocab_size, (2, 7), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ours(ids), ref(ids)
    assert torch.equal(seen["ours"], seen["hf"])
    exact = ours.tok_emb.weight[ids].float() * 48**0.5
    assert not torch.equal(seen["ours"].float(), exact.to(torch.bfloat16).float())


def test_config_reads_as_hf_builds_it():
    cfg = FAMILIES["gemma3_text"].read_config(_hf("gemma3-27b-like").to_dict())
    assert cfg.layer_types == ("sliding", "global", "sliding") and cfg.attention.window == 6
    assert cfg.rope.theta == 100000.0 and cfg.rope.scaling.kind == "linear" and cfg.rope.scaling.factor == 8.0
    assert cfg.rope_local.theta == 100.0 and cfg.rope_local.scaling is None
    assert cfg.attention.scale == 20**-0.5 and cfg.embed_multiplier == 48**0.5
    assert cfg.norm.unit_offset and cfg.attention.qk_norm.unit_offset and cfg.block == "sandwich"
    # sliding_window_pattern alone: HF's rule, layer i global when (i + 1) % pattern == 0
    hf = _hf("gemma3-1b-like").to_dict()
    del hf["layer_types"], hf["sliding_window_pattern"]  # the default pattern, 6
    hf["num_hidden_layers"] = 7
    assert FAMILIES["gemma3_text"].read_config(hf).layer_types == ("sliding",) * 5 + ("global", "sliding")
    assert transformers.Gemma3TextConfig.from_dict(hf).layer_types == ["sliding_attention"] * 5 + ["full_attention", "sliding_attention"]
    hf["sliding_window_pattern"] = 3
    assert transformers.Gemma3TextConfig.from_dict(hf).layer_types == ["sliding_attention", "sliding_attention", "full_attention"] * 2 + ["sliding_attention"]
    assert FAMILIES["gemma3_text"].read_config(hf).layer_types == ("sliding", "sliding", "global") * 2 + ("sliding",)


def test_v4_rope_fields_read_as_v5_does():
    """The hub's v4 layout (rope_theta, rope_local_base_freq, rope_scaling for the global layers
    only) reads as the rope_parameters HF v5 makes of it."""
    v4 = {k: v for k, v in _hf("gemma3-27b-like").to_dict().items() if k != "rope_parameters"}
    v4.update(rope_theta=100000.0, rope_local_base_freq=100.0, rope_scaling={"rope_type": "linear", "factor": 8.0})
    hf_view = transformers.Gemma3TextConfig(**{k: v for k, v in v4.items() if k not in ("model_type", "transformers_version")})
    assert hf_view.rope_parameters["full_attention"]["factor"] == 8.0
    assert hf_view.rope_parameters["sliding_attention"]["rope_type"] == "default"
    ours = FAMILIES["gemma3_text"].read_config(v4)
    want = FAMILIES["gemma3_text"].read_config(_hf("gemma3-27b-like").to_dict())
    assert (ours.rope, ours.rope_local) == (want.rope, want.rope_local)
    # Gemma 3 27B's text_config names only what differs from Gemma3TextConfig's defaults
    sparse = FAMILIES["gemma3_text"].read_config({"model_type": "gemma3_text", "rope_scaling": {"rope_type": "linear", "factor": 8.0}})
    assert (sparse.d_model, sparse.n_layers, sparse.attention.head_dim, sparse.vocab_size) == (2304, 26, 256, 262208)
    assert sparse.rope.theta == 1e6 and sparse.rope_local.theta == 1e4 and sparse.attention.window == 4096


def test_attn_softcap_is_ignored_as_hf_does():
    """HF's Gemma3Attention never passes attn_logit_softcapping to the attention function; the
    parity test above (softcap 0.5, which would change every logit) holds only because we
    follow it. The config says so with a warning."""
    with pytest.warns(UserWarning, match="attn_logit_softcapping"):
        cfg = FAMILIES["gemma3_text"].read_config(_hf("gemma3-softcaps-bias-untied").to_dict())
    assert cfg.attention.softcap is None and cfg.logit_softcap == 3.0


def test_multimodal_checkpoint_loads_its_text_decoder(tmp_path):
    """model_type gemma3 (Gemma3ForConditionalGeneration): the decoder under language_model.*,
    vision tower and projector ignored; on text it computes the multimodal model's logits."""
    text = _hf("gemma3-1b-like")
    vision = transformers.SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, image_size=28, patch_size=14)
    hf_config = transformers.Gemma3Config(text_config=text.to_dict(), vision_config=vision.to_dict(), mm_tokens_per_image=4)
    ref, ours = load_pair(hf_config, tmp_path, seed=23)
    assert type(ref).__name__ == "Gemma3ForConditionalGeneration"
    d = max_logit_diff(ref, ours, text.vocab_size)
    record(ours.config.family, logit_diff=d)
    assert d < ATOL
    text_params = hf_param_count(ref) - sum(p.numel() for n, p in ref.named_parameters()
                                            if "vision_tower" in n or "multi_modal_projector" in n)
    assert sum(p.numel() for p in ours.parameters()) == text_params


def test_bad_fields_are_clear_errors():
    hf = _hf("gemma3-1b-like").to_dict()
    with pytest.raises(CheckpointError, match="use_bidirectional_attention"):
        FAMILIES["gemma3_text"].read_config({**hf, "use_bidirectional_attention": True})
    with pytest.raises(CheckpointError, match="sliding_window"):
        FAMILIES["gemma3_text"].read_config({**hf, "sliding_window": None})
    with pytest.raises(CheckpointError, match="rope_parameters"):
        FAMILIES["gemma3_text"].read_config({**hf, "rope_parameters": {"rope_type": "default", "rope_theta": 1.0}})
    with pytest.raises(CheckpointError, match="text_config"):
        FAMILIES["gemma3"].read_config({"model_type": "gemma3"})


@pytest.mark.parametrize("preset", GEMMA3_PRESETS)
def test_tiny_preset_keeps_both_layer_kinds(preset):
    assert {"sliding", "global"} <= {s.kind for s in archlab.tiny(preset).layers}


def test_per_layer_yarn_truncate_false_is_ignored_as_hf_does():
    """HF reads YaRN's `truncate` from the top level of rope_parameters, which Gemma 3 keys by
    layer type: a per-layer truncate=false never reaches its rope init. archlab truncates too
    (the logits equal HF's: sweep_reproducers' 'gemma3 yarn truncate=false per layer type' in
    test_sweep_hf.py::test_fixed_class_reproducer_equals_hf) and says so at load."""
    from archlab.io.hf.gemma3 import _text_config

    yarn = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 8.0, "original_max_position_embeddings": 32,
            "truncate": False}
    hf = {**_hf("gemma3-1b-like").to_dict(), "rope_parameters": {"full_attention": yarn,
                                                                    "sliding_attention": {"rope_type": "default"}}}
    with pytest.warns(UserWarning, match=r"rope_parameters\['full_attention'\].truncate=false is ignored"):
        cfg = _text_config(hf)
    assert cfg.position.scaling.truncate is True
