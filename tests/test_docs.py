"""The documentation stays inside the repository and in step with the configuration.

- every relative link in README.md and docs/**/*.md resolves to a file of the repository
  (and its #anchor to a heading there); nothing links outside it: no absolute or
  ``file:`` paths, no ``../`` out of the repository, no path of the machine it was
  written on;
- every pipeline has its page, docs/pipelines/<name>.md, and every key of
  conf/base/parameters_<pipeline>.yml (the top-level key, its sub-keys and theirs) is
  named on that page, so a new or renamed parameter cannot go undocumented.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted([REPO / "README.md", *DOCS.rglob("*.md")])
PIPELINES = sorted(
    path.parent.name for path in (REPO / "src/fog_pipeline/pipelines").glob("*/pipeline.py")
)
# parameters_<file>.yml -> the pipeline pages that document it (one file, two pipelines).
PARAMETER_PAGES = {"lerobot": ("import_lerobot", "export_lerobot")}
README_MAX_LINES = 200

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
WEB = ("http://", "https://", "mailto:")
MACHINE_PATHS = re.compile(r"\.\./shared|/work/|/home/|/tmp/|[A-Z]:\\\\")


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code (links there are not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _links(page: Path) -> list[str]:
    return LINK.findall(_prose(page.read_text()))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*]|<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    slugs: dict[str, int] = {}
    anchors = set()
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        slug = _slug(match.group(1))
        count = slugs.get(slug, 0)
        anchors.add(slug if count == 0 else f"{slug}-{count}")
        slugs[slug] = count + 1
    return anchors


def _code_spans(text: str) -> str:
    """Everything in inline code or code blocks, where a parameter key is named."""
    blocks = re.findall(r"^```.*?^```", text, flags=re.S | re.M)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M))
    return "\n".join(blocks + spans)


def test_there_are_pages():
    assert (REPO / "README.md") in PAGES
    for name in ("design", "episodes", "results", "benchmarks", "diagnostics", "testing"):
        assert DOCS / f"{name}.md" in PAGES, f"docs/{name}.md is missing"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve_inside_the_repository(page: Path):
    problems = []
    for target in _links(page):
        if target.startswith(WEB):
            continue
        if target.startswith(("/", "file:", "~")) or re.match(r"^[a-zA-Z]:[\\/]", target):
            problems.append(f"{target}: absolute path (link relative to the page instead)")
            continue
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            problems.append(f"{target}: unknown scheme")
            continue
        path_part, _, anchor = unquote(target).partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.is_relative_to(REPO):
            problems.append(f"{target}: points outside the repository")
        elif not resolved.is_file():
            problems.append(f"{target}: no such file ({resolved.relative_to(REPO)})")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            problems.append(f"{target}: no heading #{anchor} in {resolved.relative_to(REPO)}")
    assert not problems, f"{page.relative_to(REPO)}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_path_outside_the_repository(page: Path):
    found = sorted(set(MACHINE_PATHS.findall(page.read_text())))
    assert not found, f"{page.relative_to(REPO)} names paths outside the repository: {found}"


def test_the_link_checker_sees_bad_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "[a](../../outside.md) [b](/etc/passwd) [c](https://example.org) `[d](no.md)`\n"
        "```\n[e](not-a-link.md)\n```\n## A heading, `with` code\n"
    )
    assert _links(page) == ["../../outside.md", "/etc/passwd", "https://example.org"]
    assert _anchors(page) == {"a-heading-with-code"}
    # The sibling folder's name is joined here: written whole, the check's own example
    # would be a pointer out of the repository.
    for text in ("see " + "/".join(("..", "shared", "NOTES.md")), "/work/x", "C:\\\\data"):
        assert MACHINE_PATHS.search(text), text


def test_readme_is_short_and_points_into_docs():
    text = (REPO / "README.md").read_text()
    lines = text.count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"
    for command in ("make run", "make test"):
        assert command in text
    linked = {target.split("#")[0] for target in _links(REPO / "README.md")}
    for name in ("design", "results", "episodes", "robots", "testing"):
        assert f"docs/{name}.md" in linked, f"README.md does not link docs/{name}.md"


def test_every_pipeline_has_a_page():
    assert PIPELINES, "no pipeline found under src/fog_pipeline/pipelines"
    missing = [name for name in PIPELINES if not (DOCS / "pipelines" / f"{name}.md").is_file()]
    assert not missing, f"pipelines without a page in docs/pipelines/: {missing}"
    index = (DOCS / "pipelines" / "README.md").read_text()
    assert all(f"({name}.md)" in index for name in PIPELINES), "docs/pipelines/README.md"


def _keys(params: dict) -> list[str]:
    """The top-level keys, their sub-keys and the sub-keys' own keys (three levels)."""
    found = []
    for top, section in params.items():
        found.append(top)
        if not isinstance(section, dict):
            continue
        for key, value in section.items():
            found.append(key)
            if isinstance(value, dict):
                found += list(value)
    return found


PARAMETER_FILES = sorted((REPO / "conf/base").glob("parameters_*.yml"))


@pytest.mark.parametrize("path", PARAMETER_FILES, ids=lambda p: p.name)
def test_every_parameter_is_named_on_its_pipeline_page(path: Path):
    stem = path.stem.removeprefix("parameters_")
    pages = [DOCS / "pipelines" / f"{name}.md" for name in PARAMETER_PAGES.get(stem, (stem,))]
    for page in pages:
        assert page.is_file(), f"{path.name} has no page {page.relative_to(REPO)}"
    named = "\n".join(_code_spans(page.read_text()) for page in pages)
    params = yaml.safe_load(path.read_text())
    missing = sorted(
        {
            key
            for key in _keys(params)
            if not re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", named)
        }
    )
    assert not missing, (
        f"keys of {path.relative_to(REPO)} not named (in `code`) on "
        f"{', '.join(str(p.relative_to(REPO)) for p in pages)}: {missing}"
    )
