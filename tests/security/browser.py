"""Helpers for the security tests in Chromium: sign-in, CSP-violation capture, a listener."""

import contextlib
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Runs in every page before its own scripts (Playwright injects it through DevTools, so the
# page's CSP does not apply to it): each CSP violation is kept in window.__cspViolations.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push({
    directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile,
    line: e.lineNumber, sample: e.sample, page: location.href,
  });
});
"""


def first_password(out: str) -> str:
    return re.search(r"password (\S+) \(also kept in", out).group(1)


def sign_in(page, base: str, password: str, username: str = "admin") -> None:
    page.goto(base + "/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/")


class Watch:
    """Everything a page did that the security tests look at: CSP violations (from the DOM
    event and from Chromium's console lines) and every request it made."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._console)
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.violations: list[dict] = []

    def _console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.console.append(text)

    def collect(self) -> list[dict]:
        """The current document's violations, added to those of the documents before it."""
        with contextlib.suppress(Exception):  # a page mid-navigation has no window to ask
            self.violations.extend(self.page.evaluate("window.__cspViolations.splice(0)"))
        return self.violations


class Listener:
    """A plain HTTP server on a free loopback port that notes every request it receives.
    Payloads point their URLs here: any request it sees is a fetch model output caused."""

    def __init__(self):
        self.hits: list[str] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                listener.hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            do_GET = do_POST = do_HEAD = _answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "Listener":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def wait_js(page, expression: str, timeout: float = 15.0, interval: float = 0.05):
    """Wait until the JavaScript expression is truthy in the page; return its value.

    Not page.wait_for_function: while it polls, Playwright evaluates the predicate's source
    with eval() inside the page, which the arena's policy (no 'unsafe-eval') refuses. Each
    page.evaluate here goes through DevTools, which the page's policy does not govern.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = page.evaluate(expression)
        except Exception:  # the page navigating between two polls
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        time.sleep(interval)
