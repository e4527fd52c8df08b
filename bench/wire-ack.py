#!/usr/bin/env python3
"""emit -> ack latency as seen on the wire, from a loopback capture.

    tcpdump -i lo -B 65536 -s 0 -w run.pcap tcp port PORT   (while a client runs)
    bench/wire-ack.py run.pcap PORT

Reads the pcap (Ethernet link type, as on Linux `lo`, IPv4, TCP), rebuilds
each connection's byte stream in each direction, parses the websocket frames
(unmasking the client's), and pairs every socket.io event sent with an ack
id (`42<id>[...]`) with the ack (`43<id>[...]`) on the same connection. Prints
one JSON object: count, p50, p90, p99, max (ms), the time between the two
packets passing the loopback interface: what any client's timer includes at
least. Used by bench/artillery.sh to tell a client's own time from the
server's (docs/BENCHMARKS.md, "Against Artillery").
"""
import json
import struct
import sys


def packets(path):
    """(time, src port, dst port, tcp payload) per captured TCP segment."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian, nano = {0xA1B2C3D4: ("<", False), 0xA1B23C4D: ("<", True)}[magic]
    link = struct.unpack(endian + "I", data[20:24])[0]
    if link != 1:
        sys.exit(f"link type {link}: expected Ethernet (capture with -i lo)")
    at = 24
    while at + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[at:at + 16])
        frame = data[at + 16:at + 16 + incl]
        at += 16 + incl
        t = sec + frac / (1e9 if nano else 1e6)
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6:
            continue
        total = struct.unpack(">H", ip[2:4])[0]
        tcp = ip[ihl:total]
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        off = (tcp[12] >> 4) * 4
        payload = tcp[off:]
        if payload:
            yield t, sport, dport, seq, payload


def frames(buf):
    """Complete websocket text frames at the start of buf: (end offset, text)."""
    out, i = [], 0
    while i + 2 <= len(buf):
        b1 = buf[i + 1]
        masked, n, h = b1 & 0x80, b1 & 0x7F, 2
        if n == 126:
            if i + 4 > len(buf):
                break
            n, h = struct.unpack(">H", buf[i + 2:i + 4])[0], 4
        elif n == 127:
            if i + 10 > len(buf):
                break
            n, h = struct.unpack(">Q", buf[i + 2:i + 10])[0], 10
        key = b""
        if masked:
            key, h = buf[i + h:i + h + 4], h + 4
        if i + h + n > len(buf):
            break
        body = buf[i + h:i + h + n]
        if masked:
            body = bytes(c ^ key[j % 4] for j, c in enumerate(body))
        if buf[i] & 0x0F == 1:
            out.append((i + h + n, body.decode("utf-8", "replace")))
        i += h + n
    return out, i


def main():
    path, port = sys.argv[1], int(sys.argv[2])
    streams = {}  # (client port, direction) -> [pending bytes, next seq, upgraded]
    emits, lat, gaps = {}, [], 0
    for t, sport, dport, seq, payload in packets(path):
        client = dport if sport == port else sport
        to_server = dport == port
        s = streams.setdefault((client, to_server), [b"", None, False])
        if s[1] == -1:
            continue
        if s[1] is not None and seq != s[1]:
            # A segment the capture dropped: start again at this one (the
            # clients here write whole frames, so it most likely starts one).
            gaps += 1
            s[0] = b""
        s[1] = (seq + len(payload)) & 0xFFFFFFFF
        s[0] += payload
        if not s[2]:
            # Skip the HTTP upgrade (and any plain HTTP request) up to its blank line.
            end = s[0].find(b"\r\n\r\n")
            if end < 0:
                continue
            head = s[0][:end].lower()
            if b"upgrade: websocket" not in head:
                s[1] = -1  # plain HTTP (POST /api/chats): not a websocket
                continue
            s[0], s[2] = s[0][end + 4:], True
        got, used = frames(s[0])
        s[0] = s[0][used:]
        for _, text in got:
            if to_server and text.startswith("42"):
                digits = text[2:len(text) - len(text[2:].lstrip("0123456789"))]
                if digits:
                    emits[(client, digits)] = t
            elif not to_server and text.startswith("43"):
                digits = text[2:len(text) - len(text[2:].lstrip("0123456789"))]
                sent = emits.pop((client, digits), None)
                if sent is not None:
                    lat.append((t - sent) * 1000)
    lat.sort()
    q = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else None
    print(json.dumps({"count": len(lat), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": q(1.0),
                      "captureGaps": gaps}))


if __name__ == "__main__":
    main()
