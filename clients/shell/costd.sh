#!/usr/bin/env bash
# costd.sh — talk to the costd daemon from bash, without Python.
#
#   . clients/shell/costd.sh              # then call the functions below
#   clients/shell/costd.sh ping           # or run it: costd.sh METHOD-OR-FUNCTION ARGS...
#
# Functions (each prints the whole JSON-RPC answer on stdout):
#   costd_call METHOD [PARAMS_JSON]             any method; PARAMS_JSON is a JSON object
#   costd_ping
#   costd_route TASK [PROMPT]                   TASK may be "" (no task)
#   costd_cache_get MODEL PROMPT_JSON [NAMESPACE]
#   costd_cache_set MODEL PROMPT_JSON VALUE_JSON [TTL] [NAMESPACE]
#   costd_cache_delete MODEL PROMPT_JSON [NAMESPACE]
#   costd_cache_flush [NAMESPACE]
#   costd_record MODEL INPUT_TOKENS OUTPUT_TOKENS [USER] [FEATURE] [RECORD_ID]
#   costd_report [DATE] [PERIOD]                DATE is YYYY-MM-DD ("" for today), PERIOD day|month
#   costd_estimate MODEL DAILY_REQUESTS AVG_INPUT_TOKENS AVG_OUTPUT_TOKENS [DAYS]
#   costd_subscribe [SINCE]                     the latest alert's id (follow alerts: costctl alerts --follow)
#   costd_json_string STRING                    STRING as a JSON string literal
#   costd_socket_path                           the socket these functions use
#
# Exit status, the same as costctl's (README, "Exit status"): 0 on a result; 1 on a negative
# answer (a cache miss from costd_cache_get, a budget exceeded: error -32000); 2 on a usage
# error; 3 when the daemon cannot be reached or the answer is cut short (message on stderr);
# 4 on any other JSON-RPC error answer (still printed).
#
# The socket: $COSTD_SOCKET, else $XDG_RUNTIME_DIR/costd.sock, else /run/costd/costd.sock.
# Transport: socat, else `nc -U` (OpenBSD netcat); force one with COSTD_TRANSPORT=socat|nc.
# COSTD_TIMEOUT (seconds, default 30) bounds one call. jq is used when present (never
# needed; COSTD_JQ=0 leaves it unused).
#
# Frames are a 4-byte big-endian length and that many bytes of UTF-8 JSON; lengths are
# counted in bytes (LC_ALL=C), so non-ASCII text is framed correctly.

# The socket path, resolved like the daemon does.
costd_socket_path() {
    if [ -n "${COSTD_SOCKET:-}" ]; then
        printf '%s\n' "$COSTD_SOCKET"
    elif [ -n "${XDG_RUNTIME_DIR:-}" ]; then
        printf '%s\n' "${XDG_RUNTIME_DIR%/}/costd.sock"
    else
        printf '%s\n' /run/costd/costd.sock
    fi
}

