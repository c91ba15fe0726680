"""Pure policy cores shared by the packages above (no I/O, injectable clock and randomness).

``backoff``: ``BackoffStrategy``, ``Backoff``, ``exponential_delay``; ``retry_core``: the
retry decision (``RetryCore``/``RetryState`` -> ``Action``) over ``RetrySpec`` or any object
with its fields (``patterns.error_recovery.RetryConfig``). The one retry engine of the
project: ``patterns.error_recovery.RetryPolicy`` and ``resource_actors.RetryPolicy`` drive it.
"""
