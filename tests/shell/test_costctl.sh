#!/usr/bin/env bash
# Tests of the costctl command line against a real costd daemon (plain bash, no bats):
# exit codes (0 ok, 1 negative answer, 2 bad usage, 3 unreachable, 4 error answer), outputs,
# socket resolution, budget checks, JSON output.
#
#   COSTD_BIN=/path/to/costd COSTCTL_BIN=/path/to/costctl bash tests/shell/test_costctl.sh
#
# The binaries are $COSTD_BIN and $COSTCTL_BIN, else <repo>/.build/debug/costd and costctl.
# The daemon runs on a temporary socket and state directory and is stopped on exit, whatever
# happens. JSON is checked with python3 (and jq too, when it is installed).
# Exits non-zero when any check fails.

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

COSTD_BIN=${COSTD_BIN:-$REPO/.build/debug/costd}
COSTCTL_BIN=${COSTCTL_BIN:-$REPO/.build/debug/costctl}
for bin in "$COSTD_BIN" "$COSTCTL_BIN"; do
    if [ ! -x "$bin" ]; then
        echo "no binary at $bin: set COSTD_BIN and COSTCTL_BIN, or build .build/debug" >&2
        echo "costctl: 0 passed, 1 failed, 0 skipped"
        exit 2
    fi
done
if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 is needed to check JSON output" >&2
    exit 2
fi

TMP=$(mktemp -d /tmp/costctl-test.XXXXXX)
SOCK=$TMP/costd.sock
STATE=$TMP/state
DAEMON_PID=
# shellcheck source=lib.sh
. "$HERE/lib.sh"
DAILY_BUDGET=1

# Every costctl run starts from a clean environment for the socket: no inherited $COSTD_SOCKET,
# and $XDG_RUNTIME_DIR pointing where no daemon is.
unset COSTD_SOCKET NO_COLOR FORCE_COLOR
export XDG_RUNTIME_DIR=$TMP/no-runtime-dir

ctl() { "$COSTCTL_BIN" "$@"; }

start_daemon() {
    "$COSTD_BIN" --socket "$SOCK" --state-dir "$STATE" --daily-budget "$DAILY_BUDGET" \
        --monthly-budget 100 "$@" >>"$TMP/daemon.log" 2>&1 &
    DAEMON_PID=$!
    wait_for_daemon ctl ping --socket "$SOCK" --timeout 2
}

# stop_daemon: SIGTERM, then SIGKILL after 5 s; sets DAEMON_RC to costd's exit status.

finish() {
    stop_daemon
    rm -rf "$TMP"
}
trap finish EXIT
trap 'exit 130' INT TERM





# run CMD...: sets OUT (stdout), ERR (stderr) and RC.

# check NAME EXPECTED_RC NEEDLE...: the last `run` exited with EXPECTED_RC and its stdout
# holds every NEEDLE (a literal substring).

# check_err NAME EXPECTED_RC NEEDLE...: like check, on stderr; stdout must be empty.
check_err() {
    local name=$1 want=$2 needle
    shift 2
    if [ "$RC" != "$want" ]; then
        fail "$name" "exit $RC, expected $want; stdout: $OUT; stderr: $ERR"
        return
    fi
    if [ -n "$OUT" ]; then
        fail "$name" "unexpected stdout: $OUT"
        return
    fi
    for needle in "$@"; do
        case $ERR in
        *"$needle"*) ;;
        *)
            fail "$name" "missing '$needle' in stderr: $ERR"
            return
            ;;
        esac
    done
    pass "$name"
}

# one_line NAME TEXT: TEXT is a single non-empty line.
one_line() {
    local lines
    lines=$(printf '%s\n' "$2" | wc -l)
    if [ -n "$2" ] && [ "$lines" -eq 1 ]; then pass "$1"; else fail "$1" "expected one line, got $lines: $2"; fi
}


# json_valid NAME: the last stdout is valid JSON (python3 -m json.tool, and jq when installed).
json_valid() {
    if ! printf '%s' "$OUT" | python3 -S -m json.tool >/dev/null 2>"$TMP/json.err"; then
        fail "$1" "not JSON ($(cat "$TMP/json.err")): $OUT"
        return 1
    fi
    if command -v jq >/dev/null 2>&1 && ! printf '%s' "$OUT" | jq -e . >/dev/null 2>&1; then
        fail "$1" "jq rejects: $OUT"
        return 1
    fi
    pass "$1"
}

