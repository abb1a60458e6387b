"""The secure connect bundle: read, validate and safely extract it.

A bundle is a zip that Astra hands out per database.  We use four members:

- ``config.json``: ``host`` and ``port`` of the metadata service, ``keyspace``, ``localDC``,
  optionally ``username``/``password`` (plus Java keystore fields we ignore);
- ``ca.crt``: the CA that signed the metadata service, the proxy's node certificates and ``cert``;
- ``cert`` / ``key``: our client certificate and its private key (PEM).

Every other member (``cert.pfx``, ``identity.jks``, ``trustStore.jks`` …) is ignored and never
extracted.  The three PEM members must exist as files for ``SSLContext.load_cert_chain``, so they
are written into a fresh private directory (mode 0700, files 0600) next to the zip, or under the
system temp dir with ``use_default_tempdir=True`` (always for a bundle given as bytes or as a
file object, which has no directory of its own); ``SecureConnectBundle.cleanup()`` removes it
(the cluster calls it at shutdown; a finalizer does it at exit otherwise).

Safety: a member whose name is absolute or climbs out with ``..``, or that is a symbolic link,
makes the bundle invalid (Astra never writes such members, and we refuse to guess); members are
read with a size limit that does not trust the size the zip declares.
"""

import io
import json
import os
import shutil
import ssl
import stat
import tempfile
import time
import weakref
import zipfile

from cqlreactor.core.errors import CloudConfigError

__all__ = ["SecureConnectBundle", "open_bundle", "REQUIRED_MEMBERS", "MAX_CONFIG_SIZE",
           "MAX_PEM_SIZE"]

REQUIRED_MEMBERS = ("config.json", "ca.crt", "cert", "key")
PEM_MEMBERS = ("ca.crt", "cert", "key")
MAX_CONFIG_SIZE = 64 * 1024
MAX_PEM_SIZE = 1024 * 1024
_DIR_PREFIX = ".cqlreactor-bundle-"

_STRING_FIELDS = ("host", "keyspace", "localDC", "username", "password", "pfxCertPassword",
                  "keyStorePassword", "trustStorePassword", "caCertLocation", "keyLocation",
                  "certLocation")


def _bundle_error(path, problem):
    return CloudConfigError("secure connect bundle %s: %s" % (path, problem))


def _remove_tree(directory):
    if directory and os.path.isdir(directory):
        shutil.rmtree(directory, ignore_errors=True)


class SecureConnectBundle(object):
    """A validated bundle whose PEM members were extracted to files.

    Attributes:
        path: the zip's path.
        config: the parsed config.json (dict, every field Astra writes).
        host, port: the metadata service.
        keyspace, local_dc, username, password: from config.json (None when absent).
        directory: the private extraction directory.
        ca_cert_path, cert_path, key_path: the extracted PEM files.
    """

    def __init__(self, path, config, directory):
        self.path = path
        self.config = config
        self.host = config["host"]
        self.port = config["port"]
        self.keyspace = config.get("keyspace")
        self.local_dc = config.get("localDC")
        self.username = config.get("username")
        self.password = config.get("password")
        self.directory = directory
        self.ca_cert_path = os.path.join(directory, "ca.crt")
        self.cert_path = os.path.join(directory, "cert")
        self.key_path = os.path.join(directory, "key")
        self._finalizer = weakref.finalize(self, _remove_tree, directory)

    @property
    def metadata_url(self):
        host = self.host
        if ":" in host and not host.startswith("["):
            host = "[%s]" % host          # an IPv6 literal
        return "https://%s:%d/metadata" % (host, self.port)

    def cleanup(self):
        """Remove the extracted files and their directory (idempotent)."""
        self._finalizer()

    @property
    def cleaned_up(self):
        return not self._finalizer.alive

    def __repr__(self):
        return "<SecureConnectBundle %s host=%s:%s>" % (self.path, self.host, self.port)


def _bundle_source(bundle):
    """(what ``zipfile.ZipFile`` opens, the bundle's name in messages, the directory next to it
    or None) for a bundle given as a path, as bytes or as a binary file object."""
    if isinstance(bundle, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(bundle)), "<%d bytes>" % (len(bundle),), None
    if hasattr(bundle, "read"):
        name = "<file %s>" % (getattr(bundle, "name", None) or type(bundle).__name__,)
        if isinstance(bundle, io.TextIOBase):
            raise CloudConfigError("secure connect bundle %s: opened in text mode; open the zip "
                                   "with open(path, 'rb')" % (name,))
        seekable = getattr(bundle, "seekable", None)
        if seekable is not None and seekable():
            return bundle, name, None
        data = bundle.read()     # a pipe or socket: ZipFile needs to seek
        if not isinstance(data, bytes):
            raise CloudConfigError("secure connect bundle %s: read() gave %s, not bytes; open "
                                   "the zip in binary mode" % (name, type(data).__name__))
        return io.BytesIO(data), name, None
    try:
        path = os.fspath(bundle) if hasattr(os, "fspath") else str(bundle)
    except TypeError:
        raise CloudConfigError("secure connect bundle: expected a path, bytes or a binary file "
                               "object, not %r" % (bundle,))
    return path, path, os.path.dirname(os.path.abspath(path))


