"""cqlreactor's reactors as connection classes for cassandra-driver itself.

    from cassandra.cluster import Cluster
    from cqlreactor.compat.cassandra_driver import GeventConnection
    cluster = Cluster(["10.0.0.1"], connection_class=GeventConnection)

cassandra-driver keeps the protocol: framing, v5 segments, compression, stream ids, the
OPTIONS/STARTUP/auth handshake, heartbeats, request timeouts, pools, metadata, cqlengine.  These
classes give it only the IO part of its ``Connection`` contract, on one of cqlreactor's
reactors and cqlreactor's one TLS layer (:class:`cqlreactor.reactors.tls.TLSLayer`, over
``ssl.MemoryBIO``: no socket is ever wrapped, so TLS behaves the same on every reactor):
``initialize_reactor`` (builds the class's reactor, with compat_matrix.yaml's gate),
``create_timer`` (a reactor timer), ``factory`` (theirs: it waits for ``connected_event``),
``push`` (queued, one coalesced socket write per loop turn), ``handle_read`` (the bytes a read
delivered, into their frame buffer), ``close``/``handle_close``, ``handle_fork``, their
``ssl_options``/``ssl_context`` and their endpoints (``SniEndPoint`` of Astra bundles).

Supported drivers (:data:`SUPPORTED_DRIVERS`): cassandra-driver 3.25 to 3.30 (tested with
3.25.0 on Python 3.6 and 3.30.1); scylla-driver 3.26 to 3.29 (the same ``Connection``
contract; tested with 3.29.12; its shard-aware source ports are not used: connections land on
any shard, which its pools accept).  Importing
this module with another version raises ImportError saying which versions work.

Which thread runs the reactor:

- libev, asyncio, asyncore: the reactor's own loop thread, as cassandra-driver's own reactors.
  Not under gevent/eventlet monkey-patching: cassandra-driver's waits are then green events,
  which a real loop thread cannot wake; initialize_reactor refuses with a clear error.
- gevent / eventlet with monkey-patching (their reactors' only mode): the hub of the thread
  calling ``Cluster.connect()``; the driver's own code (response callbacks, handshake, timer
  callbacks) runs in greenlets, never inside hub callbacks, so its locks may block.
- gevent / eventlet without monkey-patching (their reactors do not work so): the hub runs in
  a thread of its own, and the driver's real threads and events work unchanged.

TLS, as cassandra-driver does it: ``ssl_context`` (a stdlib ``ssl.SSLContext``; a pyOpenSSL
one is refused) or, on 3.25, ``ssl_options`` alone (``ssl.wrap_socket``'s arguments); SNI is
``ssl_options["server_hostname"]`` (Astra endpoints set the host id), else the endpoint's address
when the context checks host names.  ``ssl_options["check_hostname"]`` with a context that does
not check names itself makes the certificate be checked against the endpoint's address after the
handshake (3.25's behaviour; 3.26+ dropped that check when a context is given, we keep it, so a
bundle's certificates are checked against the SNI proxy's name).
"""

import atexit
import collections
import importlib
import importlib.util
import logging
import os
import socket
import ssl
import sys

try:
    import cassandra
    from cassandra import connection as _cassandra_connection
except ImportError as exc:   # pragma: no cover - the extra is missing
    raise ImportError("cqlreactor.compat.cassandra_driver needs cassandra-driver (or "
                      "scylla-driver): pip install 'cqlreactor[cassandra-driver]' (%s)" % (exc,))

from cqlreactor.core.endpoint import Endpoint
from cqlreactor.core.errors import CqlReactorError, UnsupportedReactorError
from cqlreactor.reactors import matrix
from cqlreactor.reactors._osthread import (green_patched_thread, make_loop_event,
                                          real_allocate_lock, real_get_ident,
                                          start_loop_thread)
from cqlreactor.reactors.base import ReactorStopped, StreamProtocol
from cqlreactor.reactors.driver import lookup
from cqlreactor.reactors.tls import TLSLayer, context_from_options