# jget EXPR: evaluates the Python expression EXPR on the last stdout parsed as JSON (as `j`);
# prints the result (JSON numbers as Python prints them, strings bare).
jget() {
    printf '%s' "$OUT" | python3 -S -c '
import json, sys
j = json.load(sys.stdin)
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v))' "$1" 2>/dev/null
}

# close_to NAME GOT WANT: two decimal numbers equal to the nano-dollar.
close_to() {
    if [ -n "$2" ] && awk -v a="$2" -v b="$3" 'BEGIN { d = a - b; exit !(d < 1e-9 && d > -1e-9) }'; then
        pass "$1"
    else
        fail "$1" "got [$2], expected [$3]"
    fi
}

echo "costctl tests: $COSTCTL_BIN against $COSTD_BIN"
if ! start_daemon; then
    echo "costctl: 0 passed, 1 failed, 0 skipped"
    exit 1
fi

echo "ping"
run ctl ping --socket "$SOCK"
check "ping: exit 0" 0 "up"
run ctl ping --socket "$SOCK" --json
check "ping --json" 0 '"pong":true' '"ledger":"ok"'
json_valid "ping --json is JSON"

echo "where the socket is"
run ctl --socket "$SOCK" ping
check "--socket before the subcommand" 0 "up"
run ctl ping --socket "$SOCK"
check "--socket after the subcommand" 0 "up"
run ctl --socket "$SOCK" report --json
check "--socket before: report" 0 '"totalCostUsd"'
run ctl budget check --socket "$SOCK"
check "--socket after: budget check" 0 "day:"
run ctl --socket "$SOCK" budget check
check "--socket before: budget check" 0 "day:"
run env COSTD_SOCKET="$SOCK" "$COSTCTL_BIN" ping
check "\$COSTD_SOCKET is honoured" 0 "up"
run env COSTD_SOCKET="$SOCK" "$COSTCTL_BIN" report --json
check "\$COSTD_SOCKET: report" 0 '"totalCostUsd"'
run env COSTD_SOCKET="$TMP/elsewhere.sock" "$COSTCTL_BIN" ping --socket "$SOCK"
check "--socket wins over \$COSTD_SOCKET" 0 "up"
run env COSTD_SOCKET="$TMP/elsewhere.sock" "$COSTCTL_BIN" ping
check_err "\$COSTD_SOCKET to nowhere: exit 3" 3 "$TMP/elsewhere.sock"
run env XDG_RUNTIME_DIR="$TMP" "$COSTCTL_BIN" ping
check "then \$XDG_RUNTIME_DIR/costd.sock" 0 "up"
run env COSTD_SOCKET="$SOCK" XDG_RUNTIME_DIR="$TMP/nothing" "$COSTCTL_BIN" ping
check "\$COSTD_SOCKET before \$XDG_RUNTIME_DIR" 0 "up"

echo "unreachable daemon: exit 3, one line on stderr"
run ctl ping --socket "$TMP/missing.sock"
check_err "no socket file: exit 3" 3 "$TMP/missing.sock"
one_line "no socket file: one line" "$ERR"
python3 -S -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$TMP/dead.sock"
run ctl ping --socket "$TMP/dead.sock"
check_err "socket nobody listens on: exit 3" 3 "$TMP/dead.sock"
one_line "socket nobody listens on: one line" "$ERR"
run ctl report --socket "$TMP/missing.sock"
check_err "report, no daemon: exit 3" 3
one_line "report, no daemon: one line" "$ERR"
run ctl get --socket "$TMP/missing.sock" --model gpt-4o "a prompt"
check_err "get, no daemon: exit 3 (not a miss)" 3
run ctl budget check --socket "$TMP/missing.sock"
check_err "budget check, no daemon: exit 3 (not over budget)" 3

