"""Generic/<concept>.md: the concept's prose (written once, in concepts/<slug>.md), then what is
generated: the archlab files that implement it, every preset that uses it with its numbers,
and the lab's measured verdicts when a results folder is given."""

from __future__ import annotations

from typing import Any

from .concepts import CONCEPTS, Concept
from .markdown import HEADER, Links, table
from .models import Model, family_page


def concept_page(concept: Concept, models: list[Model], links: Links, results: dict[str, dict[str, Any]]) -> str:
    page = f"Generic/{concept.slug}.md"
    lines = [HEADER, "", concept.prose(), "", "## Where archlab implements it", ""]
    lines += [f"- {links.source(page, s)}" for s in concept.sources]
    users = [m for m in models if concept.uses(m.config)]
    cols = concept.column if isinstance(concept.column, tuple) else (concept.column,)
    lines += ["", f"## Presets that use it ({len(users)} of {len(models)})", ""]
    if users:
        rows = []
        for m in users:
            cells = concept.detail(m.config, m.description, m.analysis)
            cells = cells if isinstance(cells, tuple) else (cells,)
            rows.append([links.inside(page, f"{family_page(m.family)}#{m.name}", m.name), m.released, *cells])
        lines += table(["preset", "released", *cols], rows)
    else:
        lines.append("None of the presets.")
    if concept.claims:
        lines += ["", "## Measured by the lab", ""]
        if not results:
            lines.append("Claims that measure it (run `archlab lab CLAIM`, then `archlab notes --lab DIR`): "
                         + ", ".join(f"`{c}`" for c in concept.claims) + ".")
        else:
            for c in concept.claims:
                r = results.get(c)
                if r is None:
                    lines.append(f"- `{c}`: not in the results folder.")
                    continue
                link = links.verdict(page, c)
                name = f"[{c}]({link})" if link else f"`{c}`"
                lines.append(f"- {name}: **{r['verdict']}**. {r['statement']}. Found: {r['summary']}.")
    return "\n".join(lines) + "\n"


def concept_pages(models: list[Model], links: Links, results: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {f"Generic/{c.slug}.md": concept_page(c, models, links, results) for c in CONCEPTS}
