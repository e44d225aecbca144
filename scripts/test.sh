#!/usr/bin/env bash
# The test command: installs what it needs (scripts/setup.sh), then lint, types and the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/unit -k analysis`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
hastack_setup
cd "$HASTACK_ROOT"

echo "[test] ruff" >&2
"$VENV/bin/ruff" check src tests bench
"$VENV/bin/ruff" format --check src tests bench
echo "[test] mypy (strict on src/)" >&2
"$VENV/bin/mypy"
echo "[test] pytest" >&2
set +e
"$VENV/bin/pytest" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "[test] pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit "$rc"
