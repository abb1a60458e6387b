"""A fake DataStax Astra for tests: ``FakeAstra`` (``fake.py``) puts together the certificates
(``certs.py``), the simulated cluster with TLS, the metadata service (``metadata.py``), the SNI
proxy (``proxy.py``) and the secure connect bundle (``bundle.py``).
"""

from cqlreactor.testing.astra.bundle import write_bundle
from cqlreactor.testing.astra.fake import FakeAstra, main
from cqlreactor.testing.astra.metadata import MetadataServer
from cqlreactor.testing.astra.proxy import NeedMoreData, SniProxy, sni_from_client_hello

__all__ = ["FakeAstra", "MetadataServer", "SniProxy", "sni_from_client_hello", "NeedMoreData",
           "write_bundle", "main"]
