"""Test certificates: a throw-away CA and certificates it signs, written as PEM files.

Used by the fake Astra, the TLS tests of every reactor and the bundle tests.  Needs the
``cryptography`` package (a test dependency, never imported by the driver itself).

    ca = make_ca(tmpdir)
    server = make_cert(ca, ["localhost", "127.0.0.1"], tmpdir, "node")
    client = make_cert(ca, ["client"], tmpdir, "client", usage="client")
    ssl_ctx.load_cert_chain(server.cert_path, server.key_path)

Broken variants for negative tests: ``make_cert(..., expired=True)`` (validity ended yesterday),
``make_cert(..., mismatched_key=True)`` (the key file holds a different key than the cert) and a
certificate from another CA (``make_cert(make_ca(other_dir), ...)``).
"""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateAuthority", "CertFiles", "make_ca", "make_cert", "make_key", "write_key"]

_ONE_DAY = datetime.timedelta(days=1)


class CertFiles(object):
    """A certificate and its key, as objects and as PEM files.

    Attributes:
        cert, key: the ``cryptography`` objects.
        cert_path, key_path: the PEM files.
        cert_pem, key_pem: the PEM bytes.
    """

    def __init__(self, cert, key, cert_path, key_path, cert_pem, key_pem):
        self.cert = cert
        self.key = key
        self.cert_path = cert_path
        self.key_path = key_path
        self.cert_pem = cert_pem
        self.key_pem = key_pem

    def __repr__(self):
        return "<CertFiles %s>" % (self.cert_path,)


class CertificateAuthority(CertFiles):
    """A self-signed CA (a ``CertFiles`` whose certificate signs others)."""

    def __init__(self, cert, key, cert_path, key_path, cert_pem, key_pem, name):
        super(CertificateAuthority, self).__init__(cert, key, cert_path, key_path, cert_pem,
                                                   key_pem)
        self.name = name


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def make_key():
    """A new private key (EC P-256: fast to make, accepted by every OpenSSL we run on)."""
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path, data, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def write_key(key, path):
    """Write a private key as unencrypted PKCS#8 PEM, mode 0600; returns the PEM bytes."""
    pem = _key_pem(key)
    _write(path, pem, 0o600)
    return pem


def _general_names(names):
    out = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(str(name))))
        except ValueError:
            out.append(x509.DNSName(str(name)))
    return out


def make_ca(directory, name="cqlreactor test CA", basename="ca", days=30):
    """Make a self-signed CA and write ``<basename>.crt`` / ``<basename>.key`` in directory.

    Returns:
        CertificateAuthority
    """
    key = make_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _ONE_DAY)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path = os.path.join(str(directory), basename + ".crt")
    key_path = os.path.join(str(directory), basename + ".key")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    _write(cert_path, cert_pem, 0o644)
    key_pem = write_key(key, key_path)
    return CertificateAuthority(cert, key, cert_path, key_path, cert_pem, key_pem, name)


def make_cert(ca, names, directory, basename, usage="both", expired=False,
              mismatched_key=False, days=30, common_name=None):
    """Make a certificate signed by ``ca`` and write ``<basename>.crt`` / ``<basename>.key``.

    Args:
        ca: the signing CertificateAuthority.
        names: subjectAltName entries; strings that parse as IP addresses become IP entries,
            the rest DNS names.  The first one is also the common name unless given.
        directory, basename: where to write.
        usage: "server", "client" or "both" (extended key usage).
        expired: validity ended a day ago (for negative tests).
        mismatched_key: write a different, freshly made key than the certified one.
        days: validity from now.

    Returns:
        CertFiles
    """
    names = list(names)
    key = make_key()
    cn = common_name or (str(names[0]) if names else basename)
    now = _now()
    if expired:
        not_before, not_after = now - datetime.timedelta(days=10), now - _ONE_DAY
    else:
        not_before, not_after = now - _ONE_DAY, now + datetime.timedelta(days=days)
    ekus = {"server": [ExtendedKeyUsageOID.SERVER_AUTH],
            "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
            "both": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]}[usage]
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(ca.cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before)
               .not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.key.public_key()), critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(names)),
                                        critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    cert_path = os.path.join(str(directory), basename + ".crt")
    key_path = os.path.join(str(directory), basename + ".key")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    _write(cert_path, cert_pem, 0o644)
    written_key = make_key() if mismatched_key else key
    key_pem = write_key(written_key, key_path)
    return CertFiles(cert, written_key, cert_path, key_path, cert_pem, key_pem)
