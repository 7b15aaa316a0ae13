"""Headless Debian chromium driven over the DevTools protocol, for the chart page's tests.

Standard library only: chromium is started with --remote-debugging-pipe, which speaks the
protocol as NUL-terminated JSON messages on its file descriptors 3 (commands in) and 4 (answers
and events out), so no websocket client and no driver is needed.

    with Browser() as b:
        tab = b.new_tab()
        tab.navigate("http://127.0.0.1:8080/")
        tab.eval("document.title")
"""

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

WIDTH, HEIGHT = 1280, 1000


class BrowserError(AssertionError):
    pass


def chromium_path():
    path = shutil.which("chromium")
    if not path:
        raise BrowserError("chromium is not installed: the page's browser tests need Debian's "
                           "chromium package (scripts/deps.sh installs it: `make deps`)")
    return path


class Browser:
    """One chromium process; tabs are its targets, each with its own session."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="m2pg-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        args = [chromium_path(), "--headless=new", "--remote-debugging-pipe",
                "--user-data-dir=" + self.profile, "--no-first-run", "--no-default-browser-check",
                "--disable-gpu", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--disable-component-update",
                "--disable-default-apps", "--disable-dev-shm-usage", "--mute-audio",
                "--hide-scrollbars", "--window-size=%d,%d" % (WIDTH, HEIGHT)]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # chromium refuses to run as root with its sandbox
        args.append("about:blank")
        # The protocol wants fds 3 and 4 exactly: bash puts the pipe ends there before exec.
        script = 'exec "$@" 3<&%d 4>&%d %d<&- %d>&-' % (to_child_r, from_child_w,
                                                         to_child_r, from_child_w)
        self.log_path = os.path.join(self.profile, "chromium.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(["bash", "-c", script, "chromium"] + args,
                                         pass_fds=(to_child_r, from_child_w),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._next_id = 0
        self._events = []  # (sessionId, method, params) not yet taken

    # -- protocol ---------------------------------------------------------------

    def _read_message(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("chromium did not answer in time\n" + self.log())
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise BrowserError("chromium closed its pipe (exit %r)\n%s"
                                       % (self.proc.poll(), self.log()))
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None, timeout=15):
        self._next_id += 1
        mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._to_child, data):]
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == mid:
                if "error" in reply:
                    raise BrowserError("%s failed: %s" % (method, reply["error"]))
                return reply.get("result", {})
            if "method" in reply:
                self._events.append((reply.get("sessionId"), reply["method"], reply.get("params", {})))

    def pump(self, seconds):
        """Reads events for a while (they arrive whether or not a command is waiting)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                reply = self._read_message(deadline)
                if "method" in reply:
                    self._events.append((reply.get("sessionId"), reply["method"],
                                         reply.get("params", {})))
        except BrowserError:
            if self.proc.poll() is not None:
                raise

    def take_events(self, session):
        mine = [(m, p) for s, m, p in self._events if s == session]
        self._events = [e for e in self._events if e[0] != session]
        return mine

    # -- tabs -------------------------------------------------------------------

    def new_tab(self):
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Tab(self, target, session)

    def log(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self):
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", timeout=5)
                except (BrowserError, OSError):
                    pass
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        finally:
            os.close(self._to_child)
            os.close(self._from_child)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Tab:
    """A page: navigation, script evaluation, mouse and keyboard input, screenshots, and what
    it printed to its console."""

    def __init__(self, browser, target, session):
        self.b = browser
        self.target = target
        self.session = session
        self.console = []  # {"source", "level", "text"} in the order they came
        for domain in ("Page", "Runtime", "Log"):
            self.send(domain + ".enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})

    def send(self, method, params=None, timeout=15):
        result = self.b.send(method, params, session=self.session, timeout=timeout)
        self._collect()
        return result

    def _collect(self):
        for method, p in self.b.take_events(self.session):
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                self.console.append({"source": "console-api", "level": p.get("type"), "text": text})
            elif method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                text = d.get("exception", {}).get("description") or d.get("text", "")
                self.console.append({"source": "exception", "level": "error", "text": text})
            elif method == "Log.entryAdded":
                e = p.get("entry", {})
                self.console.append({"source": e.get("source"), "level": e.get("level"),
                                     "text": "%s %s" % (e.get("text", ""), e.get("url", ""))})

    def errors(self):
        """Console entries at error level, exceptions and CSP violations included."""
        self.b.pump(0.05)
        self._collect()
        return [e for e in self.console if e["level"] in ("error", "assert")]

    def navigate(self, url):
        self.send("Page.navigate", {"url": url})

    def eval(self, expression, timeout=15):
        """The value of a JavaScript expression (promises are awaited); raises on a throw."""
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise BrowserError("script threw: %s" % (d.get("exception", {}).get("description")
                                                     or d.get("text")))
        return r.get("result", {}).get("value")

    def wait_for(self, expression, timeout=10, what=None):
        """Polls until the expression is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.eval(expression)
            except BrowserError:
                value = None  # the page may be between two documents
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError("timed out after %ss waiting for %s" % (timeout, what or expression))
            time.sleep(0.05)

    def mouse(self, kind, x, y, button="none", clicks=0):
        self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": button,
                                               "buttons": 1 if button == "left" and kind != "mouseReleased" else 0,
                                               "clickCount": clicks})

    def drag(self, x0, y, x1, steps=8):
        self.mouse("mouseMoved", x0, y)
        self.mouse("mousePressed", x0, y, "left", 1)
        for i in range(1, steps + 1):
            self.mouse("mouseMoved", x0 + (x1 - x0) * i / steps, y, "left")
        self.mouse("mouseReleased", x1, y, "left", 1)

    def type_text(self, text):
        self.send("Input.insertText", {"text": text})

    def key(self, key, code, keycode):
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": code,
                                                 "windowsVirtualKeyCode": keycode,
                                                 "text": "\r" if key == "Enter" and kind == "keyDown" else ""})

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                         timeout=30)["data"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        self.b.send("Target.closeTarget", {"targetId": self.target})
