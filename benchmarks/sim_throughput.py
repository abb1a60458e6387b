"""How many simple requests per second one simulated node answers to a pipelined client.

    python benchmarks/sim_throughput.py [--seconds 3] [--protocol 4] [--kind primed|options]

Starts a one-node simulated cluster (a separate process), opens one raw connection, and keeps a
window of pipelined requests in flight: the client sends pre-encoded batches of frames with
distinct stream ids and only counts answer bytes, so it costs far less CPU than the server and
the number measured is the server's.  ``primed`` sends a QUERY whose answer was primed (one row,
two columns: the fast path), ``options`` sends OPTIONS, ``engine`` an unprimed
``SELECT release_version FROM system.local`` (the slow path through the CQL engine).

Prints one JSON line per run: {"kind", "protocol", "requests", "seconds", "requests_per_second"}.

Measured on the shared 2-core development machine (load average 3-7 from other work, so these
are lower bounds; runs vary by about 2x): primed QUERY v4 420k-1,000k/s, v5 160k-580k/s;
OPTIONS v4 440k-960k/s, v5 130k-550k/s; an unprimed, repeated system.local SELECT through the
CQL engine 55k-90k/s (decoding identical bodies once is worth about 25% there).  The target was
150k simple requests/s per node.
"""

import argparse
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cqlreactor.core import wire  # noqa: E402
from cqlreactor.core.segments import SegmentDecoder, SegmentEncoder  # noqa: E402
from cqlreactor.testing import SimulatedCluster  # noqa: E402

_HEADER = struct.Struct(">BBhBi")
PRIMED_QUERY = "SELECT name, value FROM bench.kv WHERE k = 'fast'"


def _frame(version, stream, opcode, body):
    return _HEADER.pack(version, 0, stream, opcode, len(body)) + body


def _read_frame(sock, buf):
    while True:
        if len(buf) >= 9:
            length = struct.unpack_from(">i", buf, 5)[0]
            if len(buf) >= 9 + length:
                frame = bytes(buf[:9 + length])
                del buf[:9 + length]
                return frame
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("server closed the connection")
        buf += data


def _handshake(sock, version):
    buf = bytearray()
    sock.sendall(_frame(version, 0, 0x01, wire.write_string_map({"CQL_VERSION": "3.0.0"})))
    frame = _read_frame(sock, buf)
    if frame[4] != 0x02:
        raise RuntimeError("expected READY, got opcode 0x%02X" % frame[4])
    return buf


def _request(kind, version):
    if kind == "options":
        return 0x05, b""
    query = PRIMED_QUERY if kind == "primed" else "SELECT release_version FROM system.local"
    params = struct.pack(">H", 0x0001) + (b"\x00\x00\x00\x00" if version >= 5 else b"\x00")
    return 0x07, wire.write_long_string(query) + params


def run(kind="primed", version=4, seconds=3.0, batch=512, window=8, sim=None):
    """Measure one kind of request; returns the result dict."""
    own = sim is None
    if own:
        sim = SimulatedCluster(nodes=1).start()
    try:
        if kind == "primed":
            sim.prime(PRIMED_QUERY, rows=[{"name": "fast", "value": 42}],
                      columns=[("name", "text"), ("value", "int")])
        sock = socket.create_connection((sim.contact_points[0], sim.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        leftover = _handshake(sock, version)
        opcode, body = _request(kind, version)
        frames = b"".join(_frame(version, i, opcode, body) for i in range(batch))
        decoder = None
        if version >= 5:
            frames = SegmentEncoder().encode([frames])
            decoder = SegmentDecoder()
        # The size of one answer: send one request and measure it.
        sock.sendall(SegmentEncoder().encode([_frame(version, 0, opcode, body)])
                     if version >= 5 else _frame(version, 0, opcode, body))
        if version >= 5:
            payload = b""
            data = bytes(leftover)
            while len(payload) < 9 or len(payload) < 9 + struct.unpack_from(">i", payload, 5)[0]:
                decoder.add_data(data)
                for part in decoder:
                    payload += part
                if len(payload) >= 9 and len(payload) >= 9 + struct.unpack_from(
                        ">i", payload, 5)[0]:
                    break
                data = sock.recv(65536)
            answer_size = len(payload)
        else:
            answer_size = len(_read_frame(sock, leftover))
        rbuf = bytearray(1 << 20)
        sent = 0
        received_bytes = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            done = received_bytes // answer_size
            if done >= sent and time.perf_counter() >= deadline:
                break
            if sent - done < window * batch and time.perf_counter() < deadline:
                sock.sendall(frames)
                sent += batch
                continue
            n = sock.recv_into(rbuf)
            if not n:
                raise RuntimeError("server closed the connection")
            if decoder is not None:
                decoder.add_data(memoryview(rbuf)[:n])
                for part in decoder:
                    received_bytes += len(part)
            else:
                received_bytes += n
        elapsed = time.perf_counter() - start
        sock.close()
        return {"kind": kind, "protocol": version, "requests": sent,
                "seconds": round(elapsed, 3), "requests_per_second": int(sent / elapsed)}
    finally:
        if own:
            sim.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--protocol", type=int, action="append", choices=(4, 5))
    parser.add_argument("--kind", action="append", choices=("primed", "options", "engine"))
    args = parser.parse_args(argv)
    with SimulatedCluster(nodes=1) as sim:
        for version in args.protocol or [4, 5]:
            for kind in args.kind or ["primed", "options"]:
                print(json.dumps(run(kind, version, args.seconds, sim=sim)))
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
