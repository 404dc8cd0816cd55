"""Words for the HTML report: plain-English labels for the catalog's internal values, and
links made from the sources the presets already cite (a config.json URL, an arXiv paper)."""

from __future__ import annotations

import html
import re

__all__ = ["CONVENTION_LABELS", "convention_label", "conventions_html", "linkify"]

# The catalog's names for how a published active-parameter figure counts the embeddings
# (archlab/catalog/__init__.py, ACTIVE_CONVENTIONS), as a reader would say them.
CONVENTION_LABELS = {
    "all": "counting every parameter a token uses",
    "no_embedding": "not counting the input embedding",
    "no_embeddings": "not counting the input embedding or the output head",
}


def convention_label(key: str) -> str:
    """A convention's words; an unknown one (a catalog newer than this table) reads as itself
    with its underscores spaced, never as a raw identifier."""
    return CONVENTION_LABELS.get(key, key.replace("_", " "))


# A web address as the presets write it (with or without https://), up to a space or a
# closing bracket or punctuation that ends the sentence; and an arXiv identifier.
_URL = re.compile(r"(?:https?://)?(?:[a-z0-9-]+\.)+(?:co|com|org|io|ai|net|dev)/[^\s;,()<>\"']*[^\s;,.()<>\"']", re.I)
_ARXIV = re.compile(r"arXiv:(\d{4}\.\d{4,5})(v\d+)?")


def linkify(text: str) -> str:
    """`text` as HTML (escaped), with each web address and arXiv identifier in it a link."""
    out, pos = [], 0
    spans = sorted([(m.start(), m.end(), m.group(0), "url") for m in _URL.finditer(text)]
                   + [(m.start(), m.end(), m.group(0), "arxiv") for m in _ARXIV.finditer(text)])
    for start, end, found, kind in spans:
        if start < pos:
            continue
        href = (f"https://arxiv.org/abs/{found.split(':', 1)[1]}" if kind == "arxiv"
                else found if found.lower().startswith("http") else f"https://{found}")
        out.append(html.escape(text[pos:start]))
        out.append(f'<a href="{html.escape(href, quote=True)}">{html.escape(found)}</a>')
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


# Analysis.CONVENTIONS names the API (for readers of `archlab compare` and of the code); the
# report says the same in words. A test holds the result free of code names, so a change to
# that text that brings a new one in shows up there.
_CONVENTION_WORDS = (
    (r"^Conventions \(also in `Analysis.CONVENTIONS`, printed with every comparison\):\s*", ""),
    (r"^total_params counts", "Total parameters count"),
    (r"^active_params is", "Active parameters are"),
    (r"`active_params_as\(convention\)` leaves them out for sources that do",
     "the published figures above leave them out where their source does"),
    (r"^flops_per_token\(context\) is the forward pass of one token that sees `context` tokens",
     "FLOPs per token at a context of N tokens are the forward pass of one token that sees N tokens"),
    (r"^kv_cache_bytes\(tokens\) is what the caches hold after `tokens` tokens",
     "The KV cache after N tokens is what the caches hold then"),
)


def conventions_html(text: str) -> str:
    """The counting conventions (a "- " list in Analysis.CONVENTIONS) as an HTML list in words."""
    items: list[str] = []
    for line in text.splitlines():
        if line.startswith("- "):
            items.append(line[2:])
        elif items:
            items[-1] += " " + line.strip()
    for i, item in enumerate(items):
        for pattern, words in _CONVENTION_WORDS:
            item = re.sub(pattern, words, item)
        items[i] = item
    return '<ul class="conventions">' + "".join(f"<li>{html.escape(t)}</li>" for t in items) + "</ul>"
