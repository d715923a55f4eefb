#!/usr/bin/env python3
"""Checks that the folder tree and the link graph tell the same story.

Every `#include "F/..."` in src/<folder> must name the folder itself or a folder whose
library <folder>'s target links directly (build/layers.json, written by CMake from the
targets' link libraries). With --doc, also checks that the table of who may include whom
in that Markdown file (between <!-- layers:begin --> and <!-- layers:end -->) is the one
the build declares; --table prints that table.

Usage: check_layers.py LAYERS_JSON SRC_DIR [--doc FILE] [--table]
Exit status: 0 if every include is declared (and the table matches), 1 otherwise.
"""
import argparse
import json
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/[^"]+"', re.M)


def undeclared_includes(layers, src):
    """Yields (file, line number, included folder) for every include its folder does not link."""
    for folder, deps in layers.items():
        allowed = {folder, *deps}
        for path in sorted((src / folder).rglob("*")):
            if path.suffix not in {".hpp", ".cpp", ".h", ".c"}:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for match in INCLUDE.finditer(text):
                included = match.group(1)
                if included in layers and included not in allowed:
                    line = text.count("\n", 0, match.start()) + 1
                    yield path, line, included


def table(layers):
    rows = ["| folder | may include (links directly) |", "|---|---|"]
    for folder, deps in layers.items():
        rows.append(f"| `{folder}` | {', '.join(f'`{d}`' for d in deps) or '(the standard library and system headers only)'} |")
    return "\n".join(rows)


def documented_table(doc):
    text = doc.read_text(encoding="utf-8")
    match = re.search(r"<!-- layers:begin -->\n(.*?)\n<!-- layers:end -->", text, re.S)
    return match.group(1).strip() if match else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("layers_json", type=pathlib.Path)
    parser.add_argument("src", type=pathlib.Path)
    parser.add_argument("--doc", type=pathlib.Path, help="a Markdown file whose layer table must match")
    parser.add_argument("--table", action="store_true", help="print the table of who may include whom")
    args = parser.parse_args()
    layers = json.loads(args.layers_json.read_text())
    if args.table:
        print(table(layers))
        return 0
    bad = list(undeclared_includes(layers, args.src))
    for path, line, included in bad:
        folder = path.relative_to(args.src).parts[0]
        print(f"{path}:{line}: includes {included}/, which {folder}'s target does not link "
              f"(add it to target_link_libraries in src/CMakeLists.txt, or move the code)", file=sys.stderr)
    ok = not bad
    if args.doc:
        documented = documented_table(args.doc)
        if documented != table(layers):
            print(f"{args.doc}: the layer table differs from the build's; rewrite it with\n"
                  f"  scripts/update_layer_table.sh", file=sys.stderr)
            ok = False
    files = sum(1 for f in layers for p in (args.src / f).rglob("*") if p.suffix in {".hpp", ".cpp", ".h", ".c"})
    if ok:
        print(f"layers: ok ({len(layers)} folders, {files} files)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
