#!/usr/bin/env bash
# Create .venv at the repository root and install Pactum into it.
#   scripts/bootstrap.sh run   runtime dependencies
#   scripts/bootstrap.sh dev   runtime + test/lint dependencies
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-run}"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
  echo "error: $python not found; Pactum needs Python 3.11 or newer." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $("$python" --version 2>&1)..."
  "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi

extra=""
[ "$profile" = "dev" ] && extra="[dev]"
stamp=".venv/.installed-$profile"
digest="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "Installing Pactum ($profile dependencies) into .venv..."
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra}"
  echo "$digest" > "$stamp"
fi
