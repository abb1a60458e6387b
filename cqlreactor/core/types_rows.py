"""Row decoding (the read hot path) and bound-value encoding.

Part of ``cqlreactor.core.types`` (import from there).

``make_row_decoder`` generates, once per column layout, the source of a function with one
unrolled block per column: fixed-size columns unpack straight from the body buffer with a
precompiled ``struct``, text and blob columns slice (and decode) in place, everything else
calls its type's decoder. The function is cached by column types, so the per-result cost is a
dict lookup.
"""

import struct

from cqlreactor.core.errors import ProtocolError
from cqlreactor.core.types_scalar import UNSET_VALUE, _DECODE_ERRORS

__all__ = ["make_row_decoder", "encode_values", "set_compiled", "compiled_active"]

_INT = struct.Struct(">i")
_CACHE = {}
_CACHE_LIMIT = 1024
# wrap(col_types, pure_decoder) -> decoder: the optional compiled decoder
# (cqlreactor.compiled_rows installs it; this module never imports it)
_compiled_wrap = None


def set_compiled(wrap):
    """Install (or with None remove) the compiled decoder's factory ``wrap(col_types, pure)``;
    decoders made before are dropped, so every later result uses the new choice."""
    global _compiled_wrap
    _compiled_wrap = wrap
    _CACHE.clear()


def compiled_active():
    return _compiled_wrap is not None


def _truncated(column, n, pos, size):
    return ProtocolError("row cell of column %d claims %d bytes at offset %d; the body has %d"
                         % (column, n, pos, size))


def _build(col_types):
    names = {
        "_unpack_int": _INT.unpack_from, "_truncated": _truncated, "ProtocolError":
        ProtocolError, "_DECODE_ERRORS": _DECODE_ERRORS, "bytes": bytes, "range": range,
        "len": len, "type": type,
    }
    ncols = len(col_types)
    lines = [
        "def decode_rows(buf, pos, row_count):",
        "    if type(buf) is not bytes:",
        "        buf = bytes(buf)",
        "    size = len(buf)",
        # each row needs at least one 4-byte length per column (one byte per row if no columns)
        "    if row_count < 0 or row_count * %d > size - pos:" % max(4 * ncols, 1),
        "        raise ProtocolError('%d rows cannot fit in %d bytes' % (row_count, size - pos))",
        "    rows = []",
        "    append = rows.append",
        "    try:",
        "        for _ in range(row_count):",
    ]
    for i, ctype in enumerate(col_types):
        expr, extra = ctype._codegen(i)
        names.update(extra)
        lines += [
            "            n = _unpack_int(buf, pos)[0]",
            "            pos += 4",
            "            if n < 0:",
            "                c%d = None" % i,
            "            else:",
            "                e = pos + n",
            "                if e > size:",
            "                    raise _truncated(%d, n, pos, size)" % i,
            "                c%d = %s" % (i, expr),
            "                pos = e",
        ]
    lines += [
        "            append((%s))" % "".join("c%d, " % i for i in range(ncols)),
        "    except _DECODE_ERRORS as exc:",
        "        raise ProtocolError('bad row data at offset %d: %s' % (pos, exc))",
        "    return rows, pos",
    ]
    source = "\n".join(lines) + "\n"
    namespace = dict(names)
    # The file name shows the column types in tracebacks; type names come from the server
    # (quoted UDT names, custom class names) and may hold a NUL, which compile() refuses, so
    # they go in escaped by ascii().
    label = ascii(", ".join(t.name for t in col_types))[1:-1]
    exec(compile(source, "<cqlreactor row decoder %s>" % (label,), "exec"), namespace)
    decoder = namespace["decode_rows"]
    decoder.source = source
    return decoder


def make_row_decoder(col_types, protocol_version):
    """A function ``decoder(buf, pos, row_count) -> (rows, new_pos)`` for these columns.

    ``buf`` holds ``row_count`` rows of ``[bytes]`` cells (int32 length, negative = null)
    starting at ``pos``; rows come back as tuples. Truncated or malformed cells raise
    ProtocolError, and so does a column layout no decoder can be made for (the types come
    from the server). The cell format is the same in protocol v3, v4 and v5.
    """
    key = tuple(col_types)
    decoder = _CACHE.get(key)
    if decoder is None:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        try:
            decoder = _build(key)
            if _compiled_wrap is not None:
                decoder = _compiled_wrap(key, decoder)
        except (ValueError, SyntaxError, TypeError) as exc:    # a type no decoder is made for
            raise ProtocolError("cannot decode rows of column types %s: %s" % (
                ascii([t.name for t in key]), exc))
        _CACHE[key] = decoder
    return decoder


def encode_values(col_types, values, protocol_version):
    """Serialize bound values: a list of bytes, None (null) or UNSET_VALUE (v4+ only).

    Raises:
        ValueError / TypeError: wrong count, or a value the column type cannot hold (the
            message names the value's position and type).
    """
    if len(values) != len(col_types):
        raise ValueError("%d values for %d bind markers" % (len(values), len(col_types)))
    out = []
    for i, (ctype, value) in enumerate(zip(col_types, values)):
        if value is None:
            out.append(None)
        elif value is UNSET_VALUE:
            if protocol_version < 4:
                raise ValueError("UNSET_VALUE needs protocol v4+ (value %d)" % i)
            out.append(UNSET_VALUE)
        else:
            try:
                out.append(ctype._to_bytes(value))
            except (TypeError, AttributeError) as exc:
                raise TypeError("value %d (%s): cannot serialize %r: %s" % (
                    i, ctype.name, value, exc))
            except (ValueError, struct.error, OverflowError) as exc:
                raise ValueError("value %d (%s): cannot serialize %r: %s" % (
                    i, ctype.name, value, exc))
    return out
