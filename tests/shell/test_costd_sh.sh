#!/usr/bin/env bash
# Tests of clients/shell/costd.sh against a real costd daemon (plain bash, no bats).
#
#   COSTD_BIN=/path/to/costd bash tests/shell/test_costd_sh.sh
#
# The daemon is $COSTD_BIN, else <repo>/.build/debug/costd, else /tmp/costd-snapshot/costd.
# It runs on a temporary socket and state directory and is stopped on exit, whatever happens.
# Exits non-zero when any check fails.

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CLIENT=$REPO/clients/shell/costd.sh

if [ -z "${COSTD_BIN:-}" ]; then
    for candidate in "$REPO/.build/debug/costd" /tmp/costd-snapshot/costd; do
        if [ -x "$candidate" ]; then
            COSTD_BIN=$candidate
            break
        fi
    done
fi
if [ -z "${COSTD_BIN:-}" ] || [ ! -x "$COSTD_BIN" ]; then
    echo "no costd binary: set COSTD_BIN or build .build/debug/costd" >&2
    exit 2
fi

TMP=$(mktemp -d /tmp/costd-sh-test.XXXXXX)
SOCK=$TMP/costd.sock
STATE=$TMP/state
DAEMON_PID=
# shellcheck source=lib.sh
. "$HERE/lib.sh"
HELPER_PIDS=()

start_daemon() {
    "$COSTD_BIN" --socket "$SOCK" --state-dir "$STATE" --daily-budget 50 --monthly-budget 1000 \
        "$@" >>"$TMP/daemon.log" 2>&1 &
    DAEMON_PID=$!
    COSTD_TIMEOUT=2 wait_for_daemon costd_ping
}


