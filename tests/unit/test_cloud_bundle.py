"""Secure connect bundle: reading, validation, safe extraction, cleanup.

Real zips, real PEM files made by cqlreactor.testing.certs, and OpenSSL doing the certificate
checks; no mocks.
"""

import json
import os
import stat
import sys
import tempfile
import zipfile

import pytest

pytest.importorskip("cryptography")

from cqlreactor.cloud import bundle as bundle_mod                      # noqa: E402
from cqlreactor.cloud.bundle import open_bundle                        # noqa: E402
from cqlreactor.core.errors import CloudConfigError                    # noqa: E402
from cqlreactor.testing.astra import certs                                   # noqa: E402
from cqlreactor.testing.astra import write_bundle                     # noqa: E402


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    ca = certs.make_ca(d)
    other_ca = certs.make_ca(d, basename="other-ca", name="another CA")
    return {
        "ca": ca,
        "good": certs.make_cert(ca, ["client"], d, "good", usage="client"),
        "expired": certs.make_cert(ca, ["client"], d, "expired", usage="client", expired=True),
        "mismatched": certs.make_cert(ca, ["client"], d, "mism", usage="client",
                                      mismatched_key=True),
        "foreign": certs.make_cert(other_ca, ["client"], d, "foreign", usage="client"),
    }


def _zip(path, members, symlinks=()):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in symlinks:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _members(pki, client="good", config=None):
    cfg = {"host": "127.0.0.1", "port": 29080, "keyspace": "ks", "localDC": "dc1",
           "username": "u", "password": "p"}
    if config is not None:
        cfg = config
    return {"config.json": json.dumps(cfg) if not isinstance(cfg, bytes) else cfg,
            "ca.crt": pki["ca"].cert_pem, "cert": pki[client].cert_pem,
            "key": pki[client].key_pem}


def _entries(directory):
    return sorted(os.listdir(directory))


def _expect_error(bundle_path, *fragments, **kwargs):
    before = _entries(os.path.dirname(bundle_path))
    with pytest.raises(CloudConfigError) as info:
        open_bundle(bundle_path, **kwargs)
    text = str(info.value)
    assert bundle_path in text
    for fragment in fragments:
        assert fragment in text, text
    assert _entries(os.path.dirname(bundle_path)) == before, "files left behind"
    return text


def test_good_bundle_is_read_and_extracted_privately(pki, tmp_path):
    path = str(tmp_path / "scb.zip")
    write_bundle(path, "db.example", 29080, pki["ca"].cert_pem, pki["good"].cert_pem,
                 pki["good"].key_pem, keyspace="ks", local_dc="dc9", username="u",
                 password="p")
    b = open_bundle(path)
    try:
        assert (b.host, b.port, b.keyspace, b.local_dc) == ("db.example", 29080, "ks", "dc9")
        assert (b.username, b.password) == ("u", "p")
        assert b.config["trustStorePassword"] == "fake"       # every field is kept
        assert b.metadata_url == "https://db.example:29080/metadata"
        assert os.path.dirname(b.directory) == str(tmp_path)  # next to the zip
        assert stat.S_IMODE(os.stat(b.directory).st_mode) == 0o700
        for f in (b.ca_cert_path, b.cert_path, b.key_path):
            assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
        with open(b.key_path, "rb") as f:
            assert f.read() == pki["good"].key_pem
        # the Java members are not extracted
        assert sorted(os.listdir(b.directory)) == ["ca.crt", "cert", "key"]
    finally:
        b.cleanup()
    assert not os.path.exists(b.directory)
    assert _entries(str(tmp_path)) == ["scb.zip"]
    b.cleanup()                                               # idempotent


def test_use_default_tempdir_extracts_under_the_system_temp_dir(pki, tmp_path):
    path = _zip(str(tmp_path / "scb.zip"), _members(pki))
    b = open_bundle(path, use_default_tempdir=True)
    try:
        assert os.path.dirname(b.directory) == tempfile.gettempdir()
        assert _entries(str(tmp_path)) == ["scb.zip"]
    finally:
        b.cleanup()
    assert not os.path.exists(b.directory)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores directory permissions")
