#!/usr/bin/python3
"""Drives Debian's headless Chromium through the Chrome DevTools Protocol to
check tickq's dashboard like a person would use it: it loads with no request
to another origin and no console error, shows the live worker, the schedule
with its next runs, the queues and a dead letter's reason, follows the live
event stream, draws the API's per-minute counters, and a person's actions
work (pause and resume a queue with the token dialog answered once, run a
schedule now from the keyboard, open a task's detail view). It checks dark
mode and a phone-sized layout, saves a screenshot, and then that refused
actions say why (a wrong token: 401; a read-only tickq-web: 403).

Standard library only: the DevTools websocket is spoken by the small client
below (RFC 6455: a client masks its frames; text, continuation, ping and
close frames are enough for the protocol). Used by test_web_dashboard.sh,
which starts Redis, the beat, a worker and tickq-web; this script checks
Redis state with redis-cli. Exits 0 when every check passed, 1 with the
reason on stderr otherwise.
"""
import argparse
import base64
import ctypes
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.parse
import urllib.request


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')} dashboard_check] {msg}", file=sys.stderr, flush=True)


class Failure(Exception):
    pass


# ---- a minimal websocket client ----------------------------------------


class WebSocket:
    def __init__(self, url, timeout=30):
        u = urllib.parse.urlparse(url)
        if u.scheme != "ws":
            raise Failure(f"not a ws:// URL: {url}")
        self.sock = socket.create_connection((u.hostname, u.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        path = u.path + (("?" + u.query) if u.query else "")
        # No Origin header: Chromium then accepts the connection without
        # --remote-allow-origins.
        req = (f"GET {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise Failure("the DevTools websocket closed during the handshake")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise Failure(f"websocket handshake refused: {head[:200]!r}")

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise Failure("the DevTools websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send(self, text):
        self._send_frame(0x1, text.encode())

    def recv(self, timeout):
        """One whole text message, or None when none came within timeout."""
        self.sock.settimeout(timeout)
        parts = []
        try:
            while True:
                b0, b1 = self._read(2)
                opcode, n = b0 & 0x0F, b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", self._read(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", self._read(8))[0]
                mask = self._read(4) if b1 & 0x80 else None
                # Once a frame has begun, the rest of it must come: no timeout
                # may cut it in two.
                self.sock.settimeout(60)
                data = self._read(n)
                if mask:
                    data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
                if opcode == 0x9:
                    self._send_frame(0xA, data)
                elif opcode == 0x8:
                    raise Failure("the DevTools websocket was closed by Chromium")
                elif opcode in (0x0, 0x1, 0x2):
                    parts.append(data)
                    if b0 & 0x80:
                        return b"".join(parts).decode()
                self.sock.settimeout(timeout)
        except socket.timeout:
            if parts:
                raise Failure("a websocket message stopped in the middle")
            return None

    def close(self):
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


# ---- the DevTools protocol ---------------------------------------------


class Page:
    """One page target: calls, and what its events told so far."""

    def __init__(self, ws, origin):
        self.ws = ws
        self.origin = origin
        self.next_id = 0
        self.requests = []  # every URL the page asked for
        self.problems = []  # console errors, exceptions, error log entries
        self.load_fired = False

    def _event(self, msg):
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Network.requestWillBeSent":
            self.requests.append(p.get("request", {}).get("url", ""))
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.problems.append(f"console.{p.get('type')}: {args}")
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.problems.append("exception: " + d.get("exception", {}).get("description", d.get("text", "")))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            self.problems.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}")
        elif m == "Page.loadEventFired":
            self.load_fired = True

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            raw = self.ws.recv(left)
            if raw is None:
                return
            msg = json.loads(raw)
            if "method" in msg:
                self._event(msg)

    def call(self, method, params=None, timeout=60):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params or {}}))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            raw = self.ws.recv(max(0.1, end - time.monotonic()))
            if raw is None:
                continue
            msg = json.loads(raw)
            if "method" in msg:
                self._event(msg)
            elif msg.get("id") == my:
                if "error" in msg:
                    raise Failure(f"{method}: {msg['error']}")
                return msg.get("result", {})
        raise Failure(f"{method}: no answer within {timeout} s")

    def js(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise Failure(f"evaluating {expression[:80]!r}: "
                          + d.get("exception", {}).get("description", d.get("text", "")))
        return r.get("result", {}).get("value")

    def wait(self, expression, what, timeout):
        """Polls a JavaScript expression until it is truthy; its value."""
        end = time.monotonic() + timeout
        while True:
            v = self.js(expression)
            if v:
                return v
            if time.monotonic() > end:
                raise Failure(f"timed out after {timeout} s waiting for: {what}")
            self.pump(0.25)

    def click(self, expression, what):
        """A mouse click in the middle of the element the expression finds."""
        xy = self.js(f"(() => {{ const e = {expression}; if (!e) return null; "
                     "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
                     "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        if not xy:
            raise Failure(f"nothing to click: {what}")
        for t in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": t, "x": xy[0], "y": xy[1],
                                                   "button": "left", "clickCount": 1})

    def key(self, name):
        codes = {"Enter": (13, "\r"), "Escape": (27, ""), "Tab": (9, "")}
        code, text = codes[name]
        down = {"type": "keyDown", "key": name, "code": name, "windowsVirtualKeyCode": code,
                "nativeVirtualKeyCode": code}
        if text:
            down["text"] = text
        self.call("Input.dispatchKeyEvent", down)
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": name, "code": name,
                                             "windowsVirtualKeyCode": code,
                                             "nativeVirtualKeyCode": code})


