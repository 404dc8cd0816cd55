"""archlab's own config JSON (`archlab config NAME > f.json`, edited): a value of the wrong JSON
type is refused naming the field, as config.json's are (issue 12; found by scripts/fuzz.py)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings, strategies as st

import archlab
from archlab import ConfigError, ModelConfig

PRESETS = ["llama-3-8b", "deepseek-v3", "gemma-3-27b", "gpt2", "qwen3-next-80b-a3b"]


def _scalar_fields(d: dict, prefix=()):
    """Paths of every bool/number/str value of a saved config (one level into sub-configs)."""
    for k, v in d.items():
        if k == "type":
            continue
        if isinstance(v, dict):
            yield from _scalar_fields(v, prefix + (k,))
        elif isinstance(v, (bool, int, float, str)):
            yield prefix + (k,), v


CASES = [(p, path, v) for p in PRESETS for path, v in _scalar_fields(archlab.tiny(p).to_dict())]


def _wrong_types(v):
    if isinstance(v, bool):
        return [1, 0, "false", "", [v], {"value": v}, "true"]
    if isinstance(v, (int, float)):
        return [str(v), [v], {"value": v}, True, math.nan, math.inf]
    return [[v], {"value": v}, True]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(CASES), st.data())
def test_a_value_of_the_wrong_type_is_refused_naming_the_field(case, data):
    preset, path, old = case
    new = data.draw(st.sampled_from(_wrong_types(old)))
    d = archlab.tiny(preset).to_dict()
    node = d
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = new
    try:
        ModelConfig.from_dict(json.loads(json.dumps(d)))
    except ConfigError as e:
        assert path[-1] in str(e), f"{path}={new!r}: {e}"
    else:
        pytest.fail(f"{preset}: {'.'.join(path)}={new!r} accepted (it was {old!r})")


@pytest.mark.parametrize("tag", [[], {}, 3, None])
def test_a_type_tag_that_is_not_a_name_is_refused(tag):
    d = archlab.tiny("deepseek-v3").to_dict()
    d["moe"]["type"] = tag
    with pytest.raises(ConfigError, match="moe"):
        ModelConfig.from_dict(d)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_our_json_that_never_ends_is_refused(tmp_path, kind):
    import os

    path = tmp_path / "c.json"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="not a regular file"):
        ModelConfig.from_json_file(path)


def test_config_json_linked_outside_its_folder_is_refused(tmp_path):
    model = tmp_path / "model"
    archlab.save(archlab.build(archlab.tiny("llama-3-8b")), model)
    outside = tmp_path / "elsewhere.json"
    (model / "config.json").rename(outside)
    (model / "config.json").symlink_to(outside)
    with pytest.raises(archlab.CheckpointError, match="outside its folder"):
        archlab.load(model)
