#!/usr/bin/env bash
# Contract: checks that the C/C++ lines changed since a base revision follow .clang-format,
# without touching any file. Only changed lines are checked (clang-format-diff), so code
# that predates the formatter does not fail the check.
#   base: --base REV, else the merge base with origin/main if there is one, else HEAD~1;
#         compared with the working tree (tracked files, committed or not).
#   files: *.cpp *.hpp *.h *.c (src/nic/bpf/ has its own .clang-format).
#   exit 0 and "format: ok (N files checked)" when formatted; exit 1 with the diff that
#   would format them, and the command that applies it, when not;
#   exit 2 on bad usage or a missing clang-format-16, unless
#   MS_FORMAT_SKIP_IF_MISSING=1, which makes a missing tool a loud SKIPPED and exit 0.
#
# Usage: scripts/check_format.sh [--base REV] [--help]
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

base=""
while (($#)); do
  case "$1" in
    --base) (($# >= 2)) || { usage >&2; exit 2; }; base=$2; shift 2 ;;
    --base=*) base=${1#--base=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "check_format: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

cd "$(git rev-parse --show-toplevel)"

clang_format=$(command -v clang-format-16 || true)
clang_format_diff=$(command -v clang-format-diff-16 || true)
if [[ -z $clang_format || -z $clang_format_diff ]]; then
  if [[ ${MS_FORMAT_SKIP_IF_MISSING:-0} == 1 ]]; then
    echo "########## format: SKIPPED: clang-format-16 is not installed (MS_FORMAT_SKIP_IF_MISSING=1) ##########" >&2
    exit 0
  fi
  echo "format: clang-format-16 (and clang-format-diff-16) not found; install it with" >&2
  echo "  scripts/setup.sh   (or: sudo apt-get install clang-format-16)" >&2
  echo "or set MS_FORMAT_SKIP_IF_MISSING=1 to skip this check" >&2
  exit 2
fi

if [[ -z $base ]]; then
  if git rev-parse -q --verify origin/main >/dev/null; then
    base=$(git merge-base HEAD origin/main)
  else
    base=HEAD~1
  fi
fi
git rev-parse -q --verify "$base^{commit}" >/dev/null || { echo "format: no such revision: $base" >&2; exit 2; }

patterns=('*.cpp' '*.hpp' '*.h' '*.c')
files=$(git diff --name-only --diff-filter=d "$base" -- "${patterns[@]}" | wc -l)
unformatted=$(git diff -U0 --no-color --diff-filter=d "$base" -- "${patterns[@]}" |
  "$clang_format_diff" -p1 -binary "$clang_format") || { echo "format: clang-format-diff-16 failed" >&2; exit 2; }

if [[ -n $unformatted ]]; then
  printf '%s\n' "$unformatted"
  echo "format: FAILED: lines changed since $(git rev-parse --short "$base") are not formatted (diff above); to fix:" >&2
  echo "  git diff -U0 --no-color $base -- ${patterns[*]@Q} | clang-format-diff-16 -p1 -i" >&2
  exit 1
fi
echo "format: ok ($files files checked)"
