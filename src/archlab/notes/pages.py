"""README.md (the models, the timeline, GPT-2 vs today) and <family>/README.md of the notes tree.
Every number here comes from analyze()/describe() of the preset's config."""

from __future__ import annotations

from ..describe import ROWS, fmt_bytes, fmt_count, fmt_flops, fmt_tokens
from ..catalog import parse_figure
from ..catalog.released import released
from .concepts import CONCEPTS
from .markdown import HEADER, Links, table
from .models import CONTEXTS, DESCRIBE_CONTEXT, LINEAGE, Model, families, family_dir, family_page

# The "GPT-2 vs today" table: GPT-2 beside the designs that define 2024-2025 (a dense GQA model,
# MLA + MoE, local/global layers, a hybrid linear-attention MoE).
TODAY = ("gpt2", "llama-3-8b", "deepseek-v3", "gemma-3-27b", "qwen3-next-80b-a3b")
_FIRST_YEAR, _LAST_YEAR = 2018, 2025


def _ctx(tokens: int) -> str:
    return fmt_tokens(tokens)


def _rows(models: list[Model], keys: list[tuple[str, str]]) -> list[list[str]]:
    return [[label.format(ctx=_ctx(DESCRIBE_CONTEXT))] + [m.description.parts[k].text for m in models] for k, label in keys]


def readme(models: list[Model], links: Links) -> str:
    page = "README.md"
    by_name = {m.name: m for m in models}
    fams = families(models)
    lines = [HEADER, "", "# archlab notes", "",
             f"{len(models)} presets in {len(fams)} families, each built from the same parts. Every number on these "
             "pages is computed from the preset's config by `archlab.analyze` (parameters, KV cache, FLOPs); "
             "the prose explains each concept once, under Generic/.", "", "## The models", ""]
    rows = [[links.inside(page, f"{family_page(m.family)}#{m.name}", m.name), m.released, m.family,
             m.description.text("params"), fmt_count(m.analysis.active_params), m.description.parts["layers"].short,
             m.description.text("context"), m.description.parts["attention"].short, m.description.parts["ffn"].short]
            for m in sorted(models, key=lambda m: m.released)]  # stable: catalog order within a month
    lines += table(["preset", "released", "family", "parameters", "active", "layers x width", "context",
                    "attention", "feed-forward"], rows, "lllrrlrll")
    lines += ["", f"## Timeline {_FIRST_YEAR} -> {_LAST_YEAR}", "",
              "Release month, then total parameters (active per token for mixtures of experts). "
              "Sources of the dates: src/archlab/catalog/released.py.", ""]
    years: dict[int, list[Model]] = {}
    for m in models:
        years.setdefault(int(m.released[:4]), []).append(m)
    trows = []
    for year in range(_FIRST_YEAR, _LAST_YEAR + 1):
        ms = sorted(years.get(year, []), key=lambda m: m.released)
        largest = max(ms, key=lambda m: m.analysis.total_params, default=None)
        entries = ", ".join(
            f"{m.released[5:]} {m.name} {fmt_count(m.analysis.total_params)}"
            + (f" ({fmt_count(m.analysis.active_params)} active)" if m.analysis.active_params != m.analysis.total_params else "")
            for m in ms)
        trows.append([str(year), largest.name + " " + fmt_count(largest.analysis.total_params) if largest else "-",
                      entries or "-"])
    lines += table(["year", "largest", "released (month, preset, size)"], trows)
    today = [by_name[n] for n in TODAY]
    lines += ["", "## GPT-2 vs today", "",
              f"Each part as describe() words it; KV cache and FLOPs at {_ctx(DESCRIBE_CONTEXT)} tokens, bfloat16.", ""]
    lines += table(["", *[links.inside(page, f"{family_page(m.family)}#{m.name}", m.name) for m in today]],
                   _rows(today, [r for r in ROWS if r[0] != "published"]))
    lines += ["", "## Concepts", ""]
    groups: dict[str, list] = {}
    for c in CONCEPTS:
        groups.setdefault(c.group, []).append(c)
    for g, cs in groups.items():
        lines.append(f"- {g}: " + ", ".join(links.inside(page, f"Generic/{c.slug}.md", c.title) for c in cs))
    lines += ["", "## Families", ""]
    for fam, ms in fams.items():
        lines.append(f"- {links.inside(page, family_page(fam), fam)}: " + ", ".join(m.name for m in ms))
    return "\n".join(lines) + "\n"


def _agrees(ours: int, figure: str) -> str:
    value, tol = parse_figure(figure)
    return "yes" if abs(ours - value) <= tol * value else f"no ({(ours - value) / value:+.1%})"


