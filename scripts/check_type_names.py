#!/usr/bin/env python3
"""Checks that no two types defined under src/ share a name (docs/DESIGN.md §9).

A type is a class, struct, union or enum definition (a forward declaration is not one),
named by its last component, so that `sw::Port` and a `client::Port`, or two nested
`Slot`s, count as a clash. Usage: check_type_names.py SRC_DIR
Exit status: 0 if every name is unique, 1 otherwise (each clash is listed).
"""
import collections
import pathlib
import re
import sys

DEFINITION = re.compile(
    r"^\s*(?:template\s*<[^;{]*>\s*)?(?:class|struct|union|enum(?:\s+class)?)\s+(?:\[\[\w+\]\]\s+)?"
    r"((?:\w+::)*\w+)(?:\s+final)?\s*(?::[^;{]*)?\{",
    re.M,
)


def definitions(src):
    for path in sorted(src.rglob("*")):
        if path.suffix not in {".hpp", ".cpp", ".h"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in DEFINITION.finditer(text):
            name = match.group(1).split("::")[-1]
            line = text.count("\n", 0, match.start()) + 1
            yield name, f"{path}:{line}"


def main():
    if len(sys.argv) != 2 or sys.argv[1] in {"-h", "--help"}:
        print(__doc__.strip())
        return 0 if len(sys.argv) == 2 else 2
    places = collections.defaultdict(list)
    for name, where in definitions(pathlib.Path(sys.argv[1])):
        places[name].append(where)
    clashes = {name: where for name, where in places.items() if len(where) > 1}
    for name, where in sorted(clashes.items()):
        print(f"type name {name} is defined {len(where)} times: {', '.join(where)}", file=sys.stderr)
    if not clashes:
        print(f"names: ok ({len(places)} types, each name once)")
    return 1 if clashes else 0


if __name__ == "__main__":
    sys.exit(main())
