"""From ``Cluster(cloud={...})`` to everything the session needs: :func:`cloud_config_from`."""

import ssl

from cqlreactor.cloud.bundle import open_bundle
from cqlreactor.cloud.endpoints import SniEndpointFactory, make_ssl_context
from cqlreactor.cloud.metadata import DEFAULT_TIMEOUT, fetch_metadata

__all__ = ["CloudConfig", "cloud_config_from", "CLOUD_OPTIONS"]

CLOUD_OPTIONS = ("secure_connect_bundle", "use_default_tempdir", "connect_timeout", "ssl_context")


class CloudConfig(object):
    """The resolved cloud settings.

    Attributes:
        bundle: the SecureConnectBundle (its extracted files live until ``cleanup()``).
        metadata: the CloudMetadata.
        ssl_context: a CloudSSLContext for node connections: SNI = the endpoint's host id,
            certificates checked against the proxy's host (see cloud/endpoints.py).
        endpoint_factory: SniEndpointFactory for hosts found later in system.peers.
        endpoints: one SniEndpoint per contact point (host id) from the metadata.
        local_dc: the local data center from the metadata service.
        keyspace, username, password: from config.json (None when absent).
        check_hostname_as: the name node certificates must carry when ``ssl_context`` is the
            user's own (``cloud["ssl_context"]``: it cannot carry the name itself), else None.
    """

    def __init__(self, bundle, metadata, ssl_context, check_hostname_as=None):
        self.bundle = bundle
        self.metadata = metadata
        self.ssl_context = ssl_context
        self.check_hostname_as = check_hostname_as
        self.endpoint_factory = SniEndpointFactory(metadata.sni_host, metadata.sni_port)
        self.endpoints = [self.endpoint_factory.create(h) for h in metadata.host_ids]
        self.local_dc = metadata.local_dc
        self.keyspace = bundle.keyspace
        self.username = bundle.username
        self.password = bundle.password

    @property
    def has_credentials(self):
        return bool(self.username) and self.password is not None

    def cleanup(self):
        """Remove the bundle's extracted files (call at Cluster.shutdown())."""
        self.bundle.cleanup()

    def __repr__(self):
        return "<CloudConfig bundle=%s %r>" % (self.bundle.path, self.metadata)


def cloud_config_from(cloud):
    """Open the bundle, ask the metadata service, build endpoints and the TLS context.

    Args:
        cloud: the dict given as ``Cluster(cloud=...)``: ``secure_connect_bundle`` (required:
            a path, the zip as bytes, or a binary file object), ``use_default_tempdir`` (bool),
            ``connect_timeout`` (seconds for the metadata call), ``ssl_context`` (an
            ``ssl.SSLContext`` of the user's, used instead of one built from the bundle's
            certificates, for the metadata service and every node, as cassandra-driver does;
            it must verify certificates and leave ``check_hostname`` off: node certificates
            name the SNI proxy, which cqlreactor checks itself, not the host id sent as SNI).

    Returns:
        CloudConfig

    Raises:
        ValueError: the dict itself is wrong (not a dict, no bundle, unknown key).
        CloudConfigError: the bundle or the metadata service is unusable; no files are left.
    """
    if not isinstance(cloud, dict):
        raise ValueError("cloud must be a dict like {'secure_connect_bundle': '/path/to.zip'}, "
                         "not %r" % (cloud,))
    unknown = sorted(set(cloud) - set(CLOUD_OPTIONS))
    if unknown:
        raise ValueError("unknown cloud option%s %s (known: %s)" % (
            "s" if len(unknown) > 1 else "", ", ".join(map(repr, unknown)),
            ", ".join(CLOUD_OPTIONS)))
    path = cloud.get("secure_connect_bundle")
    if path is None or (isinstance(path, (str, bytes)) and not path):
        raise ValueError("cloud needs 'secure_connect_bundle': the path of the secure connect "
                         "bundle zip downloaded from Astra (or its content as bytes, or a "
                         "binary file object)")
    user_context = cloud.get("ssl_context")
    if user_context is not None:
        _check_user_context(user_context)
    timeout = cloud.get("connect_timeout", DEFAULT_TIMEOUT)
    try:
        timeout = float(timeout)
        if timeout <= 0:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError("cloud 'connect_timeout' must be a positive number of seconds, not %r"
                         % (cloud.get("connect_timeout"),))

    bundle = open_bundle(path, use_default_tempdir=bool(cloud.get("use_default_tempdir")))
    try:
        if user_context is not None:
            metadata = fetch_metadata(bundle.host, bundle.port, user_context, timeout=timeout,
                                      url=bundle.metadata_url)
            return CloudConfig(bundle, metadata, user_context,
                               check_hostname_as=metadata.sni_host)
        meta_ctx = make_ssl_context(bundle.ca_cert_path, bundle.cert_path, bundle.key_path,
                                    check_hostname=True, bundle_path=bundle.path)
        metadata = fetch_metadata(bundle.host, bundle.port, meta_ctx, timeout=timeout,
                                  url=bundle.metadata_url)
        node_ctx = make_ssl_context(bundle.ca_cert_path, bundle.cert_path, bundle.key_path,
                                    tls_hostname=metadata.sni_host, bundle_path=bundle.path)
    except BaseException:
        bundle.cleanup()
        raise
    return CloudConfig(bundle, metadata, node_ctx)


def _check_user_context(context):
    if not isinstance(context, ssl.SSLContext):
        raise ValueError("cloud 'ssl_context' must be an ssl.SSLContext, not %r" % (context,))
    if context.verify_mode != ssl.CERT_REQUIRED:
        raise ValueError("cloud 'ssl_context' must verify certificates (verify_mode = "
                         "ssl.CERT_REQUIRED, with the bundle's ca.crt loaded): Astra nodes are "
                         "reached through a shared proxy")
    if context.check_hostname:
        raise ValueError("cloud 'ssl_context' must have check_hostname = False: connections "
                         "send the node's host id as SNI, and OpenSSL would check the "
                         "certificate against it; cqlreactor checks every certificate against "
                         "the SNI proxy's name itself")
