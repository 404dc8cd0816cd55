"""`archlab notes -o DIR`: the notes tree, generated from the presets' configs.

    DIR/README.md                the models, a timeline with sizes, GPT-2 vs today
    DIR/Generic/<concept>.md     one page per concept: its prose (written once, concepts/*.md),
                                 the presets that use it, the code, the lab's verdicts
    DIR/<family>/README.md       the family's presets: diagrams, parts, what changed from its
                                 predecessor, sizes computed beside published, KV and FLOPs
    DIR/<family>/<preset>.svg    each preset's block diagram

Deterministic (sorted, no timestamps, no absolute paths) and written atomically, so the copy
committed under docs/notes can be held to the code by a test (tests/test_notes.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..model_config import ModelConfig
from .markdown import HEADER

__all__ = ["NotesError", "render", "write_notes", "diagram_svg", "diff_changes"]


class NotesError(ValueError):
    """The notes tree cannot be written where asked (reported by the CLI in one line)."""


def diagram_svg(cfg: ModelConfig) -> str:
    """The preset's block diagram (archlab.diagram.svg)."""
    from ..diagram import svg

    return svg(cfg)


def diff_changes(a: ModelConfig, b: ModelConfig, results: list[dict[str, Any]] | None = None) -> list:
    """archlab.diff.changes: `results`, the lab's results (lab.core.read_results), whose verdicts
    it attaches to the parts they judge."""
    from ..diff import changes

    return changes(a, b, results)


def render(place: str | Path, lab: str | Path | None = None, results: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """Every file of the tree (path inside it -> text), its links computed as if the tree sat
    at `place`. `results`: the lab's results (lab.core.read_results of the folder `lab`), whose
    verdicts the concept pages link."""
    from .generic import concept_pages
    from .markdown import Links
    from .models import load_models
    from .pages import diagrams, family_pages, readme

    if (lab is None) != (results is None):
        raise ValueError("lab and results: give both (the folder and what read_results found in it) or neither")
    by_claim = {r["claim"]: r for r in results or []}
    links = Links(Path(place).absolute(), None if lab is None else Path(lab).absolute(), results)
    models = load_models()
    files = {"README.md": readme(models, links)}
    files.update(concept_pages(models, links, by_claim))
    files.update(family_pages(models, links))
    files.update(diagrams(models))
    return dict(sorted(files.items()))


def _ours(target: Path) -> bool:
    """True when `target` is absent, empty, or a notes tree we wrote (its README starts with
    our header): only then may it be replaced wholesale."""
    if not target.exists():
        return True
    if not target.is_dir():
        return False
    if not any(target.iterdir()):
        return True
    readme = target / "README.md"
    try:
        return readme.is_file() and readme.read_text(encoding="utf-8").startswith(HEADER)
    except (OSError, UnicodeDecodeError):
        return False


def write_notes(out: str | Path, lab: str | Path | None = None, results: list[dict[str, Any]] | None = None,
                place: str | Path | None = None) -> list[str]:
    """Write the tree to `out` (replacing an earlier notes tree there, refusing anything else)
    and return its files. `place`: where the tree will finally sit, for its relative links
    (default `out`)."""
    from ..io.atomic import atomic_directory

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotesError(f"{out}: is a file, not a folder; choose a new or empty folder for the notes")
    if not _ours(out):
        raise NotesError(f"{out}: exists and is not a notes tree written by `archlab notes` "
                              "(no README.md with its header); choose an empty or new folder")
    files = render(out if place is None else place, lab, results)
    with atomic_directory(out, overwrite=True) as tmp:
        for rel, text in files.items():
            f = tmp / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text, encoding="utf-8", newline="\n")
    return list(files)