def start_chromium(binary, profile):
    """Starts headless Chromium on a port of its choosing (read back from
    DevToolsActivePort, so no port can be taken meanwhile). The child is
    killed when this script dies, whatever kills it."""
    libc = ctypes.CDLL(None, use_errno=True)

    def die_with_parent():
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    args = [binary, "--headless=new", "--remote-debugging-port=0", f"--user-data-dir={profile}",
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
            "--disable-extensions", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-default-apps", "--disable-dev-shm-usage",
            "--hide-scrollbars", "--mute-audio", "--window-size=1280,900", "about:blank"]
    os.makedirs(profile, exist_ok=True)
    out = open(os.path.join(os.path.dirname(profile), "chromium.log"), "ab")
    proc = subprocess.Popen(args, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                            preexec_fn=die_with_parent)
    port_file = os.path.join(profile, "DevToolsActivePort")
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise Failure(f"chromium exited with {proc.returncode} (see chromium.log)")
        try:
            with open(port_file) as f:
                port = int(f.readline().strip())
            return proc, port
        except (OSError, ValueError):
            time.sleep(0.1)
    raise Failure("chromium did not open its DevTools port within 60 s")


def page_target(port):
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                for t in json.load(r):
                    if t.get("type") == "page" and t.get("webSocketDebuggerUrl"):
                        return t["webSocketDebuggerUrl"]
        except OSError:
            pass
        time.sleep(0.2)
    raise Failure("chromium lists no page target")


# ---- the checks ----------------------------------------------------------


def errors_are_clear(pg, a, redis, ok):
    """A refused action says why: a wrong token (401) is forgotten, to be
    asked again; a read-only tickq-web (403) is named as such. The browser
    logs each refused request as an error: those two, and only those, are
    expected here."""
    t = a.timeout
    pq = a.pause_queue
    notices = "document.getElementById('notices').textContent"
    pause = f"document.querySelector('button[aria-label=\"Pause queue {pq}\"]')"
    pg.problems.clear()
    pg.js(f"sessionStorage.setItem('tickq.apiToken', 'not-the-token')")
    pg.click(pause, f"Pause queue {pq}")
    pg.wait(f"{notices}.includes('refused (401')", "a message that the token was refused (401)", t)
    if pg.js("document.getElementById('token-dlg').open"):
        raise Failure("a stored token was asked for again before it was refused")
    if pg.js("sessionStorage.length") != 0:
        raise Failure("a refused token is still kept")
    if redis("EXISTS", f"{a.prefix}:{{{pq}}}:paused") != "0":
        raise Failure(f"queue {pq} was paused with a wrong token")
    ok("a wrong token: the 401 is shown and the token forgotten")

    ro = f"http://127.0.0.1:{a.readonly_port}"
    pg.load_fired = False
    pg.call("Page.navigate", {"url": ro + "/dashboard"})
    pg.wait(f"!!{pause}", f"queue {pq} on the read-only tickq-web", t)
    pg.click(pause, f"Pause queue {pq} (read-only)")
    pg.wait("document.getElementById('token-dlg').open", "the token dialog (read-only web)", t)
    pg.call("Input.insertText", {"text": a.token})
    pg.key("Enter")
    pg.wait(f"{notices}.includes('read-only (403')", "a message that this web is read-only (403)", t)
    pg.wait("!document.getElementById('ro').hidden && document.getElementById('ro').offsetWidth > 0",
            "the read-only badge", t)
    if redis("EXISTS", f"{a.prefix}:{{{pq}}}:paused") != "0":
        raise Failure(f"queue {pq} was paused through a read-only tickq-web")
    ok("a read-only web: the 403 is shown and the page says read-only")
    unexpected = [p for p in pg.problems if not ("status of 401" in p or "status of 403" in p)]
    if unexpected or len(pg.problems) != 2:
        raise Failure(f"expected the 401 and the 403 in the console, got {pg.problems}")


