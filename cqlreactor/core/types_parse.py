"""Where ``CqlType`` objects come from: protocol type options, CQL text, marshal class names.

Part of ``cqlreactor.core.types`` (import from there). Nesting is limited to ``MAX_DEPTH``
levels so hostile input cannot exhaust the Python stack.
"""

import re
import struct

from cqlreactor.core.errors import ProtocolError
from cqlreactor.core.types_complex import (
    CustomType, ListType, MapType, SetType, TupleType, UserType, VectorType)
from cqlreactor.core.types_scalar import (
    DURATION, MARSHAL, NATIVE_TYPES, TEXT, TIMESTAMP, UUID)

__all__ = ["read_type_option", "write_type_option", "parse_cql_type", "lookup_casstype",
           "MAX_DEPTH"]

MAX_DEPTH = 64

_SHORT = struct.Struct(">H")
_BY_CODE = dict((t.type_code, t) for t in NATIVE_TYPES)
_BY_CQL_NAME = dict((t.name, t) for t in NATIVE_TYPES)
_BY_CQL_NAME["varchar"] = TEXT
_BY_CASS_CLASS = dict((t.cass_name[len(MARSHAL):], t) for t in NATIVE_TYPES)
_BY_CASS_CLASS["DateType"] = TIMESTAMP       # the pre-2.0 name of timestamp
_BY_CASS_CLASS["LexicalUUIDType"] = UUID


# --- [option] in result and prepared metadata (native protocol spec, section 6 / 4.2.5.2) -------

def _read_short(buf, pos):
    if pos + 2 > len(buf):
        raise ProtocolError("truncated type option")
    return _SHORT.unpack_from(buf, pos)[0], pos + 2


def _read_string(buf, pos):
    n, pos = _read_short(buf, pos)
    end = pos + n
    if end > len(buf):
        raise ProtocolError("truncated string in type option")
    try:
        return bytes(buf[pos:end]).decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise ProtocolError("bad UTF-8 in type option: %s" % exc)


def read_type_option(buf, pos, _depth=0):
    """Read one ``[option]`` type. Returns ``(CqlType, new_pos)``; raises ProtocolError."""
    if _depth > MAX_DEPTH:
        raise ProtocolError("type option nested deeper than %d levels" % MAX_DEPTH)
    code, pos = _read_short(buf, pos)
    native = _BY_CODE.get(code)
    if native is not None:
        return native, pos
    if code == 0x0000:
        class_name, pos = _read_string(buf, pos)
        try:
            return lookup_casstype(class_name), pos
        except ValueError as exc:
            raise ProtocolError("bad custom type %r: %s" % (class_name, exc))
    if code in (0x0020, 0x0022):
        elem, pos = read_type_option(buf, pos, _depth + 1)
        return (ListType if code == 0x0020 else SetType)(elem), pos
    if code == 0x0021:
        key, pos = read_type_option(buf, pos, _depth + 1)
        value, pos = read_type_option(buf, pos, _depth + 1)
        return MapType(key, value), pos
    if code == 0x0030:
        keyspace, pos = _read_string(buf, pos)
        name, pos = _read_string(buf, pos)
        count, pos = _read_short(buf, pos)
        if count * 4 > len(buf) - pos:  # a field is at least a short string and a short id
            raise ProtocolError("UDT claims %d fields in %d bytes" % (count, len(buf) - pos))
        fields = []
        for _ in range(count):
            field, pos = _read_string(buf, pos)
            ctype, pos = read_type_option(buf, pos, _depth + 1)
            fields.append((field, ctype))
        return UserType(keyspace, name, fields, frozen=True), pos
    if code == 0x0031:
        count, pos = _read_short(buf, pos)
        if count * 2 > len(buf) - pos:
            raise ProtocolError("tuple claims %d fields in %d bytes" % (count, len(buf) - pos))
        subtypes = []
        for _ in range(count):
            ctype, pos = read_type_option(buf, pos, _depth + 1)
            subtypes.append(ctype)
        return TupleType(subtypes, frozen=True), pos
    raise ProtocolError("unknown type option id 0x%04X" % code)


def _string(text):
    data = text.encode("utf-8")
    return _SHORT.pack(len(data)) + data