def open_bundle(path, use_default_tempdir=False, max_pem_size=MAX_PEM_SIZE):
    """Read, validate and extract a secure connect bundle.

    Args:
        path: the bundle zip: its path, its content as bytes, or a binary file object (read
            from where it stands; extracted under the system temp dir).
        use_default_tempdir: extract under ``tempfile.gettempdir()`` instead of next to the zip.
        max_pem_size: the largest ca.crt / cert / key accepted, in bytes.

    Returns:
        SecureConnectBundle (call ``cleanup()`` when done).

    Raises:
        CloudConfigError: naming the bundle and the problem (missing or unsafe member, bad JSON,
            unusable certificates, a directory we cannot write to).  Nothing is left on disk.
    """
    source, path, next_to = _bundle_source(path)
    members = _read_members(source, path, max_pem_size)
    config = _parse_config(path, members["config.json"])

    if use_default_tempdir or next_to is None:
        base = tempfile.gettempdir()
    else:
        base = next_to
    try:
        directory = tempfile.mkdtemp(prefix=_DIR_PREFIX, dir=base)
    except OSError as exc:
        hint = ("" if use_default_tempdir else
                "; pass cloud={'secure_connect_bundle': ..., 'use_default_tempdir': True} to "
                "extract under the system temp directory instead")
        raise _bundle_error(path, "cannot create a directory for the certificate files in %s "
                                  "(%s)%s" % (base, exc.strerror or exc, hint))
    try:
        for name in PEM_MEMBERS:
            _write_private(os.path.join(directory, name), members[name])
        bundle = SecureConnectBundle(path, config, directory)
    except OSError as exc:
        _remove_tree(directory)
        raise _bundle_error(path, "cannot write the certificate files into %s (%s)"
                                  % (directory, exc.strerror or exc))
    try:
        check_certificates(bundle.ca_cert_path, bundle.cert_path, bundle.key_path, path)
    except BaseException:
        bundle.cleanup()
        raise
    return bundle


def _is_unsafe_name(name):
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return True
    return ".." in norm.split("/")


def _is_symlink(info):
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


def _read_members(source, path, max_pem_size):
    try:
        zf = zipfile.ZipFile(source)
    except (IOError, OSError) as exc:
        raise _bundle_error(path, "cannot open it (%s)" % (exc.strerror or exc,))
    except zipfile.BadZipfile:
        raise _bundle_error(path, "not a zip file")
    with zf:
        found = {}
        for info in zf.infolist():
            if _is_unsafe_name(info.filename):
                raise _bundle_error(path, "member %r points outside the bundle (path traversal); "
                                          "refusing the bundle" % (info.filename,))
            if _is_symlink(info):
                raise _bundle_error(path, "member %r is a symbolic link; refusing the bundle"
                                          % (info.filename,))
            if info.filename in REQUIRED_MEMBERS:
                if info.filename in found:
                    raise _bundle_error(path, "member %r appears twice" % (info.filename,))
                found[info.filename] = info
        missing = [name for name in REQUIRED_MEMBERS if name not in found]
        if missing:
            raise _bundle_error(path, "missing member%s %s (a bundle needs %s)" % (
                "s" if len(missing) > 1 else "", ", ".join(missing),
                ", ".join(REQUIRED_MEMBERS)))
        data = {}
        for name, info in found.items():
            limit = MAX_CONFIG_SIZE if name == "config.json" else max_pem_size
            if info.file_size > limit:
                raise _bundle_error(path, "member %r is %d bytes, more than the %d allowed"
                                          % (name, info.file_size, limit))
            try:
                with zf.open(info) as f:
                    content = f.read(limit + 1)     # never trust the declared size
            except (zipfile.BadZipfile, RuntimeError, ValueError, NotImplementedError,
                    EOFError, OSError) as exc:
                raise _bundle_error(path, "cannot read member %r (%s)" % (name, exc))
            if len(content) > limit:
                raise _bundle_error(path, "member %r is larger than the %d bytes allowed"
                                          % (name, limit))
            if not content.strip():
                raise _bundle_error(path, "member %r is empty" % (name,))
            data[name] = content
    return data


