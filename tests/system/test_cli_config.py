"""Command line and configuration from the environment."""

import fcntl
import os
import re
import socket
import tempfile

import pytest

from m2pg_sys import assert_created, free_port, metric, run_cli, unique_name, wait_for_id


def closed_port_url():
    return "postgresql://postgres@127.0.0.1:%d/postgres" % free_port()


def valid_env():
    return {"PORT": str(free_port()), "DATABASE_URLS": closed_port_url()}


def test_help_exits_0_and_describes_the_web_subcommand():
    rc, out, err = run_cli(["--help"])
    assert rc == 0, (rc, out, err)
    assert "web" in out + err


def test_version_exits_0_and_prints_m2pg_and_a_version():
    rc, out, err = run_cli(["--version"])
    assert rc == 0, (rc, out, err)
    assert re.search(r"(?m)^m2pg \S+", out + err), (out, err)


@pytest.mark.parametrize("args", [["frobnicate"], ["--frobnicate"]],
                         ids=["unknown-subcommand", "unknown-flag"])
def test_unknown_subcommand_or_flag_exits_2(args):
    # Valid configuration, so the exit status can only come from the arguments.
    rc, out, err = run_cli(args, valid_env(), timeout=10)
    assert rc == 2, (rc, out, err)


BAD_CONFIG = [
    ("no-database-urls", {"DATABASE_URLS": None, "DATABASE_URL": None}, "DATABASE_URL"),
    ("port-not-a-number", {"PORT": "abc"}, "PORT"),
    ("port-out-of-range", {"PORT": "70000"}, "PORT"),
    ("negative-write-timeout", {"WRITE_TIMEOUT_MS": "-5"}, "WRITE_TIMEOUT_MS"),
    ("write-timeout-not-a-number", {"WRITE_TIMEOUT_MS": "abc"}, "WRITE_TIMEOUT_MS"),
    ("negative-read-timeout", {"READ_TIMEOUT_MS": "-5"}, "READ_TIMEOUT_MS"),
    ("read-timeout-not-a-number", {"READ_TIMEOUT_MS": "abc"}, "READ_TIMEOUT_MS"),
    ("shutdown-grace-with-a-unit", {"SHUTDOWN_GRACE_MS": "5s"}, "SHUTDOWN_GRACE_MS"),
]


@pytest.mark.parametrize("overrides,variable", [c[1:] for c in BAD_CONFIG],
                         ids=[c[0] for c in BAD_CONFIG])
def test_bad_configuration_exits_2_with_one_line_naming_the_variable(overrides, variable):
    env = valid_env()
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    rc, out, err = run_cli(["web"], env, timeout=10)
    assert rc == 2, (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, "expected exactly one line on stderr, got %r" % (err,)
    assert variable in lines[0], "stderr %r does not name %s" % (err, variable)


def test_unreachable_database_at_start_is_not_a_configuration_error(m2pg_factory):
    svc = m2pg_factory([closed_port_url()], write_timeout_ms=500, read_timeout_ms=1500)
    r = svc.health()
    assert r.status == 200, r
    assert r.json["databases"] == 1, r.json
    assert r.json["connected"] == 0, r.json


def test_single_database_url_is_accepted(pg_pair, m2pg_factory):
    db = pg_pair[0]
    db.truncate_metrics()
    svc = m2pg_factory([db], single_url=True)
    r = svc.health()
    assert r.status == 200 and r.json["databases"] == 1, r
    mid = assert_created(svc.post(metric(unique_name("single"))))
    wait_for_id(db, mid)


def test_port_defaults_to_8080(pg_pair, m2pg_factory):
    # `make test` runs two suites at once: the lock keeps their turns at 8080 apart.
    with open(os.path.join(tempfile.gettempdir(), "m2pg-test-port-8080.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", 8080))
            except OSError as exc:
                pytest.fail("port 8080 is taken on this machine, cannot test the default: %s" % exc)
        svc = m2pg_factory([pg_pair[0]], port=8080, extra_env={"PORT": None})
        assert "PORT" not in svc.env
        r = svc.health()
        assert r.status == 200, r
        problems = svc.terminate()  # before the lock goes to the other suite
        assert not problems, problems
