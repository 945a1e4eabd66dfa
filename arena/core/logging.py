"""Log filters: one line for what the client did wrong, tracebacks only for the server's faults."""

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """``django.request`` logs a 403 or 404 raised as an exception with its traceback; for a
    4xx the line says all there is (method, path, status), so the traceback is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