def _parse_config(path, raw):
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bundle_error(path, "config.json is not valid JSON (%s)" % (exc,))
    if not isinstance(config, dict):
        raise _bundle_error(path, "config.json must hold a JSON object, not %s"
                                  % (type(config).__name__,))
    host = config.get("host")
    if not isinstance(host, str) or not host.strip():
        raise _bundle_error(path, "config.json has no 'host' (the metadata service's host name)")
    config["host"] = host.strip()
    for field in ("port", "cql_port"):
        value = config.get(field)
        if value is None and field == "cql_port":
            continue
        try:
            number = int(value)
            if isinstance(value, bool) or not 0 < number < 65536:
                raise ValueError(value)
        except (TypeError, ValueError):
            raise _bundle_error(path, "config.json has %s %r, not a TCP port number"
                                      % ("no 'port'" if value is None else "'%s'" % field, value))
        config[field] = number
    for field in _STRING_FIELDS:
        value = config.get(field)
        if value is not None and not isinstance(value, str):
            raise _bundle_error(path, "config.json field %r must be a string, not %s"
                                      % (field, type(value).__name__))
    return config


def _write_private(file_path, data):
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(file_path, flags, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


# --- certificate checks ----------------------------------------------------------------------

def _ssl_reason(exc):
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason).replace("_", " ").lower()
    return str(exc)


def check_certificates(ca_path, cert_path, key_path, bundle_path="?"):
    """Check that ``key`` matches ``cert`` and that ``cert`` is valid now and signed by ``ca``.

    OpenSSL itself does the check: an in-memory TLS handshake (no sockets) in which a server
    that trusts only ``ca`` demands our client certificate.  This catches exactly what the real
    metadata service and proxy would reject, with the same reasons ("certificate has expired",
    "unable to get local issuer certificate" …), before any connection is tried.

    Raises:
        CloudConfigError naming the bundle and the problem.
    """
    try:
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.verify_mode = ssl.CERT_REQUIRED
        server.load_verify_locations(cafile=ca_path)
    except (ssl.SSLError, ValueError, OSError) as exc:
        raise _bundle_error(bundle_path, "ca.crt is not a usable PEM CA certificate (%s)"
                                         % (_ssl_reason(exc),))
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    try:
        client.load_cert_chain(cert_path, key_path)
        # the handshake needs a server certificate too: reuse ours (only its key is exercised)
        server.load_cert_chain(cert_path, key_path)
    except ssl.SSLError as exc:
        reason = _ssl_reason(exc)
        if "mismatch" in str(exc).lower():
            raise _bundle_error(bundle_path, "the private key in 'key' does not match the "
                                             "certificate in 'cert'")
        raise _bundle_error(bundle_path, "'cert'/'key' are not a usable PEM certificate and "
                                         "private key (%s)" % (reason,))
    except (ValueError, OSError) as exc:
        raise _bundle_error(bundle_path, "'cert'/'key' are unusable (%s)" % (exc,))

    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c_obj = client.wrap_bio(c_in, c_out, server_side=False)
    s_obj = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for key, obj in (("c", c_obj), ("s", s_obj)):
            if done[key]:
                continue
            try:
                obj.do_handshake()
                done[key] = True
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except ssl.SSLError as exc:
                if key == "s":
                    raise _bundle_error(bundle_path, "the client certificate 'cert' is not "
                                                     "accepted by 'ca.crt': %s"
                                                     % (_verify_detail(exc, ca_path,
                                                                       cert_path),))
                raise _bundle_error(bundle_path, "TLS self-check failed (%s)" % (exc,))
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if done["s"]:
            return
    raise _bundle_error(bundle_path, "TLS self-check did not complete")


def _verify_detail(exc, ca_path=None, cert_path=None):
    detail = getattr(exc, "verify_message", None)
    if detail:
        if "local issuer" in detail or "self signed" in detail or "self-signed" in detail:
            detail += " (cert was not signed by the CA in ca.crt)"
        return detail
    # Python 3.6 has no verify_message: say what is wrong ourselves when we can tell
    diagnosis = _diagnose(ca_path, cert_path) if ca_path and cert_path else None
    if diagnosis:
        return "%s (%s)" % (diagnosis, exc)
    return str(exc)


def _diagnose(ca_path, cert_path):
    """Why ``cert`` fails against ``ca.crt``, from the decoded certificates, or None."""
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:
        return None
    try:
        cert = decode(cert_path)
        ca = decode(ca_path)                # the first certificate of the file
        with open(ca_path, "rb") as f:
            ca_count = f.read().count(b"-----BEGIN CERTIFICATE-----")
        now = time.time()
        if ssl.cert_time_to_seconds(cert["notAfter"]) < now:
            return "certificate has expired (notAfter %s)" % (cert["notAfter"],)
        if ssl.cert_time_to_seconds(cert["notBefore"]) > now:
            return "certificate is not yet valid (notBefore %s)" % (cert["notBefore"],)
    except Exception:                       # a private helper: never let it mask the error
        return None
    if ca_count == 1 and cert.get("issuer") != ca.get("subject"):
        return "unable to get local issuer certificate (cert was not signed by the CA in ca.crt)"
    return None
