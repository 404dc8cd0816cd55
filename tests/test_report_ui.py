"""The report for people: words instead of internal names, links to each model's source,
sizes that stay readable on a phone, and one KV plot per family when many models are shown,
each line named at its end."""

from __future__ import annotations

import re

import pytest

import archlab
from archlab import report, report_kv
from archlab.analysis import Analysis
from archlab.catalog import ACTIVE_CONVENTIONS
from archlab.report_text import conventions_html, convention_label, linkify

from test_report import Page

SIX = ["gpt2", "gemma-3-1b", "deepseek-v3", "llama-4-maverick", "qwen3-next-80b-a3b", "grok-2.5"]


@pytest.fixture(scope="module")
def six():
    html = report.build_html([archlab.config(n) for n in SIX])
    parsed = Page()
    parsed.feed(html)
    return html, parsed


def _visible(parsed: Page) -> str:
    """The text a reader sees: the page's text outside the embedded JSON and the stylesheet."""
    return " ".join(t for t in parsed.text if not t.lstrip().startswith(("{", "\nbody", "body")))


def test_no_internal_names_are_shown(six):
    _, parsed = six
    text = _visible(parsed)
    for key in ACTIVE_CONVENTIONS:
        if "_" in key:
            assert key not in text
    # no code names: snake_case identifiers, `backticks`, Class.attribute. text_config is
    # allowed: a source says which section of the linked config.json holds the numbers
    names = set(re.findall(r"\b[a-z]+_[a-z_]+\b", text)) - {"text_config"}
    assert not names
    assert "`" not in text and "Analysis.CONVENTIONS" not in text and "kv_cache_bytes" not in text


def test_every_convention_has_words():
    for key in ACTIVE_CONVENTIONS:
        assert "_" not in convention_label(key) and convention_label(key) != key
    listed = conventions_html(Analysis.CONVENTIONS)
    assert listed.count("<li>") == Analysis.CONVENTIONS.count("\n- ") and "`" not in listed


def test_each_models_source_is_a_link(six):
    html, _ = six
    links = set(re.findall(r'<a href="([^"]+)">', html))
    for name in SIX:
        source = archlab.config(name).source
        url = "https://" + source.split()[0].rstrip(";,")
        assert url in links, (name, url)


def test_linkify():
    assert linkify("Brown et al. 2020 (arXiv:2005.14165), Table 2.1") == (
        'Brown et al. 2020 (<a href="https://arxiv.org/abs/2005.14165">arXiv:2005.14165</a>), Table 2.1')
    assert linkify("huggingface.co/x/y/blob/main/config.json (text_config)") == (
        '<a href="https://huggingface.co/x/y/blob/main/config.json">huggingface.co/x/y/blob/main/config.json</a>'
        " (text_config)")
    assert linkify("a <b> & c") == "a &lt;b&gt; &amp; c"


def test_readable_on_a_phone(six):
    html, _ = six
    css = html[html.index("<style>"):html.index("</style>")]
    sizes = [float(v) for v in re.findall(r"font-size:\s*([\d.]+)px", css)]
    assert sizes and min(sizes) >= 12
    assert "em;" not in re.sub(r"font-size:\s*[\d.]+px", "", " ".join(re.findall(r"font-size:[^;}]+", css)))
    assert re.search(r"\.plot\s*\{\s*overflow-x:\s*auto", css)  # each plot scrolls at its own size
    assert "max-width: 9em" in css  # the table's first column wraps instead of taking half the screen
    # every plot sits in a scroller, at its natural size: the svg keeps its width in pt
    assert html.count('<div class="plot"><svg') == html.count("<svg") == 3
    # matplotlib writes each text's size in the svg's user units, which its width="...pt" makes
    # points; the page never shrinks a plot (no max-width), so 9 pt is at least 12 CSS px
    svg_sizes = [float(v) for v in re.findall(r'<text style="font-size: ([\d.]+)px', html)]
    assert len(svg_sizes) > 30 and min(svg_sizes) >= 9
    assert all(w.endswith("pt") for w in re.findall(r'<svg[^>]*\swidth="([^"]+)"', html))
    assert not re.search(r"svg\s*\{[^}]*max-width", css)


def test_many_models_one_kv_plot_per_family():
    data = report.report_data([archlab.config(n) for n in archlab.presets()])
    groups = report_kv.groups(data["models"])
    families = list(dict.fromkeys(m["family"] for m in data["models"]))
    assert [g for g, _ in groups] == families
    assert sorted(i for _, ix in groups for i in ix) == list(range(len(data["models"])))
    fam, ix = next((g, ix) for g, ix in groups if len(ix) >= 4)
    ax = report_kv.figure(data, ix, fam, (5.6, 3.6)).axes[0]
    assert ax.get_legend() is None
    named = {t.get_text().rstrip("*") for t in ax.texts}
    assert named == {data["models"][i]["name"] for i in ix}
    lines = {line.get_gid(): line for line in ax.lines if line.get_gid()}
    for i in ix:  # each curve is the analysis' data, as in the single plot
        m = data["models"][i]
        assert lines[f"kv-{m['name']}"].get_xydata()[:, 1].tolist() == m["kv_curve"]["bytes"]
    colors = [lines[f"kv-{data['models'][i]['name']}"].get_color() for i in ix]
    assert len(set(colors)) == len(colors)  # within a plot no colour is reused


def test_label_placement_keeps_labels_apart():
    ys = report_kv._place([(0, 5, 1.0), (1, 6, 1.05), (2, 7, 1.1), (20, 25, 1.0)], gap=0.5)
    assert ys[0] == 1.0 and ys[3] == 1.0  # the lowest and the far one stay where their lines end
    assert ys[1] - ys[0] >= 0.499 and ys[2] - ys[1] >= 0.499
