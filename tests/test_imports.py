"""Imports run one way: config <- nn <- model <- io <- api <- cli.

Each module of src/archlab belongs to a layer, and may import only from its own layer and the
layers below it, which this test checks by reading every module's imports with `ast` (lazy
imports inside functions included: a lazy import still couples the two modules). The layers,
lowest first:

- base: model_config.py, errors.py, catalog/ (the presets) -- what a model *is*, in plain Python; parts/ -- what
  each kind of mixer and FFN costs and is called (it names its nn module as a string, imported
  only when a model is built); _lazy.py (lazy package attributes). Also io/__init__.py
  (which only re-exports CheckpointError), io/atomic.py (atomic file writes, torch-free),
  which reports write through, and io/files.py (capped, contained reads of small files,
  torch-free), which our own config JSON is read through.
- analysis: analysis.py, describe.py, report.py, diagram*.py, diff.py -- torch-free siblings of config that count,
  describe and draw configs; they import base only (the cli uses them; model only to count
  parameters for the memory guard).
- nn: nn/ and cache.py -- the parts, and the state they keep while decoding (nn/attention.py
  allocates its cache, so the cache sits with the parts, not above them).
- model: model.py (Transformer and `build`), generation.py and memory.py (the memory guard, which
  counts parameters with analysis).
- io: io/ (checkpoint formats), tokenizer.py, hub.py -- translate files to models, so they
  build models (model.build) and never reach up into the public api.
- train: training/ -- the training loop, checkpoints, torchrun; over models, data and tokenizers.
- api: archlab/__init__.py and api.py, the public facade.
- lab: lab/ -- the claims lab's experiments, over the public API.
- serve: serve.py, serve_engine.py, serve_requests.py -- the OpenAI-compatible HTTP server, a
  client of the public API like the lab (serve_requests, the request checks, is torch-free).
- cli: cli.py, over everything.

analysis and nn are side by side: neither imports the other. A package's `_LAZY` table
(names imported on first access) counts as importing the modules it names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import archlab

ROOT = Path(archlab.__file__).parent

LAYERS = ("base", "analysis", "nn", "model", "io", "train", "api", "lab", "serve", "cli")
MAY_IMPORT = {
    "base": {"base"},
    "analysis": {"base", "analysis"},
    "nn": {"base", "nn"},
    # build (and load, through it) counts parameters with analysis (torch-free) to refuse, before
    # allocating, weights that cannot fit (archlab.memory)
    "model": {"base", "analysis", "nn", "model"},
    "io": {"base", "nn", "model", "io"},
    # training counts parameters with analysis (torch-free) for its summary line
    "train": {"base", "analysis", "nn", "model", "io", "train"},
    "api": {"base", "analysis", "nn", "model", "io", "train", "api"},
    # the lab's experiments use the public API, as a user would
    "lab": {"base", "analysis", "nn", "model", "io", "train", "api", "lab"},
    # the server runs models through the public API, as a user would
    "serve": {"base", "analysis", "nn", "model", "io", "train", "api", "serve"},
    "cli": set(LAYERS),
}
# modules by exact name first, then packages (the package and everything below it)
MODULES = {
    "archlab.model_config": "base", "archlab.errors": "base", "archlab._lazy": "base", "archlab.io": "base", "archlab.io.atomic": "base", "archlab.io.files": "base",
    "archlab.analysis": "analysis", "archlab.describe": "analysis", "archlab.report": "analysis",
    "archlab.diagram": "analysis", "archlab.diagram_text": "analysis", "archlab.diagram_svg": "analysis", "archlab.diff": "analysis",  # drawn and compared from configs; archlab.notes uses them
    "archlab.report_text": "analysis", "archlab.report_kv": "analysis", "archlab.cli_json": "analysis",
    "archlab.textfit": "base", "archlab.completion": "cli",
    "archlab.cache": "nn",
    "archlab.model": "model", "archlab.generation": "model", "archlab.memory": "model",
    "archlab.chat_defaults": "base", "archlab.chat_session": "model", "archlab.chat_repl": "cli",
    "archlab.tokenizer": "io", "archlab.chat_template": "io", "archlab.chat_limits": "io", "archlab.tokenizer_checks": "io", "archlab.sentencepiece_gguf": "io", "archlab.hub": "io", "archlab.data": "io",
    "archlab": "api", "archlab.api": "api",
    "archlab.serve": "serve", "archlab.serve_engine": "serve", "archlab.serve_requests": "serve",
    "archlab.cli": "cli", "archlab.__main__": "cli", "archlab.notes.cli": "cli",
    "archlab.load_cache": "io", "archlab.run_options": "cli", "archlab.models_list": "cli",
}
PACKAGES = {"archlab.catalog": "base", "archlab.parts": "base", "archlab.nn": "nn", "archlab.quant": "nn", "archlab.io": "io", "archlab.training": "train", "archlab.lab": "lab", "archlab.bench": "lab", "archlab.notes": "analysis"}  # bench: measures models through the API, like the lab
# Modules that must stay importable without torch (`import archlab`, `archlab compare`,
# reading a GGUF vocabulary); checked statically here, by subprocess in test_tokenizer.py
# and test_report.py.
TORCH_FREE = {"base", "analysis"}
TORCH_FREE_MODULES = {"archlab", "archlab.io.gguf", "archlab.io.gguf.reader", "archlab.io.gguf.typed", "archlab.chat_template", "archlab.chat_limits", "archlab.tokenizer_checks", "archlab.tokenizer", "archlab.sentencepiece_gguf", "archlab.data", "archlab.serve_requests"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULE_FILES = _modules()


def _layer(module: str) -> str:
    if module in MODULES:
        return MODULES[module]
    for package in sorted(PACKAGES, key=len, reverse=True):
        if module == package or module.startswith(package + "."):
            return PACKAGES[package]
    raise AssertionError(f"{module} belongs to no layer: add it to MODULES or PACKAGES in tests/test_imports.py")


def _imports(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, archlab module) for every import of an archlab module in `path`."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]

    def resolve(base: str, name: str) -> str:
        # `from . import x`: the module x when there is one, else a name of the package itself
        return f"{base}.{name}" if f"{base}.{name}" in MODULE_FILES else base

    def relative(level: int, name: str | None) -> str:
        base = package.split(".")
        base = base[: len(base) - (level - 1)]
        return ".".join(base + ([name] if name else []))

    found = []
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "archlab"]
        elif isinstance(node, ast.ImportFrom):
            base = relative(node.level, node.module) if node.level else node.module or ""
            if base.split(".")[0] != "archlab":
                continue
            for a in node.names:
                if a.name == "__version__" and base == "archlab":
                    continue  # package metadata (report.py stamps its HTML with it), not code
                found.append((node.lineno, resolve(base, a.name)))
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_LAZY" for t in node.targets):
            found += [(node.lineno, relative(1, v.value)) for v in node.value.values if isinstance(v, ast.Constant)]
    return found


def test_every_module_has_a_layer():
    for module in MODULE_FILES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULE_FILES))
def test_imports_run_one_way(module):
    layer = _layer(module)
    wrong = [
        f"{MODULE_FILES[module].relative_to(ROOT.parent)}:{line} ({layer}) imports {target} ({_layer(target)})"
        for line, target in _imports(module, MODULE_FILES[module])
        if _layer(target) not in MAY_IMPORT[layer]
    ]
    assert not wrong, "imports must run config <- nn <- model <- io <- api <- cli:\n" + "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(m for m in MODULE_FILES if _layer(m) in TORCH_FREE or m in TORCH_FREE_MODULES))
def test_torch_free_modules_never_import_torch(module):
    tree = ast.parse(MODULE_FILES[module].read_text())
    torch = [
        node.lineno for node in ast.walk(tree)
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "torch" for a in node.names)
        or isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "torch"
    ]
    assert not torch, f"{module} imports torch at lines {torch}"


def test_the_checker_sees_lazy_and_relative_imports():
    """The rule has teeth: io's imports are found, model.build among them, and api is not."""
    targets = {t for _, t in _imports("archlab.io.hf.core", MODULE_FILES["archlab.io.hf.core"])}
    assert {"archlab.model", "archlab.io.mapping", "archlab.model_config"} <= targets
    assert "archlab.api" not in targets
    lazy = {t for _, t in _imports("archlab", MODULE_FILES["archlab"])}
    assert {"archlab.api", "archlab.generation", "archlab.analysis"} <= lazy


def test_no_public_function_shadows_a_module():
    """`archlab.config` is the function that gives a preset's config; a module of the same name
    would be hidden behind it (`import archlab.config as m` would bind the function)."""
    names = {path.stem for path in ROOT.glob("*.py")} | {path.name for path in ROOT.iterdir() if path.is_dir()}
    shadowed = sorted(n for n in names if not n.startswith("_") and callable(getattr(archlab, n, None))
                      and not isinstance(getattr(archlab, n), type(archlab)))
    assert not shadowed, f"archlab.{shadowed[0]} is a function and a module"
