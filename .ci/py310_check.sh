#!/usr/bin/env bash
# pyproject.toml declares Python >= 3.10: check every module against 3.10's rules.
#  - vermin: the minimum version each module's syntax and standard-library use needs
#    (e.g. a bare `import tomllib` needs 3.11 and fails this check);
#  - where a 3.10 interpreter is at hand (pyenv here), every module is also compiled by it.
# Importing under 3.10 would need a torch build for 3.10, which this machine does not carry.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q "vermin>=1.6" >/dev/null 2>&1 || pip install -q "vermin>=1.6"
vermin -t=3.10- --no-tips --violations --eval-annotations dpbench plugins/*/src
py310=""
if command -v pyenv >/dev/null 2>&1; then
  v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)' | tail -1 || true)
  [ -n "$v" ] && py310="$(pyenv root)/versions/$v/bin/python"
fi
command -v python3.10 >/dev/null 2>&1 && python3.10 -c pass 2>/dev/null && py310=python3.10
if [ -n "$py310" ]; then
  "$py310" - <<'PY'
import pathlib, sys
files = [p for root in ("dpbench", "plugins") for p in pathlib.Path(root).rglob("*.py")]
for p in files:
    compile(p.read_text(), str(p), "exec")
print(f"py310_check: {len(files)} modules compile under Python {sys.version.split()[0]}")
PY
else
  echo "py310_check: no Python 3.10 interpreter here; vermin's check only"
fi