# costd_json_string STRING: prints STRING as a JSON string (quotes, backslashes and control
# characters escaped; other bytes, UTF-8 included, as they are).
costd_json_string() (
    LC_ALL=C
    s=${1-}
    bs='\'
    q='"'
    s=${s//"$bs"/"$bs$bs"}
    s=${s//"$q"/"$bs$q"}
    s=${s//$'\n'/"${bs}n"}
    s=${s//$'\r'/"${bs}r"}
    s=${s//$'\t'/"${bs}t"}
    s=${s//$'\b'/"${bs}b"}
    s=${s//$'\f'/"${bs}f"}
    case $s in
    *[$'\001'-$'\037']*)
        # The remaining control characters, as \u00XX.
        for code in 1 2 3 4 5 6 7 11 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31; do
            printf -v ch "\\$(printf '%03o' "$code")"
            printf -v esc '%su%04x' "$bs" "$code"
            s=${s//"$ch"/"$esc"}
        done
        ;;
    esac
    printf '"%s"\n' "$s"
)

# Whether a JSON-RPC answer is an error: a top-level "error" member (jq if present, else a
# small scanner that skips strings and nested values, so "error" inside a result is ignored).
_costd_is_error() {
    if [ "${COSTD_JQ:-1}" != 0 ] && command -v jq >/dev/null 2>&1; then
        printf '%s' "$1" | jq -e 'type == "object" and has("error")' >/dev/null 2>&1
        return
    fi
    printf '%s' "$1" | LC_ALL=C awk '
        { s = s $0 "\n" }
        END {
            n = length(s); depth = 0; instr = 0; esc = 0; key = 0; found = 0
            for (i = 1; i <= n; i++) {
                c = substr(s, i, 1)
                if (instr) {
                    if (esc) { esc = 0; if (top) buf = buf "\\" c; continue }
                    if (c == "\\") { esc = 1; continue }
                    if (c == "\"") { instr = 0; if (top) { last = buf; key = 1 }; continue }
                    if (top) buf = buf c
                    continue
                }
                if (c == " " || c == "\t" || c == "\r" || c == "\n") continue
                if (c == "\"") { instr = 1; top = (depth == 1); buf = ""; continue }
                if (c == ":" && key && depth == 1 && last == "error") { found = 1; break }
                key = 0
                if (c == "{" || c == "[") depth++
                else if (c == "}" || c == "]") depth--
            }
            exit(found ? 0 : 1)
        }'
}

_costd_transport() {
    case ${COSTD_TRANSPORT:-} in
    socat | nc) printf '%s\n' "$COSTD_TRANSPORT"; return 0 ;;
    "") ;;
    *) echo "costd: COSTD_TRANSPORT must be socat or nc, not '$COSTD_TRANSPORT'" >&2; return 1 ;;
    esac
    if command -v socat >/dev/null 2>&1; then
        echo socat
    elif command -v nc >/dev/null 2>&1; then
        echo nc
    else
        echo "costd: neither socat nor nc is installed" >&2
        return 1
    fi
}

# costd_call METHOD [PARAMS_JSON]: one request on its own connection; prints the answer.
costd_call() (
    set +e +u
    set +o pipefail 2>/dev/null
    export LC_ALL=C
    IFS=$' \t\n'
    trap '' PIPE # a daemon that hangs up must not kill the shell mid-write
    if [ $# -lt 1 ] || [ -z "$1" ]; then
        echo "usage: costd_call METHOD [PARAMS_JSON]" >&2
        exit 2
    fi
    method=$1
    params=${2-}
    sock=$(costd_socket_path)
    if [ ! -S "$sock" ]; then
        echo "costd: daemon unreachable: no socket at $sock" >&2
        exit 3
    fi
    transport=$(_costd_transport) || exit 3

    # One call per connection: the id only has to be there.
    body="{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":$(costd_json_string "$method")"
    if [ -n "$params" ]; then
        body="$body,\"params\":$params"
    fi
    body="$body}"
    size=${#body} # bytes: LC_ALL=C
    header=$(printf '\\%03o\\%03o\\%03o\\%03o' \
        $((size >> 24 & 255)) $((size >> 16 & 255)) $((size >> 8 & 255)) $((size & 255)))

    dir=$(mktemp -d "${TMPDIR:-/tmp}/costd-sh.XXXXXX") || exit 3
    connector=
    watchdog=
    cleanup() {
        exec 3>&- 4<&- 2>/dev/null
        [ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null
        if [ -n "$connector" ]; then
            kill "$connector" 2>/dev/null
            wait "$connector" 2>/dev/null
        fi
        [ -n "$watchdog" ] && wait "$watchdog" 2>/dev/null
        rm -rf "$dir"
    }
    trap cleanup EXIT
    mkfifo "$dir/request" "$dir/answer" || exit 3

    # The connector reads the request from one FIFO and writes the answer to the other. Its
    # input stays open until the answer is read: the daemon drops answers still pending when
    # a client half-closes.
    case $transport in
    socat) socat -t 1 - "UNIX-CONNECT:$sock" <"$dir/request" >"$dir/answer" 2>"$dir/error" & ;;
    nc) nc -U "$sock" <"$dir/request" >"$dir/answer" 2>"$dir/error" & ;;
    esac
    connector=$!
    exec 3>"$dir/request" 4<"$dir/answer"
    # The watchdog ends the connector after COSTD_TIMEOUT seconds (the read below then sees
    # the end of the answer stream); killed itself, it takes its sleep along.
    (
        trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
        sleep "${COSTD_TIMEOUT:-30}" &
        sleeper=$!
        wait "$sleeper" && kill "$connector"
    ) 2>/dev/null &
    watchdog=$!

    { printf "$header"; printf '%s' "$body"; } >&3 2>/dev/null

    # The 4-byte length, read byte by byte so that nothing after it is consumed.
    set -- $(dd bs=1 count=4 2>/dev/null <&4 | od -An -tu1)
    if [ $# -ne 4 ]; then
        reason=$(head -c 300 "$dir/error" 2>/dev/null | tr '\n' ' ')
        echo "costd: daemon unreachable at $sock: no answer${reason:+ ($reason)}" >&2
        exit 3
    fi
    length=$(($1 << 24 | $2 << 16 | $3 << 8 | $4))
    answer=$(head -c "$length" <&4)
    if [ "${#answer}" -ne "$length" ]; then
        echo "costd: the answer was cut short (${#answer} of $length bytes)" >&2
        exit 3
    fi
    printf '%s\n' "$answer"
    if _costd_is_error "$answer"; then
        # -32000, a budget exceeded, is a negative answer; any other error is a failure.
        case $answer in
        *'"error":{"code":-32000,'*) exit 1 ;;
        *) exit 4 ;;
        esac
    fi
    exit 0
)

# Appends ,"name":value to a params object being built (value is JSON already).
_costd_member() {
    printf '%s"%s":%s' "${3:+,}" "$1" "$2"
}

_costd_require_number() {
    case $2 in
    '' | *[!0-9.]* | *.*.* | .* | *.)
        echo "costd: $1 must be a non-negative number, not '$2'" >&2
        return 2
        ;;
    esac
}

_costd_require_integer() {
    case $2 in
    '' | *[!0-9]*)
        echo "costd: $1 must be a non-negative integer, not '$2'" >&2
        return 2
        ;;
    esac
}

costd_ping() {
    costd_call ping
}

# costd_route TASK [PROMPT]
costd_route() (
    p=
    [ -n "${1-}" ] && p=$(_costd_member task "$(costd_json_string "$1")" "$p")
    [ $# -ge 2 ] && p=$p$(_costd_member prompt "$(costd_json_string "$2")" "$p")
    costd_call route "{$p}"
)

# costd_cache_get MODEL PROMPT_JSON [NAMESPACE]
costd_cache_get() (
    if [ $# -lt 2 ]; then
        echo "usage: costd_cache_get MODEL PROMPT_JSON [NAMESPACE]" >&2
        exit 2
    fi
    p="\"model\":$(costd_json_string "$1"),\"prompt\":$2"
    [ -n "${3-}" ] && p="$p,\"namespace\":$(costd_json_string "$3")"
    answer=$(costd_call cacheGet "{$p}")
    status=$?
    [ -n "$answer" ] && printf '%s\n' "$answer"
    [ "$status" -ne 0 ] && exit "$status"
    # A miss is a negative answer, as `costctl get` says: exit 1.
    case $answer in
    *'"result":{"hit":false'*) exit 1 ;;
    esac
    exit 0
)

# costd_cache_set MODEL PROMPT_JSON VALUE_JSON [TTL] [NAMESPACE]
costd_cache_set() (
    if [ $# -lt 3 ]; then
        echo "usage: costd_cache_set MODEL PROMPT_JSON VALUE_JSON [TTL] [NAMESPACE]" >&2
        exit 2
    fi
    p="\"model\":$(costd_json_string "$1"),\"prompt\":$2,\"value\":$3"
    if [ -n "${4-}" ]; then
        _costd_require_number TTL "$4" || exit
        p="$p,\"ttl\":$4"
    fi
    [ -n "${5-}" ] && p="$p,\"namespace\":$(costd_json_string "$5")"
    costd_call cacheSet "{$p}"
)

# costd_cache_delete MODEL PROMPT_JSON [NAMESPACE]
costd_cache_delete() (
    if [ $# -lt 2 ]; then
        echo "usage: costd_cache_delete MODEL PROMPT_JSON [NAMESPACE]" >&2
        exit 2
    fi
    p="\"model\":$(costd_json_string "$1"),\"prompt\":$2"
    [ -n "${3-}" ] && p="$p,\"namespace\":$(costd_json_string "$3")"
    costd_call cacheDelete "{$p}"
)

# costd_cache_flush [NAMESPACE]
costd_cache_flush() (
    p=
    [ -n "${1-}" ] && p="\"namespace\":$(costd_json_string "$1")"
    costd_call cacheFlush "{$p}"
)

# costd_record MODEL INPUT_TOKENS OUTPUT_TOKENS [USER] [FEATURE] [RECORD_ID]
costd_record() (
    if [ $# -lt 3 ]; then
        echo "usage: costd_record MODEL INPUT_TOKENS OUTPUT_TOKENS [USER] [FEATURE] [RECORD_ID]" >&2
        exit 2
    fi
    _costd_require_integer INPUT_TOKENS "$2" || exit
    _costd_require_integer OUTPUT_TOKENS "$3" || exit
    p="\"model\":$(costd_json_string "$1"),\"inputTokens\":$2,\"outputTokens\":$3"
    [ -n "${4-}" ] && p="$p,\"user\":$(costd_json_string "$4")"
    [ -n "${5-}" ] && p="$p,\"feature\":$(costd_json_string "$5")"
    [ -n "${6-}" ] && p="$p,\"recordId\":$(costd_json_string "$6")"
    costd_call record "{$p}"
)

# costd_report [DATE] [PERIOD]
costd_report() (
    p=
    [ -n "${1-}" ] && p=$(_costd_member date "$(costd_json_string "$1")" "$p")
    [ -n "${2-}" ] && p=$p$(_costd_member period "$(costd_json_string "$2")" "$p")
    costd_call report "{$p}"
)

# costd_estimate MODEL DAILY_REQUESTS AVG_INPUT_TOKENS AVG_OUTPUT_TOKENS [DAYS]
costd_estimate() (
    if [ $# -lt 4 ]; then
        echo "usage: costd_estimate MODEL DAILY_REQUESTS AVG_INPUT_TOKENS AVG_OUTPUT_TOKENS [DAYS]" >&2
        exit 2
    fi
    _costd_require_number DAILY_REQUESTS "$2" || exit
    _costd_require_number AVG_INPUT_TOKENS "$3" || exit
    _costd_require_number AVG_OUTPUT_TOKENS "$4" || exit
    p="\"model\":$(costd_json_string "$1"),\"dailyRequests\":$2,\"avgInputTokens\":$3,\"avgOutputTokens\":$4"
    if [ -n "${5-}" ]; then
        _costd_require_integer DAYS "$5" || exit
        p="$p,\"days\":$5"
    fi
    costd_call estimate "{$p}"
)

# costd_cache_release MODEL PROMPT_JSON LEASE [NAMESPACE]
costd_cache_release() (
    if [ $# -lt 3 ]; then
        echo "usage: costd_cache_release MODEL PROMPT_JSON LEASE [NAMESPACE]" >&2
        exit 2
    fi
    p="\"model\":$(costd_json_string "$1"),\"prompt\":$2,\"lease\":$(costd_json_string "$3")"
    [ -n "${4-}" ] && p="$p,\"namespace\":$(costd_json_string "$4")"
    costd_call cacheRelease "{$p}"
)

# costd_reserve MODEL INPUT_TOKENS MAX_OUTPUT_TOKENS [USER] [FEATURE]
costd_reserve() (
    if [ $# -lt 3 ]; then
        echo "usage: costd_reserve MODEL INPUT_TOKENS MAX_OUTPUT_TOKENS [USER] [FEATURE]" >&2
        exit 2
    fi
    _costd_require_integer INPUT_TOKENS "$2" || exit
    _costd_require_integer MAX_OUTPUT_TOKENS "$3" || exit
    p="\"model\":$(costd_json_string "$1"),\"inputTokens\":$2,\"maxOutputTokens\":$3"
    [ -n "${4-}" ] && p="$p,\"user\":$(costd_json_string "$4")"
    [ -n "${5-}" ] && p="$p,\"feature\":$(costd_json_string "$5")"
    costd_call reserve "{$p}"
)

# costd_release_reservation RESERVATION
costd_release_reservation() (
    if [ $# -lt 1 ]; then
        echo "usage: costd_release_reservation RESERVATION" >&2
        exit 2
    fi
    costd_call releaseReservation "{\"reservation\":$(costd_json_string "$1")}"
)

# costd_subscribe [SINCE]
# One call per connection: prints the subscription's answer (its lastId, the latest alert's
# id) and hangs up. To follow the alerts, use `costctl alerts --follow` (or --exec CMD).
costd_subscribe() (
    if [ -n "${1-}" ]; then
        costd_call subscribe "{\"since\":$(costd_json_string "$1")}"
    else
        costd_call subscribe "{}"
    fi
)

# costd_tokens TEXT [MODEL]
costd_tokens() (
    if [ $# -lt 1 ]; then
        echo "usage: costd_tokens TEXT [MODEL]" >&2
        exit 2
    fi
    p="\"text\":$(costd_json_string "$1")"
    [ -n "${2-}" ] && p="$p,\"model\":$(costd_json_string "$2")"
    costd_call tokens "{$p}"
)

# Run as a command: costd.sh ping | costd.sh record gpt-4o 1000 500 | costd.sh call METHOD JSON
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    if [ $# -lt 1 ]; then
        echo "usage: $0 ping|route|cache_get|cache_set|cache_delete|cache_flush|cache_release|record|report|estimate|reserve|release_reservation|tokens|subscribe|call ARGS..." >&2
        exit 2
    fi
    command=$1
    shift
    case $command in
    call | ping | route | cache_get | cache_set | cache_delete | cache_flush | cache_release | record | report | estimate | reserve | release_reservation | tokens | subscribe)
        "costd_$command" "$@"
        ;;
    *)
        costd_call "$command" "$@"
        ;;
    esac
fi