def test_read_only_directory_suggests_use_default_tempdir(pki, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    path = _zip(str(ro / "scb.zip"), _members(pki))
    os.chmod(str(ro), 0o555)
    try:
        _expect_error(path, "use_default_tempdir")
        b = open_bundle(path, use_default_tempdir=True)
        b.cleanup()
    finally:
        os.chmod(str(ro), 0o755)


def test_unwritable_directory_suggests_use_default_tempdir(pki, tmp_path, monkeypatch):
    # Runs as root too: where permissions cannot be made to fail, mkdtemp is made to fail the
    # way a read-only file system does (a mock, said here, because root bypasses EACCES).
    path = _zip(str(tmp_path / "scb.zip"), _members(pki))
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(prefix=None, dir=None, **kw):
        if dir == str(tmp_path):
            raise OSError(30, "Read-only file system")
        return real_mkdtemp(prefix=prefix, dir=dir, **kw)

    monkeypatch.setattr(bundle_mod.tempfile, "mkdtemp", mkdtemp)
    text = _expect_error(path, "Read-only file system", "use_default_tempdir")
    assert str(tmp_path) in text
    b = open_bundle(path, use_default_tempdir=True)
    b.cleanup()


@pytest.mark.parametrize("missing", ["config.json", "ca.crt", "cert", "key"])
def test_each_missing_member_is_named(pki, tmp_path, missing):
    members = _members(pki)
    del members[missing]
    path = _zip(str(tmp_path / "scb.zip"), members)
    _expect_error(path, "missing member", missing)


def test_not_a_zip(tmp_path):
    path = str(tmp_path / "scb.zip")
    with open(path, "wb") as f:
        f.write(b"PK but not really a zip")
    _expect_error(path, "not a zip")


def test_nonexistent_bundle(tmp_path):
    path = str(tmp_path / "nope.zip")
    with pytest.raises(CloudConfigError) as info:
        open_bundle(path)
    assert path in str(info.value) and "cannot open" in str(info.value)


@pytest.mark.parametrize("config,fragment", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    ({"port": 1}, "'host'"),
    ({"host": "h"}, "'port'"),
    ({"host": "h", "port": "x"}, "not a TCP port"),
    ({"host": "h", "port": 70000}, "not a TCP port"),
    ({"host": "h", "port": 1, "keyspace": 5}, "'keyspace' must be a string"),
])
def test_bad_config_json(pki, tmp_path, config, fragment):
    path = _zip(str(tmp_path / "scb.zip"), _members(pki, config=config))
    _expect_error(path, "config.json", fragment)


def test_port_as_string_is_accepted(pki, tmp_path):
    path = _zip(str(tmp_path / "scb.zip"),
                _members(pki, config={"host": "h", "port": "29080", "cql_port": "9042"}))
    b = open_bundle(path)
    b.cleanup()
    assert (b.port, b.config["cql_port"], b.keyspace, b.username) == (29080, 9042, None, None)


def test_cert_signed_by_another_ca(pki, tmp_path):
    path = _zip(str(tmp_path / "scb.zip"), _members(pki, client="foreign"))
    _expect_error(path, "not accepted by 'ca.crt'", "not signed by the CA"
                  if sys.version_info >= (3, 7) else "")


def test_expired_client_cert(pki, tmp_path):
    path = _zip(str(tmp_path / "scb.zip"), _members(pki, client="expired"))
    _expect_error(path, "expired" if sys.version_info >= (3, 7) else "not accepted")


def test_key_not_matching_cert(pki, tmp_path):
    path = _zip(str(tmp_path / "scb.zip"), _members(pki, client="mismatched"))
    _expect_error(path, "does not match")


def test_garbage_pem(pki, tmp_path):
    members = _members(pki)
    members["ca.crt"] = b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
    path = _zip(str(tmp_path / "scb.zip"), members)
    _expect_error(path, "ca.crt")


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "/etc/evil", "..\\evil"])
def test_path_traversal_member_refuses_the_bundle(pki, tmp_path, name):
    members = _members(pki)
    members[name] = b"owned"
    sub = tmp_path / "sub"
    sub.mkdir()
    path = _zip(str(sub / "scb.zip"), members)
    _expect_error(path, "path traversal", repr(name))
    assert _entries(str(tmp_path)) == ["sub"]


@pytest.mark.parametrize("name", ["cert", "notes"])
def test_symlink_member_refuses_the_bundle(pki, tmp_path, name):
    members = _members(pki)
    if name in members:
        del members[name]
    path = _zip(str(tmp_path / "scb.zip"), members, symlinks=[(name, "/etc/passwd")])
    _expect_error(path, "symbolic link", repr(name))


def test_oversized_member(pki, tmp_path):
    members = _members(pki)
    members["cert"] = pki["good"].cert_pem + b"#" * 5000
    path = _zip(str(tmp_path / "scb.zip"), members)
    _expect_error(path, "'cert'", "more than the 4096", max_pem_size=4096)


def test_member_that_lies_about_its_size(pki, tmp_path):
    # the central directory claims 100 bytes for "key"; the stored data is 10000 bytes: the
    # declared size is not trusted (zipfile's CRC check or our read limit stops it)
    members = _members(pki)
    members["key"] = b"-" * 10000
    path = _zip(str(tmp_path / "scb.zip"), members)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        name_len = int.from_bytes(data[pos + 28:pos + 30], "little")
        if bytes(data[pos + 46:pos + 46 + name_len]) == b"key":
            data[pos + 24:pos + 28] = (100).to_bytes(4, "little")
        pos = data.find(b"PK\x01\x02", pos + 4)
    with open(path, "wb") as f:
        f.write(bytes(data))
    text = _expect_error(path, "'key'", max_pem_size=4096)
    assert "larger than" in text or "cannot read" in text


def test_other_members_are_ignored(pki, tmp_path):
    members = _members(pki)
    members["identity.jks"] = b"\x00" * 10
    members["docs/readme.txt"] = b"hello"
    path = _zip(str(tmp_path / "scb.zip"), members)
    b = open_bundle(path)
    try:
        assert sorted(os.listdir(b.directory)) == ["ca.crt", "cert", "key"]
    finally:
        b.cleanup()
