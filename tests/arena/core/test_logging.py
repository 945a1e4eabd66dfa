"""Server log: every line once, and a client error without a traceback."""

import io
import logging
import logging.config

import pytest
from django.conf import settings


class Logged:
    def __init__(self):
        self.buffer = io.StringIO()

    def text(self) -> str:
        return self.buffer.getvalue()


@pytest.fixture
def logged():
    """The site's LOGGING applied for real, its console handler writing to a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logging.config.dictConfig(settings.LOGGING)
    out = Logged()
    for handler in root.handlers:
        handler.setStream(out.buffer)
    yield out
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.mark.django_db
def test_a_forbidden_page_is_one_line_without_a_traceback(client, logged, carol):
    client.force_login(carol)
    assert client.get("/judge/").status_code == 403
    err = logged.text()
    lines = [line for line in err.splitlines() if "Forbidden" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err


def test_a_django_message_is_printed_once(logged):
    logging.getLogger("django.request").warning("one line only")
    assert logged.text().count("one line only") == 1


def test_a_server_error_keeps_its_traceback(logged):
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("django.request").error(
            "Internal Server Error: /x", exc_info=True, extra={"status_code": 500}
        )
    err = logged.text()
    assert "Traceback" in err and "RuntimeError: boom" in err
