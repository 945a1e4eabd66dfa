import os

import pytest

_FLAG = "DJANGO_ALLOW_ASYNC_UNSAFE"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """The browser test here uses the ORM beside Playwright's sync API, which keeps an event
    loop running in this thread; the ORM calls are plain synchronous ones (the live server
    answers on a thread of its own), so Django's guard is lifted for that test only."""
    if item.get_closest_marker("browser") is None:
        return (yield)
    before = os.environ.get(_FLAG)
    os.environ[_FLAG] = "true"
    try:
        return (yield)
    finally:
        if before is None:
            os.environ.pop(_FLAG, None)
        else:
            os.environ[_FLAG] = before
