"""A headless Chromium driven over the DevTools protocol, for tests that open real pages.

The protocol runs over a pipe (``--remote-debugging-pipe``: JSON messages ended by a NUL byte,
read by Chromium on fd 3 and written on fd 4), so no port, driver or extra package is needed.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "headless_shell")
TIMEOUT = 30.0  # seconds for one protocol answer

# Run in a small Python first: put the two pipe ends on fds 3 and 4, then become Chromium. (Not
# preexec_fn: it is unsafe once TensorFlow's threads run in this process.)
_MOVE_FDS_AND_EXEC = """
import os, sys
read, write = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))
os.dup2(read, 3)
os.dup2(write, 4)
os.set_inheritable(3, True)  # dup2 onto itself (a dup that landed on 3) keeps close-on-exec
os.set_inheritable(4, True)
os.execvp(sys.argv[3], sys.argv[3:])
"""


def find_chromium() -> str | None:
    """The Chromium to use: $CAPTIONER_CHROMIUM, else the first of NAMES on the PATH."""
    chosen = os.environ.get("CAPTIONER_CHROMIUM")
    if chosen:
        return chosen
    return next((found for name in NAMES if (found := shutil.which(name))), None)


class Chromium:
    """One headless browser process; ``open`` gives a tab to work in."""

    def __init__(self, executable: str):
        self._profile = tempfile.mkdtemp(prefix="captioner-chromium-")
        to_browser, self._out = os.pipe()
        self._in, from_browser = os.pipe()

        self.process = subprocess.Popen(
            [sys.executable, "-c", _MOVE_FDS_AND_EXEC, str(to_browser), str(from_browser),
             executable, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--mute-audio", f"--user-data-dir={self._profile}", "about:blank"],
            pass_fds=(to_browser, from_browser),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._next_id = b"", 0

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one protocol command and return its result; events in between are dropped."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            while b"\0" not in self._buffer:
                if not select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    raise TimeoutError(f"Chromium did not answer {method} in {TIMEOUT:g} s")
                chunk = os.read(self._in, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def open(self, url: str, width: int = 1200, height: int = 900) -> Tab:
        """A new tab showing ``url``, once its document has loaded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        tab = Tab(self, session)
        tab.send("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        tab.send("Page.navigate", {"url": url})
        tab.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")
        return tab

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        for fd in (self._out, self._in):
            os.close(fd)
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self._profile, ignore_errors=True)


class Tab:
    """One page of the browser: run JavaScript in it, point, click and type as a user does."""

    def __init__(self, browser: Chromium, session: str):
        self.browser, self.session = browser, session

    def send(self, method: str, params: dict | None = None) -> dict:
        """Send one protocol command to this tab."""
        return self.browser.send(method, params, self.session)

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression (a promise is awaited); errors raise."""
        answer = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True})
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression[:80]}...: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def wait_for(self, condition: str, timeout: float = TIMEOUT) -> None:
        """Wait until a JavaScript condition holds."""
        deadline = time.monotonic() + timeout
        while not self.js(f"Boolean({condition})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout:g} s: {condition}")
            time.sleep(0.05)

    def centre(self, selector: str) -> tuple[float, float]:
        """Where the first element matching ``selector`` is, scrolled into view."""
        box = self.js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        return box[0], box[1]

    def hover(self, selector: str) -> None:
        """Move the pointer onto the first element matching ``selector``."""
        x, y = self.centre(selector)
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    def click(self, selector: str) -> None:
        """Press and release the left button on the first element matching ``selector``."""
        x, y = self.centre(selector)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent",
                      {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def type(self, selector: str, text: str) -> None:
        """Focus a field, select what it holds, then type ``text`` over it (or delete it)."""
        self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                "e.focus(); e.select(); })()")
        if text:
            self.send("Input.insertText", {"text": text})
            return
        for kind in ("rawKeyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", {"type": kind, "key": "Backspace",
                                                 "code": "Backspace", "windowsVirtualKeyCode": 8})

    def screenshot(self, path: Path) -> Path:
        """Save what the tab shows as a PNG."""
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)
