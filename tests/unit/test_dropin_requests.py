"""The per-request timestamp splices of core.requests give the bytes the plain messages encode
to (with a v5 keyspace after the timestamp, and without)."""

import pytest

from cqlreactor.core.requests import (BatchMessage, ExecuteMessage, ExecuteTemplate,
                                      QueryMessage, QueryParameters, StampedTemplate)


@pytest.mark.parametrize("version,keyspace", [(4, None), (5, None), (5, "ks")])
def test_stamped_query_and_batch(version, keyspace):
    def query(ts):
        return QueryMessage("SELECT 1", QueryParameters(6, page_size=10, serial_consistency=9,
                                                        timestamp=ts, keyspace=keyspace))

    def batch(ts):
        return BatchMessage(0, [("INSERT x", [b"1"])], 6, timestamp=ts, keyspace=keyspace)

    for make in (query, batch):
        template = StampedTemplate(make(0), version)
        for ts in (1, 1606000000000000, -5):
            assert template.request(ts).body == make(ts).encode_body(version)
    with pytest.raises(ValueError):
        StampedTemplate(query(None), version)


@pytest.mark.parametrize("version", [3, 4, 5])
def test_stamped_execute_template(version):
    template = ExecuteTemplate(b"id", b"meta", version, 6, page_size=5, serial_consistency=9,
                               stamped=True)
    values = [b"a", None, b""]
    expected = ExecuteMessage(b"id", QueryParameters(6, values=values, page_size=5,
                                                     serial_consistency=9, timestamp=77),
                              b"meta").encode_body(version)
    assert template.request(values, 77).body == expected
