#!/usr/bin/env bash
# Start a kt_lr chief and two workers on this machine (127.0.0.1) and wait for them.
#
#   examples/distributed/run_local.sh [directory] [-- extra args for search.py]
#
# Environment: KERASTUNER_ORACLE_PORT (default: a free port), WORKERS (default 2),
# TIMEOUT (seconds for the whole search, default 1800), PYTHON (default python).
# Logs: <directory>/logs/<tuner id>.log. On several machines, run search.py the same way
# on each, with KERASTUNER_ORACLE_IP set to the chief's address and a shared directory.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIRECTORY="${1:-kt_lr_distributed}"
shift || true
[ "${1:-}" = "--" ] && shift
PYTHON="${PYTHON:-python}"
WORKERS="${WORKERS:-2}"
TIMEOUT="${TIMEOUT:-1800}"
PORT="${KERASTUNER_ORACLE_PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
export KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT="$PORT"

mkdir -p "$DIRECTORY/logs"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

start() {  # start <tuner id> [search.py args...]
    local id="$1"
    shift
    KERASTUNER_TUNER_ID="$id" timeout --kill-after=10 "$TIMEOUT" \
        "$PYTHON" "$HERE/search.py" --directory "$DIRECTORY" "$@" \
        >"$DIRECTORY/logs/$id.log" 2>&1 &
    pids+=("$!")
}

echo "chief on 127.0.0.1:$PORT, $WORKERS workers, logs in $DIRECTORY/logs"
start chief "${@}"
CHIEF=${pids[0]}
for ((i = 0; i < WORKERS; i++)); do start "tuner$i" "${@}"; done

status=0
for pid in "${pids[@]:1}"; do wait "$pid" || status=$?; done
wait "$CHIEF" || status=$?   # the chief exits once every worker was told to stop
trap - EXIT
grep -v -e '^WARNING' -e '^I0000' -e 'cpu_feature' -e 'To enable' "$DIRECTORY/logs/chief.log" || true
exit "$status"
