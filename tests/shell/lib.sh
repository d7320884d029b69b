# Helpers shared by the shell tests: counting checks, running commands, stopping the daemon,
# the closing summary. Source it after setting TMP (a scratch directory) and DAEMON_PID.

PASSED=0
FAILED=0
SKIPPED=0
FAILURES=()
STARTED=$(date +%s.%N)

pass() {
    PASSED=$((PASSED + 1))
    printf '  ok    %s\n' "$1"
}

fail() {
    FAILED=$((FAILED + 1))
    FAILURES+=("$1")
    printf '  FAIL  %s\n' "$1"
    [ $# -ge 2 ] && printf '        %s\n' "${2:0:600}"
}

skip() {
    SKIPPED=$((SKIPPED + 1))
    printf '  skip  %s\n' "$1"
}

# run CMD...: sets OUT (stdout), ERR (stderr) and RC.
run() {
    OUT=$("$@" 2>"$TMP/stderr")
    RC=$?
    ERR=$(cat "$TMP/stderr")
}

# check NAME EXPECTED_RC NEEDLE...: the last `run` exited with EXPECTED_RC and its stdout
# holds every NEEDLE (a literal substring).
check() {
    local name=$1 want=$2 needle
    shift 2
    if [ "$RC" != "$want" ]; then
        fail "$name" "exit $RC, expected $want; stdout: $OUT; stderr: $ERR"
        return
    fi
    for needle in "$@"; do
        case $OUT in
        *"$needle"*) ;;
        *)
            fail "$name" "missing '$needle' in: $OUT"
            return
            ;;
        esac
    done
    pass "$name"
}

# check_not NAME NEEDLE: the last stdout does NOT hold NEEDLE.
check_not() {
    case $OUT in
    *"$2"*) fail "$1" "unexpected '$2' in: $OUT" ;;
    *) pass "$1" ;;
    esac
}

equal() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got [$2], expected [$3]"; fi
}

# wait_for_daemon PROBE...: waits up to 5 s for the daemon (DAEMON_PID) to answer PROBE.
wait_for_daemon() {
    local i
    for i in $(seq 1 500); do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            echo "costd exited at start:" >&2
            cat "$TMP/daemon.log" >&2
            DAEMON_PID=
            return 1
        fi
        if [ -S "$SOCK" ] && "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.01
    done
    echo "costd did not answer within 5 s" >&2
    return 1
}

# stop_daemon: SIGTERM, then SIGKILL after 5 s; sets DAEMON_RC to costd's exit status.
stop_daemon() {
    DAEMON_RC=
    if [ -n "$DAEMON_PID" ]; then
        kill -TERM "$DAEMON_PID" 2>/dev/null
        local i
        for i in $(seq 1 500); do
            kill -0 "$DAEMON_PID" 2>/dev/null || break
            sleep 0.01
        done
        kill -KILL "$DAEMON_PID" 2>/dev/null
        wait "$DAEMON_PID" 2>/dev/null
        DAEMON_RC=$?
        DAEMON_PID=
    fi
}

# summary NAME: the closing lines; returns non-zero when a check failed.
summary() {
    local elapsed
    elapsed=$(awk -v a="$STARTED" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    echo
    if [ "$FAILED" -ne 0 ]; then
        echo "failed checks:"
        printf '  %s\n' "${FAILURES[@]}"
    fi
    echo "took ${elapsed} s"
    echo "$1: $PASSED passed, $FAILED failed, $SKIPPED skipped"
    [ "$FAILED" -eq 0 ]
}
