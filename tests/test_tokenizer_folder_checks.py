"""A tokenizer folder's side files, damaged (issue 12; found by scripts/fuzz.py's tokenizer target):
every value of a type HF never writes there, or an absurd id, is refused naming the file, the
field and the value; it used to be dropped (a bos_token of 5 left templates without BOS), turned
into something else (eos_token_id 2.5 -> stop id 2) or crash with a bare TypeError."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archlab
from archlab.tokenizer import train_bpe
from archlab.io import CheckpointError

TEXTS = ["the quick brown fox jumps over the lazy dog " * 3, "héllo wörld 12345", "<|endoftext|> end"] * 20
TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{{ eos_token }}{% endfor %}"
MSGS = [{"role": "user", "content": "hi"}]
# JSON values of every type; the strategies below keep only those of a type HF never writes
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6,
)
SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    tok = train_bpe(TEXTS, 300)
    d = tmp_path_factory.mktemp("tok")
    tok.save(d)
    config = json.loads((d / "tokenizer_config.json").read_text())
    (d / "tokenizer_config.json").write_text(json.dumps({**config, "bos_token": "<|endoftext|>", "chat_template": TEMPLATE}))
    return d


def _with(folder: Path, tmp: Path, name: str, edit) -> Path:
    d = tmp / "case"
    d.mkdir(exist_ok=True)
    for f in folder.iterdir():
        (d / f.name).unlink(missing_ok=True)
        (d / f.name).write_bytes(f.read_bytes())
    path = d / name
    data = json.loads(path.read_text()) if path.exists() else {}
    edit(data)
    path.write_text(json.dumps(data))
    return d


def test_undamaged_folder_loads(folder):
    tok = archlab.load_tokenizer(folder)
    assert tok.apply_chat_template(MSGS, add_generation_prompt=False) == "<|endoftext|>user: hi<|endoftext|>"


@SETTINGS
@given(key=st.sampled_from(["bos_token", "eos_token", "unk_token", "pad_token"]),
       value=json_values.filter(lambda v: v is not None and not isinstance(v, str)
                                and not (isinstance(v, dict) and isinstance(v.get("content"), str))))
def test_special_token_of_a_wrong_type_is_refused(folder, tmp_path, key, value):
    d = _with(folder, tmp_path, "tokenizer_config.json", lambda c: c.update({key: value}))
    with pytest.raises(CheckpointError, match=rf"tokenizer_config\.json: {key} is .*expected the token's text"):
        archlab.load_tokenizer(d)


def test_special_token_as_added_token_dict_is_read(folder, tmp_path):
    d = _with(folder, tmp_path, "special_tokens_map.json",
              lambda c: c.update(bos_token={"__type": "AddedToken", "content": "<|endoftext|>", "special": True}))
    (d / "tokenizer_config.json").write_text(json.dumps({"chat_template": TEMPLATE, "eos_token": "<|endoftext|>"}))
    assert archlab.load_tokenizer(d).bos_token == "<|endoftext|>"


@SETTINGS
@given(value=json_values.filter(lambda v: v is not None and not isinstance(v, str) and not (
    isinstance(v, list) and all(isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("template"), str) for t in v))))
def test_chat_template_of_a_wrong_type_is_refused(folder, tmp_path, value):
    d = _with(folder, tmp_path, "tokenizer_config.json", lambda c: c.update(chat_template=value))
    with pytest.raises(CheckpointError, match=r"tokenizer_config\.json: chat_template is .*expected a template"):
        archlab.load_tokenizer(d)


def test_named_chat_templates_use_the_default(folder, tmp_path):
    named = [{"name": "tool_use", "template": "x"}, {"name": "default", "template": TEMPLATE}]
    d = _with(folder, tmp_path, "tokenizer_config.json", lambda c: c.update(chat_template=named))
    assert archlab.load_tokenizer(d).chat_template == TEMPLATE


@pytest.mark.parametrize("value", [299, 10, 0, -1, 1 << 40, 300.0, "300", True, [300]])
def test_archlab_vocab_size_below_the_tokens_or_absurd_is_refused(folder, tmp_path, value):
    d = _with(folder, tmp_path, "tokenizer_config.json", lambda c: c.update(archlab_vocab_size=value))
    with pytest.raises(CheckpointError, match=r"archlab_vocab_size is .*from the 300 tokens"):
        archlab.load_tokenizer(d)


@SETTINGS
@given(value=json_values.filter(lambda v: v is not None and not (
    all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 1 << 24 for i in (v if isinstance(v, list) else [v])))))
def test_eos_token_id_of_a_wrong_type_or_range_is_refused(folder, tmp_path, value):
    d = _with(folder, tmp_path, "generation_config.json", lambda c: c.update(eos_token_id=value))
    with pytest.raises(CheckpointError, match=r"generation_config\.json: eos_token_id is .*expected a token id"):
        archlab.load_tokenizer(d)


def test_eos_token_ids_are_stop_ids(folder, tmp_path):
    d = _with(folder, tmp_path, "generation_config.json", lambda c: c.update(eos_token_id=[5, 7]))
    assert {5, 7} <= archlab.load_tokenizer(d).stop_ids


@pytest.mark.parametrize("damage", ["duplicate-id", "huge-added-id", "huge-vocab-id"])
def test_token_ids_that_name_two_tokens_or_are_absurd_are_refused(folder, tmp_path, damage):
    def edit(t):
        if damage == "duplicate-id":
            t["model"]["vocab"]["Ġ"] = t["model"]["vocab"]["a"]
        elif damage == "huge-added-id":
            t["added_tokens"].append({**t["added_tokens"][0], "id": 10**9, "content": "<|huge|>"})
        else:
            t["model"]["vocab"]["Ġ"] = 10**9
    d = _with(folder, tmp_path, "tokenizer.json", edit)
    with pytest.raises(CheckpointError, match=r"tokenizer\.json: (model\.vocab gives id \d+ to two tokens|added_tokens gives .* the id \d+, but it has id \d+ here|model\.vocab gives .* the id \d+; ids are whole numbers below)"):
        archlab.load_tokenizer(d)


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja"])
@pytest.mark.parametrize("kind", ["outside", "fifo", "dev-zero"])
def test_side_file_linked_outside_or_not_regular_is_refused(folder, tmp_path, name, kind):
    d = _with(folder, tmp_path, "tokenizer_config.json", lambda c: None)
    (d / name).unlink(missing_ok=True)
    if kind == "outside":
        (tmp_path / "secret").write_text(TEMPLATE)
        (d / name).symlink_to(tmp_path / "secret")
    elif kind == "fifo":
        os.mkfifo(d / name)
    else:
        (d / name).symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match=rf"{name}: (resolves to .*outside its folder|is not a regular file)"):
        archlab.load_tokenizer(d)