def run(a):
    origin = f"http://127.0.0.1:{a.web_port}"
    P = a.prefix

    def redis(*args):
        return subprocess.run(["redis-cli", "-p", str(a.redis_port), *args], check=True,
                              capture_output=True, text=True).stdout.strip()

    def ok(msg):
        log("ok: " + msg)

    proc, port = start_chromium(a.chromium, a.profile)
    ws = pg = None
    try:
        ws = WebSocket(page_target(port))
        pg = Page(ws, origin)
        for d in ("Network", "Runtime", "Log", "Page"):
            pg.call(f"{d}.enable")
        desktop = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
        pg.call("Emulation.setDeviceMetricsOverride", desktop)
        pg.call("Page.navigate", {"url": origin + "/dashboard"})
        end = time.monotonic() + 60
        while not pg.load_fired:
            if time.monotonic() > end:
                raise Failure("the dashboard did not finish loading within 60 s")
            pg.pump(0.25)
        ok("the page loaded")

        t = a.timeout
        pg.wait("document.getElementById('live').classList.contains('live')",
                "the event stream to be connected (the 'live' badge)", t)
        ok("the event stream is connected")
        wid = json.dumps(a.worker_id)
        pg.wait(f"[...document.querySelectorAll('#workers-body tr')].some(r => r.dataset.worker === {wid}"
                " && r.querySelector('.badge') && r.querySelector('.badge').textContent === 'alive')",
                f"the live worker {a.worker_id} shown alive", t)
        ok(f"the live worker {a.worker_id} is shown alive")
        sched = json.dumps(a.schedule)
        n = pg.wait(f"(() => {{ const r = [...document.querySelectorAll('#schedules-body tr')]"
                    f".find(r => r.dataset.schedule === {sched}); "
                    "return r && r.textContent.includes(" + sched + ") && "
                    "r.querySelectorAll('.next-runs li time').length; })()",
                    f"schedule {a.schedule} with its next runs", t)
        ok(f"schedule {a.schedule} is shown with {n} next runs")
        pg.wait(f"(() => {{ const r = [...document.querySelectorAll('#schedules-body tr')]"
                f".find(r => r.dataset.schedule === {sched}); "
                "const c = r && r.querySelector('td[data-label=\"Last run\"]'); "
                "return !!(c && c.querySelector('time') && c.querySelector('.badge.b-ok')); })()",
                f"schedule {a.schedule}'s last run with its status", t)
        ok(f"schedule {a.schedule}'s last run is shown with its status")
        for q in (a.queue, a.pause_queue):
            pg.wait(f"[...document.querySelectorAll('#queues-body tr')].some(r => r.dataset.queue === {json.dumps(q)})",
                    f"queue {q} in the queues table", t)
        ok(f"queues {a.queue} and {a.pause_queue} are shown")
        for text in (a.dead_reason, a.dead_error):
            pg.wait(f"document.getElementById('dead-body').textContent.includes({json.dumps(text)})",
                    f"the dead letter's {text!r}", t)
        ok(f"the dead letter shows {a.dead_reason!r} and {a.dead_error!r}")
        pg.wait("document.querySelectorAll('#feed li').length > 0", "an event in the live feed", t)
        ok("live events arrive in the feed")
        pg.wait("document.querySelectorAll('#chart-throughput svg rect.c-processed').length > 0",
                "a bar in the throughput chart", t)
        ok("the throughput chart has bars")
        if a.chart_mark:
            mark = json.dumps(f": {a.chart_mark} processed")
            pg.wait(f"[...document.querySelectorAll('#chart-throughput svg title')].filter(x => x.textContent.endsWith({mark})).length === 1",
                    f"the minute with {a.chart_mark} processed tasks in the throughput chart", t)
            bars = pg.js("document.querySelectorAll('#chart-throughput svg rect.c-processed').length")
            if bars < 50:
                raise Failure(f"the throughput chart has {bars} bars for an hour of counters")
            ok(f"the throughput chart draws the hour from the API ({bars} bars, the marked minute among them)")

        # A person pauses a queue: the token dialog comes up, with the focus
        # in its field; the token is typed and Enter sends it.
        pq = a.pause_queue
        pg.click(f"document.querySelector('button[aria-label=\"Pause queue {pq}\"]')", f"Pause queue {pq}")
        pg.wait("document.getElementById('token-dlg').open", "the token dialog to open", t)
        focus = pg.js("document.activeElement && document.activeElement.id")
        if focus != "token-input":
            raise Failure(f"the token dialog opened with the focus on {focus!r}, not its field")
        pg.call("Input.insertText", {"text": a.token})
        pg.key("Enter")
        pg.wait("!document.getElementById('token-dlg').open", "the token dialog to close", t)
        end = time.monotonic() + t
        while redis("EXISTS", f"{P}:{{{pq}}}:paused") != "1":
            if time.monotonic() > end:
                raise Failure(f"queue {pq}: no {P}:{{{pq}}}:paused after its Pause button")
            pg.pump(0.2)
        ok(f"the Pause button paused queue {pq} (EXISTS {P}:{{{pq}}}:paused = 1)")
        pg.wait(f"!!document.querySelector('button[aria-label=\"Resume queue {pq}\"]')",
                f"a Resume button for queue {pq}", t)
        store = pg.js("JSON.stringify([Object.values(sessionStorage), localStorage.length, document.cookie])")
        if json.loads(store) != [[a.token], 0, ""]:
            raise Failure(f"the token should be in sessionStorage only; storage is {store}")
        ok("the token is kept in sessionStorage only")

        # Resuming asks for no token again.
        pg.click(f"document.querySelector('button[aria-label=\"Resume queue {pq}\"]')", f"Resume queue {pq}")
        end = time.monotonic() + t
        while redis("EXISTS", f"{P}:{{{pq}}}:paused") != "0":
            if pg.js("document.getElementById('token-dlg').open"):
                raise Failure("the token dialog opened a second time")
            if time.monotonic() > end:
                raise Failure(f"queue {pq} is still paused after its Resume button")
            pg.pump(0.2)
        ok(f"the Resume button resumed queue {pq} without asking for the token again")

        # Run the schedule now, from the keyboard: focus its button, Enter.
        pg.js(f"document.querySelector('button[aria-label=\"Run schedule {a.schedule} now\"]').focus()")
        if pg.js("document.activeElement.getAttribute('aria-label')") != f"Run schedule {a.schedule} now":
            raise Failure("the Run now button cannot take the keyboard focus")
        pg.key("Enter")
        end = time.monotonic() + t
        run_id = None
        while not run_id:
            keys = redis("--scan", "--pattern", f"{P}:{{{a.queue}}}:result:{a.schedule}@run-*").split()
            if keys:
                run_id = keys[0][len(f"{P}:{{{a.queue}}}:result:"):]
            elif time.monotonic() > end:
                raise Failure(f"no result {P}:{{{a.queue}}}:result:{a.schedule}@run-* after Run now")
            else:
                pg.pump(0.2)
        ok(f"Run now made task {run_id}, which ran")
        rid = json.dumps(run_id)
        pg.wait(f"[...document.querySelectorAll('#feed li')].some(li => li.textContent.includes({rid}))",
                f"{run_id} in the live feed", t)
        ok(f"{run_id} appeared in the live feed")
        # Pause the feed first, as a reader would: every tick's events push
        # the rows down, and one that came between finding the link and
        # the click moved another row under the pointer.
        pg.click("document.getElementById('feed-pause')", "the Pause feed button")
        pg.wait("document.getElementById('feed-pause').getAttribute('aria-pressed') === 'true'",
                "the feed paused", t)
        pg.click(f"[...document.querySelectorAll('#feed li a')].find(x => x.textContent === {rid})",
                 f"the link to {run_id}")
        pg.wait("document.getElementById('detail-dlg').open && "
                "document.getElementById('detail-title').textContent.includes(" + rid + ") && "
                "!!document.querySelector('#detail-body .badge.b-ok')",
                f"the detail view of {run_id} with its success", t)
        ok(f"the detail view of {run_id} shows its success")
        pg.key("Escape")
        pg.wait("!document.getElementById('detail-dlg').open", "Escape to close the detail view", t)
        pg.click("document.getElementById('feed-pause')", "the Resume feed button")
        pg.wait("document.getElementById('feed-pause').getAttribute('aria-pressed') === 'false'",
                "the feed resumed", t)
        n = pg.wait("document.querySelectorAll('#audit-body tbody tr').length >= 3 && "
                    "document.querySelectorAll('#audit-body tbody tr').length",
                    "the three actions in the audit log", t)
        ok(f"the audit log shows {n} entries")

        # Dark mode follows the system; a phone gets a layout without
        # sideways scrolling.
        bg = "getComputedStyle(document.body).backgroundColor"
        light = pg.js(bg)
        pg.call("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        dark = pg.js(bg)
        pg.call("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "light"}]})
        if light == dark:
            raise Failure(f"the background is {light} in light and dark mode alike")
        ok(f"dark mode: background {light} -> {dark}")
        pg.call("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2,
                                                       "mobile": True})
        pg.pump(0.5)
        w = pg.js("[document.documentElement.scrollWidth, window.innerWidth]")
        if w[0] > w[1] + 1:
            raise Failure(f"on a 390 px wide phone the page is {w[0]} px wide (scrolls sideways)")
        ok(f"on a phone the page fits its {w[1]} px width")
        pg.call("Emulation.setDeviceMetricsOverride", desktop)

        # The screenshot: the top of the page at a desktop width, once the
        # action messages have gone (they go by themselves after 5 s).
        pg.wait("document.getElementById('notices').children.length === 0", "the messages to go", t)
        pg.js("window.scrollTo(0, 0)")
        pg.pump(1.5)
        height = min(a.shot_height, int(pg.js("document.documentElement.scrollHeight")))
        shot = pg.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                  "clip": {"x": 0, "y": 0, "width": 1280, "height": height,
                                                           "scale": 1}})
        png = base64.b64decode(shot["data"])
        with open(a.screenshot, "wb") as f:
            f.write(png)
        ok(f"screenshot saved ({len(png)} bytes, 1280x{height})")

        pg.pump(0.5)
        foreign = [u for u in pg.requests if not (u == origin or u.startswith(origin + "/") or u.startswith("data:"))]
        if foreign:
            raise Failure(f"requests to another origin: {foreign}")
        if not any(u.startswith(origin + "/api/") for u in pg.requests):
            raise Failure(f"no API request was seen: {pg.requests}")
        ok(f"all {len(pg.requests)} requests went to {origin} (or data:)")
        if pg.problems:
            raise Failure("console errors:\n  " + "\n  ".join(pg.problems))
        ok("no console error, exception or CSP violation")
        if a.readonly_port:
            errors_are_clear(pg, a, redis, ok)
    except Failure:
        # What the page showed, for the log: its messages, the section texts
        # and a screenshot beside the one a pass would have saved.
        try:
            log("page messages: " + str(pg.js("document.getElementById('notices').textContent")))
            for sec in ("queues", "workers", "schedules", "dead", "events", "audit"):
                log(f"section {sec}: " + str(pg.js(f"document.getElementById('{sec}').textContent"))[:600])
            log("console problems so far: " + repr(pg.problems))
            shot = pg.call("Page.captureScreenshot", {"format": "png"})
            with open(a.screenshot + ".failure.png", "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        except Exception as e:  # the page may be what broke
            log(f"(could not read the page: {e})")
        raise
    finally:
        if ws:
            ws.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--profile", required=True, help="an empty directory for Chromium's profile")
    ap.add_argument("--web-port", type=int, required=True)
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--worker-id", required=True)
    ap.add_argument("--schedule", required=True)
    ap.add_argument("--queue", required=True, help="a queue the page must show")
    ap.add_argument("--pause-queue", required=True, help="the queue to pause and resume")
    ap.add_argument("--dead-reason", required=True)
    ap.add_argument("--dead-error", required=True)
    ap.add_argument("--chart-mark", type=int, help="a per-minute processed count only one minute has")
    ap.add_argument("--readonly-port", type=int, help="a tickq-web without a token, same Redis")
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--shot-height", type=int, default=2150)
    ap.add_argument("--timeout", type=float, default=30, help="seconds each wait may take")
    a = ap.parse_args()
    try:
        run(a)
    except Failure as e:
        log(f"FAIL: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
