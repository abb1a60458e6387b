"""The secure connect bundle of the fake Astra, laid out as Astra lays it out."""

import json
import os
import zipfile

__all__ = ["write_bundle"]


# --- the bundle -----------------------------------------------------------------------------

def write_bundle(path, host, port, ca_pem, cert_pem, key_pem, keyspace=None, local_dc="dc1",
                 username=None, password=None, extra_members=None):
    """Write a secure connect bundle zip as Astra lays it out.

    ``extra_members``: {name: bytes} added as is (negative tests: traversal names, …).
    """
    config = {
        "host": host, "port": port, "cql_port": 9042, "localDC": local_dc,
        "caCertLocation": "./ca.crt", "keyLocation": "./key", "certLocation": "./cert",
        "keyStoreLocation": "./identity.jks", "trustStoreLocation": "./trustStore.jks",
        "pfxCertPassword": "fake", "keyStorePassword": "fake", "trustStorePassword": "fake",
    }
    if keyspace:
        config["keyspace"] = keyspace
    if username is not None:
        config["username"] = username
        config["password"] = password
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", json.dumps(config, indent=2))
        zf.writestr("ca.crt", ca_pem)
        zf.writestr("cert", cert_pem)
        zf.writestr("key", key_pem)
        # the Java driver's members; unused by Python clients, present in real bundles
        zf.writestr("cert.pfx", b"placeholder")
        zf.writestr("identity.jks", b"placeholder")
        zf.writestr("trustStore.jks", b"placeholder")
        for name, data in (extra_members or {}).items():
            zf.writestr(name, data)
    os.replace(tmp, path)
    return config
