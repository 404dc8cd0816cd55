"""`archlab report`: one self-contained HTML file whose table and plots hold the analysis' numbers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

import archlab
from archlab import report
from archlab.analysis import Analysis, analyze
from archlab.cli import main
from archlab.describe import fmt_bytes, fmt_count, fmt_flops

NAMES = ["gpt2", "gemma-3-1b", "deepseek-v3", "llama-4-maverick", "qwen3-next-80b-a3b", "grok-2.5"]

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """Parses the page, checking that every element is closed in order, and collects what the
    tests look at: the comparison table's rows, the <svg> elements, the embedded JSON."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.svgs = 0
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._in_compare = False
        self.json_text = ""
        self._in_json = False
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        if tag == "svg":
            self.svgs += 1
        if tag == "table" and ("class", "compare") in attrs:
            self._in_compare = True
        if self._in_compare and tag == "tr":
            self.rows.append([])
        if self._in_compare and tag in ("td", "th"):
            self._cell = []
        if tag == "script" and ("type", "application/json") in attrs:
            self._in_json = True
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):  # <path ... /> inside SVG
        self.tags.append(tag)
        self.attrs += attrs

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._in_compare:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "table":
            self._in_compare = False
        if tag == "script":
            self._in_json = False

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in_json:
            self.json_text += data


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    html = report.build_html([archlab.config(n) for n in NAMES], context=32768)
    out.write_text(html)
    parser = Page()
    parser.feed(html)
    parser.close()
    return html, parser


@pytest.mark.slow
def test_report_command_writes_one_file(tmp_path, capsys):
    out = tmp_path / "sub" / "report.html"
    assert main(["report", *NAMES[:3], "-o", str(out), "--context", "16K"]) == 0
    stdout, stderr = capsys.readouterr()
    assert stdout.strip() == str(out)
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # nothing left beside it
    assert "plot 3/3" in stderr and "wrote" in stderr  # progress, on stderr
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert main(["report", "gpt2", "-o", str(out), "-q"]) == 0
    assert not capsys.readouterr().err
    assert "gemma-3-1b" not in out.read_text()  # replaced, not appended


def test_report_is_self_contained_html(page):
    html, parsed = page
    assert not parsed.errors and not parsed.stack, (parsed.errors, parsed.stack)
    assert parsed.svgs == 3  # the three figures, inline
    assert html.count("<svg") == 3
    # no CDN, no fonts, no namespace URLs: the only web addresses are links a reader may follow
    links = re.findall(r'<a href="(https://[^"]+)">', html)
    assert links and not re.search(r"https?://", re.sub(r'<a href="https://[^"]+">', "", html))
    assert "<link" not in html and "<img" not in html and "<iframe" not in html
    srcs = [v for k, v in parsed.attrs if k in ("src", "href") and v and not v.startswith("#") and v not in links]
    assert srcs == []  # nothing is fetched: every other reference is to an id within the page
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts == ['<script type="application/json" id="archlab-data">']  # data, no code
    ids = [v for k, v in parsed.attrs if k == "id"]
    assert len(ids) == len(set(ids))  # the figures' ids do not collide
    refs = set(re.findall(r'href="#([^"]+)"', html)) | set(re.findall(r"url\(#([^)]+)\)", html))
    assert refs and refs <= set(ids)  # markers and clip paths still find what they point to


def test_report_table_holds_the_numbers(page):
    _, parsed = page
    header, *rows = parsed.rows[: 1 + 14]
    assert [h.rstrip("*").strip() for h in header[1:]] == NAMES
    assert header[-1].endswith("*")  # grok-2.5 is marked unverified
    by_label = {r[0]: r[1:] for r in rows}
    for i, name in enumerate(NAMES):
        a = analyze(name)
        assert by_label["parameters"][i] == fmt_count(a.total_params)
        assert by_label["KV cache @ 32K"][i].startswith(fmt_bytes(a.kv_cache_bytes(32768)))
        assert by_label["FLOPs/token @ 32K"][i].startswith(fmt_flops(a.flops_per_token(32768)))
    assert by_label["layer pattern"][NAMES.index("qwen3-next-80b-a3b")] == "3 DeltaNet : 1 gated attention"


def test_report_embeds_its_data_and_sources(page):
    _, parsed = page
    data = json.loads(parsed.json_text)
    assert data == json.loads(json.dumps(report.report_data([archlab.config(n) for n in NAMES], context=32768)))
    assert data["conventions"] == Analysis.CONVENTIONS
    from archlab.catalog import published

    text = "".join(parsed.text)
    for name in NAMES:
        assert published(name).source in text
        assert archlab.config(name).source in text


