"""Coverage-guided fuzzing of the core's decoders with atheris, for runs longer than the test
suite's (tests/unit/test_fuzz_decoders.py runs the same targets under hypothesis).

    pip install atheris
    python fuzz/atheris_decoders.py                       # every target, until stopped
    python fuzz/atheris_decoders.py -max_total_time=3600  # libFuzzer options pass through
    FUZZ_TARGET=connection python fuzz/atheris_decoders.py corpus_dir/

A crash is an exception other than ProtocolError (ValueError for the type text parsers) or a
ProtocolError wrapping a bug-shaped exception (cqlreactor.testing.fuzzing.WrappedBug);
libFuzzer writes the input to crash-<hash>, which ``python fuzz/atheris_decoders.py
crash-<hash>`` replays.
"""

import os
import sys


def main():
    import atheris
    with atheris.instrument_imports():
        from cqlreactor.testing import fuzzing
    name = os.environ.get("FUZZ_TARGET")
    if name:
        if name not in fuzzing.TARGETS:
            sys.exit("FUZZ_TARGET must be one of %s, not %r" % (", ".join(fuzzing.TARGETS), name))
        target = fuzzing.TARGETS[name]
    else:
        target = fuzzing.run
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
