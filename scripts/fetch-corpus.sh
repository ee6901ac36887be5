#!/usr/bin/env bash
# Fetch the demo corpus (Debian's Python 3.11 documentation), once, and print the folder of
# its reST sources. Document ids are paths under that folder, e.g. library/venv.rst.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/versions.env
dir="${RAGPLANE_CACHE:-$HOME/.cache/ragplane}/corpus/$CORPUS_PACKAGE"
sources="$dir/root/usr/share/doc/python3.11/html/_sources"
if [ ! -d "$sources" ]; then
  mkdir -p "$dir"
  echo "==> downloading $CORPUS_PACKAGE with apt-get download" >&2
  (cd "$dir" && { apt-get download "$CORPUS_PACKAGE" >/dev/null 2>&1 || { apt-get update -qq && apt-get download "$CORPUS_PACKAGE" >/dev/null 2>&1; }; })
  rm -rf "$dir/root.partial"
  dpkg -x "$dir"/"$CORPUS_PACKAGE"_*.deb "$dir/root.partial"
  mv "$dir/root.partial" "$dir/root"
fi
echo "$sources"
