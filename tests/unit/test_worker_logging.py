"""The worker undoes the DEBUG root logger Faust leaves behind for its terminal spinner."""

from __future__ import annotations

import logging

from faust.utils import terminal

from streams.app import restore_log_level


def test_a_warn_worker_builds_no_debug_records_once_running() -> None:
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    try:
        # what faust.Worker._setup_spinner_handler does for a log level of WARN or above
        spinner = terminal.SpinnerHandler(terminal.Spinner(), level=logging.DEBUG)
        root.addHandler(spinner)
        root.setLevel(logging.DEBUG)
        assert logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)

        restore_log_level("warn")

        assert spinner not in root.handlers
        assert not logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)
        assert logging.getLogger("stagewatch.worker").isEnabledFor(logging.WARNING)
        restore_log_level("debug")  # never lowers a level someone asked for
        assert root.level == logging.WARNING
    finally:
        root.setLevel(saved_level)
        root.handlers[:] = saved_handlers
