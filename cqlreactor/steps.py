"""Blocking work written once, as a generator of steps, for the blocking and the awaitable API.

A steps generator yields each thing it waits for (a ResponseFuture, a control-connection
query ...) and is sent its answer, or has its error thrown in; its return value is the result.
:func:`run_blocking` runs one with a blocking ``perform(step)``; ``cqlreactor.aio.run_steps``
runs the same generator awaiting each step, so the logic between the waits exists once.
"""

__all__ = ["run_blocking"]


def run_blocking(steps, perform):
    """Run ``steps``, each answered by ``perform(step)`` (which may block); return its value."""
    answer, error = None, None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(answer)
        except StopIteration as stop:
            return stop.value
        answer, error = None, None
        try:
            answer = perform(step)
        except Exception as exc:
            error = exc