finish() {
    stop_daemon
    local pid
    for pid in "${HELPER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap finish EXIT
trap 'exit 130' INT TERM

# shellcheck source=../../clients/shell/costd.sh
. "$CLIENT"
export COSTD_SOCKET=$SOCK





# run CMD...: sets OUT (stdout), ERR (stderr) and RC.

# check NAME EXPECTED_RC NEEDLE...: the last `run` exited with EXPECTED_RC and its stdout
# holds every NEEDLE (a literal substring).

# check_not NAME NEEDLE: the last stdout does NOT hold NEEDLE.


echo "costd.sh tests against $COSTD_BIN"
if ! start_daemon; then
    echo "0 passed, 1 failed"
    exit 1
fi

echo "socket resolution"
equal "COSTD_SOCKET wins" "$(COSTD_SOCKET=/a.sock XDG_RUNTIME_DIR=/run/user/1 costd_socket_path)" /a.sock
equal "then XDG_RUNTIME_DIR" "$(COSTD_SOCKET='' XDG_RUNTIME_DIR=/run/user/1 costd_socket_path)" /run/user/1/costd.sock
equal "then /run/costd" "$(unset COSTD_SOCKET XDG_RUNTIME_DIR; costd_socket_path)" /run/costd/costd.sock

echo "JSON string escaping"
equal "quotes and backslashes" "$(costd_json_string 'say "hi" \ \n')" '"say \"hi\" \\ \\n"'
equal "control characters" "$(costd_json_string $'a\nb\tc\rd\be\ff\001g\037h')" '"a\nb\tc\rd\be\ff\u0001g\u001fh"'
equal "non-ASCII as is" "$(costd_json_string 'héllo 日本 🎉')" '"héllo 日本 🎉"'
equal "empty string" "$(costd_json_string '')" '""'

echo "ping"
run costd_ping
check "ping answers" 0 '"jsonrpc":"2.0"' '"pong":true' '"ledger":"ok"'

echo "route"
run costd_route classification "Is this spam? Buy now"
check "route by task" 0 '"model":"gpt-4o-mini"' '"reason":"task"' '"inputTokensExact":false'
run costd_route summarization
check "route without prompt" 0 '"model":"gpt-4o"' '"reason":"default"'
check_not "route without prompt has no size" '"inputTokens"'
run costd_route "" "Ünïcödé prompt — 日本語のテキスト 🎉"
check "route non-ASCII prompt, no task" 0 '"reason":"default"' '"inputTokens":'

echo "cache"
PROMPT='{"messages":[{"role":"user","content":"Grüß Gott — 你好 🎉"}],"temperature":0}'
run costd_cache_get gpt-4o "$PROMPT"
check "cache miss" 1 '"hit":false'
VALUE=$(costd_json_string $'Answer: "ja" \\ naïve\nline2\t\001 🎉')
run costd_cache_set gpt-4o "$PROMPT" "{\"text\":$VALUE}" 600
check "cache set with ttl" 0 '"stored":true' '"ttl":600'
run costd_cache_get gpt-4o '{"temperature":0,"messages":[{"content":"Grüß Gott — 你好 🎉","role":"user"}]}'
check "cache hit (canonical key, non-ASCII)" 0 '"hit":true' "\"value\":{\"text\":$VALUE}" '"layer":"l1"'
run costd_cache_get gpt-4o-mini "$PROMPT"
check "model is part of the key" 1 '"hit":false'
run costd_cache_set gpt-4o '"p"' '"in ns"' "" tenant-ä
check "cache set in a namespace" 0 '"stored":true'
run costd_cache_get gpt-4o '"p"' tenant-ä
check "cache get in the namespace" 0 '"hit":true' '"value":"in ns"'
run costd_cache_get gpt-4o '"p"'
check "namespaces are apart" 1 '"hit":false'
run costd_cache_set gpt-4o '"short"' '1' 0.2
check "fractional ttl" 0 '"ttl":0.2'
sleep 0.3
run costd_cache_get gpt-4o '"short"'
check "expired entry" 1 '"hit":false'
run costd_cache_delete gpt-4o "$PROMPT"
check "cache delete" 0 '"deleted":true'
run costd_cache_delete gpt-4o "$PROMPT"
check "cache delete again" 0 '"deleted":false'
run costd_cache_flush tenant-ä
check "cache flush of a namespace" 0 '"flushed":1'
run costd_cache_set gpt-4o '"v"' '{"error":"this is a value, not an error"}'
run costd_cache_get gpt-4o '"v"'
check "a value holding \"error\" is a result" 0 '"hit":true'
COSTD_JQ=0 run costd_cache_get gpt-4o '"v"'
check "... also without jq" 0 '"hit":true'
run costd_cache_set gpt-4o '"p"' '"v"' 1e3
check "bad ttl is a usage error" 2

echo "record"
run costd_record gpt-4o 1000 500 "Zoë" "search"
check "record" 0 '"costUsd":0.0075' '"day":{"spentUsd":0.0075,"budgetUsd":50,"remainingUsd":49.9925}' '"alerts":[]'
run costd_record gpt-4o 1000 500 ann summary order-7
check "record with recordId" 0 '"recordId":"order-7"'
run costd_record gpt-4o 1000 500 ann summary order-7
check "same recordId is a duplicate" 0 '"duplicate":true'
run costd_record no-such-model 1 1
check "unknown model is an error" 4 '"code":-32001' '"data":{"model":"no-such-model"}'
COSTD_JQ=0 run costd_record no-such-model 1 1
check "... also without jq" 4 '"code":-32001'
run costd_record gpt-4o many 1
check "non-integer tokens are a usage error" 2
run costd_record gpt-4o
check "missing arguments are a usage error" 2

echo "report"
run costd_report
check "report of today" 0 '"period":"day"' '"totalCostUsd":0.015' '"requests":2' '"Zoë":{"costUsd":0.0075' '"search":{'
run costd_report "" month
check "report of the month" 0 '"period":"month"' '"budgetUsd":1000'
run costd_report 2020-02-03 month
check "report of a past month" 0 '"periodKey":"2020-02"' '"totalCostUsd":0'
run costd_report 2020-13-45
check "invalid date is an error" 4 '"code":-32602'

echo "estimate"
run costd_estimate gpt-4o-mini 1000 500 200
check "estimate" 0 '"perRequestUsd":0.000195' '"monthlyUsd":5.85' '"days":30'
run costd_estimate gpt-4o 10 100.5 20.25 7
check "estimate with fractions and days" 0 '"days":7'

echo "reserve, release, tokens, cache release"
run costd_reserve gpt-4o 10000 2000 ann
check "reserve" 0 '"reservation":"rsv-' '"amountUsd":0.045'
RESERVATION=$(printf '%s' "$OUT" | sed -n 's/.*"reservation":"\([^"]*\)".*/\1/p')
run costd_release_reservation "$RESERVATION"
check "release the reservation" 0 '"released":true'
run costd_release_reservation "$RESERVATION"
check "release it again" 0 '"released":false'
run costd_reserve gpt-4o ten 2000
check "non-integer reserve tokens are a usage error" 2
run costd_tokens "hello world" gpt-4o
check "tokens" 0 '"tokens":2' '"encoding":"o200k_base"'
run costd_call cacheGet '{"model":"gpt-4o","prompt":"leased","lease":true}'
check "a miss with lease: true takes the lease" 0 '"lease":"'
LEASE=$(printf '%s' "$OUT" | sed -n 's/.*"lease":"\([^"]*\)".*/\1/p')
run costd_cache_release gpt-4o '"leased"' "$LEASE"
check "cache release" 0 '"released":true'
run costd_cache_release gpt-4o '"leased"'
check "cache release without a lease is a usage error" 2

echo "costd_call and errors"
run costd_call route '{"task":"extraction","inputTokens":42}'
check "generic call" 0 '"tier":"simple"' '"inputTokens":42' '"inputTokensExact":true'
run costd_call ping
check "call without params" 0 '"pong":true'
run costd_call noSuchMethod '{}'
check "unknown method: non-zero, answer printed" 4 '"code":-32601' '"data":{"method":"noSuchMethod"}'
run costd_call record '{"model":"gpt-4o"}'
check "invalid params" 4 '"code":-32602' 'inputTokens'
run costd_call cacheGet '{"model":"m","prompt":'
check "invalid JSON params: parse error" 4 '"code":-32700' '"id":null'
run costd_call "méthode-ü" '{}'
check "non-ASCII method name" 4 '"code":-32601' 'méthode-ü'
BIG=$(head -c 4200000 /dev/zero | tr '\0' x)
run costd_cache_set m '"big"' "\"$BIG\""
check "frame over 4 MiB" 4 '"code":-32002' '"limit":4194304'
unset BIG
run costd_call
check "costd_call without method" 2

echo "byte lengths"
# 3000 four-byte characters: a frame whose character and byte counts differ by 9000.
EMOJI=$(printf '🎉%.0s' $(seq 1 3000))
run costd_cache_set m '"emoji"' "\"$EMOJI\""
check "multi-byte frame accepted" 0 '"stored":true'
run costd_cache_get m '"emoji"'
check "multi-byte value intact" 0 "\"value\":\"$EMOJI\""

echo "nc transport"
if nc -h 2>&1 | grep -q -- '-U'; then
    HAVE_NC=1
    COSTD_TRANSPORT=nc run costd_ping
    check "ping over nc -U" 0 '"pong":true'
    COSTD_TRANSPORT=nc run costd_record gpt-4o 10 10
    check "record over nc -U" 0 '"costUsd":'
    COSTD_TRANSPORT=nc run costd_call nope
    check "error over nc -U" 4 '"code":-32601'
else
    HAVE_NC=0
    skip "nc transport (no nc with -U: apt-get install netcat-openbsd)"
fi

echo "as a command and under set -euo pipefail"
run "$CLIENT" ping
check "costd.sh ping" 0 '"pong":true'
run "$CLIENT" record gpt-4o 1 1 cli
check "costd.sh record" 0 '"costUsd":'
run "$CLIENT" report
check "costd.sh report" 0 '"cli":{'
run bash -c 'set -euo pipefail; . "$1"; costd_ping >/dev/null; if costd_call nope 2>/dev/null >/dev/null; then exit 3; fi; costd_route classification hi' _ "$CLIENT"
check "strict mode caller" 0 '"model":"gpt-4o-mini"'

echo "daemon unreachable"
COSTD_SOCKET=$TMP/nothing.sock run costd_ping
check "no socket: exit 3" 3
case $ERR in *unreachable*) pass "no socket: says so" ;; *) fail "no socket: says so" "$ERR" ;; esac
# A socket nobody answers on: the timeout ends the call.
if [ "$HAVE_NC" = 1 ]; then
    nc -lU "$TMP/silent.sock" >/dev/null 2>&1 </dev/null &
    HELPER_PIDS+=($!)
    for _ in $(seq 1 200); do [ -S "$TMP/silent.sock" ] && break; sleep 0.01; done
    T0=$(date +%s)
    COSTD_SOCKET=$TMP/silent.sock COSTD_TIMEOUT=1 run costd_ping
    check "silent daemon: exit 3 after COSTD_TIMEOUT" 3
    if [ $(($(date +%s) - T0)) -le 4 ]; then pass "timeout is bounded"; else fail "timeout is bounded" "took $(($(date +%s) - T0)) s"; fi
else
    skip "silent daemon timeout (needs nc -lU)"
fi

echo "restart"
TOTAL_BEFORE=$(costd_report | grep -o '"totalCostUsd":[0-9.e-]*')
stop_daemon
if [ -e "$SOCK" ]; then
    run costd_ping
    check "stopped daemon: exit 3" 3
else
    run costd_ping
    check "stopped daemon (socket removed): exit 3" 3
fi
if start_daemon; then pass "daemon restarted on the same socket"; else fail "daemon restarted on the same socket"; fi
run costd_report
check "ledger survived the restart" 0 "$TOTAL_BEFORE"
run costd_record gpt-4o 1000 500 ann summary order-7
check "recordId window survived the restart" 0 '"duplicate":true'
kill -KILL "$DAEMON_PID" 2>/dev/null
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
run costd_ping
check "killed daemon, stale socket: exit 3" 3

summary costd.sh
