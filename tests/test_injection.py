"""Hostile names in every field a user controls, through every report format (issue 9, item 5).

Each report is built by the real audit core (``check`` and ``audit_predictions``) with one field
holding one hostile string; the fields that the core only carries along (context, stages) are
swapped into one audited report with :func:`dataclasses.replace`, which is what the core does with
them. Every format of every report must then be inert for its reader:

* Markdown: no ``<`` but the writer's own few tags; rendered as CommonMark + tables (what GitHub
  does, with raw HTML on) it has no element, attribute or link that came from the name, and every
  table row keeps its cells;
* HTML: parses with no element, attribute, event handler or ``javascript:`` URL from the name;
* SARIF: valid against the official schema, the name read back from the message text, every
  artifact URI a valid URI reference;
* JUnit: well-formed XML 1.0 that ElementTree reads back;
* text: no escape sequence, control or bidirectional character, and no forged line;
* GitHub workflow commands: every line one command (or the closing verdict line), its
  properties free of the ``:`` and ``,`` that end them, nothing unescaped that starts a command.

The name must still be readable where the format shows that field (as its visible escape when it
holds control characters).
"""

from __future__ import annotations

import functools
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import numpy as np
import pytest

from lossaudit.core.audit import audit_predictions, check
from lossaudit.core.compare import ReportedMetric
from lossaudit.core.head import HeadSpec
from lossaudit.core.report import AuditReport, StageResult
from lossaudit.formats import html as html_format
from lossaudit.formats.github import render_github
from lossaudit.formats.html import render_html
from lossaudit.formats.junit import render_junit
from lossaudit.formats.markdown import code, render_markdown, text
from lossaudit.formats.sanitize import printable
from lossaudit.formats.sarif import message_text, render_sarif
from lossaudit.formats.text import render_report
from lossaudit.sinks.local import write_report_folder

markdown_it = pytest.importorskip("markdown_it")

SCHEMA_PATH = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
HOSTILE = {
    "img-onerror": "<img src=x onerror=alert(1)>",
    "script-breakout": '"><script>alert(1)</script>]]></x>',
    "markdown-link": "`x` | **b** [l](javascript:alert(1))",
    "ansi": "\x1b[31mred\x1b[0m",
    "controls": "nul\x00bel\x07cr\rdel\x7fcsi\x9b",
    "newline": "name\n# heading\nverdict: pass",
    "bidi": "evil\u202egpj.keras",
    "not-utf8": "bad\udcff\udcfe.keras",
    "fence": "```\n</details><script>x</script>\n```",
    "entities": "&lt;img src=x onerror=alert(1)&gt; &amp;",
    "math": "$\\bad{$ $$x$$",
    "autolink-comment-quote": "<javascript:alert(1)> <!-- x' onmouseover='alert(1)",
}
FORMATS = ("markdown", "html", "sarif", "junit", "text", "github")

Y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
PREDICTED = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 0, 2])
PROBABILITIES = np.full((12, 3), 0.2)
PROBABILITIES[np.arange(12), PREDICTED] = 0.6
HEAD = {
    "units": 3,
    "activation": "softmax",
    "loss": "sparse_categorical_crossentropy",
    "metrics": ("accuracy",),
}
CONTEXT = {
    "model": "models/iris.keras",
    "data_file": "data/iris.npz",
    "head_layers": "Dense",
    "retrain": {"summary": "argmax accuracy 0.75 to 0.92", "epochs": 10},
}
STAGES = (StageResult("recompute", 0.25, "ok", "scikit-learn"),)


@pytest.fixture(autouse=True)
def _isolated_mlflow() -> None:
    """Overrides conftest's per-test MLflow store: nothing here touches MLflow, and a temporary
    folder for each of the ~900 cases would cost more than the cases."""


@functools.cache
def _base() -> AuditReport:
    """One audited report with reported numbers (its comparisons and LA50x findings)."""
    reported = [
        ReportedMetric.parse("accuracy=0.8333", "keras"),
        ReportedMetric.parse("f1_macro=0.5", "mlflow"),
    ]
    head = HeadSpec.from_values(**HEAD)
    return audit_predictions(head, Y, PROBABILITIES, reported, context=CONTEXT, stages=STAGES)


def _with_context(**entries: Any) -> AuditReport:
    return replace(_base(), context={**CONTEXT, **entries})