__all__ = ["ReactorConnectionBase", "GeventConnection", "EventletConnection", "LibevConnection",
           "AsyncioConnection", "AsyncoreConnection", "SUPPORTED_DRIVERS", "driver_identity"]

log = logging.getLogger(__name__)

#: distribution -> (lowest supported version, first unsupported version), as (major, minor)
SUPPORTED_DRIVERS = {"cassandra-driver": ((3, 25), (3, 31)),
                     "scylla-driver": ((3, 26), (3, 30))}

Connection = _cassandra_connection.Connection
ConnectionException = _cassandra_connection.ConnectionException
ConnectionShutdown = _cassandra_connection.ConnectionShutdown


def driver_identity():
    """(distribution name, version string) of the installed ``cassandra`` package: scylla-driver
    ships the same package with a ``cassandra.shard_info`` module of its own."""
    try:
        scylla = importlib.util.find_spec("cassandra.shard_info") is not None
    except (ImportError, ValueError):
        scylla = False
    return ("scylla-driver" if scylla else "cassandra-driver"), str(cassandra.__version__)


def _check_driver():
    name, version = driver_identity()
    low, high = SUPPORTED_DRIVERS[name]
    try:
        key = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        key = None
    if key is None or not low <= key < high:
        raise ImportError(
            "cqlreactor.compat.cassandra_driver supports %s; %s %s is installed. Install a "
            "supported version (pip install '%s>=%d.%d,<%d.%d'), or use cqlreactor's own "
            "Cluster (its API mirrors cassandra-driver's)." % (
                ", ".join("%s %d.%d to %d.%d" % ((n,) + lo + (hi[0], hi[1] - 1))
                          for n, (lo, hi) in sorted(SUPPORTED_DRIVERS.items())),
                name, version, name, low[0], low[1], high[0], high[1]))


_check_driver()

# --- one reactor per reactor name and process ----------------------------------------------------

_GREEN = ("gevent", "eventlet")
_shared = {}                    # reactor name -> _SharedReactor
_shared_lock = real_allocate_lock()


def _patched_by():
    """"gevent" / "eventlet" when that library monkey-patched threading, else None."""
    if green_patched_thread() is None:
        return None
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return "gevent"
    return "eventlet"


class _SharedReactor(object):
    """The reactor of every connection of one connection class (cassandra-driver's reactors
    are class-level), with the thread that runs its hub when it is a green one and nothing is
    patched."""

    def __init__(self, name, allow_unsupported_reactors):
        patched = _patched_by()
        if patched is not None and patched != name:
            raise UnsupportedReactorError(
                "the %s connection class cannot run under %s monkey-patching: cassandra-driver's "
                "waits are %s events there, which the %s loop cannot wake. Use %sConnection."
                % (name, patched, patched, name, patched.capitalize()))
        reactor_class = matrix.load_reactor_class(name)   # ReactorUnavailable: what to install
        self.pid = os.getpid()
        self.reactor = reactor_class(allow_unsupported_reactors=allow_unsupported_reactors)
        #: the driver's code must run in greenlets, not in hub callbacks (see the module doc)
        self.in_greenlets = patched is not None
        self.get_ident = real_get_ident()       # the OS thread's, patched or not
        self._hub_thread = None
        if name in _GREEN and patched is None:
            self._start_hub_thread()
        else:
            self.reactor.start()        # green: binds the caller's hub

    def _start_hub_thread(self):
        started = make_loop_event()
        box = []

        def run():
            self.reactor.start()        # this thread's hub
            box.append(self.reactor.make_event())
            started.set()
            while not box[0].wait(3600.0):  # runs the hub until _end sets it (a timeout:
                pass                        # a hub with nothing to wait for would exit)

        self._hub_thread = start_loop_thread(run, name="cqlreactor-compat-%s" % self.reactor.name)
        if not started.wait(30.0):
            raise RuntimeError("the %s hub thread did not start" % (self.reactor.name,))
        self._done = box[0]

    def _end(self):
        self.reactor.stop()             # on the hub thread: closes its connections now
        self._done.set()

    def stop(self):
        """Stop the reactor (at exit); a hub thread ends."""
        if self._hub_thread is None:
            self.reactor.stop()
            return
        try:
            self.reactor.call_soon_threadsafe(self._end)
        except ReactorStopped:
            return
        self._hub_thread.join(5.0)


