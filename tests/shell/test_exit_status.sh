#!/usr/bin/env bash
# costctl and clients/shell/costd.sh give the same outcome the same exit status (README, "Exit
# status"): each outcome is produced through both, against one real daemon, and the two
# statuses must be equal and the documented one.
#
#   bash tests/shell/test_exit_status.sh     (COSTD_BIN / COSTCTL_BIN, else .build/debug)

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
COSTD_BIN=${COSTD_BIN:-$REPO/.build/debug/costd}
COSTCTL_BIN=${COSTCTL_BIN:-$REPO/.build/debug/costctl}
CLIENT=$REPO/clients/shell/costd.sh

TMP=$(mktemp -d /tmp/costd-exit.XXXXXX)
SOCK=$TMP/costd.sock
DAEMON_PID=
. "$HERE/lib.sh"

finish() {
    stop_daemon
    rm -rf "$TMP"
}
trap finish EXIT
trap 'exit 130' INT TERM

unset COSTD_SOCKET
export XDG_RUNTIME_DIR=$TMP/no-runtime-dir
printf '[budget]\ndaily = 0.001\nhard_daily = true\n' >"$TMP/costd.toml"
"$COSTD_BIN" --socket "$SOCK" --state-dir "$TMP/state" --config "$TMP/costd.toml" --no-http >>"$TMP/daemon.log" 2>&1 &
DAEMON_PID=$!
wait_for_daemon "$COSTCTL_BIN" ping --socket "$SOCK" --timeout 2 || exit 1

# same NAME WANT -- COSTCTL-ARGS... -- COSTD.SH-ARGS...: both exit WANT.
same() {
    local name=$1 want=$2 ctl_args=() sh_args=()
    shift 3
    while [ $# -gt 0 ] && [ "$1" != -- ]; do ctl_args+=("$1"); shift; done
    shift
    sh_args=("$@")
    COSTD_SOCKET=${SOCKET_OVERRIDE:-$SOCK} "$COSTCTL_BIN" "${ctl_args[@]}" >/dev/null 2>&1
    local ctl_rc=$?
    COSTD_SOCKET=${SOCKET_OVERRIDE:-$SOCK} bash "$CLIENT" "${sh_args[@]}" >/dev/null 2>&1
    local sh_rc=$?
    if [ "$ctl_rc" = "$want" ] && [ "$sh_rc" = "$want" ]; then
        pass "$name: both exit $want"
    else
        fail "$name" "costctl exited $ctl_rc, costd.sh $sh_rc; both should exit $want"
    fi
}

BIG='{"model":"gpt-4o","inputTokens":100000,"maxOutputTokens":100000}'
"$COSTCTL_BIN" set --socket "$SOCK" --model gpt-4o --json-prompt '"stored"' '"an answer"' >/dev/null 2>&1

same "success" 0 -- ping -- ping
same "a cache hit" 0 -- get --model gpt-4o --json-prompt '"stored"' -- cache_get gpt-4o '"stored"'
same "a cache miss" 1 -- get --model gpt-4o --json-prompt '"never stored"' -- cache_get gpt-4o '"never stored"'
same "a budget exceeded (-32000)" 1 -- call reserve "$BIG" -- call reserve "$BIG"
same "bad usage: a missing argument" 2 -- record -- record
same "bad usage: a malformed number" 2 -- record --model gpt-4o --input-tokens many -- record gpt-4o many 1
same "another error answer (-32601)" 4 -- call noSuchMethod -- call noSuchMethod
same "another error answer (-32602)" 4 -- call report '{"date":"yesterday"}' -- call report '{"date":"yesterday"}'
SOCKET_OVERRIDE=$TMP/nothing.sock same "costd unreachable" 3 -- ping -- ping
stop_daemon
same "costd stopped" 3 -- ping -- ping

summary "exit status"