def _head_check(**changes: Any) -> AuditReport:
    return check(HeadSpec.from_values(**{**HEAD, **changes}), Y, context=CONTEXT, stages=STAGES)


FIELDS: dict[str, Callable[[str], AuditReport]] = {
    "model_file": lambda h: _with_context(model=f"models/{h}.keras"),
    "data_file": lambda h: _with_context(data_file=f"data/{h}.npz"),
    "labels_file": lambda h: _with_context(model=None, data_file=None, labels_file=h),
    "layer_names": lambda h: _with_context(head_layers=f"Dense -> {h}", lambda_layers=[h]),
    "audit_name": lambda h: _with_context(name=h, audit=h),
    "pipeline_name": lambda h: _with_context(pipeline=h),
    "context_metric": lambda h: _with_context(evaluate={h: 0.5, "loss": 0.3}),
    "retrain": lambda h: _with_context(retrain={"summary": f"{h} improved", "epochs": h}),
    "notes": lambda h: _with_context(notes=[h]),
    # A message quoting a name as it is (the core quotes most with repr(); a plug-in may not).
    "finding_message": lambda h: replace(
        _base(), findings=tuple(replace(f, message=f"{f.message}: {h}") for f in _base().findings)
    ),
    "stage": lambda h: replace(_base(), stages=(StageResult(h, 0.1, "ok", h),)),
    "reported_metric": lambda h: audit_predictions(
        HeadSpec.from_values(**HEAD),
        Y,
        PROBABILITIES,
        [ReportedMetric.from_value(h, 0.5, "user"), ReportedMetric.from_value("accuracy", 0.5, h)],
        context=CONTEXT,
    ),
    "head_metric": lambda h: _head_check(metrics=("accuracy", h)),
    "loss": lambda h: _head_check(loss=h),
    "activation": lambda h: _head_check(activation_chain=("linear", h)),
    "head_source": lambda h: _head_check(source=f"static:{h}"),
}


@functools.cache
def hostile_report(field: str, which: str) -> AuditReport:
    return FIELDS[field](HOSTILE[which])


def needles(report: AuditReport, field: str, hostile: str) -> list[str]:
    """What of the field the report holds (after the core normalised it): the texts to look for."""
    head = report.head
    assert head is not None
    if field == "head_metric":
        return [head.metrics[-1]]
    if field == "loss":
        assert head.loss is not None
        return [head.loss.name]
    if field == "activation":
        return [head.activation_chain[-1]]
    return [hostile]


# Where a field must be readable (SARIF and JUnit: wherever a message or property quotes it).
SHOWN_IN = {
    "markdown": set(FIELDS) - {"notes"},
    "html": set(FIELDS) - {"notes"},
    "text": set(FIELDS) - {"context_metric", "head_source"},
}


# --- parsing helpers ------------------------------------------------------------------------------


class Page(HTMLParser):
    """Every start tag with its attributes, and the text content, of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []
        self.comments: list[str] = []
        self.emphasis = 0
        self.emphasised: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        if tag == "strong":
            self.emphasis += 1
            self.emphasised.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "strong":
            self.emphasis -= 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.emphasis:
            self.emphasised[-1] += data

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def handle_decl(self, decl: str) -> None:
        self.comments.append(decl)

    def unknown_decl(self, data: str) -> None:
        self.comments.append(data)

    def handle_pi(self, data: str) -> None:
        self.comments.append(data)


def parse_html(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    return parser


def readable(needle: str) -> list[str]:
    """The pieces of a name every format must show: its printable form, split where a multi-line
    text may break it into lines or cells."""
    return [piece.strip() for piece in printable(needle, newlines=True).split("\n") if piece.strip()]


def assert_shows(haystack: str, needle: str, where: str) -> None:
    for piece in readable(needle):
        assert piece in haystack, f"{where}: {piece!r} not shown"


# --- Markdown -----------------------------------------------------------------------------------

MD_RAW_TAGS = re.compile(r"<(?!/?(?:code|br|details|summary|sub)>)")
"""A ``<`` that does not open or close one of the writer's own tags."""
MD_BLOCKS = {
    "heading", "paragraph", "inline", "table", "thead", "tbody", "tr", "th", "td", "bullet_list",
    "list_item", "blockquote", "fence", "html_block", "hr",
}  # fmt: skip
MD_INLINE = {"text", "code_inline", "html_inline", "strong", "softbreak"}
MD_HTML_INLINE = {"<code>", "</code>", "<br>", "<sub>", "</sub>"}
MD_HTML_BLOCK = re.compile(r"(?:(?:<details><summary>(?:<code>[^<]*</code> )?[^<]*</summary>|</details>)\n)+")
"""The only HTML blocks: ``<details><summary>`` of the fixes and per-class table, ``</details>``."""
GFM = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def _table_separators(line: str) -> int:
    """Cell separators of a GFM table row as cmark-gfm splits it: a backslash escapes the next
    character (a pipe or another backslash), inside code spans too."""
    return re.sub(r"\\.", "", line).count("|")


