"""`archlab models`: one list of what `archlab generate` and `archlab chat` can run, whether it is
in the local cache yet, and a word on architecture presets, which are shapes without weights
(the CLI has both lists and users took one for the other: `archlab generate gpt2`).

No torch is imported: the list reads the registry (hub.REGISTRY) and the cache folder only."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from .hub import REGISTRY, cache_dir


def _size(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n < 1e9 else f"{n / 1e9:.1f} GB"


def runnable() -> list[dict]:
    """Each fetchable model: name, description, size, and its path when it is in the cache."""
    out = []
    for name in sorted(REGISTRY):
        e = REGISTRY[name]
        path = cache_dir() / "models" / e.name / e.filename
        out.append({"name": name, "description": e.description, "size": e.size,
                    "fetched": path.is_file(), "path": str(path) if path.is_file() else None})
    return out


def local(folder: Path | None = None) -> list[dict]:
    """Models in `folder` (default: the current one): .gguf files, and HF-format folders
    (config.json beside *.safetensors). Not opened: a listing, not a check."""
    folder = folder or Path.cwd()
    out = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:  # an unreadable or vanished folder: nothing to list
        return []
    for p in entries:
        if p.suffix == ".gguf" and p.is_file():
            out.append({"path": str(p), "kind": "GGUF", "size": p.stat().st_size})
        elif p.is_dir() and (p / "config.json").is_file() and any(p.glob("*.safetensors")):
            out.append({"path": str(p), "kind": "HF folder", "size": sum(f.stat().st_size for f in p.glob("*.safetensors"))})
    return out


def render(models: list[dict], presets: list[str], width: int | None = None, here: list[dict] | None = None) -> list[str]:
    width_ = width or min(shutil.get_terminal_size((100, 24)).columns, 100)
    lines = ["Models to run (`archlab generate NAME \"text\"`, `archlab chat NAME`):", ""]
    width = max([len(m["name"]) for m in models] + [4])
    for m in models:
        state = "fetched" if m["fetched"] else "not fetched: `archlab fetch " + m["name"] + "`"
        lines.append(f"  {m['name']:<{width}}  {_size(m['size']):>7}  {state}")
        lines.append(f"  {'':<{width}}  {m['description']}")
        if m["path"]:
            lines.append(f"  {'':<{width}}  {m['path']}")
    if here:
        lines += ["", "In this folder:"]
        lines += [f"  {h['path']}  ({h['kind']}, {_size(h['size'])})" for h in here]
    notes = [
        "Also runnable: a path to a .gguf file or to an HF-format folder (config.json and *.safetensors), "
        "or an HF hub id 'org/name' (needs huggingface_hub).",
        f"Architecture presets ({len(presets)}: {', '.join(presets[:4])}, ...; `archlab presets` lists them) are "
        "shapes without weights: compare, inspect or train them; "
        f"`archlab generate {presets[0] if presets else 'PRESET'} \"text\" --random` runs a tiny random-weight "
        "version (gibberish), to try the machinery.",
    ]
    for note in notes:
        lines += ["", *textwrap.wrap(note, width_, break_on_hyphens=False)]
    return lines


def fetch_help() -> str:
    """The names `archlab fetch` knows, for its --help."""
    names = "; ".join(f"{n} ({REGISTRY[n].description})" for n in sorted(REGISTRY))
    return f"a known model: {names}; or an HF hub id 'org/name' (needs huggingface_hub)"


def main(args) -> int:
    import archlab

    if getattr(args, "json", False):
        import json

        print(json.dumps({"models": runnable(), "local": local(), "presets": archlab.presets()}, indent=1))
        return 0
    print("\n".join(render(runnable(), archlab.presets(), here=local())))
    return 0


__all__ = ["runnable", "local", "render", "fetch_help", "main"]
