"""``base.connect_error``: the one wording of a failed TCP connect that every reactor reports.

(The reactors' own use of it is checked end to end by test_conformance's refused-connection
test; these cases cover the errors a loopback test cannot provoke.)
"""

import errno
import os
import socket

from cqlreactor.reactors.base import connect_error


def test_refused_keeps_class_and_errno_and_names_the_address():
    original = ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('10.0.0.1', 9042)")
    error = connect_error(original, "10.0.0.1", 9042)
    assert str(error) == "connection refused by 10.0.0.1:9042"
    assert isinstance(error, ConnectionRefusedError)
    assert error.errno == errno.ECONNREFUSED
    assert error.__cause__ is original


def test_a_plain_oserror_gets_the_class_its_errno_maps_to():
    error = connect_error(OSError(errno.ECONNREFUSED, "x"), "::1", 9042)
    assert isinstance(error, ConnectionRefusedError)
    assert str(error) == "connection refused by ::1:9042"


def test_other_errors_name_the_address_and_the_system_message():
    error = connect_error(OSError(errno.EHOSTUNREACH, "whatever"), "10.9.9.9", 9142)
    assert str(error) == "connect to 10.9.9.9:9142 failed: %s" % os.strerror(errno.EHOSTUNREACH)
    assert error.errno == errno.EHOSTUNREACH


def test_name_resolution_and_errno_less_errors_are_left_alone():
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert connect_error(gai, "nowhere.invalid", 9042) is gai
    multi = OSError("Multiple exceptions: [Errno 111] ..., [Errno 111] ...")
    assert connect_error(multi, "localhost", 9042) is multi
    other = ValueError("not an OSError")
    assert connect_error(other, "h", 1) is other