echo "cache: set, get hit, get miss"
run ctl set --socket "$SOCK" --model gpt-4o "What is 2+2?" "It is 4."
check "set" 0
run ctl get --socket "$SOCK" --model gpt-4o "What is 2+2?"
check "get hit: exit 0" 0
equal "get hit prints the value" "$OUT" "It is 4."
run ctl get --socket "$SOCK" --model gpt-4o --json "What is 2+2?"
check "get hit --json" 0 '"hit":true' '"value":"It is 4."'
json_valid "get --json is JSON"
run ctl get --socket "$SOCK" --model gpt-4o "What is 3+3?"
if [ "$RC" = 1 ] && [ -z "$OUT" ]; then pass "get miss: exit 1, nothing on stdout"; else fail "get miss: exit 1, nothing on stdout" "exit $RC; stdout: $OUT; stderr: $ERR"; fi
run ctl get --socket "$SOCK" --model gpt-4o-mini "What is 2+2?"
check "get: the model is part of the key (miss)" 1
run ctl set --socket "$SOCK" --model gpt-4o --json-prompt --json-value '{"q":"hi","t":0}' '{"text":"Hello!"}'
check "set JSON prompt and value" 0
run ctl get --socket "$SOCK" --model gpt-4o --json-prompt '{"t": 0, "q": "hi"}'
check "get JSON prompt, keys in another order: hit" 0 '"text"' 'Hello!'

echo "JSON-RPC errors: exit 4"
run ctl record --socket "$SOCK" --model no-such-model --input-tokens 10 --output-tokens 5
check_err "record of an unknown model: exit 4" 4 "no-such-model"
one_line "record of an unknown model: one line on stderr" "$ERR"
run ctl call --socket "$SOCK" noSuchMethod
check_err "call of an unknown method: exit 4" 4 "noSuchMethod"
run ctl report --socket "$SOCK" --period week
check_err "report --period week: exit 4 (invalid params)" 4 "period"

echo "bad usage: exit 2"
run ctl
if [ "$RC" = 0 ] || [ "$RC" = 2 ]; then pass "no subcommand: help (exit $RC)"; else fail "no subcommand: help" "exit $RC"; fi
run ctl no-such-subcommand
check_err "unknown subcommand: exit 2" 2
run ctl record --socket "$SOCK" --input-tokens 1
check_err "record without --model: exit 2" 2 "--model"
run ctl get --socket "$SOCK" --model gpt-4o
check_err "get without a prompt: exit 2" 2
run ctl record --socket "$SOCK" --model gpt-4o --input-tokens many
check_err "non-numeric tokens: exit 2" 2
run ctl ping --socket "$SOCK" --no-such-flag
check_err "unknown flag: exit 2" 2
run ctl tokens --socket "$SOCK" --compare --calls-per-day inf "$TMP/a" "$TMP/b"
check_err "tokens --calls-per-day inf: exit 2" 2 "--calls-per-day"
run ctl tokens --socket "$SOCK" --compare --days 0 "$TMP/a" "$TMP/b"
check_err "tokens --days 0: exit 2" 2 "--days"
run ctl call --socket "$SOCK" ping 'not json'
if [ "$RC" = 2 ] || [ "$RC" = 4 ]; then pass "call with params that are not JSON: usage or error (exit $RC)"; else fail "call with params that are not JSON" "exit $RC; $ERR"; fi

echo "record and report"
run ctl record --socket "$SOCK" --model gpt-4o --input-tokens 1000 --output-tokens 500 --user ann --feature search
check "record: exit 0" 0 '0.0075'
run ctl record --socket "$SOCK" --model gpt-4o --input-tokens 1000 --output-tokens 500 --user ann --feature search --json
check "record --json" 0 '"costUsd":0.0075'
json_valid "record --json is JSON"
run ctl record --socket "$SOCK" --model gpt-4o --input-tokens 1000 --output-tokens 500 --record-id order-1 --json
check "record with --record-id" 0 '"recordId":"order-1"'
run ctl record --socket "$SOCK" --model gpt-4o --input-tokens 1000 --output-tokens 500 --record-id order-1 --json
check "same --record-id again: a duplicate" 0 '"duplicate":true'
run ctl report --socket "$SOCK" --json
check "report --json: exit 0" 0 '"totalCostUsd"'
json_valid "report --json is JSON"
close_to "report --json totalCostUsd" "$(jget 'j["totalCostUsd"]')" 0.0225
equal "report --json requests" "$(jget 'j["requests"]')" 3
equal "report --json byModel" "$(jget 'sorted(j["byModel"])')" '["gpt-4o"]'
close_to "report --json daily budget" "$(jget 'j["budgetUsd"]')" "$DAILY_BUDGET"
run ctl report --socket "$SOCK" --json --period month
check "report --json --period month" 0 '"period":"month"'
json_valid "report --period month --json is JSON"
run ctl report --socket "$SOCK"
check "report (text)" 0 "By model" "gpt-4o" '$0.0225'
case $OUT in
*$'\033'*) fail "report piped: no escape sequences" "$OUT" ;;
*) pass "report piped: no escape sequences" ;;
esac

