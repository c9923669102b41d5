#!/usr/bin/env bash
# The embedded default: SQLite + a file-based Celery broker under PACTUM_DATA_DIR,
# local payment gateway. Starts web, one worker and beat; Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBUG="${DEBUG:-true}"
export PORT="${PORT:-8000}"
# The demo agents answer on this machine; let the platform call them.
export AGENT_ENDPOINT_ALLOW_PRIVATE="${AGENT_ENDPOINT_ALLOW_PRIVATE:-true}"
export PYTHONUNBUFFERED=1
bin=.venv/bin

$bin/python manage.py migrate --noinput -v 0
$bin/python manage.py seed_demo
echo
echo "Pactum is starting at http://127.0.0.1:${PORT}/  (API docs: http://127.0.0.1:${PORT}/api/docs/)"
echo "Press Ctrl-C to stop the web server, the worker and beat."
echo
# honcho runs the Procfile's processes and stops them all when one exits or on Ctrl-C.
exec $bin/honcho -f Procfile.dev start --port "$PORT"