def family_readme(family: str, ms: list[Model], by_name: dict[str, Model], links: Links) -> str:
    page = family_page(family)
    lines = [HEADER, "", f"# {family}", ""]
    lines += [f"- **{m.name}**, released {m.released} ({released(m.name).source}); config: {m.config.source}; "
              f"preset: {links.source(page, m.module)}" for m in ms]
    for m in ms:
        # an explicit anchor: GitHub drops the dots of "llama-3.1-405b" from the heading's own
        lines += ["", f'<a id="{m.name}"></a>', "", f"## {m.name}", "", f"![{m.name} block diagram]({m.name}.svg)"]
    lines += ["", "## Parts", ""]
    keys = [r for r in ROWS if r[0] in ("layers", "context", "norm", "position", "attention", "pattern", "ffn", "kv")]
    lines += table(["", *[m.name for m in ms]], _rows(ms, keys))
    pred = LINEAGE.get(family)
    if pred is not None:
        from . import diff_changes

        p, first = by_name[pred], ms[0]
        lines += ["", f"## What changed from {pred} to {first.name}", "",
                  f"{pred} is in {links.inside(page, family_page(p.family), p.family)}.", ""]
        found = diff_changes(p.config, first.config, links.results)
        verdicts = any(c.verdict for c in found)  # the lab's column only where it has something to say
        rows = [[c.part, c.before, c.after, c.effect or "-"] + ([c.verdict or "-"] if verdicts else []) for c in found]
        header = ["part", pred, first.name, "effect"] + (["lab verdict"] if verdicts else [])
        lines += table(header, rows) if rows else ["Nothing: the same config."]
    steps = sorted(ms, key=lambda m: m.released)  # stable: catalog order within a month
    if len(steps) > 1:
        from . import diff_changes

        lines += ["", "## Within the family", "", "Each preset against the one released before it.", ""]
        rows = [[f"{a.name} -> {b.name}", c.part, c.before, c.after, c.effect or "-"]
                for a, b in zip(steps, steps[1:]) for c in diff_changes(a.config, b.config)]
        lines += table(["step", "part", "before", "after", "effect"], rows)
    lines += ["", "## Sizes: computed and published", ""]
    rows = []
    for m in ms:
        pub, a = m.published, m.analysis
        if pub is None:
            rows.append([m.name, fmt_count(a.total_params), "-", "-", fmt_count(a.active_params), "-", "-", "none published"])
            continue
        act = a.active_params_as(pub.active_convention)
        rows.append([m.name, fmt_count(a.total_params), pub.total, _agrees(a.total_params, pub.total),
                     fmt_count(act) + ("" if pub.active_convention == "all" else f" ({pub.active_convention.replace('_', ' ')})"),
                     pub.active or "-", _agrees(act, pub.active) if pub.active else "-",
                     pub.source + (f"; {pub.note}" if pub.note else "")])
    lines += table(["preset", "total (computed)", "total (published)", "agrees", "active (computed)",
                    "active (published)", "agrees", "source"], rows, "lrrlrrll")
    lines += ["", "## KV cache and FLOPs per token by context", "",
              "KV cache of one sequence in bfloat16; forward FLOPs of one token that sees the whole context. "
              "* marks a context past the preset's maximum.", ""]
    rows = []
    for m in ms:
        mark = lambda t: "*" if t > m.config.max_seq_len else ""  # noqa: E731
        rows.append([m.name] + [fmt_bytes(m.analysis.kv_cache_bytes(t)) + mark(t) for t in CONTEXTS]
                    + [fmt_flops(m.analysis.flops_per_token(t)) + mark(t) for t in CONTEXTS])
    lines += table(["preset", *[f"KV @ {_ctx(t)}" for t in CONTEXTS], *[f"FLOPs @ {_ctx(t)}" for t in CONTEXTS]],
                   rows, "l" + "r" * 2 * len(CONTEXTS))
    lines += ["", "## The parts and the code that implements them", ""]
    for c in CONCEPTS:
        if any(c.uses(m.config) for m in ms):
            lines.append(f"- {links.inside(page, f'Generic/{c.slug}.md', c.title)}: "
                         + ", ".join(links.source(page, s) for s in c.sources))
    return "\n".join(lines) + "\n"


def family_pages(models: list[Model], links: Links) -> dict[str, str]:
    by_name = {m.name: m for m in models}
    return {family_page(f): family_readme(f, ms, by_name, links) for f, ms in families(models).items()}


def diagrams(models: list[Model]) -> dict[str, str]:
    from . import diagram_svg

    return {f"{family_dir(m.family)}/{m.name}.svg": diagram_svg(m.config) for m in models}
