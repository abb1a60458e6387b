"""Blocking work written once, as a generator of steps, for the blocking and the awaitable API.

A steps generator yields each thing it waits for (a ResponseFuture, a control-connection
query ...) and is sent its answer, or has its error thrown in; its return value is the result.
:func:`run_blocking` runs one with a blocking ``perform(step)``; ``cqlreactor.aio.run_steps``
runs the same generator awaiting each step, so the logic between the waits exists once.
"""

__all__ = ["run_blocking", "Stepper"]


class Stepper(object):
    """Advances a steps generator: ``advance(answer)`` / ``advance(error=exc)`` return the next
    step; once the generator returned, ``done`` is True and ``value`` its value."""

    __slots__ = ("_steps", "done", "value")

    def __init__(self, steps):
        self._steps = steps
        self.done = False
        self.value = None

    def advance(self, answer=None, error=None):
        try:
            if error is not None:
                return self._steps.throw(error)
            return self._steps.send(answer)
        except StopIteration as stop:
            self.done = True
            self.value = stop.value
            return None

    def close(self):
        self._steps.close()


def run_blocking(steps, perform):
    """Run ``steps``, each answered by ``perform(step)`` (which may block); return its value."""
    stepper = Stepper(steps)
    step = stepper.advance()
    while not stepper.done:
        try:
            answer = perform(step)
        except Exception as exc:
            step = stepper.advance(error=exc)
        else:
            step = stepper.advance(answer)
    return stepper.value
