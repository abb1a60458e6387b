"""Cloud pieces that need no sockets: ClientHello SNI parsing, host name matching, endpoint
rotation, metadata parsing.  ClientHellos are real ones, made by OpenSSL through MemoryBIO."""

import socket
import ssl

import pytest

from cqlreactor.cloud.endpoints import SniEndpoint, SniEndpointFactory, hostname_matches
from cqlreactor.cloud.metadata import parse_metadata, split_host_port
from cqlreactor.core.errors import CloudConfigError, ConnectionException
from cqlreactor.testing.astra import NeedMoreData, sni_from_client_hello


def client_hello(server_hostname):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


HOST_ID = "3c7a2d51-7f43-4e0b-9d2c-1f6a4b8e0c11"


def test_sni_of_a_real_client_hello():
    assert sni_from_client_hello(client_hello(HOST_ID)) == HOST_ID


def test_client_hello_without_sni():
    assert sni_from_client_hello(client_hello(None)) is None


def test_every_truncation_asks_for_more():
    hello = client_hello(HOST_ID)
    for cut in range(len(hello)):
        with pytest.raises(NeedMoreData):
            sni_from_client_hello(hello[:cut])


def test_client_hello_split_over_two_records():
    hello = client_hello(HOST_ID)
    payload = hello[5:]
    head, tail = payload[:40], payload[40:]
    rec = lambda p: b"\x16" + hello[1:3] + len(p).to_bytes(2, "big") + p   # noqa: E731
    assert sni_from_client_hello(rec(head) + rec(tail)) == HOST_ID
    with pytest.raises(NeedMoreData):
        sni_from_client_hello(rec(head))


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n\r\n", b"\x17\x03\x03\x00\x05hello",
                                  b"\x16\x03\x01\x00\x04\x02\x00\x00\x00"])
def test_not_a_client_hello(data):
    with pytest.raises(ValueError):
        sni_from_client_hello(data)


CERT = {"subject": ((("commonName", "proxy.example.com"),),),
        "subjectAltName": (("DNS", "proxy.example.com"), ("DNS", "*.db.example.com"),
                           ("IP Address", "127.0.0.1"), ("IP Address", "0:0:0:0:0:0:0:1"))}


@pytest.mark.parametrize("name,ok", [
    ("proxy.example.com", True), ("PROXY.example.com.", True), ("a.db.example.com", True),
    ("db.example.com", False), ("a.b.db.example.com", False), ("127.0.0.1", True),
    ("::1", True), ("127.0.0.2", False), (HOST_ID, False), ("example.com", False),
])
def test_hostname_matches(name, ok):
    assert hostname_matches(CERT, name) is ok


def test_common_name_only_without_subject_alt_names():
    cert = {"subject": ((("commonName", "proxy.example.com"),),)}
    assert hostname_matches(cert, "proxy.example.com")
    assert not hostname_matches({"subject": CERT["subject"], "subjectAltName":
                                 (("DNS", "other"),)}, "proxy.example.com")


def fake_getaddrinfo(addresses):
    # stands in for DNS (no resolver we control here); returns getaddrinfo-shaped tuples
    calls = []

    def getaddrinfo(host, port, family, type_):
        calls.append(host)
        if not addresses:
            raise socket.gaierror(-2, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]
    return getaddrinfo, calls


def test_sni_endpoint_names_and_rotation():
    gai, calls = fake_getaddrinfo(["10.0.0.2", "10.0.0.1", "10.0.0.3"])
    ep = SniEndpoint("proxy.example.com", 29042, HOST_ID, init_index=1, getaddrinfo=gai)
    assert (ep.address, ep.port, ep.server_hostname, ep.host_id, ep.tls_hostname) == (
        "proxy.example.com", 29042, HOST_ID, HOST_ID, "proxy.example.com")
    got = [ep.resolve() for _ in range(4)]
    assert got == [("10.0.0.2", 29042), ("10.0.0.3", 29042), ("10.0.0.1", 29042),
                   ("10.0.0.2", 29042)]
    assert calls == ["proxy.example.com"] * 4          # re-resolved on every connect


def test_sni_endpoint_unresolvable():
    gai, _ = fake_getaddrinfo([])
    with pytest.raises(ConnectionException) as info:
        SniEndpoint("proxy.invalid", 29042, HOST_ID, getaddrinfo=gai).resolve()
    assert "proxy.invalid" in str(info.value)


def test_factory_spreads_start_indexes_and_needs_host_id():
    f = SniEndpointFactory("p", 1)
    a, b = f.create("a"), f.create_from_row({"host_id": "b"})
    assert (a._index, b._index) == (0, 1)
    assert a != b and a == SniEndpoint("p", 1, "a") and len({a, SniEndpoint("p", 1, "a")}) == 1
    with pytest.raises(ValueError):
        f.create_from_row({"peer": "10.0.0.1"})


@pytest.mark.parametrize("text,expected", [
    ("proxy:29042", ("proxy", 29042)), ("proxy", ("proxy", 9042)),
    ("[::1]:1234", ("::1", 1234)), ("::1", ("::1", 9042)),
])
def test_split_host_port(text, expected):
    assert split_host_port(text) == expected


GOOD = {"contact_info": {"local_dc": "dc1", "contact_points": ["a", "b"],
                         "sni_proxy_address": "p:1"}}


def test_parse_metadata():
    m = parse_metadata(b'{"version": 1, "contact_info": {"type": "sni_proxy", "local_dc": "dc1",'
                       b' "contact_points": ["a", "b"], "sni_proxy_address": "p.example:29042"}}',
                       "https://h:1/metadata")
    assert (m.local_dc, m.host_ids, m.sni_host, m.sni_port) == ("dc1", ["a", "b"],
                                                                 "p.example", 29042)


@pytest.mark.parametrize("body,fragment", [
    (b"{", "not valid JSON"), (b"[]", "contact_info"), (b"{}", "contact_info"),
    (b'{"contact_info": {"contact_points": ["a"], "sni_proxy_address": "p:1"}}', "local_dc"),
    (b'{"contact_info": {"local_dc": "d", "contact_points": [], "sni_proxy_address": "p:1"}}',
     "contact_points"),
    (b'{"contact_info": {"local_dc": "d", "contact_points": ["a"]}}', "sni_proxy_address"),
    (b'{"contact_info": {"local_dc": "d", "contact_points": ["a"], '
     b'"sni_proxy_address": "p:x"}}', "not host:port"),
])
def test_parse_metadata_errors_name_the_url(body, fragment):
    with pytest.raises(CloudConfigError) as info:
        parse_metadata(body, "https://meta.example:1/metadata")
    assert "https://meta.example:1/metadata" in str(info.value)
    assert fragment in str(info.value)
