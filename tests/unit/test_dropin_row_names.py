"""Named-tuple rows name their fields as cassandra-driver's named_tuple_factory (the oracle)
does: ``[applied]`` is ``row.applied``; odd, repeated and keyword names alike."""

import pytest
from hypothesis import given, settings, strategies as st

from cqlreactor.query import clean_column_name, named_tuple_factory, row_field_names

theirs = pytest.importorskip("cassandra.query")

ODD = ["[applied]", "a b", "1abc", "_x", "x-y", "class", "sum(v)", "writetime(v)", "Ab", "__a",
       "a__", "", " ", "\u00e9", "ab_", "_", "system.count(*)", "k", "k", "field_0_", "def"]


def _theirs(colnames):
    return list(theirs.named_tuple_factory(list(colnames), [tuple(range(len(colnames)))])[0]
                ._fields)


@pytest.mark.parametrize("name", ODD)
def test_one_name_as_theirs(name):
    assert clean_column_name(name) == theirs._clean_column_name(name)
    assert row_field_names([name]) == _theirs([name])


def test_lwt_applied_column():
    row = named_tuple_factory(["[applied]", "k", "v"], [(False, 1, 2)])[0]
    assert row.applied is False and row.k == 1 and row.v == 2


@pytest.mark.parametrize("names", [ODD, ["a", "a", "a_"], ["k", "class"], ["x", "_x", "x"],
                                   ["[applied]", "applied"]])
def test_name_lists_as_theirs(names):
    assert row_field_names(names) == _theirs(names)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab_1 [](.)-\u00e9", max_size=5), min_size=1, max_size=5))
def test_random_names_as_theirs(names):
    assert row_field_names(names) == _theirs(names)
