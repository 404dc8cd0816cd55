"""`archlab notes`: the generated notes tree, and its committed copy under docs/notes held to the
code (regenerated and compared), its links, its coverage of presets and concepts, and its
numbers against analyze()."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archlab import catalog
from archlab.analysis import analyze
from archlab.catalog.released import RELEASED
from archlab.cli import main
from archlab.describe import fmt_bytes, fmt_count, fmt_flops
from archlab.lab.core import read_results
from archlab.notes import render, write_notes
from archlab.notes.concepts import BY_SLUG
from archlab.notes.models import CONTEXTS

REPO = Path(__file__).resolve().parents[1]
NOTES = REPO / "docs" / "notes"
LAB = REPO / "docs" / "lab"
HINT = "regenerate with: python -m archlab notes -o docs/notes --lab docs/lab"

# The concepts issue 15 names, each of which must have its page.
REQUIRED_CONCEPTS = (
    "mha", "mqa", "gqa", "mla", "sliding-window", "chunked", "linear-deltanet", "sinks",  # attention
    "learned-positions", "rope", "alibi", "nope", "rope-scaling",  # positions
    "normalization", "gelu-mlp", "swiglu", "geglu",  # norms, FFN
    "moe-routing", "moe-shared-experts", "moe-balancing",  # MoE
    "kv-cache", "fused-attention", "precision", "parallelism",
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_committed_notes_are_current(tmp_path):
    """docs/notes is exactly what the code generates now; a stale copy fails with its files listed."""
    assert NOTES.is_dir(), f"docs/notes is missing; {HINT}"
    fresh = tmp_path / "notes"
    write_notes(fresh, LAB, read_results(LAB), place=NOTES)
    new, old = _tree(fresh), _tree(NOTES)
    stale = sorted(k for k in new.keys() & old.keys() if new[k] != old[k])
    missing = sorted(new.keys() - old.keys())
    extra = sorted(old.keys() - new.keys())
    problems = [f"stale: {k}" for k in stale] + [f"missing: {k}" for k in missing] + [f"not generated any more: {k}" for k in extra]
    assert not problems, "docs/notes is out of date with the code:\n  " + "\n  ".join(problems) + f"\n{HINT}"


def _pages() -> list[Path]:
    return sorted(NOTES.rglob("*.md"))


def test_every_link_points_to_an_existing_file():
    broken = []
    for page in _pages():
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # no external links are written; none may sneak in unchecked
            path, _, anchor = target.partition("#")
            f = (page.parent / path).resolve() if path else page
            if not f.is_file():
                broken.append(f"{page.relative_to(NOTES)} -> {target}")
            elif anchor and f.suffix == ".md" and f'<a id="{anchor}"></a>' not in f.read_text(encoding="utf-8"):
                broken.append(f"{page.relative_to(NOTES)} -> {target} (no such anchor)")
    assert not broken, "broken links:\n  " + "\n  ".join(broken)
    # and the links into the code are there at all (relative, into src/archlab)
    assert "](../../../src/archlab/nn/mla.py)" in (NOTES / "Generic" / "mla.md").read_text()


def test_every_preset_appears():
    readme = (NOTES / "README.md").read_text()
    for name in catalog.names():
        fam = catalog.get(name).family
        page = (NOTES / fam / "README.md").read_text()
        assert f"[{name}]({fam}/README.md#{name})" in readme, name
        assert f"## {name}\n" in page and f"({name}.svg)" in page, name
        svg = (NOTES / fam / f"{name}.svg").read_text()
        assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>"), name


def test_every_concept_page_exists_with_prose_users_and_code():
    for slug in REQUIRED_CONCEPTS:
        assert slug in BY_SLUG, slug
        text = (NOTES / "Generic" / f"{slug}.md").read_text()
        assert text.count("\n# ") == 1 and "## Where archlab implements it" in text and "## Presets that use it" in text
    assert set(BY_SLUG) == set(REQUIRED_CONCEPTS)  # a new concept is added here and to the list


def _users(slug: str) -> set[str]:
    text = (NOTES / "Generic" / f"{slug}.md").read_text()
    return set(re.findall(r"^\| \[([^\]]+)\]", text, re.M))


def test_concept_pages_list_the_presets_their_papers_describe():
    """Membership checked against what the models' own papers say, not against the predicates."""
    assert {"bloom-176b"} == _users("alibi")
    assert {"gpt-oss-20b", "gpt-oss-120b"} == _users("sinks")
    assert {"qwen3-next-80b-a3b"} == _users("linear-deltanet")
    assert {"llama-4-scout", "llama-4-maverick"} == _users("chunked")
    assert {"deepseek-v2", "deepseek-v2-lite", "deepseek-v3", "kimi-k2"} == _users("mla")
    assert {"palm-540b", "gemma-3-1b"} == _users("mqa")
    assert {"llama-4-scout", "llama-4-maverick", "smollm3-3b"} <= _users("nope")
    assert {"gemma-3-1b", "gemma-3-27b", "grok-2.5"} == _users("geglu")  # Grok's experts are GeGLU
    assert {"gpt-1", "gpt2", "gpt-3-175b"} <= _users("learned-positions")
    assert {"gpt2", "llama-2-7b", "olmo-2-7b"} <= _users("mha") and "llama-3-8b" not in _users("mha")
    assert {"deepseek-v3", "kimi-k2", "glm-4.5"} <= _users("moe-balancing")
    assert len(_users("normalization")) == len(catalog.names())