def _shared_reactor(cls):
    name = cls.reactor_name
    if name is None:
        raise TypeError("%s has no reactor_name: use GeventConnection, LibevConnection ... or "
                        "set reactor_name in your subclass" % (cls.__name__,))
    with _shared_lock:
        shared = _shared.get(name)
        if shared is None or shared.pid != os.getpid():
            # (a forked child builds its own: the parent's loop and hub thread are not here)
            shared = _SharedReactor(name, cls.allow_unsupported_reactors)
            _shared[name] = shared
        return shared


@atexit.register
def _stop_shared_reactors():
    # registered after cqlreactor.reactors.base's exit hook, so it runs first: a hub thread
    # ends after its reactor stopped on it
    for shared in list(_shared.values()):
        if shared.pid == os.getpid():
            try:
                shared.stop()
            except Exception:
                log.debug("stopping %r at exit failed", shared.reactor, exc_info=True)


# --- TLS: cassandra-driver's options onto the one TLS layer --------------------------------------

# what ssl_options may hold: SSLContext options and ssl.wrap_socket / SSLContext.wrap_socket ones
_CONTEXT_KEYS = ("ssl_version", "cert_reqs", "check_hostname", "keyfile", "certfile", "ca_certs",
                 "ciphers")
_WRAP_KEYS = ("server_side", "do_handshake_on_connect", "suppress_ragged_eofs",
              "server_hostname")
_ANY_TLS_VERSION = tuple(getattr(ssl, n) for n in ("PROTOCOL_TLS", "PROTOCOL_SSLv23",
                                                   "PROTOCOL_TLS_CLIENT") if hasattr(ssl, n))


def _legacy_context(options):
    """cassandra-driver 3.25 with ``ssl_options`` and no ``ssl_context`` called
    ``ssl.wrap_socket(sock, **ssl_options)``: the same context, its defaults included (no
    certificate verification unless ``cert_reqs`` asks for it)."""
    version = options.get("ssl_version")
    if version is not None and version not in _ANY_TLS_VERSION:
        raise ValueError("ssl_options ssl_version=%r: pin TLS versions in an ssl_context "
                         "(minimum_version / maximum_version) instead" % (version,))
    context = context_from_options({
        "ca_certs": options.get("ca_certs"), "certfile": options.get("certfile"),
        "keyfile": options.get("keyfile"), "check_hostname": False,
        "cert_reqs": options.get("cert_reqs", ssl.CERT_NONE)})
    if options.get("ciphers"):
        context.set_ciphers(options["ciphers"])
    return context


class _TLSSettings(object):
    __slots__ = ("context", "server_hostname", "check_hostname_as", "ragged_eof_is_close")

    def __init__(self, connection):
        options = dict(connection.ssl_options or {})
        unknown = sorted(set(options) - set(_CONTEXT_KEYS) - set(_WRAP_KEYS))
        if unknown:
            raise ValueError("unknown ssl_options: %s (known: %s)"
                             % (", ".join(unknown), ", ".join(_CONTEXT_KEYS + _WRAP_KEYS)))
        if options.get("server_side"):
            raise ValueError("ssl_options server_side=True: a client connection cannot be the "
                             "TLS server side")
        context = connection.ssl_context
        if context is None:
            context = _legacy_context(options)
        if not isinstance(context, ssl.SSLContext):
            raise TypeError("ssl_context must be an ssl.SSLContext (cqlreactor's TLS layer runs "
                            "over ssl.MemoryBIO), not %s.%s (pyOpenSSL contexts are what "
                            "cassandra-driver's eventlet and Twisted reactors use)"
                            % (type(context).__module__, type(context).__name__))
        address = connection.endpoint.address
        check = bool(getattr(connection, "_check_hostname", False)
                     or options.get("check_hostname"))
        self.context = context
        self.server_hostname = options.get("server_hostname") or (
            address if context.check_hostname else None)
        self.check_hostname_as = address if check and not context.check_hostname else None
        self.ragged_eof_is_close = options.get("suppress_ragged_eofs", True)

    def layer(self, host):
        return TLSLayer(self.context, self.server_hostname, host=host,
                        check_hostname_as=self.check_hostname_as)