echo "record --cached: savings"
run ctl record --socket "$SOCK" --model gpt-4o --input-tokens 1000 --output-tokens 500 --cached
check "record --cached: exit 0, says saved" 0 "saved" '$0.0075'
run ctl record --socket "$SOCK" --model gpt-4o --input-tokens 1000 --output-tokens 500 --cached --json
check "record --cached --json" 0 '"savedUsd":0.0075' '"costUsd":0'
json_valid "record --cached --json is JSON"
run ctl report --socket "$SOCK" --json
close_to "savings in the report" "$(jget 'j["savings"]["cacheUsd"]')" 0.015
equal "cached calls counted apart" "$(jget 'j["cachedRequests"]')" 2
close_to "cached calls are not spend" "$(jget 'j["totalCostUsd"]')" 0.0225

echo "budget check"
run ctl budget check --socket "$SOCK"
check "under budget: exit 0" 0 "day:" "month:"
run ctl budget check --socket "$SOCK" --json
check "budget check --json: exit 0" 0 '"day"' '"month"'
json_valid "budget check --json is JSON"
equal "day status ok" "$(jget 'j["day"]["status"]')" ok
equal "month status ok" "$(jget 'j["month"]["status"]')" ok
close_to "day spent" "$(jget 'j["day"]["spentUsd"]')" 0.0225
close_to "day budget" "$(jget 'j["day"]["budgetUsd"]')" "$DAILY_BUDGET"
run ctl budget --socket "$SOCK"
check "budget (check is the default)" 0 "day:"
run ctl budget check --socket "$SOCK" --warn-at 0.01
check "--warn-at under the spend: exit 1" 1 "warning"
run ctl record --socket "$SOCK" --model house-model --cost-usd 0.9775 --json
check "record up to the budget" 0 '"costUsd":0.9775'
run ctl budget check --socket "$SOCK" --json
check "at exactly 100%: exit 1" 1 '"exceeded"'
run ctl record --socket "$SOCK" --model house-model --cost-usd 0.5 --json
check "record over the daily budget (record still accepted)" 0 '"costUsd":0.5'
run ctl budget check --socket "$SOCK"
check "over the daily budget: exit 1" 1 "exceeded"
run ctl budget check --socket "$SOCK" --json
check "over budget --json: exit 1" 1
json_valid "over budget --json is JSON"
equal "day status exceeded" "$(jget 'j["day"]["status"]')" exceeded
equal "month status still ok" "$(jget 'j["month"]["status"]')" ok
close_to "day spent over budget" "$(jget 'j["day"]["spentUsd"]')" 1.5

echo "SIGTERM"
stop_daemon
equal "costd exits 0 on SIGTERM" "$DAEMON_RC" 0
run ctl ping --socket "$SOCK"
check_err "stopped daemon: exit 3" 3

echo "costd started by name from \$PATH, in another directory"
# argv[0] is then a bare name: costd must still find its own binary, and the vocabularies
# in the source tree it was built in.
(cd / && exec env -u COSTD_DATA_DIR PATH="$(dirname "$COSTD_BIN"):$PATH" \
    costd --socket "$SOCK" --state-dir "$STATE" >>"$TMP/daemon.log" 2>&1) &
DAEMON_PID=$!
if wait_for_daemon ctl ping --socket "$SOCK" --timeout 2; then
    printf 'hello world' >"$TMP/hello.txt"
    run ctl tokens --socket "$SOCK" "$TMP/hello.txt"
    check "tokens counted with the vocabulary found beside the build" 0 "o200k_base"
else
    fail "costd started from \$PATH" "did not answer"
fi
stop_daemon

summary costctl
