"""Murmur3Partitioner tokens: the token Cassandra gives a serialized partition key.

Cassandra hashes with MurmurHash3 x64 128-bit (seed 0) and keeps the first 64 bits as a signed
long, with two quirks reproduced here:

* tail bytes (the last ``len % 16``) are read as *signed* Java bytes, so a byte >= 0x80 is
  sign-extended before it is shifted into place (full 16-byte blocks are read unsigned);
* the token of the empty key is the minimum token (-2**63), and a hash that happens to equal
  the minimum token is mapped to the maximum (2**63 - 1), since the minimum token belongs to no
  key.
"""

import struct

__all__ = ["murmur3_token", "murmur3_hash", "MIN_TOKEN", "MAX_TOKEN"]

MIN_TOKEN = -(1 << 63)
MAX_TOKEN = (1 << 63) - 1

_MASK = 0xFFFFFFFFFFFFFFFF
_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _MASK


def _fmix(k):
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _MASK
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _MASK
    k ^= k >> 33
    return k


def murmur3_hash(key):
    """First 64 bits of Cassandra's MurmurHash3 x64 128 of ``key``, as a signed int64."""
    key = bytes(key)
    length = len(key)
    nblocks = length // 16
    h1 = h2 = 0
    if nblocks:
        words = struct.unpack_from("<%dQ" % (2 * nblocks), key)
        for i in range(0, 2 * nblocks, 2):
            k1 = (words[i] * _C1) & _MASK
            k1 = (_rotl(k1, 31) * _C2) & _MASK
            h1 ^= k1
            h1 = (((_rotl(h1, 27) + h2) & _MASK) * 5 + 0x52DCE729) & _MASK

            k2 = (words[i + 1] * _C2) & _MASK
            k2 = (_rotl(k2, 33) * _C1) & _MASK
            h2 ^= k2
            h2 = (((_rotl(h2, 31) + h1) & _MASK) * 5 + 0x38495AB5) & _MASK

    tail = key[nblocks * 16:]
    if tail:
        # Java reads these as signed bytes: sign-extend, then shift (and mask to 64 bits).
        signed = struct.unpack("%db" % len(tail), tail)
        k1 = k2 = 0
        for i in range(len(tail) - 1, 7, -1):
            k2 ^= (signed[i] << ((i - 8) * 8)) & _MASK
        if k2:
            k2 = (k2 * _C2) & _MASK
            k2 = (_rotl(k2, 33) * _C1) & _MASK
            h2 ^= k2
        for i in range(min(len(tail), 8) - 1, -1, -1):
            k1 ^= (signed[i] << (i * 8)) & _MASK
        k1 = (k1 * _C1) & _MASK
        k1 = (_rotl(k1, 31) * _C2) & _MASK
        h1 ^= k1

    h1 ^= length
    h2 ^= length
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    h1 = _fmix(h1)
    h2 = _fmix(h2)
    h1 = (h1 + h2) & _MASK
    return h1 - (1 << 64) if h1 & (1 << 63) else h1


def murmur3_token(key):
    """The Murmur3Partitioner token of a serialized partition key (signed 64-bit int).

    Args:
        key: the routing key bytes (for a composite key, the composite serialization).

    Returns:
        An int in [-2**63, 2**63 - 1]; -2**63 only for the empty key.
    """
    if not key:
        return MIN_TOKEN
    token = murmur3_hash(key)
    return MAX_TOKEN if token == MIN_TOKEN else token