# --- the connection classes ----------------------------------------------------------------------

class ReactorConnectionBase(Connection, StreamProtocol):
    """A cassandra-driver ``Connection`` whose IO is one of cqlreactor's reactors.

    Subclasses set :attr:`reactor_name` (a name of compat_matrix.yaml).  Class attributes:

    Attributes:
        reactor_name: "gevent", "eventlet", "libev", "asyncio" or "asyncore".
        allow_unsupported_reactors: the matrix's opt-in for a gated reactor (None, True or
            names), as ``cqlreactor.Cluster(allow_unsupported_reactors=...)``; the environment
            variable CQLREACTOR_ALLOW_UNSUPPORTED works too.
    """

    reactor_name = None
    allow_unsupported_reactors = None

    _transport = None
    _tls = None
    _stream_ready = False
    _tcp_connected = False
    _ragged_eof_is_close = True

    @property
    def tls(self):
        """The :class:`~cqlreactor.reactors.tls.TLSLayer` of a TLS connection, else None."""
        return self._tls

    # --- class level: cassandra-driver's reactor hooks -------------------------------------------

    @classmethod
    def initialize_reactor(cls):
        """Build (once per process) the reactor every connection of this class uses.

        Raises:
            UnsupportedReactorError: the matrix gates the reactor off here (not opted in), or
                another library's monkey-patching is active.
            ReactorUnavailable: its packages are missing (the message says what to install).
        """
        _shared_reactor(cls)

    @classmethod
    def handle_fork(cls):
        """After ``os.fork()``: the child's first use builds a new reactor (the parent's loop
        and connections are abandoned, never closed from the child)."""
        with _shared_lock:
            for name, shared in list(_shared.items()):
                if shared.pid != os.getpid():
                    del _shared[name]

    @classmethod
    def create_timer(cls, timeout, callback):
        """``callback()`` after ``timeout`` seconds, on the loop (in a greenlet under
        monkey-patching); returns a handle with ``cancel()``."""
        shared = _shared_reactor(cls)
        if shared.in_greenlets:
            return shared.reactor.call_later(timeout, shared.reactor.spawn, callback)
        return shared.reactor.call_later(timeout, callback)

    # --- opening ---------------------------------------------------------------------------------

    def __init__(self, *args, **kwargs):
        Connection.__init__(self, *args, **kwargs)
        shared = _shared_reactor(type(self))
        self._reactor = shared.reactor
        self._in_greenlets = shared.in_greenlets
        self._get_ident = shared.get_ident
        self._reader = None                  # the loop's thread while it runs driver code
        self._out = collections.deque()
        self._flush_scheduled = False
        self._work = collections.deque()     # driver code waiting for its greenlet
        self._working = False
        self._host_text = str(self.endpoint)
        if self.sockopts:
            for option in self.sockopts:
                if not isinstance(option, (tuple, list)) or len(option) != 3:
                    raise ValueError("sockopts entries are (level, option, value) tuples for "
                                     "socket.setsockopt; got %r" % (option,))
        tls = None
        if self.ssl_context is not None or self.ssl_options:
            tls = _TLSSettings(self)
            self._tls = tls.layer(self._host_text)      # ValueError: inconsistent options
            self._ragged_eof_is_close = tls.ragged_eof_is_close
        target = self._target()                         # may block: we are in the caller
        self._reactor.call_soon_threadsafe(self._open, target)

    def _target(self):
        """The (ip, port) to connect to: ``endpoint.resolve()`` (an SniEndPoint picks a proxy
        address each time), then the reactor's lookup of a host name."""
        endpoint = self.endpoint
        if getattr(socket, "AF_UNIX", None) is not None and \
                getattr(endpoint, "socket_family", socket.AF_INET) == socket.AF_UNIX:
            raise ConnectionException("%s: cqlreactor's reactors connect over TCP only, not to "
                                      "unix sockets" % (endpoint,), endpoint)
        address, port = endpoint.resolve()
        try:
            return lookup(self._reactor, Endpoint(address, port))
        except CqlReactorError as exc:
            raise ConnectionException(str(exc), endpoint)

    def _open(self, target):
        if self.is_closed:
            return
        try:
            self._transport = self._reactor.open_stream(target[0], target[1], self)
        except Exception as exc:
            self.connection_lost(exc)

    # --- StreamProtocol: the reactor calls these on its loop -------------------------------------

    def connection_made(self, transport):
        self._transport = transport
        self._tcp_connected = True
        try:
            for option in self.sockopts or ():
                transport.setsockopt(*option)
        except Exception as exc:
            self._driver(self.defunct, exc)
            return
        if self._tls is not None:
            try:
                transport.write(self._tls.start())
            except CqlReactorError as exc:
                self._driver(self.defunct, exc)
        else:
            self._became_writable()

    def _became_writable(self):
        self._stream_ready = True
        if self._out:
            self._flush()
        self._driver(self._send_options_message)

    def data_received(self, data):
        if self.is_closed:
            return
        tls = self._tls
        if tls is not None:
            try:
                data, outgoing = tls.receive(data)
            except CqlReactorError as exc:   # a failed handshake, or a bad record after it
                alert = tls.pending_outgoing()
                if alert and self._transport is not None:
                    self._transport.write(alert)
                self._driver(self.defunct, exc)
                return
            if outgoing:
                self._transport.write(outgoing)
            if not self._stream_ready and tls.handshake_complete:
                self._became_writable()
            if not data:
                if tls.peer_closed:
                    self._driver(self.close)
                return
        self._driver(self.handle_read, data)

    def connection_lost(self, exc):
        if self.is_closed:
            return
        if exc is not None and not self._tcp_connected:
            error = exc                 # the TCP connect failed: their reactors raise it so
        elif exc is not None:
            error = ConnectionException("connection to %s lost: %s" % (self.endpoint, exc),
                                        self.endpoint)
            error.__cause__ = exc
        elif not self.connected_event.is_set():
            error = ConnectionException("%s closed the connection before the handshake "
                                        "finished" % (self.endpoint,), self.endpoint)
        elif self._tls is not None and not self._tls.peer_closed \
                and not self._ragged_eof_is_close:
            error = ConnectionException("%s closed the TCP connection without a TLS "
                                        "close_notify (suppress_ragged_eofs=False)"
                                        % (self.endpoint,), self.endpoint)
        else:
            self._driver(self.handle_close)
            return
        self._driver(self.defunct, error)

    # --- the driver's side -----------------------------------------------------------------------

    def _driver(self, fn, *args):
        """Run driver code from the loop: directly, or under monkey-patching in a greenlet (one
        at a time per connection, in order), since a hub callback must never block and the
        driver's code takes locks.

        What that code pushes (the next requests its callbacks send) waits for the end of the
        read and goes out in one write (:meth:`push` skips scheduling a flush per request)."""
        if not self._in_greenlets:
            outer = self._reader
            self._reader = self._get_ident()
            try:
                fn(*args)
            except Exception as exc:
                self._failed(exc)
            finally:
                self._reader = outer
            if outer is None:
                self._flush_after_driver()
            return
        self._work.append((fn, args))
        if not self._working:
            self._working = True
            self._reactor.spawn(self._run_work)

    def _run_work(self):
        work = self._work
        self._reader = self._get_ident()
        try:
            while work:
                fn, args = work.popleft()
                try:
                    fn(*args)
                except Exception as exc:
                    self._failed(exc)
        finally:
            self._working = False
            self._reader = None
            self._flush_after_driver()

    def _flush_after_driver(self):
        if self._out and not self._flush_scheduled and self._reader is None:
            self._flush()

    def _failed(self, exc):
        log.exception("error handling data from %s", self.endpoint)
        try:
            self.defunct(exc)
        except Exception:
            log.exception("defunct(%r) failed", exc)

    def handle_read(self, data):
        """Bytes a read delivered (already decrypted): into the driver's buffer, then its frame
        processing (callbacks, events), ``in_buffer_size`` bytes at a time as their reactors
        read: the driver copies what remains in its buffer after each frame, so one large
        read handed over whole would cost time quadratic in its size."""
        size = self.in_buffer_size
        if len(data) <= size:
            self._iobuf.write(data)
            self.process_io_buffer()
            return
        view = memoryview(data)
        for start in range(0, len(view), size):
            self._iobuf.write(view[start:start + size])
            self.process_io_buffer()

    def handle_close(self):
        """The server closed the connection (an orderly EOF): close it, as their reactors do."""
        log.debug("connection %s closed by the server", self)
        self.close()

    def push(self, data):
        """Send ``data`` (any thread): queued, written with everything else pushed in the same
        loop turn, encrypted on the loop by the TLS layer."""
        self._out.append(data)
        if self._flush_scheduled or self._reader == self._get_ident():
            return                      # the loop flushes after the driver code it runs
        self._flush_scheduled = True
        try:
            self._reactor.call_soon_threadsafe(self._flush)
        except ReactorStopped as exc:
            self._flush_scheduled = False
            self.defunct(exc)

    def _flush(self):
        self._flush_scheduled = False
        transport = self._transport
        out = self._out
        if not self._stream_ready or transport is None or self.is_closed or not out:
            return                      # not connected yet: _became_writable flushes
        data = out.popleft() if len(out) == 1 else b"".join([out.popleft() for _ in range(len(out))])
        if self._tls is not None:
            try:
                data = self._tls.send(data)
            except CqlReactorError as exc:
                self._driver(self.defunct, exc)
                return
        transport.write(data)

    def close(self):
        """Close the connection (any thread); pending requests fail with ConnectionShutdown."""
        with self.lock:
            if self.is_closed:
                return
            self.is_closed = True
        log.debug("closing connection (%s) to %s", id(self), self.endpoint)
        try:
            self._reactor.call_soon_threadsafe(self._close_in_loop)
        except ReactorStopped:
            pass                        # the stopped reactor closed its sockets already
        if not self.is_defunct:
            self.error_all_requests(ConnectionShutdown("Connection to %s was closed"
                                                       % (self.endpoint,)))
            self.connected_event.set()  # don't leave a factory() waiting

    def _close_in_loop(self):
        transport, self._transport = self._transport, None
        if transport is None:
            return
        if self._tls is not None and self._stream_ready:
            try:
                transport.write(self._tls.close())   # close_notify, best effort
            except Exception:
                pass
        transport.close()


class GeventConnection(ReactorConnectionBase):
    """cqlreactor's gevent reactor; with or without ``gevent.monkey.patch_all()``."""
    reactor_name = "gevent"


class EventletConnection(ReactorConnectionBase):
    """cqlreactor's eventlet reactor; gated off by compat_matrix.yaml on Python 3.7+."""
    reactor_name = "eventlet"


class LibevConnection(ReactorConnectionBase):
    """cqlreactor's libev reactor (cffi binding to the system libev: no C extension build)."""
    reactor_name = "libev"


class AsyncioConnection(ReactorConnectionBase):
    """cqlreactor's asyncio reactor (uvloop when installed) in its loop thread."""
    reactor_name = "asyncio"


class AsyncoreConnection(ReactorConnectionBase):
    """cqlreactor's asyncore reactor (the pyasyncore package from Python 3.12)."""
    reactor_name = "asyncore"
