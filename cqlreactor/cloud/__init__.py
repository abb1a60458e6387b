"""DataStax Astra (cloud) support: secure connect bundle, metadata service, SNI endpoints.

``cloud_config_from(cloud_dict)`` is the one entry point the cluster uses; the pieces are in
``bundle`` (the zip), ``metadata`` (the HTTPS metadata service) and ``endpoints`` (SNI endpoints
and the TLS context).
"""

from cqlreactor.cloud.bundle import SecureConnectBundle, open_bundle
from cqlreactor.cloud.config import CLOUD_OPTIONS, CloudConfig, cloud_config_from
from cqlreactor.cloud.endpoints import (CloudSSLContext, SniEndpoint, SniEndpointFactory,
                                        hostname_matches, is_cloud_context, make_ssl_context,
                                        verify_peer_hostname)
from cqlreactor.cloud.metadata import CloudMetadata, fetch_metadata, parse_metadata

__all__ = ["SecureConnectBundle", "open_bundle", "CLOUD_OPTIONS", "CloudConfig",
           "cloud_config_from", "CloudSSLContext", "SniEndpoint", "SniEndpointFactory",
           "hostname_matches", "is_cloud_context", "make_ssl_context", "verify_peer_hostname",
           "CloudMetadata", "fetch_metadata", "parse_metadata"]