def write_type_option(ctype, protocol_version=5):
    """Encode ``ctype`` as an ``[option]``. Before v5, duration goes as a custom type."""
    code = ctype.type_code
    if ctype is DURATION and protocol_version < 5:
        code = 0x0000
    if code == 0x0000:
        return _SHORT.pack(0) + _string(ctype.cass_name)
    out = [_SHORT.pack(code)]
    if code in (0x0020, 0x0021, 0x0022):
        for sub in ctype.subtypes:
            out.append(write_type_option(sub, protocol_version))
    elif code == 0x0030:
        out.append(_string(ctype.keyspace))
        out.append(_string(ctype.udt_name))
        out.append(_SHORT.pack(len(ctype.field_names)))
        for field, sub in zip(ctype.field_names, ctype.subtypes):
            out.append(_string(field))
            out.append(write_type_option(sub, protocol_version))
    elif code == 0x0031:
        out.append(_SHORT.pack(len(ctype.subtypes)))
        for sub in ctype.subtypes:
            out.append(write_type_option(sub, protocol_version))
    return b"".join(out)


# --- marshal class names: 'org.apache.cassandra.db.marshal.MapType(UTF8Type,Int32Type)' --------

_CASS_TOKEN = re.compile(r"\s*([^(),:\s]+)\s*")


def _parse_cass(text, pos, depth):
    """Parse ``Name[(param, ...)]``; a param may be ``hexname:Type``. Returns (node, pos).

    A node is ``(name, params, field_name)``; params are nodes.
    """
    if depth > MAX_DEPTH:
        raise ValueError("type nested deeper than %d levels" % MAX_DEPTH)
    match = _CASS_TOKEN.match(text, pos)
    if not match:
        raise ValueError("expected a type name at %d in %r" % (pos, text))
    name, pos = match.group(1), match.end()
    field = None
    if pos < len(text) and text[pos] == ":":
        field = name
        match = _CASS_TOKEN.match(text, pos + 1)
        if not match:
            raise ValueError("expected a type after ':' at %d in %r" % (pos, text))
        name, pos = match.group(1), match.end()
    params = []
    if pos < len(text) and text[pos] == "(":
        pos += 1
        while True:
            node, pos = _parse_cass(text, pos, depth + 1)
            params.append(node)
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            if pos < len(text) and text[pos] == ")":
                pos += 1
                break
            raise ValueError("expected ',' or ')' at %d in %r" % (pos, text))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return (name, params, field), pos


def _short_class(name):
    return name[len(MARSHAL):] if name.startswith(MARSHAL) else name


def _cass_node_to_type(node):
    name, params, _ = node
    short = _short_class(name)
    if not params:
        native = _BY_CASS_CLASS.get(short)
        if native is not None:
            return native
        return CustomType(name if "." in name else MARSHAL + name)
    subs = lambda: [_cass_node_to_type(p) for p in params]  # noqa: E731
    if short == "ReversedType" and len(params) == 1:
        return _cass_node_to_type(params[0])
    if short == "FrozenType" and len(params) == 1:
        return _freeze(_cass_node_to_type(params[0]))
    if short in ("ListType", "SetType") and len(params) == 1:
        return (ListType if short == "ListType" else SetType)(*subs())
    if short == "MapType" and len(params) == 2:
        return MapType(*subs())
    if short == "TupleType":
        return TupleType(subs(), frozen=True)
    if short == "VectorType" and len(params) == 2:
        dim = params[1][0]
        if not dim.isdigit():
            raise ValueError("vector dimension must be a number, got %r" % dim)
        return VectorType(_cass_node_to_type(params[0]), int(dim))
    if short == "UserType" and len(params) >= 2:
        keyspace = params[0][0]
        try:
            udt_name = bytes.fromhex(params[1][0]).decode("utf-8")
            fields = [(bytes.fromhex(p[2]).decode("utf-8"), _cass_node_to_type(p))
                      for p in params[2:]]
        except (TypeError, ValueError) as exc:
            raise ValueError("bad UserType field names: %s" % exc)
        return UserType(keyspace, udt_name, fields, frozen=True)
    return CustomType(_unparse_cass(node))


def _unparse_cass(node):
    name, params, field = node
    text = name
    if params:
        text += "(" + ",".join(_unparse_cass(p) for p in params) + ")"
    return field + ":" + text if field else text


def _freeze(ctype):
    if ctype.frozen:
        return ctype
    if isinstance(ctype, UserType):
        return UserType(ctype.keyspace, ctype.udt_name,
                        list(zip(ctype.field_names, ctype.subtypes)), frozen=True)
    if isinstance(ctype, TupleType):
        return TupleType(ctype.subtypes, frozen=True)
    if isinstance(ctype, MapType):
        return MapType(ctype.subtypes[0], ctype.subtypes[1], frozen=True)
    if isinstance(ctype, ListType):
        return type(ctype)(ctype.subtypes[0], frozen=True)
    return ctype


