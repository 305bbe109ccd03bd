#!/usr/bin/env python3
"""Links and file mentions that resolve inside the repository.

1. Every relative Markdown link `[text](path)` / `![alt](path)` (and reference definition `[id]: path`) in a
   `*.md` file must name an existing file or folder, relative to the linking file (`/path`: relative to the
   repository root). `http(s):`, `mailto:` and other schemes, and pure `#anchor` links, are not checked; a
   `#anchor` after a path is dropped. Links inside fenced code blocks and inline code are not links.
2. Every `*.rs`, `*.md` and `Cargo.toml` file may mention only files the repository has: `PAPER.md` and
   `DESIGN.md` (not part of this repository) and `docs/<name>.md` paths that do not exist are reported.
   (`../shared/data` is not checked: data sets live outside the repository by design and are given by path;
   the examples name the development layout as their default argument.)

Skips `target/` folders, `.git/` and `crates/client-check/target`. Standard library only.
Usage: scripts/check-links.py [REPOSITORY_ROOT]   (default: the folder above this script)
Prints `file:line: message` per problem and exits 1, or a one-line summary and exits 0.
"""
import os
import re
import sys
from urllib.parse import unquote

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
SKIP_DIRS = {".git", "target"}  # at any depth: covers target/, crates/client-check/target, fuzz targets
SKIP_PATHS = {os.path.join("crates", "client-check", "target")}

# [text](dest) or ![alt](dest), with one level of nested brackets in the text, an optional <dest> and "title".
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]\n]|\[[^\[\]\n]*\])*\]\(\s*(<[^>\n]*>|[^)\s]+)(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^)\n]*\)))?\s*\)"
)
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]\n]+\]:\s*(<[^>\n]*>|\S+)", re.M)
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")

MISSING_DOCS = re.compile(r"\b(PAPER|DESIGN)\.md\b")
DOCS_PATH = re.compile(r"(?<![\w/.-])(?:\.\./)*(docs/(?:[\w.-]+/)*[\w.-]+\.md)\b")


def files():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in SKIP_DIRS and os.path.normpath(os.path.join(rel_dir, d)) not in SKIP_PATHS
        )
        for name in sorted(filenames):
            if name.endswith((".md", ".rs")) or name == "Cargo.toml":
                yield os.path.normpath(os.path.join(rel_dir, name))


def blank(text, start, end):
    """`text` with [start, end) replaced by spaces (newlines kept), so offsets and line numbers stay."""
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


def without_code(text):
    """Markdown text with fenced code blocks and inline code spans blanked out."""
    lines = text.split("\n")
    fence = None
    for i, line in enumerate(lines):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            lines[i] = " " * len(line)
        elif fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip()[len(m.group(1)):].strip():
                fence = None
            lines[i] = " " * len(line)
    text = "\n".join(lines)
    for m in reversed(list(INLINE_CODE.finditer(text))):
        text = blank(text, m.start(), m.end())
    return text


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def exists(path):
    """Whether `path` (absolute) exists and lies inside the repository."""
    path = os.path.normpath(path)
    inside = path == ROOT or path.startswith(ROOT + os.sep)
    return inside and os.path.exists(path)


def check_links(rel, text, problems):
    here = os.path.dirname(os.path.join(ROOT, rel))
    prose = without_code(text)
    found = [(m.start(1), m.group(1)) for m in INLINE_LINK.finditer(prose)]
    found += [(m.start(1), m.group(1)) for m in REFERENCE_DEF.finditer(prose)]
    for offset, dest in sorted(found):
        dest = dest.strip()
        if dest.startswith("<") and dest.endswith(">"):
            dest = dest[1:-1].strip()
        if not dest or dest.startswith("#") or SCHEME.match(dest):
            continue
        target = unquote(dest.split("#", 1)[0].split("?", 1)[0])
        if not target:
            continue
        base = ROOT if target.startswith("/") else here
        resolved = os.path.normpath(os.path.join(base, target.lstrip("/")))
        if not exists(resolved):
            where = os.path.relpath(resolved, ROOT)
            why = "outside the repository" if where.startswith("..") else "no such file or folder"
            problems.append((rel, line_of(prose, offset), f"broken link `{dest}` ({where}: {why})"))


def check_mentions(rel, text, problems):
    for m in MISSING_DOCS.finditer(text):
        name = m.group(0)
        if not exists(os.path.join(ROOT, name)):
            problems.append((rel, line_of(text, m.start()), f"mentions `{name}`, which is not in this repository"))
    for m in DOCS_PATH.finditer(text):
        path, line = m.group(1), line_of(text, m.start())
        already = any(p[:2] == (rel, line) and path in p[2] and p[2].startswith("broken link") for p in problems)
        if not already and not exists(os.path.join(ROOT, path)):
            problems.append((rel, line, f"mentions `{path}`, which does not exist"))


def main():
    problems, checked = [], 0
    for rel in files():
        with open(os.path.join(ROOT, rel), encoding="utf-8", errors="replace") as f:
            text = f.read()
        checked += 1
        if rel.endswith(".md"):
            check_links(rel, text, problems)
        check_mentions(rel, text, problems)
    seen = set()
    for rel, line, message in sorted(problems):
        if (rel, line, message) not in seen:
            seen.add((rel, line, message))
            print(f"{rel}:{line}: {message}")
    if seen:
        print(f"check-links: {len(seen)} problem(s) in {len({p[0] for p in seen})} of {checked} files", file=sys.stderr)
        return 1
    print(f"check-links: {checked} file(s) (*.md, *.rs, Cargo.toml) checked, every link and file mention resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
