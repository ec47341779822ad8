#!/usr/bin/env bash
# Build the Python policy into network_guard.wasm with componentize-py (from PyPI).
# Usage: guest-policies/python-policy/build.sh   (installs componentize-py if it is missing)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version=0.25.1
if ! command -v componentize-py >/dev/null 2>&1 || ! componentize-py --version | grep -q "$version"; then
  python3 -m pip install --quiet --disable-pip-version-check "componentize-py==$version"
fi
componentize-py -d "$here/../../wit/0.1.0" -w decide-policy componentize -p "$here" app -o "$here/network_guard.wasm"
