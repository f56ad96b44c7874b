"""Every relative link and #anchor in README.md and docs/*.md leads somewhere that exists, as GitHub renders it."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?!`)(?:(?!\n\n).)*?(?<!`)\1(?!`)", re.S)  # within a paragraph


def outside_fences(text: str) -> str:
    """The text without its fenced code blocks (a "# comment" there is no heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return "\n".join(lines)


def prose(text: str) -> str:
    """The text outside fenced code blocks, with code spans blanked (a link in code is no link)."""
    return CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", "`", m[0]), outside_fences(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading (github-slugger): the rendered text lowercased, punctuation dropped, spaces '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file; a repeated slug gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for line in outside_fences(path.read_text()).splitlines():
        match = re.match(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$", line)
        if match:
            base = slug(match[1])
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text()))


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:: not ours to check
            continue
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        relative = destination.relative_to(REPO).as_posix() if destination.is_relative_to(REPO) else str(destination)
        if not destination.exists():
            broken.append(f"{target}: no {relative}")
            continue
        if anchor and not (destination.suffix == ".md" and anchor in anchors(destination)):
            broken.append(f"{target}: no heading #{anchor} in {relative}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=[page.relative_to(REPO).as_posix() for page in PAGES])
def test_every_relative_link_and_anchor_resolves(page):
    assert broken_links(page) == []


def test_slugs_follow_githubs_rules():
    assert slug("TLS to the database (`database.tls`)") == "tls-to-the-database-databasetls"
    assert slug("What it does, step by step") == "what-it-does-step-by-step"
    assert slug("`ALEMBIC_CONFIG`: your own env.py") == "alembic_config-your-own-envpy"
    assert slug("Python versions and image tags") == "python-versions-and-image-tags"


def test_a_missing_heading_or_file_is_reported(tmp_path, monkeypatch):
    monkeypatch.setitem(globals(), "REPO", tmp_path)
    (tmp_path / "a.md").write_text("# A\n\n## Same\n\n## Same\n\n```sh\n# not a heading\n```\n")
    page = tmp_path / "b.md"
    page.write_text("[ok](a.md#same-1) [gone](a.md#same-2) [code](a.md#not-a-heading) [a\nfile](c.md)\n"
                    "`[no](x.md)` [`code` in text](a.md#a)\n")
    assert broken_links(page) == ["a.md#same-2: no heading #same-2 in a.md",
                                  "a.md#not-a-heading: no heading #not-a-heading in a.md", "c.md: no c.md"]


def test_every_docs_page_is_linked_from_the_readme_and_opens_with_what_its_reader_came_for():
    readme_targets = {target.partition("#")[0] for target in links(REPO / "README.md")}
    for page in PAGES[1:]:
        name = page.relative_to(REPO).as_posix()
        assert name in readme_targets, f"README.md does not link {name}"
        body = [line for line in page.read_text().splitlines() if line.strip()]
        assert body[0].startswith("# ") and not body[1].startswith(("#", "|", "```", "-")), \
            f"{name} does not open with a title and a sentence or two on what its reader came for"
