"""Helpers for the m2pg system tests: PostgreSQL servers, the m2pg process,
HTTP calls and the assertions shared by the test modules.

Standard library only (the suite runs with Debian's python3-pytest and
nothing else).
"""

import datetime
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid

PG_BIN = "/usr/lib/postgresql/15/bin"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))

STATS = ("count", "mean", "median", "min", "max", "perc95", "perc99", "last")

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

# Environment variables handed through to m2pg (sanitizer settings).
PASSTHROUGH_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")

MIB = 1024 * 1024


# --------------------------------------------------------------------------
# small utilities


def m2pg_bin():
    return os.environ.get("M2PG_BIN") or os.path.join(REPO_ROOT, "m2pg")


def require_m2pg_bin():
    path = m2pg_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError(
            "m2pg binary not found or not executable at %r (build it with `make` "
            "at the repository root or point M2PG_BIN at it)" % path)
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.05, message="condition"):
    """Poll predicate() until it returns a truthy value; return that value.

    Fails with `message` (and the last exception raised by the predicate, if
    any) once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_exc = None
        except Exception as exc:  # noqa: BLE001 - reported below
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = " (last error: %r)" % (last_exc,) if last_exc else ""
            raise AssertionError("timed out after %.1fs waiting for %s%s"
                                 % (timeout, message, detail))
        time.sleep(interval)


def unique_name(prefix="m"):
    return "%s.%s" % (prefix, uuid.uuid4().hex[:12])


def ts(text):
    """Unix seconds (float) of an ISO 8601 timestamp; naive means UTC."""
    dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def its(text):
    value = ts(text)
    assert value == int(value)
    return int(value)


def metric(name, bucket=1355202720, **stats):
    """A metric object for POST /metrics; default statistic count=1."""
    if not stats:
        stats = {"count": 1}
    obj = {"bucket": bucket, "name": name}
    obj.update(stats)
    return obj


def tail(text, lines):
    parts = text.splitlines()
    if len(parts) > lines:
        parts = ["... (%d earlier lines omitted)" % (len(parts) - lines)] + parts[-lines:]
    return "\n".join(parts)


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def sanitizer_findings(text):
    return [m for m in SANITIZER_MARKERS if m in text]


# --------------------------------------------------------------------------
# process helpers


def _proc_children(pid):
    """Pids whose parent is pid (from /proc/*/stat)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) >= 2 and int(rest[1]) == pid:
            children.append(int(entry))
    return children


def _proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()[0]


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _pid_alive(pid):
    state = _proc_state(pid)
    return state is not None and state != "Z"


def _as_postgres(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


def _chown_postgres(path):
    if os.geteuid() != 0:
        return
    import pwd
    pw = pwd.getpwnam("postgres")
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)


def _run(cmd, timeout=60, check=True, **kw):
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise AssertionError("command %r failed with %d:\n%s%s" % (
            cmd, res.returncode, res.stdout.decode("utf-8", "replace"),
            res.stderr.decode("utf-8", "replace")))
    return res


# --------------------------------------------------------------------------
# PostgreSQL


def make_pg_template():
    """initdb once; servers are created by copying this data directory."""
    base = tempfile.mkdtemp(prefix="m2pg-pgtpl-")
    _chown_postgres(base)
    data = os.path.join(base, "data")
    _run(_as_postgres([os.path.join(PG_BIN, "initdb"), "-D", data, "-A", "trust",
                       "-U", "postgres", "--no-sync", "--no-instructions",
                       "-E", "UTF8", "--locale=C", "--wal-segsize=1"]),
         timeout=120)
    return base


class PgServer:
    """A throw-away PostgreSQL 15 server on 127.0.0.1:<port>."""

    def __init__(self, template_base, name="pg"):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="m2pg-%s-" % name)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.port = free_port()
        _run(["cp", "-a", os.path.join(template_base, "data"), self.data])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# m2pg system tests\n"
                    "port = %d\n"
                    "listen_addresses = '127.0.0.1'\n"
                    "unix_socket_directories = '%s'\n"
                    "fsync = off\n"
                    "full_page_writes = off\n"
                    "shared_buffers = 16MB\n"
                    "max_connections = 100\n"
                    "timezone = 'UTC'\n"
                    "log_min_messages = warning\n"
                    % (self.port, self.dir))
        _chown_postgres(self.dir)
        self._paused = set()
        self.running = False

    # -- lifecycle --------------------------------------------------------

    def configure(self, text):
        """Append settings to postgresql.conf (they apply at the next start)."""
        conf = os.path.join(self.data, "postgresql.conf")
        with open(conf, "a") as f:
            f.write("\n" + text + "\n")

    def url(self):
        return "postgresql://postgres@127.0.0.1:%d/postgres" % self.port

    def start(self):
        _run(_as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", self.log,
                           "-w", "-t", "60", "start"]), timeout=90)
        self.running = True

    def stop(self, mode="fast"):
        self.resume()
        if self.postmaster_pid() is None:
            self.running = False
            return
        _run(_as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", mode,
                           "-w", "-t", "60", "stop"]), timeout=90)
        self.running = False

    def stop_immediate(self):
        self.stop(mode="immediate")

    def kill9(self):
        """SIGKILL the postmaster and every child process."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        pids = [pid] + _proc_children(pid)
        for p in pids:
            _signal(p, signal.SIGCONT)
            _signal(p, signal.SIGKILL)
        self._paused.clear()
        wait_until(lambda: not any(_pid_alive(p) for p in pids), 10,
                   message="postgres processes to die")
        # The dead postmaster can linger as a zombie (its parent, pg_ctl, is gone and
        # nobody may reap it soon); the next postmaster would take that pid for a running
        # server, so drop the stale lock files.
        for stale in (os.path.join(self.data, "postmaster.pid"),
                      os.path.join(self.dir, ".s.PGSQL.%d.lock" % self.port)):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass
        self.running = False

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def pause(self):
        """SIGSTOP the postmaster first (no new backends), then all children."""
        pid = self.postmaster_pid()
        assert pid is not None, "cannot pause %s: not running" % self.name
        _signal(pid, signal.SIGSTOP)
        self._paused.add(pid)
        # Repeat until stable: a fork may have been in flight.
        for _ in range(5):
            new = [c for c in _proc_children(pid) if c not in self._paused]
            if not new:
                break
            for c in new:
                _signal(c, signal.SIGSTOP)
                self._paused.add(c)
            time.sleep(0.02)

    def resume(self):
        pids = set(self._paused)
        pid = self.postmaster_pid()
        if pid is not None:
            pids.add(pid)
            pids.update(_proc_children(pid))
        for p in pids:
            _signal(p, signal.SIGCONT)
        self._paused.clear()

    def destroy(self):
        """Teardown: always resume and stop, then remove the directory."""
        try:
            self.resume()
            if self.postmaster_pid() is not None:
                try:
                    self.stop("fast")
                except Exception:  # noqa: BLE001 - fall back to SIGKILL
                    self.kill9()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- SQL ----------------------------------------------------------------

    def psql(self, sql, timeout=15, check=True):
        """Run SQL; return a list of rows (lists of strings, None for NULL)."""
        cmd = [os.path.join(PG_BIN, "psql"), "-X", "-q", "-A", "-t",
               "-F", "\x1f", "-R", "\x1e", "-P", "null=\x1d",
               "-h", self.dir, "-p", str(self.port), "-U", "postgres",
               "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql]
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=timeout)
        if res.returncode != 0:
            if check:
                raise AssertionError("psql on %s failed (%d): %s\nSQL: %s" % (
                    self.name, res.returncode, res.stderr.decode("utf-8", "replace"), sql))
            return None
        out = res.stdout.decode("utf-8")
        if out.endswith("\n"):
            out = out[:-1]
        rows = []
        for rec in out.split("\x1e"):
            if rec == "":
                continue
            rows.append([None if v == "\x1d" else v for v in rec.split("\x1f")])
        return rows

    def scalar(self, sql, **kw):
        rows = self.psql(sql, **kw)
        return rows[0][0] if rows else None

    def has_metrics_table(self):
        return self.scalar("select to_regclass('public.metrics') is not null") == "t"

    def wait_for_schema(self, timeout=10):
        wait_until(self.has_metrics_table, timeout,
                   message="the metrics table to exist in %s" % self.name)

    def truncate_metrics(self):
        self.psql("do $$ begin if to_regclass('public.metrics') is not null "
                  "then truncate public.metrics; end if; end $$")

    def count_rows(self, where="true"):
        if not self.has_metrics_table():
            return 0
        return int(self.scalar("select count(*) from metrics where %s" % where))

    def has_id(self, mid):
        try:
            return self.count_rows("id = %s" % sql_literal(mid)) > 0
        except (AssertionError, subprocess.TimeoutExpired):
            return False

    def ids(self, where="true"):
        if not self.has_metrics_table():
            return set()
        return {r[0] for r in self.psql("select id::text from metrics where %s" % where)}

    def row(self, mid):
        """The stored row of an id as a dict (bucket as Unix seconds float)."""
        rows = self.psql(
            "select extract(epoch from bucket)::float8, name, %s from metrics where id = %s"
            % (", ".join(STATS), sql_literal(mid)))
        assert len(rows) == 1, "expected one row with id %s in %s, got %r" % (mid, self.name, rows)
        r = rows[0]
        out = {"bucket": float(r[0]), "name": r[1]}
        for key, value in zip(STATS, r[2:]):
            out[key] = None if value is None else float(value)
        return out

    def insert(self, rows):
        """Insert rows directly: dicts with id, bucket (Unix seconds), name, stats.

        m2pg may keep a catalogue of names next to the table (metric_names, which
        its reads match the regex against); when it exists the names are
        registered there too, in the same transaction, as m2pg's own writes do."""
        values = []
        for r in rows:
            values.append("(%s, to_timestamp(%r), %s, %s)" % (
                sql_literal(r["id"]), float(r["bucket"]), sql_literal(r["name"]),
                ", ".join(sql_number(r.get(k)) for k in STATS)))
        names = ", ".join("(%s)" % sql_literal(n) for n in sorted({r["name"] for r in rows}))
        self.psql("begin; insert into metrics (id, bucket, name, %s) values %s; "
                  "do $$ begin if to_regclass('public.metric_names') is not null then "
                  "insert into metric_names (name) values %s on conflict do nothing; "
                  "end if; end $$; commit;"
                  % (", ".join(STATS), ", ".join(values), names))

    def log_tail(self, lines=40):
        return tail(read_text(self.log), lines)


def sql_literal(text):
    return "'" + str(text).replace("'", "''") + "'"


def sql_number(value):
    return "NULL" if value is None else repr(float(value))


# --------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def header(self, name):
        return self.headers.get(name)

    def __iter__(self):
        """status, headers, body, json = response"""
        return iter((self.status, self.headers, self.body, self.json))

    def __repr__(self):
        return "<HTTP %s %r %r>" % (self.status, dict(self.headers.items()),
                                    self.body[:500])


def raw_get(port, path, version="HTTP/1.1", timeout=15):
    """(head, body) of a GET read to the end of the answer over a raw socket, as it came (a
    chunked body still in its chunks: see dechunk)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(("GET %s %s\r\nHost: t\r\nConnection: close\r\n\r\n" % (path, version)).encode())
    parts = []
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        parts.append(chunk)
    s.close()
    head, _, body = b"".join(parts).partition(b"\r\n\r\n")
    return head, body


def dechunk(body):
    """A chunked body's bytes; fails on a body that does not end with the last chunk."""
    out, at = [], 0
    while True:
        eol = body.index(b"\r\n", at)
        size = int(body[at:eol], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[eol + 2:eol + 2 + size])
        at = eol + 2 + size + 2


def http_request(port, method, path, body=None, content_type=None, headers=None,
                 timeout=10):
    """One request on a fresh connection; returns a Response."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        if body is not None and not isinstance(body, bytes):
            body = body.encode("utf-8")
        if body is None and method in ("POST", "PUT"):
            body = b""
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, resp.msg, data)
    finally:
        conn.close()


def encode_json(payload, ensure_ascii=True):
    return json.dumps(payload, ensure_ascii=ensure_ascii).encode("utf-8")


def query_string(params):
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe="")


# --------------------------------------------------------------------------
# the m2pg process


class M2pg:
    """An m2pg `web` process with its stdout/stderr captured to files."""

    def __init__(self, database_urls=None, write_timeout_ms=None, read_timeout_ms=None,
                 port=None, extra_env=None, use_single_url=False):
        self.binary = require_m2pg_bin()
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="m2pg-proc-")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        env = base_env()
        env["PORT"] = str(self.port)
        if database_urls is not None:
            if use_single_url:
                assert len(database_urls) == 1
                env["DATABASE_URL"] = database_urls[0]
            else:
                env["DATABASE_URLS"] = "|".join(database_urls)
        if write_timeout_ms is not None:
            env["WRITE_TIMEOUT_MS"] = str(write_timeout_ms)
        if read_timeout_ms is not None:
            env["READ_TIMEOUT_MS"] = str(read_timeout_ms)
        for key, value in (extra_env or {}).items():
            if value is None:
                env.pop(key, None)  # None means: leave the variable unset
            else:
                env[key] = value
        self.env = env
        self.proc = None
        self.stopped_by_us = False

    def spawn(self):
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen([self.binary, "web"], env=self.env, cwd=self.dir,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        finally:
            out.close()
            err.close()
        return self

    def wait_healthy(self, timeout=10):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("m2pg exited with status %s before answering /health\n%s"
                                     % (self.proc.returncode, self.logs()))
            try:
                r = http_request(self.port, "GET", "/health", timeout=2)
                if r.status == 200:
                    return r
                last = r
            except OSError as exc:
                last = exc
            time.sleep(0.05)
        raise AssertionError("m2pg did not answer GET /health with 200 within %ss "
                             "(last: %r)\n%s" % (timeout, last, self.logs()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        assert self.alive(), "m2pg exited with status %s\n%s" % (
            self.proc.returncode, self.logs())

    def stdout(self):
        return read_text(self.stdout_path)

    def stderr(self):
        return read_text(self.stderr_path)

    def logs(self, lines=200):
        return ("----- m2pg stderr (port %d) -----\n%s\n----- m2pg stdout -----\n%s"
                % (self.port, tail(self.stderr(), lines), tail(self.stdout(), lines)))

    def terminate(self):
        """SIGTERM, wait up to 10 s, then SIGKILL.  Returns a list of problems."""
        problems = []
        if self.proc is None:
            return problems
        if self.proc.poll() is not None:
            if not self.stopped_by_us:
                problems.append("m2pg exited on its own during the test with status %s"
                                % self.proc.returncode)
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                print("note: m2pg on port %d did not exit within 10 s of SIGTERM; killed"
                      % self.port)
        self.stopped_by_us = True
        found = sanitizer_findings(self.stderr() + self.stdout())
        if found:
            problems.append("sanitizer reports in the m2pg output: %s" % ", ".join(found))
        return problems

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- HTTP conveniences ---------------------------------------------------

    def request(self, method, path, body=None, content_type=None, headers=None, timeout=10):
        return http_request(self.port, method, path, body=body, content_type=content_type,
                            headers=headers, timeout=timeout)

    def post(self, payload, content_type="application/json", timeout=10, ensure_ascii=True):
        body = payload if isinstance(payload, bytes) else encode_json(payload, ensure_ascii)
        return self.request("POST", "/metrics", body=body, content_type=content_type,
                            timeout=timeout)

    def get_metrics(self, timeout=15, **params):
        path = "/metrics"
        if params:
            path += "?" + query_string(params)
        return self.request("GET", path, timeout=timeout)

    def health(self, timeout=5):
        return self.request("GET", "/health", timeout=timeout)


def base_env():
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for key in PASSTHROUGH_ENV:
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def run_cli(args, env_overrides=None, timeout=20):
    """Run the m2pg binary to completion (CLI / configuration tests)."""
    binary = require_m2pg_bin()
    env = base_env()
    env.update(env_overrides or {})
    res = subprocess.run([binary] + list(args), env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                         cwd=tempfile.gettempdir())
    out = res.stdout.decode("utf-8", "replace")
    err = res.stderr.decode("utf-8", "replace")
    found = sanitizer_findings(out + err)
    assert not found, "sanitizer reports running m2pg %r: %s\n%s\n%s" % (args, found, out, err)
    return res.returncode, out, err


# --------------------------------------------------------------------------
# assertions


UUID7_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
                      re.I)


def assert_uuid7(value):
    assert isinstance(value, str), "expected a UUID string, got %r" % (value,)
    assert UUID7_RE.match(value), "not a canonical version-7 UUID: %r" % (value,)
    # The first 48 bits are the Unix time in milliseconds.
    millis = int(value.replace("-", "")[:12], 16)
    assert abs(millis / 1000.0 - time.time()) < 600, \
        "UUIDv7 timestamp %r is not close to now" % (value,)


def media_type(resp):
    ct = resp.header("Content-Type") or ""
    return ct.split(";")[0].strip().lower()


def assert_created(resp, n=None):
    """201 with one UUIDv7 string (n is None) or an array of n of them."""
    assert resp.status == 201, "expected 201, got %r" % (resp,)
    assert media_type(resp) == "application/json", resp
    if n is None:
        assert_uuid7(resp.json)
        return resp.json
    assert isinstance(resp.json, list) and len(resp.json) == n, \
        "expected a JSON array of %d UUIDs, got %r" % (n, resp.body[:300])
    for v in resp.json:
        assert_uuid7(v)
    assert len(set(resp.json)) == n, "duplicate UUIDs in a batch response"
    return resp.json


def assert_error(resp, status, field=None, index=None):
    """status with a JSON body {"error": "...", ["field"], ["index"]}."""
    assert resp.status == status, "expected %d, got %r" % (status, resp)
    body = resp.json
    assert isinstance(body, dict), "error body is not a JSON object: %r" % (resp.body[:300],)
    assert isinstance(body.get("error"), str) and body["error"], \
        "error body lacks an 'error' message: %r" % (body,)
    if field is not None:
        assert body.get("field") == field, "expected field %r in %r" % (field, body)
    if index is not None:
        assert body.get("index") == index, "expected index %r in %r" % (index, body)
    return body


def assert_read_ok(resp, databases="2/2"):
    """A 200 read: content type, M2pg-Databases header, well-formed series.

    Returns {name: {stat: [(bucket, value), ...]}}."""
    assert resp.status == 200, "expected 200, got %r" % (resp,)
    ct = (resp.header("Content-Type") or "").replace(" ", "").lower()
    assert ct == "application/json;charset=utf-8", "Content-Type %r" % (ct,)
    if databases is not None:
        assert resp.header("M2pg-Databases") == databases, \
            "M2pg-Databases %r, expected %r" % (resp.header("M2pg-Databases"), databases)
    body = resp.json
    assert isinstance(body, list), "read body is not a JSON array: %r" % (resp.body[:300],)
    out = {}
    names = []
    for obj in body:
        assert isinstance(obj, dict) and isinstance(obj.get("name"), str), obj
        names.append(obj["name"])
        series = {}
        for stat in STATS:
            points = obj.get(stat)
            assert isinstance(points, list), "%r lacks an array for %r: %r" % (
                obj["name"], stat, obj)
            pairs = []
            for p in points:
                assert isinstance(p, dict), p
                b, v = p.get("bucket"), p.get("value")
                assert isinstance(b, int) and not isinstance(b, bool), \
                    "bucket is not an integer: %r" % (p,)
                assert isinstance(v, (int, float)) and not isinstance(v, bool), \
                    "value is not a number: %r" % (p,)
                pairs.append((b, v))
            buckets = [b for b, _ in pairs]
            assert buckets == sorted(buckets) and len(set(buckets)) == len(buckets), \
                "%s.%s buckets not strictly ascending: %r" % (obj["name"], stat, buckets)
            series[stat] = pairs
        out[obj["name"]] = series
    assert names == sorted(names, key=lambda s: s.encode("utf-8")), \
        "names not sorted: %r" % (names,)
    assert len(set(names)) == len(names), "duplicate names: %r" % (names,)
    return out


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def assert_points(actual, expected, exact=False):
    """Compare [(bucket, value)] lists."""
    assert [b for b, _ in actual] == [b for b, _ in expected], \
        "buckets %r, expected %r" % (actual, expected)
    for (b, got), (_, want) in zip(actual, expected):
        ok = (got == want) if exact else close(got, want)
        assert ok, "bucket %d: value %r, expected %r (all: %r)" % (b, got, want, actual)


# --------------------------------------------------------------------------
# write / replication helpers


def wait_for_id(db, mid, timeout=5):
    wait_until(lambda: db.has_id(mid), timeout,
               message="row %s to appear in %s" % (mid, db.name))


def wait_in_all(dbs, mid, timeout=5):
    for db in dbs:
        wait_for_id(db, mid, timeout)


def post_until_landed(svc, dbs, timeout, prefix="probe", post_timeout=5):
    """Keep posting fresh metrics until one is stored in every db of `dbs`.

    Returns that metric's id."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            r = svc.post(metric(unique_name(prefix)), timeout=post_timeout)
            last = r
        except OSError as exc:
            last = exc
            r = None
        if r is not None and r.status == 201:
            mid = r.json
            landed_by = min(deadline, time.monotonic() + 1.5)
            while time.monotonic() < landed_by:
                if all(db.has_id(mid) for db in dbs):
                    return mid
                time.sleep(0.05)
        else:
            time.sleep(0.1)
    raise AssertionError("no write reached %s within %ss (last response: %r)"
                         % ([d.name for d in dbs], timeout, last))


def assert_nothing_else_stored(svc, dbs, allowed_ids=()):
    """Prove that rejected input left no rows behind.

    Writes are replicated asynchronously, so a fresh sentinel write is used as
    a barrier: once it is in every database, nothing else may be there."""
    r = svc.post(metric(unique_name("sentinel")))
    sentinel = assert_created(r)
    wait_in_all(dbs, sentinel, timeout=5)
    expected = {i.lower() for i in allowed_ids} | {sentinel.lower()}
    for db in dbs:
        got = db.ids()
        assert got == expected, "%s holds unexpected rows: %r" % (db.name, got - expected)


def read_series(svc, databases="2/2", **params):
    """GET /metrics, assert a well-formed 200; return {name: {stat: [(bucket, value)]}}."""
    return assert_read_ok(svc.get_metrics(**params), databases)


def new_id():
    return str(uuid.uuid4())
