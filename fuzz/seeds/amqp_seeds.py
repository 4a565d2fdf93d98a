#!/usr/bin/env python3
"""Writes the amqp_frames seed corpus: real AMQP 0-9-1 connection traffic, encoded by hand
from the spec, in the target's input layout (mode, n, n chunk lengths, stream)."""
import os, struct, sys

def ss(s): s = s.encode(); return bytes([len(s)]) + s
def ls(b): b = b if isinstance(b, bytes) else b.encode(); return struct.pack('>I', len(b)) + b
def table(d):
    body = b''.join(ss(k) + b'S' + ls(v) for k, v in d.items())
    return struct.pack('>I', len(body)) + body
def method(cls, mid, args=b''): return struct.pack('>HH', cls, mid) + args
def frame(kind, ch, payload): return struct.pack('>BHI', kind, ch, len(payload)) + payload + b'\xce'

HEADER = b'AMQP\x00\x00\x09\x01'
start = frame(1, 0, method(10, 10, b'\x00\x09' + table({'product': 'RabbitMQ'}) + ls('PLAIN AMQPLAIN') + ls('en_US')))
start_ok = frame(1, 0, method(10, 11, table({'product': 'pika', 'connection_name': 'orders'}) + ss('PLAIN') + ls(b'\0guest\0guest') + ss('en_US')))
amqplain = b''.join(ss(k) + b'S' + ls(v) for k, v in [('LOGIN', 'alice'), ('PASSWORD', 'pw')])
start_ok_amqplain = frame(1, 0, method(10, 11, table({}) + ss('AMQPLAIN') + ls(amqplain) + ss('en_US')))
tune = frame(1, 0, method(10, 30, struct.pack('>HIH', 2047, 131072, 60)))
tune_ok = frame(1, 0, method(10, 31, struct.pack('>HIH', 2047, 131072, 60)))
tune_ok_small = frame(1, 0, method(10, 31, struct.pack('>HIH', 16, 4096, 1)))
open_ = frame(1, 0, method(10, 40, ss('/') + ss('') + b'\x00'))
open_ok = frame(1, 0, method(10, 41, ss('')))
close = frame(1, 0, method(10, 50, struct.pack('>H', 320) + ss('CONNECTION_FORCED - shutdown') + struct.pack('>HH', 0, 0)))
close_ok = frame(1, 0, method(10, 51))
channel_open = frame(1, 1, method(20, 10, ss('')))
publish = frame(1, 1, method(60, 40, struct.pack('>H', 0) + ss('amq.direct') + ss('key') + b'\x00'))
content_header = frame(2, 1, struct.pack('>HHQH', 60, 0, 11, 0))
body = frame(3, 1, b'hello world')
heartbeat = frame(8, 0, b'')

def seed(mode, chunks):
    """chunks: [(side, bytes)], side 0 = client, 1 = server; the last chunk is the rest
    (client side). Chunks over 127 bytes are cut, as one length byte holds 7 bits."""
    lengths, stream = [], b''
    for i, (side, data) in enumerate(chunks):
        last = i == len(chunks) - 1
        while True:
            piece, data = data[:127], data[127:]
            stream += piece
            if last and not data:
                break
            lengths.append(len(piece) << 1 | side)
            if not data:
                break
    assert len(lengths) <= 15, len(lengths)
    return bytes([mode, len(lengths)]) + bytes(lengths) + stream

client = [start_ok, tune_ok, open_, channel_open, publish, content_header, body, heartbeat, close, close_ok]
server = [start, tune, open_ok, heartbeat, close, close_ok]
seeds = {
    'client-whole': seed(0, [(0, HEADER + b''.join(client))]),
    'client-amqplain': seed(0, [(0, HEADER + start_ok_amqplain + tune_ok_small + open_)]),
    'client-split': seed(0, [(0, HEADER[:3]), (0, HEADER[3:] + start_ok[:5]), (0, start_ok[5:]), (0, tune_ok[:9]), (0, tune_ok[9:] + open_)]),
    'server-whole': seed(1, [(0, b''.join(server))]),
    'server-no-limit': seed(1 | 4, [(0, start + frame(3, 5, bytes(300)) + close)]),
    'server-frame-max-4096': seed(1 | 8, [(0, tune + heartbeat)]),
    'session-handshake': seed(2, [(1, start), (0, start_ok), (1, tune), (0, tune_ok_small + open_), (1, open_ok), (0, channel_open + publish + content_header + body), (1, heartbeat), (0, close), (1, close_ok)]),
    'session-server-close': seed(2, [(1, start), (0, start_ok_amqplain), (1, tune), (0, tune_ok + open_), (1, open_ok + close), (0, close_ok)]),
    'bad-end': seed(1, [(0, heartbeat[:-1] + b'\x00')]),
    'bad-header': seed(0, [(0, b'GET / HTTP/1.1\r\n')]),
}
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)