def test_kv_curve_is_the_analysis():
    data = report.report_data([archlab.config(n) for n in NAMES], batch=2, dtype="float32")
    start = data["kv_start_tokens"]
    assert start <= 512  # gemma-3-1b's window fills at 512: its bend must be on the plot
    for m in data["models"]:
        a = analyze(m["name"])
        c = m["kv_curve"]
        assert c["tokens"][0] == start
        assert c["tokens"][-1] == min(a.config.max_seq_len, 1 << 20)
        assert c["tokens"] == sorted(set(c["tokens"]))
        assert c["bytes"] == [a.kv_cache_bytes(t, 2, "float32") for t in c["tokens"]]
    gemma = next(m for m in data["models"] if m["name"] == "gemma-3-1b")
    assert gemma["kv_curve"]["caps"] == [{"tokens": 512, "bytes": analyze("gemma-3-1b").kv_cache_bytes(512, 2, "float32"),
                                          "kind": "sliding"}]
    maverick = next(m for m in data["models"] if m["name"] == "llama-4-maverick")
    assert maverick["kv_curve"]["caps"][0]["kind"] == "chunked"
    assert maverick["kv_curve"]["tokens"][-1] == 1 << 20


def test_figures_plot_the_data():
    data = report.report_data([archlab.config(n) for n in NAMES])
    kv = report.figure_kv(data).axes[0]
    lines = {line.get_gid(): line for line in kv.lines if line.get_gid()}
    for m in data["models"]:
        xy = lines[f"kv-{m['name']}"].get_xydata()
        assert xy[:, 0].tolist() == m["kv_curve"]["tokens"]
        assert xy[:, 1].tolist() == m["kv_curve"]["bytes"]
    assert kv.get_xscale() == "log" and kv.get_yscale() == "log"

    params = report.figure_params(data).axes[0]
    points = {}
    for coll in params.collections:
        if coll.get_gid():
            points[coll.get_gid()] = sorted(map(tuple, coll.get_offsets().tolist()))
    dense = [m for m in data["models"] if not m["moe"]]
    moe = [m for m in data["models"] if m["moe"]]
    assert points["params-dense"] == sorted((m["numbers"]["total_params"], m["numbers"]["active_params"]) for m in dense)
    assert points["params-moe"] == sorted((m["numbers"]["total_params"], m["numbers"]["active_params"]) for m in moe)
    labels = {t.get_text() for t in params.texts}
    assert {"gpt2", "deepseek-v3", "grok-2.5*"} <= labels

    layers = report.figure_layers(data).axes[0]
    cells = {c.get_gid(): c for c in layers.collections if c.get_gid()}
    for m in data["models"]:
        cfg = archlab.config(m["name"])
        coll = cells[f"layers-{m['name']}"]
        assert len(coll.get_paths()) == cfg.n_layers
        colors = [tuple(round(v, 3) for v in fc[:3]) for fc in coll.get_facecolors()]
        from matplotlib.colors import to_rgb

        expect = [tuple(round(v, 3) for v in to_rgb(report.KIND_COLORS["mla" if s.mixer == "mla" else t]))
                  for s, t in zip(cfg.layers, [s.kind for s in cfg.layers])]
        assert colors == expect


def test_layer_cells_mark_moe_and_nope():
    cells = report._layer_cells(archlab.config("llama-4-maverick"))
    assert [c["moe"] for c in cells[:4]] == [False, True, False, True]
    assert [c["nope"] for c in cells[:4]] == [False, False, False, True]
    assert {c["kind"] for c in report._layer_cells(archlab.config("deepseek-v3"))} == {"mla"}


def test_failed_report_leaves_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "report.html"
    out.write_text("the old report")

    def broken(*args, **kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(report, "figure_layers", broken)
    with pytest.raises(RuntimeError):
        report.write_report(out, [archlab.config("gpt2")])
    assert out.read_text() == "the old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_unwritable_output_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc = main(["report", "gpt2", "-q", "-o", str(blocker / "report.html")])
    _, err = capsys.readouterr()
    assert rc == 2 and "cannot write the report" in err and "Traceback" not in err


def _imports_torch(code: str) -> bool:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    return out.strip().endswith("True")


@pytest.mark.slow
def test_report_data_needs_no_torch():
    assert not _imports_torch("import archlab, archlab.report as r; r.report_data([archlab.config('deepseek-v3')])")


@pytest.mark.slow
def test_writing_a_report_needs_no_torch(tmp_path):
    # reports are written through archlab.io.atomic, whose package must not pull torch in
    assert not _imports_torch(
        f"import archlab, archlab.report as r; r.write_report({str(tmp_path / 'r.html')!r}, [archlab.config('gpt2')])")
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