def check_markdown(md: str) -> str:
    """Assert a Markdown report is inert as GitHub reads it (CommonMark, tables, strikethrough,
    raw HTML on); return the text a reader sees."""
    md.encode("utf-8")  # strict: report.md can be written
    stray = [md[m.start() : m.start() + 30] for m in MD_RAW_TAGS.finditer(md)]
    assert stray == [], f"raw '<' in report.md: {stray}"
    header_cells = None
    for line in md.splitlines():
        if not line.startswith("| "):
            header_cells = None
            continue
        count = _table_separators(line)
        header_cells = count if header_cells is None else header_cells
        assert count == header_cells, f"table row split by report text: {line!r}"
    shown: list[str] = []
    headings = []
    for token in GFM.parse(md):
        kind = token.type.removesuffix("_open").removesuffix("_close")
        assert kind in MD_BLOCKS, f"{token.type} from report text"
        for name, value in (token.attrs or {}).items():
            assert (token.tag, name, value) in {
                ("th", "style", "text-align:right"),
                ("td", "style", "text-align:right"),
            }
        if token.type == "heading_open":
            headings.append(token.tag)
        if token.type == "html_block":
            assert MD_HTML_BLOCK.fullmatch(token.content), token.content
        if token.type == "fence":
            assert token.info == "python"
        strong: list[str] = []
        for child in token.children or []:
            inline = child.type.removesuffix("_open").removesuffix("_close")
            assert inline in MD_INLINE, f"{child.type} from report text: {child.content!r}"
            if child.type == "html_inline":
                assert child.content in MD_HTML_INLINE, child.content
            if child.type == "strong_open":
                strong.append("")
            if child.type in ("text", "code_inline"):
                shown.append(child.content)
                if strong:
                    strong[-1] += child.content
        assert "b" not in strong  # "**b**" in a name stays two asterisks, a b, two more
    assert headings.count("h2") == 1 and set(headings) <= {"h2", "h3"}
    return "".join(shown)


# --- HTML -----------------------------------------------------------------------------------------

HTML_ELEMENTS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "footer", "section", "div",
    "h1", "h2", "h3", "p", "span", "code", "pre", "details", "summary", "table", "thead", "tbody",
    "tr", "th", "td", "dl", "dt", "dd", "svg", "rect", "text", "line",
}  # fmt: skip
HTML_ATTRIBUTES = {
    "lang", "charset", "name", "content", "class", "id", "style", "title", "data-count", "role",
    "width", "height", "viewbox", "aria-label", "x", "y", "x1", "y1", "x2", "y2", "fill", "stroke",
    "rx", "font-weight", "text-anchor",
}  # fmt: skip
CSS_CLASSES = {*re.findall(r"\.([a-z_][a-z_-]*)", html_format._CSS), "pass", "bar", "unknown"}


def check_html(page_text: str) -> str:
    page_text.encode("utf-8")  # strict: report.html can be written
    assert "<script" not in page_text.lower()
    page = parse_html(page_text)
    for tag, attrs in page.tags:
        if tag == "img":  # the writer's own confusion-matrix PNG, inline
            assert [n for n, _ in attrs] == ["id", "alt", "src"] and attrs[0] == ("id", "confusion-png")
            assert (attrs[2][1] or "").startswith("data:image/png;base64,")
            continue
        assert tag in HTML_ELEMENTS, f"<{tag}> from report text"
        for name, value in attrs:
            assert name in HTML_ATTRIBUTES, f"{name}= on <{tag}> from report text"
            assert "javascript:" not in (value or "").lower(), (tag, name, value)
            if name == "class":
                assert set((value or "").split()) <= CSS_CLASSES, value
    assert page.comments == ["DOCTYPE html"]
    return "".join(page.text)


