"""Fixtures for the m2pg system tests.

Run from the repository root:

    /usr/bin/python3 -m pytest tests/system -q

The binary under test is $M2PG_BIN (default: <repo root>/m2pg).  PostgreSQL
15 servers are created on the fly from /usr/lib/postgresql/15/bin (as the
`postgres` OS user when running as root).  ASAN_OPTIONS / UBSAN_OPTIONS /
LSAN_OPTIONS are passed through to m2pg; any sanitizer report in its output
fails the test that ran it.
"""

import os
import signal

import pytest

import m2pg_sys
from m2pg_sys import M2pg, PgServer

# Per-test watchdog: a hung test fails instead of blocking the run forever.
TEST_TIMEOUT = int(os.environ.get("M2PG_TEST_TIMEOUT", "180"))

_ACTIVE_M2PG = []
_ACTIVE_PG = []


class _TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _watchdog():
    def on_alarm(signum, frame):
        raise _TestTimeout("test did not finish within %ss" % TEST_TIMEOUT)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("setup", "call"):
        for proc in list(_ACTIVE_M2PG):
            rep.sections.append(("m2pg log (port %d)" % proc.port, proc.logs()))
        for pg in list(_ACTIVE_PG):
            rep.sections.append(("postgres log %s (port %d)" % (pg.name, pg.port),
                                 pg.log_tail()))


# --------------------------------------------------------------------------
# PostgreSQL


@pytest.fixture(scope="session")
def pg_template():
    import shutil
    base = m2pg_sys.make_pg_template()
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _new_pg(template, name, start):
    pg = PgServer(template, name)
    _ACTIVE_PG.append(pg)
    if start:
        pg.start()
    return pg


def _destroy_pg(pg):
    try:
        pg.destroy()
    finally:
        if pg in _ACTIVE_PG:
            _ACTIVE_PG.remove(pg)


@pytest.fixture
def pg_factory(pg_template):
    """pg_factory(name, start=True) -> a fresh PgServer, destroyed after the test."""
    created = []

    def make(name="pg", start=True):
        pg = _new_pg(pg_template, name, start)
        created.append(pg)
        return pg

    yield make
    for pg in created:
        _destroy_pg(pg)


@pytest.fixture(scope="session")
def pg_pair(pg_template):
    """Two servers shared by the plain API tests (metrics truncated per test)."""
    pair = []
    try:
        for name in ("db1", "db2"):
            pair.append(_new_pg(pg_template, name, start=True))
        yield pair
    finally:
        for pg in pair:
            _destroy_pg(pg)


@pytest.fixture
def fresh_pair(pg_factory):
    """Two fresh, running servers for a test that breaks them."""
    return [pg_factory("db1"), pg_factory("db2")]


# --------------------------------------------------------------------------
# m2pg


@pytest.fixture
def m2pg_factory():
    """m2pg_factory(dbs, write_timeout_ms=None, read_timeout_ms=None, wait=True,
    extra_env=None, single_url=False) -> a running M2pg.

    dbs is a list of PgServer objects or URL strings.  At teardown every
    process gets SIGTERM; the test fails if one died on its own or printed a
    sanitizer report."""
    procs = []

    def make(dbs, write_timeout_ms=None, read_timeout_ms=None, wait=True,
             extra_env=None, single_url=False, port=None):
        urls = [d if isinstance(d, str) else d.url() for d in dbs]
        proc = M2pg(urls, write_timeout_ms=write_timeout_ms, read_timeout_ms=read_timeout_ms,
                    extra_env=extra_env, use_single_url=single_url, port=port)
        procs.append(proc)
        _ACTIVE_M2PG.append(proc)
        proc.spawn()
        if wait:
            proc.wait_healthy()
        return proc

    yield make
    problems = []
    for proc in procs:
        found = proc.terminate()
        if found:
            problems.append("\n".join(found) + "\n" + proc.logs(400))
        _ACTIVE_M2PG.remove(proc)
        proc.cleanup()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def service(pg_pair, m2pg_factory):
    """m2pg on the shared pair of databases (both up), emptied before the test.

    The returned M2pg has .dbs = [db1, db2]."""
    for pg in pg_pair:
        if pg.postmaster_pid() is None:
            pg.start()
        pg.resume()
        pg.truncate_metrics()
    svc = m2pg_factory(pg_pair)
    for pg in pg_pair:
        pg.wait_for_schema()
    svc.dbs = pg_pair
    return svc


# --------------------------------------------------------------------------
# module-scoped: one m2pg (and, when asked, one pair of servers) for every test of a module


@pytest.fixture(scope="module")
def module_pair(pg_template):
    """Two fresh, running servers for one module: nothing another module wrote is in them."""
    pair = []
    try:
        for name in ("db1", "db2"):
            pair.append(_new_pg(pg_template, name, start=True))
        yield pair
    finally:
        for pg in pair:
            _destroy_pg(pg)


@pytest.fixture(scope="module")
def module_m2pg_factory():
    """m2pg_factory whose processes live until the module's last test has run.

    Same arguments as m2pg_factory; the processes are checked the same way at the end."""
    procs = []

    def make(dbs, write_timeout_ms=None, read_timeout_ms=None, wait=True,
             extra_env=None, single_url=False, port=None):
        urls = [d if isinstance(d, str) else d.url() for d in dbs]
        proc = M2pg(urls, write_timeout_ms=write_timeout_ms, read_timeout_ms=read_timeout_ms,
                    extra_env=extra_env, use_single_url=single_url, port=port)
        procs.append(proc)
        _ACTIVE_M2PG.append(proc)
        proc.spawn()
        if wait:
            proc.wait_healthy()
        return proc

    yield make
    problems = []
    for proc in procs:
        found = proc.terminate()
        if found:
            problems.append("\n".join(found) + "\n" + proc.logs(400))
        _ACTIVE_M2PG.remove(proc)
        proc.cleanup()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
