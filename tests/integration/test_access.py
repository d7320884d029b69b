"""Who may do what, decided from the kernel's peer credentials: real second Unix users (made
here with useradd, as root) call a real daemon with ``costctl call`` under ``setpriv``.

A plain user may not flush or delete in shared namespaces, nor release another's reservation
(-32007, permission denied); root, the members of ``[access] admin_groups`` and the users of
``admin_users`` may. ``@me`` is a private namespace per uid that no other user can read or
overwrite."""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
from typing import Any, Dict, Iterator, List, Tuple

import pytest

PLAIN = "costd-probe"
OTHER = "costd-probe2"
BY_GROUP = "costd-probe-admin"
BY_NAME = "costd-probe-named"
ADMIN_GROUP = "costd-admins"
PERMISSION_DENIED = -32007


@pytest.fixture(scope="module")
def users() -> Iterator[Dict[str, int]]:
    """The test's Unix users (uids by name), made for it and removed after."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to make second Unix users (CI runs as root)")
    made_group = False
    made: List[str] = []
    try:
        try:
            grp.getgrnam(ADMIN_GROUP)
        except KeyError:
            subprocess.run(["groupadd", "--system", ADMIN_GROUP], check=True)
            made_group = True
        for name in (PLAIN, OTHER, BY_GROUP, BY_NAME):
            try:
                pwd.getpwnam(name)
            except KeyError:
                extra = ["--groups", ADMIN_GROUP] if name == BY_GROUP else []
                subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", *extra, name],
                               check=True)
                made.append(name)
        yield {name: pwd.getpwnam(name).pw_uid for name in (PLAIN, OTHER, BY_GROUP, BY_NAME)}
    finally:
        for name in made:
            subprocess.run(["userdel", name], check=False)
        if made_group:
            subprocess.run(["groupdel", ADMIN_GROUP], check=False)


@pytest.fixture
def daemon(make_daemon, users, tmp_path):
    config = tmp_path / "costd.toml"
    config.write_text(f'[access]\nadmin_users = ["{BY_NAME}"]\nadmin_groups = ["{ADMIN_GROUP}"]\n'
                      '[budget]\ndaily = 100\nhard_daily = true\n')
    os.chmod(tmp_path, 0o755)
    started = make_daemon("--config", str(config), "--socket-mode", "0666")
    os.chmod(started.root, 0o755)  # the other users reach the socket through it
    return started


def call(costctl: str, socket: str, user: str, method: str, params: Dict[str, Any]) -> Tuple[int, Any, str]:
    """``costctl call`` as ``user`` (root when ``user`` is ``root``): exit status, result, stderr."""
    command = [costctl, "call", "--json", "--socket", socket, method, json.dumps(params)]
    if user != "root":
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    result = json.loads(done.stdout) if done.returncode == 0 and done.stdout.strip() else None
    return done.returncode, result, done.stderr


def refused(answer: Tuple[int, Any, str]) -> bool:
    code, _, stderr = answer
    return code == 4 and str(PERMISSION_DENIED) in stderr and "permission denied" in stderr


def test_only_admins_flush_and_delete_shared_entries(daemon, costctl_bin, users) -> None:
    as_ = lambda user, method, params: call(costctl_bin, daemon.socket, user, method, params)  # noqa: E731
    assert as_(PLAIN, "cacheSet", {"model": "gpt-4o", "prompt": "p", "value": "v"})[0] == 0

    # A plain user: refused, with the documented code, and nothing is removed.
    for params in ({}, {"namespace": ""}, {"namespace": "team"}):
        answer = as_(PLAIN, "cacheFlush", params)
        assert refused(answer), answer
    assert refused(as_(PLAIN, "cacheDelete", {"model": "gpt-4o", "prompt": "p"}))
    assert as_(PLAIN, "cacheGet", {"model": "gpt-4o", "prompt": "p"})[1]["hit"] is True

    # Admins: a member of an admin group, a user named in admin_users, root.
    assert as_(BY_GROUP, "cacheDelete", {"model": "gpt-4o", "prompt": "p"})[1] == {"deleted": True}
    assert as_(BY_NAME, "cacheFlush", {"namespace": "team"})[0] == 0
    as_(PLAIN, "cacheSet", {"model": "gpt-4o", "prompt": "p", "value": "v"})
    assert as_("root", "cacheFlush", {})[1]["flushed"] >= 1
    assert as_(PLAIN, "cacheGet", {"model": "gpt-4o", "prompt": "p"})[1]["hit"] is False


def test_a_private_namespace_is_invisible_to_other_users(daemon, costctl_bin, users) -> None:
    as_ = lambda user, method, params: call(costctl_bin, daemon.socket, user, method, params)  # noqa: E731
    mine = {"model": "gpt-4o", "prompt": "secret", "namespace": "@me"}
    assert as_(PLAIN, "cacheSet", {**mine, "value": "plain's"})[0] == 0
    assert as_(PLAIN, "cacheGet", mine)[1]["value"] == "plain's"

    # Another user's @me is its own: a miss, and storing there does not touch the first one's.
    assert as_(OTHER, "cacheGet", mine)[1]["hit"] is False
    assert as_(OTHER, "cacheSet", {**mine, "value": "other's"})[0] == 0
    assert as_(PLAIN, "cacheGet", mine)[1]["value"] == "plain's"

    # Naming the first user's namespace outright: refused to read and to overwrite.
    theirs = {**mine, "namespace": f"@uid:{users[PLAIN]}"}
    assert refused(as_(OTHER, "cacheGet", theirs))
    assert refused(as_(OTHER, "cacheSet", {**theirs, "value": "overwritten"}))
    assert refused(as_(OTHER, "cacheFlush", {"namespace": f"@uid:{users[PLAIN]}"}))
    # Other names starting with @ are reserved.
    code, _, stderr = as_(OTHER, "cacheGet", {**mine, "namespace": "@all"})
    assert code == 4 and "-32602" in stderr and "reserved" in stderr
    # An admin may look in (to help, or to clean up).
    assert as_(BY_GROUP, "cacheGet", theirs)[1]["value"] == "plain's"

    # Its owner may delete and flush its own private namespace; the other's stays.
    assert as_(PLAIN, "cacheDelete", mine)[1] == {"deleted": True}
    as_(PLAIN, "cacheSet", {**mine, "value": "again"})
    assert as_(PLAIN, "cacheFlush", {"namespace": "@me"})[1]["flushed"] == 1
    assert as_(OTHER, "cacheGet", mine)[1]["value"] == "other's"


def test_the_default_namespace_can_be_private(make_daemon, users, tmp_path, costctl_bin) -> None:
    config = tmp_path / "costd.toml"
    config.write_text('[cache]\ndefault_namespace = "@me"\n')
    os.chmod(tmp_path, 0o755)
    daemon = make_daemon("--config", str(config), "--socket-mode", "0666")
    os.chmod(daemon.root, 0o755)
    as_ = lambda user, method, params: call(costctl_bin, daemon.socket, user, method, params)  # noqa: E731
    key = {"model": "gpt-4o", "prompt": "q"}
    assert as_(PLAIN, "cacheSet", {**key, "value": 1})[0] == 0
    assert as_(PLAIN, "cacheGet", key)[1]["hit"] is True
    assert as_(OTHER, "cacheGet", key)[1]["hit"] is False
    assert as_(PLAIN, "cacheFlush", {"namespace": "@me"})[1]["flushed"] == 1


def test_only_the_owner_or_an_admin_releases_a_reservation(daemon, costctl_bin, users) -> None:
    as_ = lambda user, method, params: call(costctl_bin, daemon.socket, user, method, params)  # noqa: E731
    ask = {"model": "gpt-4o", "inputTokens": 1000, "maxOutputTokens": 500}
    first = as_(PLAIN, "reserve", ask)[1]["reservation"]
    second = as_(PLAIN, "reserve", ask)[1]["reservation"]
    assert refused(as_(OTHER, "releaseReservation", {"reservation": first}))
    assert as_(PLAIN, "releaseReservation", {"reservation": first})[1] == {"released": True}
    assert as_(BY_GROUP, "releaseReservation", {"reservation": second})[1] == {"released": True}
    report = as_("root", "report", {})[1]
    assert report.get("reservedUsd", 0) == 0  # both given back, none by the wrong user
