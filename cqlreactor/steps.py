"""Blocking work written once, as a generator of steps, for the blocking and the awaitable API.

A steps generator yields each thing it waits for (a ResponseFuture, a control-connection
query ...) and is sent its answer, or has its error thrown in; its return value is the result.
:func:`run_blocking` runs one with a blocking ``perform(step)``; ``cqlreactor.aio.run_steps``
runs the same generator awaiting each step, so the logic between the waits exists once;
:func:`run_with_callbacks` runs it from loop callbacks (each step started, its answer handed
back by a callback), so a wait never blocks a thread nor needs one.
"""

__all__ = ["run_blocking", "run_with_callbacks", "Stepper"]


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


def run_with_callbacks(steps, start, done):
    """Run ``steps`` without blocking: ``start(step, answered)`` begins each step and calls
    ``answered(answer)`` once it has its answer (an exception instance is thrown into the
    generator); ``done(value, error)`` is called once, with the generator's value or the
    exception it raised.  Nothing waits: every step continues in the callback of the last."""
    stepper = Stepper(steps)

    def advance(answer=None, error=None):
        try:
            step = stepper.advance(answer, error)
        except Exception as exc:
            done(None, exc)
            return
        if stepper.done:
            done(stepper.value, None)
            return
        try:
            start(step, answered)
        except Exception as exc:     # the step could not even start: the generator decides
            advance(error=exc)

    def answered(answer):
        if isinstance(answer, Exception):
            advance(error=answer)
        else:
            advance(answer)

    advance()
