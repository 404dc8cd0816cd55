import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

_PARITY: list[tuple[str, str, float]] = []


@pytest.fixture
def parity_report():
    def record(family: str, name: str, max_diff: float) -> None:
        _PARITY.append((family, name, max_diff))

    return record


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
