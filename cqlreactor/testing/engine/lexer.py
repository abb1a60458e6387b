"""The tokens of the simulated cluster's CQL parser, and the cursor the parser walks them with.

``tokenize`` splits text into (kind, value, raw, position) tuples; :class:`TokenStream` holds
the keyword / operator / identifier checks the grammar rules of ``parser`` are written with.
"""

import re
import uuid

from cqlreactor.testing.engine.ast_nodes import RESERVED

__all__ = ["CqlSyntaxError", "tokenize", "TokenStream"]


class CqlSyntaxError(Exception):
    """The query text is not CQL this parser accepts."""


# --- tokens ------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+|--[^\n]*|//[^\n]*|/\*.*?\*/)
  | (?P<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
  | (?P<blob>0[xX][0-9a-fA-F]*)
  | (?P<float>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
  | (?P<duration>(?i:\d+(?:y|mo|w|d|h|ms|m|s|us|\u00b5s|ns))+(?![A-Za-z0-9_]))
  | (?P<int>\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<string>'(?:[^']|'')*')
  | (?P<dollar>\$\$.*?\$\$)
  | (?P<op><=|>=|!=|[-+=<>(),;.*\[\]{}:?])
""", re.VERBOSE | re.DOTALL)

# token kinds: 'id' (unquoted, value lowercased for keywords), 'qid', 'str', 'int', 'float'
# (value a float; raw keeps the digits a decimal needs), 'duration' (``1h30m``, value the text;
# the ISO 8601 forms ``P...`` lex as identifiers and the parser reads them in value positions,
# where no identifier is valid), 'uuid', 'blob', 'op', 'eof'


def tokenize(text):
    """Split ``text`` into (kind, value, raw, position) tuples; raise CqlSyntaxError."""
    tokens = []
    pos = 0
    n = len(text)
    match = _TOKEN_RE.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            raise CqlSyntaxError("line 1:%d no viable alternative at character '%s'"
                                 % (pos, text[pos]))
        kind = m.lastgroup
        raw = m.group(kind)
        start = pos
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "ident":
            tokens.append(("id", raw.lower(), raw, start))
        elif kind == "qident":
            tokens.append(("qid", raw[1:-1].replace('""', '"'), raw, start))
        elif kind == "string":
            tokens.append(("str", raw[1:-1].replace("''", "'"), raw, start))
        elif kind == "dollar":
            tokens.append(("str", raw[2:-2], raw, start))
        elif kind == "int":
            tokens.append(("int", int(raw), raw, start))
        elif kind == "float":
            tokens.append(("float", float(raw), raw, start))
        elif kind == "duration":
            tokens.append(("duration", raw, raw, start))
        elif kind == "uuid":
            tokens.append(("uuid", uuid.UUID(raw), raw, start))
        elif kind == "blob":
            hexpart = raw[2:]
            if len(hexpart) % 2:
                raise CqlSyntaxError("line 1:%d odd number of hex digits in blob literal %s"
                                     % (start, raw))
            tokens.append(("blob", bytes.fromhex(hexpart), raw, start))
        else:
            tokens.append(("op", raw, raw, start))
    tokens.append(("eof", None, "<EOF>", n))
    return tokens


class TokenStream(object):
    """A cursor over the tokens of one statement, with the checks every rule uses."""

    __slots__ = ("toks", "i", "binds", "text")

    def __init__(self, text):
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.binds = 0

    # helpers
    def peek(self, k=0):
        j = self.i + k
        if j < len(self.toks):
            return self.toks[j]
        return self.toks[-1]

    def next(self):
        t = self.toks[self.i]
        if t[0] != "eof":
            self.i += 1
        return t

    def error(self, expected, tok=None):
        tok = tok or self.peek()
        if tok[0] == "eof":
            return CqlSyntaxError("line 1:%d mismatched input '<EOF>' expecting %s"
                                  % (tok[3], expected))
        return CqlSyntaxError("line 1:%d mismatched input '%s' expecting %s"
                              % (tok[3], tok[2], expected))

    def at_kw(self, *words):
        t = self.peek()
        return t[0] == "id" and t[1] in words

    def accept_kw(self, word):
        t = self.peek()
        if t[0] == "id" and t[1] == word:
            self.i += 1
            return True
        return False

    def expect_kw(self, word):
        if not self.accept_kw(word):
            raise self.error(word.upper())

    def accept_op(self, op):
        t = self.peek()
        if t[0] == "op" and t[1] == op:
            self.i += 1
            return True
        return False

    def expect_op(self, op):
        if not self.accept_op(op):
            raise self.error("'%s'" % op)

    def at_op(self, op):
        t = self.peek()
        return t[0] == "op" and t[1] == op

    def ident(self, what="identifier", allow_reserved=False):
        t = self.peek()
        if t[0] == "qid":
            self.i += 1
            return t[1]
        if t[0] == "id" and (allow_reserved or t[1] not in RESERVED):
            self.i += 1
            return t[1]
        raise self.error(what)

    def qualified_name(self):
        first = self.ident()
        if self.accept_op("."):
            return first, self.ident()
        return None, first

    def end(self):
        self.accept_op(";")
        t = self.peek()
        if t[0] != "eof":
            raise self.error("<EOF>")

    def int_value(self, what):
        t = self.next()
        if t[0] != "int":
            raise self.error(what, t)
        return t[1]
