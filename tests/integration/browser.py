"""A real headless Chromium driven over the DevTools protocol, for the
status page's tests: Debian's `chromium` and `python3-websocket`, nothing
downloaded. One page per Browser; every wait polls with a deadline.
"""
import base64
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import urllib.request

import websocket

from conftest import wait_for

CHROMIUM = os.environ.get("PENSTOCK_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
# Root needs --no-sandbox; the rest keeps a headless browser from calling
# home (refused connections fill the log otherwise).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
         "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
         "--window-size=1280,900"]


class BrowserError(AssertionError):
    pass


class Browser:
    def __init__(self, workdir):
        self.profile = pathlib.Path(tempfile.mkdtemp(prefix="chromium-", dir=workdir))
        self.log = open(self.profile.parent / "chromium.log", "w")
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}",
                                      "about:blank"], stdout=self.log, stderr=self.log)
        port_file = self.profile / "DevToolsActivePort"
        wait_for(lambda: port_file.exists() and port_file.read_text().strip(), 60,
                 what="chromium to open its DevTools port")
        port = int(port_file.read_text().splitlines()[0])
        self.ws = None
        url = None

        def page_target():
            nonlocal url
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            url = pages[0]["webSocketDebuggerUrl"] if pages else None
            return url
        wait_for(page_target, 30, interval=0.2, what="chromium's first page")
        self.ws = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events = []
        self.dialogs = []
        self.call("Page.enable")
        self.call("Runtime.enable")

    # --- the protocol ----------------------------------------------------
    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def _event(self, msg):
        method = msg.get("method")
        if method == "Page.javascriptDialogOpening":
            # confirm() of a destructive action: accept, and remember it
            self.dialogs.append(msg["params"].get("message"))
            self.ws.send(json.dumps({"id": 0, "method": "Page.handleJavaScriptDialog",
                                     "params": {"accept": True}}))
        elif method == "Runtime.exceptionThrown":
            self.events.append(("exception", msg["params"]))
        elif method == "Runtime.consoleAPICalled":
            self.events.append(("console", msg["params"]))
        else:
            self.events.append((method, msg.get("params")))

    def eval(self, expression):
        """The value of a JavaScript expression (promises awaited)."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise BrowserError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def exceptions(self):
        return [p for kind, p in self.events if kind == "exception"]

    # --- what a user does ------------------------------------------------
    def goto(self, url):
        self.call("Page.navigate", url=url)
        wait_for(lambda: self.eval("document.readyState") == "complete", 30,
                 what=f"{url} to load")

    def type_into(self, selector, text):
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def click(self, selector):
        ok = self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                       f" if (!e) return false; e.click(); return true; }})()")
        if not ok:
            raise BrowserError(f"nothing to click at {selector}")

    def text(self, selector):
        return self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                         f" return e ? e.textContent : null; }})()")

    def value_of(self, field):
        """data-value of the job view's [data-field=field]."""
        return self.eval(f"(() => {{ const e = document.querySelector("
                         f"'#job [data-field=\"{field}\"]'); return e ? e.dataset.value : null; }})()")

    def visible(self, selector):
        return self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                         f" return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0; }})()")

    def wait(self, predicate, timeout=30, what="the page"):
        return wait_for(predicate, timeout, interval=0.1, what=what)

    def viewport(self, width, height, mobile=False):
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=2 if mobile else 1, mobile=mobile)

    def screenshot(self, path, full_page=True):
        params = {"format": "png"}
        if full_page:
            m = self.call("Page.getLayoutMetrics")
            size = m.get("cssContentSize") or m["contentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                              "scale": 1}
        data = self.call("Page.captureScreenshot", **params)["data"]
        pathlib.Path(path).write_bytes(base64.b64decode(data))

    def close(self):
        try:
            if self.ws:
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(20)
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)
