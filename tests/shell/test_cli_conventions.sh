#!/usr/bin/env bash
# The command-line conventions: every option of costctl and costd has help text; the man pages
# and the bash, zsh and fish completions are made and installed by scripts/install (staged
# with DESTDIR), and they are what they claim to be.
#
#   bash tests/shell/test_cli_conventions.sh     (COSTD_BIN / COSTCTL_BIN, else .build/debug)

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
COSTD_BIN=${COSTD_BIN:-$REPO/.build/debug/costd}
COSTCTL_BIN=${COSTCTL_BIN:-$REPO/.build/debug/costctl}

TMP=$(mktemp -d /tmp/costd-cli.XXXXXX)
DAEMON_PID=
. "$HERE/lib.sh"
trap 'rm -rf "$TMP"' EXIT

# undocumented BINARY: every option and argument (of every subcommand) without help text.
undocumented() {
    "$1" --experimental-dump-help | python3 -c '
import json, sys
missing = []
def walk(command, path):
    if command.get("commandName") == "help":
        return
    for argument in command.get("arguments") or []:
        if not argument.get("abstract", "").strip():
            names = [n["name"] for n in argument.get("names") or []] or [argument.get("valueName")]
            missing.append(path + " " + "/".join(names))
    for child in command.get("subcommands") or []:
        walk(child, path + " " + child["commandName"])
dump = json.load(sys.stdin)["command"]
walk(dump, dump["commandName"])
print("\n".join(missing))
'
}

for bin in "$COSTCTL_BIN" "$COSTD_BIN"; do
    name=$(basename "$bin")
    OUT=$(undocumented "$bin")
    RC=$?
    if [ "$RC" -eq 0 ] && [ -z "$OUT" ]; then pass "$name: every option has help text"; else fail "$name: options without help" "$OUT"; fi
done

echo "scripts/install, staged"
DEST=$TMP/dest
run env DESTDIR="$DEST" PREFIX=/usr COSTD_SKIP_BUILD=1 COSTD_BIN_DIR="$(dirname "$COSTCTL_BIN")" "$REPO/scripts/install"
check "install ran" 0
for file in usr/share/man/man1/costctl.1 usr/share/man/man8/costd.8 \
    usr/share/bash-completion/completions/costctl usr/share/zsh/site-functions/_costctl \
    usr/share/fish/vendor_completions.d/costctl.fish usr/share/bash-completion/completions/costd; do
    if [ -s "$DEST/$file" ]; then pass "installed $file"; else fail "installed $file" "missing or empty"; fi
done

# The man pages render, and say what --help says.
page=$(MANWIDTH=100 man -l "$DEST/usr/share/man/man1/costctl.1" 2>&1)
for needle in "NAME" "costctl - Talk to the costd daemon" "costctl record" "--input-tokens <input-tokens>" \
    "Prompt tokens the provider billed." "Exit status"; do
    case $page in *"$needle"*) pass "costctl.1 shows '$needle'" ;; *) fail "costctl.1 shows '$needle'" "${page:0:400}" ;; esac
done
warnings=$(groff -man -Tutf8 -ww -z "$DEST/usr/share/man/man8/costd.8" 2>&1)
equal "costd.8 has no roff warnings" "$warnings" ""
case $(MANWIDTH=100 man -l "$DEST/usr/share/man/man8/costd.8" 2>&1) in
*"--ledger-fsync <ledger-fsync>"*) pass "costd.8 lists --ledger-fsync" ;;
*) fail "costd.8 lists --ledger-fsync" ;;
esac

# The bash completion loads and completes subcommands and options.
completions=$(bash -c '
    . "$1"
    COMP_WORDS=(costctl rec); COMP_CWORD=1; COMP_LINE="costctl rec"; COMP_POINT=${#COMP_LINE}
    _costctl costctl rec costctl
    printf "%s\n" "${COMPREPLY[@]}"
    COMP_WORDS=(costctl record --inp); COMP_CWORD=2; COMP_LINE="costctl record --inp"; COMP_POINT=${#COMP_LINE}
    _costctl costctl --inp record
    printf "%s\n" "${COMPREPLY[@]}"
' _ "$DEST/usr/share/bash-completion/completions/costctl" 2>&1)
case $completions in *record*) pass "bash completes 'costctl rec' to record" ;; *) fail "bash completes 'costctl rec'" "$completions" ;; esac
case $completions in *--input-tokens*) pass "bash completes 'costctl record --inp'" ;; *) fail "bash completes 'costctl record --inp'" "$completions" ;; esac
if command -v zsh >/dev/null 2>&1; then
    run zsh -n "$DEST/usr/share/zsh/site-functions/_costctl"
    check "the zsh completion parses" 0
else
    skip "zsh is not installed"
fi
if command -v fish >/dev/null 2>&1; then
    run fish --no-execute "$DEST/usr/share/fish/vendor_completions.d/costctl.fish"
    check "the fish completion parses" 0
else
    skip "fish is not installed"
fi

echo "the config file, searched when --config is not given"
SOCK=$TMP/costd.sock
mkdir -p "$TMP/xdg/costd"
printf '[budget]\ndaily = 7.25\n' >"$TMP/xdg/costd/costd.toml"
XDG_CONFIG_HOME=$TMP/xdg HOME=$TMP "$COSTD_BIN" --socket "$SOCK" --state-dir "$TMP/state" --no-http >>"$TMP/daemon.log" 2>&1 &
DAEMON_PID=$!
trap 'stop_daemon; rm -rf "$TMP"' EXIT
if wait_for_daemon "$COSTCTL_BIN" ping --socket "$SOCK" --timeout 2; then
    run "$COSTCTL_BIN" report --json --socket "$SOCK"
    check "\$XDG_CONFIG_HOME/costd/costd.toml is read" 0 '"budgetUsd":7.25'
else
    fail "costd started with \$XDG_CONFIG_HOME/costd/costd.toml" "$(cat "$TMP/daemon.log")"
fi
stop_daemon

summary "cli conventions"
