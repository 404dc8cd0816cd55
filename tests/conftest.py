import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

_PARITY: list[tuple[str, str, float]] = []


def require_buildable(name_or_config) -> None:
    """Skip a test for a preset whose parts have no module yet (the config describes every
    architecture of the comparison; modules arrive family by family)."""
    import archlab
    from archlab.model import unsupported_parts

    cfg = archlab.config(name_or_config)
    missing = unsupported_parts(cfg)
    if missing:
        pytest.skip(f"{cfg.name}: no module yet for {', '.join(missing)}")


@pytest.fixture
def parity_report():
    def record(family: str, name: str, max_diff: float) -> None:
        _PARITY.append((family, name, max_diff))

    return record


def pytest_terminal_summary(terminalreporter):
    if not _PARITY:
        return
    terminalreporter.section("HF parity: largest |logit difference| (float32)")
    by_family: dict[str, float] = {}
    for family, name, diff in _PARITY:
        terminalreporter.write_line(f"  {family:<12} {name:<28} {diff:.2e}")
        by_family[family] = max(by_family.get(family, 0.0), diff)
    for family, diff in by_family.items():
        terminalreporter.write_line(f"  {family:<12} {'(family max)':<28} {diff:.2e}")