# --- SARIF ------------------------------------------------------------------------------------------


@functools.cache
def sarif_validator(definition: str | None = None) -> Any:
    """The official schema's validator, or one of its definitions' (``result``)."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    if definition is not None:
        schema = {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


URI_REFERENCE = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
"""RFC 3986 URI-reference characters: unreserved, reserved, percent-encoded octets."""


def unescape_sarif(message: str) -> str:
    return re.sub(r"\\([\\\[\]])", r"\1", message)


def check_sarif(log: dict[str, Any], *, whole: bool = True) -> str:
    """Assert a SARIF log is valid and inert; ``whole=False`` validates only its results against
    the schema (the rest does not depend on report text), which is 30 times faster."""
    encoded = json.dumps(log, ensure_ascii=False).encode("utf-8")  # valid Unicode throughout
    log = json.loads(encoded)  # what findings.sarif holds, read back
    results = log["runs"][0]["results"]
    if whole:
        assert [e.message for e in sarif_validator().iter_errors(log)] == []
    else:
        assert [e.message for r in results for e in sarif_validator("result").iter_errors(r)] == []
    shown = []
    for result in results:
        assert set(result["message"]) == {"text"}  # never "markdown", which GitHub renders
        message = result["message"]["text"]
        # no embedded link (SARIF 3.11.6) but to a related location: "[text](1)"
        assert not re.search(r"(?<!\\)\]\((?!\d+\))", message), message
        shown.append(unescape_sarif(message))
        location = result["locations"][0]["physicalLocation"]["artifactLocation"]
        uri = location["uri"]
        assert URI_REFERENCE.fullmatch(uri), uri
        assert not uri.lower().startswith(("javascript:", "data:", "vbscript:")), uri
        shown.append(unquote(uri))
    return "\n".join(shown)


# --- JUnit and text ---------------------------------------------------------------------------------

NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
JUNIT_ELEMENTS = {
    "testsuites",
    "testsuite",
    "properties",
    "property",
    "testcase",
    "failure",
    "skipped",
    "system-out",
}


def check_junit(xml_text: str) -> str:
    assert NOT_XML.search(xml_text) is None
    root = ET.fromstring(xml_text.encode("utf-8"))
    shown = []
    for element in root.iter():
        assert element.tag in JUNIT_ELEMENTS
        if element.tag == "testcase":
            assert "\n" not in element.get("name", "")
        shown += [*element.attrib.values(), element.text or ""]
    return "\n".join(shown)


TERMINAL_UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def check_text(output: str) -> str:
    assert TERMINAL_UNSAFE.search(output) is None
    output.encode("utf-8")
    verdicts = [line for line in output.splitlines() if line.startswith("verdict:")]
    assert verdicts == [output.splitlines()[-1]]  # no name forges a verdict line
    return output


GITHUB_COMMAND = re.compile(r"::(error|warning|notice)(?: ([^:\n]*))?::([^\n]*)")
GITHUB_ESCAPES = (("%0A", "\n"), ("%0D", "\r"), ("%3A", ":"), ("%2C", ","), ("%25", "%"))


def _github_unescape(text: str) -> str:
    for escaped, char in GITHUB_ESCAPES:
        text = text.replace(escaped, char)
    return text


def check_github(output: str) -> str:
    """Every line a workflow command but the last (the verdict); what the runner shows of them."""
    assert TERMINAL_UNSAFE.search(output) is None
    lines = output.split("\n")
    assert lines[-1].startswith("lossaudit: verdict ")
    shown = []
    for line in lines[:-1]:
        match = GITHUB_COMMAND.fullmatch(line)
        assert match is not None, line
        for prop in filter(None, (match.group(2) or "").split(",")):
            key, equals, value = prop.partition("=")
            assert equals and re.fullmatch(r"[A-Za-z]+", key), prop
            shown.append(_github_unescape(value))
        shown.append(_github_unescape(match.group(3)))
    return "\n".join(shown)


def render(report: AuditReport, fmt: str, *, whole: bool = True) -> str:
    """Render one format and assert it is inert; return what a reader sees of it."""
    if fmt == "markdown":
        return check_markdown(render_markdown(report))
    if fmt == "html":
        return check_html(render_html(report, embed_png=False))
    if fmt == "sarif":
        return check_sarif(render_sarif(report, repo_root="/repo"), whole=whole)
    if fmt == "junit":
        return check_junit(render_junit(report))
    if fmt == "github":
        return check_github(render_github(report))
    return check_text(render_report(report))


def must_show(report: AuditReport, field: str, fmt: str, needle: str) -> bool:
    if fmt in SHOWN_IN:
        return field in SHOWN_IN[fmt]
    messages = [f.message for f in report.findings]
    if fmt == "junit":
        scalars = [str(v) for v in report.context.values() if isinstance(v, str | int | float)]
        compared = [f"{c.metric} {c.source} {c.explanation}" for c in report.comparisons]
        return any(needle in t for t in (*messages, *scalars, *compared))
    return any(needle in m for m in messages)


# --- the matrix -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("field", list(FIELDS))
@pytest.mark.parametrize("which", list(HOSTILE))
def test_hostile_name_is_inert_and_readable(which: str, field: str, fmt: str) -> None:
    report = hostile_report(field, which)
    seen = render(report, fmt, whole=field == "model_file")  # all of a SARIF log once per name
    for needle in needles(report, field, HOSTILE[which]):
        if must_show(report, field, fmt, needle):
            assert_shows(seen, needle, f"{fmt}/{field}")


def test_the_matrix_reaches_sarif_and_junit_through_finding_messages() -> None:
    """The matrix is not vacuous: the core quotes unknown head names in finding messages (LA108),
    which SARIF and JUnit carry, and a hostile reported metric becomes a comparison."""
    for field in ("head_metric", "loss", "activation"):
        quoted = [
            which
            for which, hostile in HOSTILE.items()
            for report in [hostile_report(field, which)]
            if any(needles(report, field, hostile)[0] in f.message for f in report.findings)
        ]
        assert "markdown-link" in quoted and len(quoted) >= 2, (field, quoted)
    h = HOSTILE["img-onerror"]
    compared = hostile_report("reported_metric", "img-onerror").comparisons
    assert [(c.metric, c.source) for c in compared] == [(h, "user"), ("accuracy", h)]


# --- the bug of the issue, and each writer's own escaping ---------------------------------------------


def test_model_file_name_is_no_live_html_in_a_github_job_summary() -> None:
    report = _with_context(model="<img src=x onerror=alert(1)>.keras")
    md = render_markdown(report)
    assert "<img" not in md
    assert md.startswith("## lossaudit compare: <code>&lt;img src=x onerror=alert(1)&gt;.keras</code>\n")
    assert "- **model:** <code>&lt;img src=x onerror=alert(1)&gt;.keras</code>" in md
    rendered = GFM.render(md)
    assert "<img" not in rendered and "&lt;img src=x onerror=alert(1)&gt;.keras" in rendered


def test_markdown_code_spans_outfence_backticks_and_fall_back_to_escaped_code() -> None:
    assert code("models/iris.keras") == "`models/iris.keras`"
    assert code("a`b") == "``a`b``"
    assert code("``a``` b`") == "```` ``a``` b` ````"  # padded: it starts and ends with a backtick
    assert code(" lead") == "`  lead `"
    assert code("a|b") == "<code>a\\|b</code>"
    assert code("<x>") == "<code>&lt;x&gt;</code>"
    assert code("a\nb\x1b") == "`a\\nb\\x1b`"
    assert code("") == "<code></code>"
    for name in ("a`b", "``a``` b`", " lead", "`x` y"):
        assert GFM.renderInline(code(name)) == f"<code>{name.replace('<', '&lt;')}</code>"


def test_markdown_text_escapes_markup_but_keeps_words() -> None:
    assert text("y_true & **b** [l](javascript:x) `c` | #1 ~s~ $m$") == (
        "y_true &amp; \\*\\*b\\*\\* \\[l\\](javascript:x) \\`c\\` \\| \\#1 \\~s\\~ \\$m\\$"
    )
    assert text("_x_ a__b") == "\\_x\\_ a\\_\\_b"
    assert text("- item\n0.75") == "\\- item<br>0.75"  # <br> continues the line: no list there
    assert text("1. one") == "1\\. one" and text("0.75 + 1") == "0.75 + 1"
    assert text("a\\") == "a\\\\"
    assert GFM.renderInline(text("**b** <i>x</i> [l](u)")) == "**b** &lt;i&gt;x&lt;/i&gt; [l](u)"


def test_printable_names_control_bidi_and_undecodable_characters() -> None:
    assert printable("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert printable("a\nb\tc\rd") == "a\\nb\\tc\\rd"
    assert printable("a\nb", newlines=True) == "a\nb"
    assert printable("evil\u202egpj\u2066") == "evil\\u202egpj\\u2066"
    assert printable("bad\udcff") == "bad\\udcff"
    assert printable("\x85\x9b\x7f") == "\\x85\\x9b\\x7f"
    assert printable("modèle 模型 ✅") == "modèle 模型 ✅"
    assert printable(None) == ""


def test_sarif_message_text_breaks_embedded_links_only_where_there_is_one() -> None:
    assert message_text("counts [4, 4, 4]") == "counts [4, 4, 4]"
    assert message_text("reported [l](javascript:alert(1)) a\\b") == (
        "reported \\[l\\](javascript:alert(1)) a\\\\b"
    )
    assert message_text("a\x1b[0m\nb") == "a\\x1b[0m\nb"


@pytest.mark.parametrize(
    ("artifact_uri", "expected"),
    [
        ("javascript:alert(1)", {"uri": "javascript/alert_1_", "uriBaseId": "%SRCROOT%"}),
        ("models:/churn/3", {"uri": "models:/churn/3"}),
        ("https://h/a b", {"uri": "https://h/a%20b"}),
        ("pipelines/<a>.yaml", {"uri": "pipelines/%3Ca%3E.yaml", "uriBaseId": "%SRCROOT%"}),
        ("bad\udcff.yaml", {"uri": "bad%FF.yaml", "uriBaseId": "%SRCROOT%"}),
    ],
)
def test_sarif_artifact_uris_are_valid_and_never_scripts(
    artifact_uri: str, expected: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    report = _with_context(model=None, data_file=None)
    location = render_sarif(report, artifact_uri, repo_root=tmp_path)["runs"][0]["results"][0]["locations"][0]
    assert location["physicalLocation"]["artifactLocation"] == expected


def test_junit_attribute_line_breaks_survive_as_character_references() -> None:
    report = hostile_report("reported_metric", "newline")
    xml_text = render_junit(report)
    assert "&#10;" in xml_text
    suite = ET.fromstring(xml_text)
    names = [case.get("name", "") for case in suite.iter("testcase")]
    assert "reported name\\n# heading\\nverdict: pass (user)" in names


def test_text_output_cannot_forge_lines_or_recolour_the_terminal() -> None:
    out = render_report(_with_context(model="m.keras\nverdict: pass\x1b[2K\r", notes=["\x1b]0;title\x07"]))
    assert "model: m.keras\\nverdict: pass\\x1b[2K\\r" in out
    assert "note: \\x1b]0;title\\x07" in out
    assert out.splitlines()[-1].startswith("verdict: ")


def test_report_folder_is_written_for_hostile_names(tmp_path: Path) -> None:
    """Everything hostile at once, PNG charts included: ``$...$`` used to stop matplotlib (mathtext)
    and a name that is not UTF-8 the encoding, so no folder was written."""
    reported = [
        ReportedMetric.from_value("$\\bad{$", 0.5, "\udcff"),
        ReportedMetric.from_value("accuracy", 0.8, "$\\bad{$"),  # a bar of comparison.png
    ]
    context = {**CONTEXT, "model": "bad\udcff<img src=x>.keras", "notes": ["\x1b[31m"]}
    report = audit_predictions(HeadSpec.from_values(**HEAD), Y, PROBABILITIES, reported, context=context)
    written = write_report_folder(report, tmp_path / "out")
    assert {"report.md", "report.html", "findings.sarif", "junit.xml", "comparison.png"} <= set(written)
    for name in ("report.md", "report.html", "findings.sarif", "junit.xml", "report.json"):
        (tmp_path / "out" / name).read_bytes().decode("utf-8")  # strict: valid UTF-8
    check_markdown((tmp_path / "out" / "report.md").read_text("utf-8"))
    check_html((tmp_path / "out" / "report.html").read_text("utf-8"))
    check_sarif(json.loads((tmp_path / "out" / "findings.sarif").read_text("utf-8")))
    check_junit((tmp_path / "out" / "junit.xml").read_text("utf-8"))