def _row(page: str, name: str, header_start: str) -> list[str]:
    """The cells of `name`'s row in the table whose header starts with `header_start`."""
    text = (NOTES / page).read_text()
    table = text[text.index(header_start):].split("\n\n")[0]
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if cells[0] == name or cells[0].startswith(f"[{name}]"):
            return cells
    raise AssertionError(f"{page}: no row for {name}")


@pytest.mark.parametrize("name", catalog.names())
def test_numbers_equal_analyze(name):
    a = analyze(name)
    fam = catalog.get(name).family
    sizes = _row(f"{fam}/README.md", name, "| preset | total (computed)")
    assert sizes[1] == fmt_count(a.total_params)
    pub = catalog.published(name)
    if pub is not None and pub.active:
        assert sizes[4].split(" ")[0] == fmt_count(a.active_params_as(pub.active_convention))
    by_ctx = _row(f"{fam}/README.md", name, "| preset | KV @")
    n = len(CONTEXTS)
    assert [c.rstrip("*") for c in by_ctx[1 : 1 + n]] == [fmt_bytes(a.kv_cache_bytes(t)) for t in CONTEXTS]
    assert [c.rstrip("*") for c in by_ctx[1 + n :]] == [fmt_flops(a.flops_per_token(t)) for t in CONTEXTS]
    models = _row("README.md", name, "| preset | released")
    assert models[1] == RELEASED[name].month and models[3:5] == [fmt_count(a.total_params), fmt_count(a.active_params)]


def test_every_preset_has_a_release_month():
    assert set(RELEASED) == set(catalog.names())
    for name, r in RELEASED.items():
        assert re.fullmatch(r"20(1[89]|2[0-5])-(0[1-9]|1[0-2])", r.month), name
        assert r.source and r.month in r.source or "staged-release" in r.source, name  # the source gives the day


def test_output_is_deterministic_and_names_no_absolute_path():
    a, b = render(NOTES, LAB, read_results(LAB)), render(NOTES, LAB, read_results(LAB))
    assert a == b
    for rel, text in a.items():
        assert str(REPO) not in text, rel
        assert not [t for t in LINK.findall(text) if t.startswith("/")], rel


def test_replaces_its_own_tree_and_refuses_other_folders(tmp_path, capsys):
    out = tmp_path / "notes"
    assert main(["notes", "-o", str(out)]) == 0
    (out / "gpt2" / "old.md").write_text("left over")
    assert main(["notes", "-o", str(out)]) == 0  # a notes tree is replaced whole
    assert not (out / "gpt2" / "old.md").exists() and (out / "Generic" / "gqa.md").is_file()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.md").write_text("keep me")
    assert main(["notes", "-o", str(other)]) == 2
    assert "not a notes tree" in capsys.readouterr().err and (other / "thesis.md").read_text() == "keep me"


# Digits the concept prose may contain: model names and number formats, never a figure.
_NAMES = re.compile(r"GPT-[123]|Llama \d(\.\d)?( \d+B)?|Mistral 7B|DeepSeek-V[23]|Qwen3(-Next)?|SmolLM3|Gemma \d( and \d)?"
                    r"|OLMo \d|FSDP2|b?float(16|32)|\d+-bit|`1 \+ w`")


def test_concept_prose_types_no_numbers():
    """Numbers come from the configs: the prose written once per concept holds none."""
    for slug, concept in BY_SLUG.items():
        left = _NAMES.sub("", concept.prose())
        assert not re.search(r"\d", left), f"concepts/{slug}.md: {re.findall(r'.{20}[0-9].{20}', left)}"
