import os
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# `archlab generate` on a GGUF keeps its converted weights in the user's cache (load_cache.py):
# not from tests; test_load_cache.py turns it on in a private cache.
os.environ.setdefault("ARCHLAB_LOAD_CACHE", "0")

_PARITY: list[tuple[str, str, float]] = []


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private, empty archlab cache (ARCHLAB_CACHE), downloads allowed (pytest's own `cache`
    fixture is not used in these tests)."""
    d = tmp_path / "cache"
    monkeypatch.setenv("ARCHLAB_CACHE", str(d))
    monkeypatch.delenv("ARCHLAB_OFFLINE", raising=False)
    return d


@pytest.fixture
def parity_report():
    def record(family: str, name: str, max_diff: float) -> None:
        _PARITY.append((family, name, max_diff))

    return record


class _Pairs:
    """Each registered case (families.py) loaded once per run: its random HF model saved to disk
    and archlab's model loaded from there. The common checks (test_families.py) and the
    family-specific ones (test_family_*.py) share them; none of them may change a model."""

    def __init__(self, tmp_path_factory):
        self._tmp = tmp_path_factory
        self._loaded: dict[str, tuple] = {}

    def _load(self, name: str) -> tuple:
        if name not in self._loaded:
            import archlab
            from families import case
            from hf_reference import make_hf, save_hf

            c = case(name)
            ref = make_hf(c.hf_config(), seed=c.seed)
            directory = save_hf(ref, self._tmp.mktemp(name))
            with warnings.catch_warnings():
                if c.ignore_warnings:
                    warnings.filterwarnings("ignore", message=c.ignore_warnings)
                ours = archlab.load(directory).eval()
            if c.label:
                ours.config = ours.config.replace(family=c.label)
            self._loaded[name] = (ref, ours, directory)
        return self._loaded[name]

    def __call__(self, name: str) -> tuple:
        """(HF reference, archlab model) of the case `name`."""
        return self._load(name)[:2]

    def path(self, name: str) -> Path:
        """The directory HF's save_pretrained wrote the case's checkpoint to; copy it before changing it."""
        return self._load(name)[2]


@pytest.fixture(scope="session")
def hf_pair(tmp_path_factory):
    return _Pairs(tmp_path_factory)


def pytest_terminal_summary(terminalreporter):
    from hf_reference import FAMILY_TABLE

    if FAMILY_TABLE:
        terminalreporter.section("families: parity, greedy generation, cache bytes (float32)")
        terminalreporter.write_line(f"  {'family':<14} {'max |dlogit|':>12} {'greedy = HF':>12} {'cache bytes measured / analytic':>34}")
        for family, row in sorted(FAMILY_TABLE.items()):
            diff = f"{row['logit_diff']:.2e}" if "logit_diff" in row else "-"
            greedy = {True: "yes", False: "NO"}.get(row.get("greedy_equal"), "-")
            cache = f"{row['cache_measured']} / {row['cache_analytic']}" if "cache_measured" in row else "-"
            terminalreporter.write_line(f"  {family:<14} {diff:>12} {greedy:>12} {cache:>34}")
    if not _PARITY:
        return
    terminalreporter.section("HF parity: largest |logit difference| (float32)")
    by_family: dict[str, float] = {}
    for family, name, diff in _PARITY:
        terminalreporter.write_line(f"  {family:<12} {name:<28} {diff:.2e}")
        by_family[family] = max(by_family.get(family, 0.0), diff)
    for family, diff in by_family.items():
        terminalreporter.write_line(f"  {family:<12} {'(family max)':<28} {diff:.2e}")
