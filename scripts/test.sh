#!/usr/bin/env bash
# Lint, then run the whole test suite against throwaway services:
#   - PostgreSQL from the machine's initdb/pg_ctl (or DATABASE_URL when given),
#   - Redis (redis-server; installed with apt-get when missing and running as root),
#   - headless Chromium for the page tests (Debian's chromium, same rule).
# Everything started here is stopped on exit. Extra arguments go to pytest;
# `--bench` runs the benchmarks in benchmarks/ instead of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
bin="$root/.venv/bin"

mode="tests"
if [ "${1:-}" = "--bench" ]; then mode="bench"; shift; fi

work="$(mktemp -d "${TMPDIR:-/tmp}/pactum-test.XXXXXX")"
chmod 755 "$work"
pg_started=""
redis_pid=""

as_postgres() {
  if [ "$(id -u)" = "0" ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cleanup() {
  local rc=$?
  if [ -n "$pg_started" ]; then
    as_postgres pg_ctl -D "$work/pg" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" >/dev/null 2>&1 || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT INT TERM

free_port() {
  "$bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

apt_install() {
  # apt_install <command that must exist> <debian package>
  if command -v "$1" >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing $2 with apt-get..."
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  else
    echo "error: '$1' is missing; install the '$2' package (or run make test as root to install it)." >&2
    exit 1
  fi
}

# --- PostgreSQL ---------------------------------------------------------------
if [ -z "${DATABASE_URL:-}" ]; then
  # Debian and Ubuntu keep the server binaries out of PATH.
  if ! command -v initdb >/dev/null 2>&1; then
    for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && PATH="$dir:$PATH"; done
  fi
  for tool in initdb pg_ctl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool not found; install PostgreSQL 15+ or set DATABASE_URL." >&2; exit 1; }
  done
  if [ "$(id -u)" = "0" ] && ! id postgres >/dev/null 2>&1; then
    echo "error: PostgreSQL refuses to run as root and there is no 'postgres' user; create one or set DATABASE_URL." >&2
    exit 1
  fi
  mkdir -p "$work/pg" "$work/pgsock"
  [ "$(id -u)" = "0" ] && chown postgres "$work/pg" "$work/pgsock"
  pg_port="$(free_port)"
  as_postgres initdb -D "$work/pg" -U postgres -A trust -E UTF8 --no-sync >"$work/initdb.log" 2>&1 \
    || { cat "$work/initdb.log" >&2; exit 1; }
  # Durability off: this cluster lives for one test run.
  as_postgres pg_ctl -D "$work/pg" -w -l "$work/pgsock/postgres.log" \
    -o "-p $pg_port -k $work/pgsock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { cat "$work/pgsock/postgres.log" >&2; exit 1; }
  pg_started=1
  export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/pactum"
fi

# --- Redis --------------------------------------------------------------------
if [ -z "${REDIS_URL:-}" ]; then
  apt_install redis-server redis-server
  redis_port="$(free_port)"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" --logfile "$work/redis.log" &
  redis_pid=$!
  redis_up=""
  for _ in $(seq 100); do
    if "$bin/python" -c "import redis; redis.Redis(port=$redis_port).ping()" 2>/dev/null; then redis_up=1; break; fi
    sleep 0.1
  done
  [ -n "$redis_up" ] || { echo "error: redis-server did not start:" >&2; cat "$work/redis.log" >&2; exit 1; }
  export REDIS_URL="redis://127.0.0.1:$redis_port"
fi
export CELERY_BROKER_URL="$REDIS_URL/0"
export CELERY_RESULT_BACKEND="$REDIS_URL/1"

# --- Chromium (page tests) ----------------------------------------------------
apt_install chromium chromium
export PACTUM_CHROMIUM="$(command -v chromium)"

# --- The tests ----------------------------------------------------------------
export DEBUG=true
export PACTUM_DATA_DIR="$work/data"
# A developer's .env must not change what the tests see.
export PACTUM_READ_DOTENV=false
export PYTHONDONTWRITEBYTECODE=1

if [ "$mode" = "bench" ]; then
  "$bin/pytest" benchmarks --benchmark-only "$@"
  exit $?
fi

if [ -z "${SKIP_LINT:-}" ]; then
  echo "== ruff"
  "$bin/ruff" check .
  "$bin/ruff" format --check .
fi
echo "== pytest"
rc=0
"$bin/pytest" "$@" || rc=$?
if [ "$rc" = "5" ]; then
  echo "error: pytest collected no tests." >&2
fi
exit "$rc"
