"""A test double for a container platform's DNS (Docker's embedded DNS, a headless Service): a UDP DNS
server on loopback that answers every A query with a fixed set of addresses, and anything else with none.

Just enough DNS (RFC 1035 header, question, A records) for gRPC's resolver (c-ares) to be pointed at it
with `dns://127.0.0.1:PORT/NAME:PORT`, so that the name-resolving path is tested without touching the
machine's resolver configuration.
"""

from __future__ import annotations

import socket
import struct
import threading

A, IN = 1, 1


def _question_end(packet: bytes) -> int:
    i = 12
    while packet[i]:
        i += packet[i] + 1
    return i + 5  # the zero byte, then qtype and qclass


def answer(query: bytes, addresses: list[str]) -> bytes:
    end = _question_end(query)
    qtype = struct.unpack("!H", query[end - 4:end - 2])[0]
    records = addresses if qtype == A else []
    header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, len(records), 0, 0)
    body = b"".join(struct.pack("!HHHIH", 0xC00C, A, IN, 1, 4) + socket.inet_aton(a) for a in records)
    return header + query[12:end] + body


class DnsDouble:
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:  # closed
                return
            self.queries += 1
            self.sock.sendto(answer(query, self.addresses), peer)

    def close(self) -> None:
        self.sock.close()
