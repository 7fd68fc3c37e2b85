#!/usr/bin/env python3
"""Checks the links of Slipway's documentation, offline.

1. The Markdown sources (README.md, docs/src/**/*.md, charts/slipway/README.md): every relative
   link names a file that exists, and every `#anchor` a heading of that file (GitHub's and
   mdBook's heading ids, which agree for the headings used here; `{{#include}}`d files count as
   part of the page that includes them).
2. docs/src/SUMMARY.md lists every page under docs/src, and every page it lists exists.
3. The built book (docs/book/, from `mdbook build docs`), when present: every relative link of
   every page names a file of the book, and every `#anchor` an id on that page.

Links to other sites (http, https, mailto) are not checked: the machines that run this have no
network. Standard library only.

    python3 docs/tools/check_links.py [--book DIR]
"""

import argparse
import glob
import html.parser
import os
import re
import sys
import urllib.parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SRC = os.path.join(ROOT, "docs", "src")
SOURCES = ["README.md", "charts/slipway/README.md"]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(\s|$)")
HTML_HREF = re.compile(r"""<a\s[^>]*href=["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INCLUDE = re.compile(r"\{\{#include\s+([^}\s:]+)[^}]*\}\}")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def expand(path, seen=()):
    """The text of a Markdown file with its `{{#include}}`s put in (as mdBook does)."""
    text = read(path)
    if path in seen:
        raise SystemExit(f"{path}: includes itself")

    def put(m):
        target = os.path.normpath(os.path.join(os.path.dirname(path), m.group(1)))
        return expand(target, seen + (path,))

    return INCLUDE.sub(put, text)


def lines_outside_code(text):
    """(line number, line) of the lines outside fenced code blocks, with inline code removed."""
    fenced = False
    for n, line in enumerate(text.split("\n"), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, re.sub(r"(`+)(?:(?!\1).)+?\1", "", line)


def slug(heading):
    """The id GitHub and mdBook give a heading."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"(?<!\w)_|_(?!\w)", "", text)
    out = []
    for ch in text.strip().lower():
        if ch.isalnum() or ch in "-_":
            out.append(ch)
        elif ch.isspace():
            out.append("-")
    return "".join(out)


def anchors(text):
    ids, counts = set(), {}
    fenced = False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        m = HEADING.match(line)
        if m:
            base = slug(m.group(2))
            n = counts.get(base, 0)
            counts[base] = n + 1
            ids.add(base if n == 0 else f"{base}-{n}")
        for m in re.finditer(r"""<a\s+(?:id|name)=["']([^"']+)["']""", line):
            ids.add(m.group(1))
    return ids


def links(text):
    for n, line in lines_outside_code(text):
        for m in INLINE_LINK.finditer(line):
            yield n, m.group(1)
        m = REFERENCE_DEF.match(line)
        if m:
            yield n, m.group(1)
        for m in HTML_HREF.finditer(line):
            yield n, m.group(1)


def check_sources(errors):
    files = [os.path.join(ROOT, s) for s in SOURCES]
    files += sorted(glob.glob(os.path.join(SRC, "**", "*.md"), recursive=True))
    cache = {}

    def ids_of(path):
        if path not in cache:
            cache[path] = anchors(expand(path))
        return cache[path]

    checked = 0
    for path in files:
        rel = os.path.relpath(path, ROOT)
        for n, target in links(expand(path)):
            checked += 1
            if EXTERNAL.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            file_part = urllib.parse.unquote(file_part)
            dest = path if not file_part else os.path.normpath(os.path.join(os.path.dirname(path), file_part))
            if not os.path.exists(dest):
                errors.append(f"{rel}:{n}: {target}: no such file ({os.path.relpath(dest, ROOT)})")
                continue
            if anchor and dest.endswith(".md") and anchor not in ids_of(dest):
                errors.append(f"{rel}:{n}: {target}: no heading with the id #{anchor} in {os.path.relpath(dest, ROOT)}")
    return checked


def check_summary(errors):
    summary = os.path.join(SRC, "SUMMARY.md")
    listed = set()
    for n, target in links(read(summary)):
        dest = os.path.normpath(os.path.join(SRC, target.partition("#")[0]))
        listed.add(dest)
        if not os.path.exists(dest):
            errors.append(f"docs/src/SUMMARY.md:{n}: {target}: no such page")
    included = set()
    for path in glob.glob(os.path.join(SRC, "**", "*.md"), recursive=True):
        for m in INCLUDE.finditer(read(path)):
            included.add(os.path.normpath(os.path.join(os.path.dirname(path), m.group(1))))
    for path in sorted(glob.glob(os.path.join(SRC, "**", "*.md"), recursive=True)):
        if path.endswith("SUMMARY.md") or path in listed or path in included:
            continue
        errors.append(f"{os.path.relpath(path, ROOT)}: not in docs/src/SUMMARY.md, so not in the book")


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.hrefs = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append((self.getpos()[0], attrs["href"]))


def check_book(book, errors):
    pages = {}
    for path in glob.glob(os.path.join(book, "**", "*.html"), recursive=True):
        if os.path.basename(path) in ("404.html", "toc.html"):  # mdBook's: absolute site paths
            continue
        parser = _Page()
        parser.feed(read(path))
        pages[os.path.normpath(path)] = parser
    checked = 0
    for path, page in sorted(pages.items()):
        rel = os.path.relpath(path, book)
        for line, href in page.hrefs:
            checked += 1
            if EXTERNAL.match(href) or href.startswith("//"):
                continue
            file_part, _, anchor = href.partition("#")
            file_part = urllib.parse.unquote(file_part.split("?")[0])
            dest = path if not file_part else os.path.normpath(os.path.join(os.path.dirname(path), file_part))
            if os.path.isdir(dest):
                dest = os.path.join(dest, "index.html")
            if not os.path.exists(dest):
                errors.append(f"book {rel}:{line}: {href}: no such file in the book")
                continue
            if anchor and dest in pages and urllib.parse.unquote(anchor) not in pages[dest].ids:
                errors.append(f"book {rel}:{line}: {href}: no id #{anchor} on {os.path.relpath(dest, book)}")
    return len(pages), checked


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--book", default=os.path.join(ROOT, "docs", "book"),
                        help="the built book to check (default docs/book; skipped when absent)")
    args = parser.parse_args()
    errors = []
    checked = check_sources(errors)
    check_summary(errors)
    summary = f"{checked} links in the Markdown sources"
    if os.path.isdir(args.book):
        pages, hrefs = check_book(args.book, errors)
        summary += f", {hrefs} links on {pages} pages of the built book"
    else:
        summary += " (no built book to check: run mdbook build docs first)"
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"error: {len(errors)} broken links ({summary}); external links are not checked", file=sys.stderr)
        return 1
    print(f"links ok: {summary}; external links are not checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
