"""The `archlab` command with hostile arguments (issue 12; found by scripts/fuzz.py --targets cli):
every one is refused with exit status 2 and a message naming the flag or the value, or runs;
never a traceback out of main."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archlab
from archlab.cli import main
from archlab.model_config import ConfigError

_SIZES = st.one_of(st.integers(-5, 10), st.integers(2**20, 10**500), st.booleans(), st.floats(allow_nan=True),
                   st.sampled_from(["64", None]))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(field=st.sampled_from(["d_model", "n_heads", "vocab_size", "max_seq_len", "n_layers"]), value=_SIZES)
def test_tiny_sizes_are_checked_before_any_arithmetic(field, value):
    """archlab.tiny (and `train --tiny --d-model 1e400`) ended in an OverflowError inside the FFN's
    width arithmetic; each size is now an integer within model_config's bounds, or named."""
    if value is None:
        return
    from archlab.model_config import BOUNDS

    most = {"d_model": BOUNDS["widths"], "n_heads": BOUNDS["counts"], "vocab_size": BOUNDS["vocabulary"],
            "max_seq_len": BOUNDS["positions"], "n_layers": BOUNDS["layers"]}[field]
    fits = type(value) is int and 1 <= value <= most
    try:
        archlab.tiny("llama-3-8b", **{field: value})
    except ConfigError as e:
        assert fits or field in str(e), e  # a size within bounds may still not fit the rest (heads in d_model)
        return
    assert fits


@pytest.mark.parametrize("flag", ["--d-model", "--n-heads", "--n-layers"])
@pytest.mark.parametrize("value", ["1" + "0" * 400, "18446744073709551616"])
def test_train_tiny_with_a_huge_size_is_one_line(tmp_path, capsys, flag, value):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be\n" * 20)
    code = main(["train", "llama-3-8b", "--tiny", flag, value, "--data", str(corpus), "--out", str(tmp_path / "run"),
                 "--steps", "1", "-q", "--device", "cpu"])
    assert code == 2 and flag.lstrip("-").replace("-", "_") in capsys.readouterr().err


@pytest.fixture(scope="module")
def byte_model(tmp_path_factory):
    import torch
    from archlab.tokenizer import byte_tokenizer

    folder = tmp_path_factory.mktemp("m") / "model"
    torch.manual_seed(0)
    archlab.save(archlab.build(archlab.tiny("llama-3-8b", vocab_size=256, max_seq_len=64)), folder)
    byte_tokenizer().save(folder)
    return folder


@pytest.mark.parametrize("prompt", ["\udcff\udcfe", "ok \udc80"])
def test_generate_with_a_non_utf8_prompt_is_one_line(byte_model, capsys, prompt):
    """argv carries bytes that are not UTF-8 as lone surrogates; tokenizers raised a TypeError."""
    assert main(["generate", str(byte_model), prompt, "--max-new-tokens", "2"]) == 2
    assert "prompt" in capsys.readouterr().err


def test_encode_names_text_that_is_not_unicode():
    from archlab.tokenizer import byte_tokenizer

    with pytest.raises(ValueError, match="not valid Unicode"):
        byte_tokenizer().encode("a\udcffb")


def test_generate_with_an_empty_prompt_names_the_prompt(byte_model, capsys):
    assert main(["generate", str(byte_model), "", "--max-new-tokens", "2"]) == 2
    assert "prompt" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["fifo", "dev-zero", "directory"])
@pytest.mark.parametrize("name", ["tokenizer_config.json", "generation_config.json", "special_tokens_map.json"])
def test_tokenizer_side_file_that_is_not_a_file_is_refused(byte_model, tmp_path, how, name):
    """Such a file was taken as absent: a FIFO or /dev/zero in a model folder went unnoticed."""
    import os
    import shutil

    from archlab.errors import CheckpointError

    folder = tmp_path / "model"
    shutil.copytree(byte_model, folder)
    target = folder / name
    target.unlink(missing_ok=True)
    {"fifo": os.mkfifo, "dev-zero": lambda p: p.symlink_to("/dev/zero"), "directory": lambda p: p.mkdir()}[how](target)
    with pytest.raises((CheckpointError, ValueError), match=name):
        archlab.load_tokenizer(folder)


def test_report_to_an_empty_path_names_output(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "gpt2", "-o", "", "-q"]) == 2
    assert "--output" in capsys.readouterr().err


@pytest.mark.parametrize("seed", ["18446744073709551616", "-1", "9223372036854775808"])
def test_train_seed_outside_the_generators_range_is_named(tmp_path, capsys, seed):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be\n" * 20)
    code = main(["train", "gpt2", "--tiny", "--data", str(corpus), "--out", str(tmp_path / "run"), "--steps", "1",
                 "--seed", seed, "-q", "--device", "cpu"])
    assert code == 2 and "--seed" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["compare", "report"])
@pytest.mark.parametrize("batch", ["1" + "0" * 400, "18446744073709551616", "1048577"])
def test_a_huge_batch_is_named(tmp_path, capsys, command, batch):
    """--batch 1e400 ended in an OverflowError inside fmt_bytes."""
    extra = ["-o", str(tmp_path / "r.html"), "-q"] if command == "report" else []
    assert main([command, "gpt2", "--batch", batch, *extra]) == 2
    assert "batch" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--steps", "--eval-tokens", "--save-every", "--warmup"])
def test_train_count_past_2_40_is_refused_up_front(tmp_path, capsys, flag):
    """--steps 2**64 would train for ever instead of being refused."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be\n" * 20)
    code = main(["train", "gpt2", "--tiny", "--data", str(corpus), "--out", str(tmp_path / "run"), "--steps", "2",
                 flag, "18446744073709551616", "-q", "--device", "cpu"])
    assert code == 2 and flag in capsys.readouterr().err


def test_a_tiny_val_fraction_that_leaves_no_validation_text_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ARCHLAB_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be\n" * 20)
    assert main(["data", str(corpus), "--val-fraction", "1e-45"]) == 2
    assert "val_fraction" in capsys.readouterr().err