def lookup_casstype(class_name):
    """A ``CqlType`` from a marshal class name, short (``Int32Type``) or qualified.

    Understands ListType/SetType/MapType/TupleType/UserType/VectorType/ReversedType/FrozenType;
    other parameterised or unknown classes become ``CustomType`` (bytes pass through).
    Raises ValueError on malformed text.
    """
    node, pos = _parse_cass(class_name, 0, 0)
    if pos != len(class_name):
        raise ValueError("unexpected text at %d in %r" % (pos, class_name))
    return _cass_node_to_type(node)


# --- CQL text: 'map<text, frozen<list<int>>>', 'vector<float, 3>', 'tuple<int, text>' ---------

_CQL_TOKEN = re.compile(r"""\s*(?:("(?:[^"]|"")*")|('(?:[^']|'')*')|([A-Za-z0-9_.]+)|([<>,]))""")


def _cql_tokens(text):
    tokens = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _CQL_TOKEN.match(text, pos)
        if not match:
            raise ValueError("cannot parse type %r at %d" % (text, pos))
        quoted, custom, word, punct = match.groups()
        if quoted is not None:
            tokens.append(("name", quoted[1:-1].replace('""', '"')))
        elif custom is not None:
            tokens.append(("custom", custom[1:-1].replace("''", "'")))
        elif word is not None:
            tokens.append(("word", word))
        else:
            tokens.append((punct, punct))
        pos = match.end()
    return tokens


class _CqlParser(object):
    def __init__(self, text, user_types):
        self.text = text
        self.tokens = _cql_tokens(text)
        self.pos = 0
        self.user_types = user_types or {}

    def next(self):
        if self.pos >= len(self.tokens):
            raise ValueError("unexpected end of type %r" % self.text)
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, punct):
        kind, _ = self.next()
        if kind != punct:
            raise ValueError("expected %r in type %r" % (punct, self.text))

    def parse(self, depth=0):
        if depth > MAX_DEPTH:
            raise ValueError("type nested deeper than %d levels" % MAX_DEPTH)
        kind, value = self.next()
        if kind == "custom":
            return lookup_casstype(value)
        if kind == "name":
            return self.user_type(value)
        if kind != "word":
            raise ValueError("expected a type name in %r" % self.text)
        word = value.lower()
        has_args = self.pos < len(self.tokens) and self.tokens[self.pos][0] == "<"
        if not has_args:
            native = _BY_CQL_NAME.get(word)
            if native is not None:
                return native
            return self.user_type(value)
        self.expect("<")
        args = [self.parse(depth + 1)]
        while True:
            kind, value = self.next()
            if kind == ">":
                break
            if kind != ",":
                raise ValueError("expected ',' or '>' in type %r" % self.text)
            if word == "vector" and len(args) == 1:
                kind, value = self.next()
                if kind != "word" or not value.isdigit():
                    raise ValueError("vector dimension must be a number in %r" % self.text)
                args.append(int(value))
            else:
                args.append(self.parse(depth + 1))
        if word == "frozen" and len(args) == 1:
            return _freeze(args[0])
        if word in ("list", "set") and len(args) == 1:
            return (ListType if word == "list" else SetType)(args[0])
        if word == "map" and len(args) == 2:
            return MapType(args[0], args[1])
        if word == "tuple":
            return TupleType(args, frozen=True)
        if word == "vector" and len(args) == 2:
            return VectorType(args[0], args[1])
        raise ValueError("bad parameters for %r in type %r" % (word, self.text))

    def user_type(self, name):
        for key in (name, name.lower(), name.split(".")[-1], name.lower().split(".")[-1]):
            if key in self.user_types:
                return self.user_types[key]
        raise ValueError("unknown type %r (not a native type nor in user_types)" % name)


def parse_cql_type(text, user_types=None):
    """A ``CqlType`` from CQL type text.

    Args:
        text: e.g. ``'int'``, ``'list<frozen<map<text, int>>>'``, ``'vector<float, 3>'``,
            ``"'org.apache.cassandra.db.marshal.DurationType'"`` (custom).
        user_types: ``{name: UserType}`` for the UDT names the text may mention (a plain or
            ``keyspace.name`` key).
    Raises:
        ValueError: malformed text or an unknown type name.
    """
    parser = _CqlParser(text, user_types)
    ctype = parser.parse()
    if parser.pos != len(parser.tokens):
        raise ValueError("unexpected text after the type in %r" % text)
    return ctype
