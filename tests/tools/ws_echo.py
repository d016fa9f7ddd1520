#!/usr/bin/python3
"""A WebSocket echo server for libringport-client's WebSocket tests
(tests/integration/test_client_ws.c), on Debian's python3-websockets: a
real, independent implementation of RFC 6455 (it refuses unmasked client
frames with close 1002, so every message our client sends is checked).

Each binary message holds ringport frames (u16 length, u16 type, payload,
little-endian). Each frame is echoed as its own binary message, except:
  0x7001  a ping (payload "rp-ping") first; echoed once the pong came back
  0x7002  echoed in three fragments, then twice in one message
  0x7003  the server closes (1000)
  0x7004  a text message (the client must refuse it)
Prints "listening on 127.0.0.1:PORT" and serves until SIGTERM (exit 0). Exits 77 when
python3-websockets is missing.
"""
import asyncio
import signal
import struct
import sys

try:
    import websockets
except ImportError:
    print("python3-websockets missing", flush=True)
    sys.exit(77)


def frames(msg):
    off = 0
    while off + 4 <= len(msg):
        n, t = struct.unpack_from("<HH", msg, off)
        yield t, msg[off:off + 4 + n]
        off += 4 + n


async def handler(ws, path=None):
    try:
        await serve(ws)
    except websockets.ConnectionClosed:
        pass  # the tests make the client refuse some frames


async def serve(ws):
    async for msg in ws:
        if isinstance(msg, str):
            await ws.close(1003)
            return
        for t, raw in frames(msg):
            if t == 0x7001:
                pong = await ws.ping(b"rp-ping")
                await pong
                await ws.send(raw)
            elif t == 0x7002:
                await ws.send([raw[:1], raw[1:3], raw[3:]])
                await ws.send(raw + raw)
            elif t == 0x7003:
                await ws.close(1000, "bye")
                return
            elif t == 0x7004:
                await ws.send("text")
            else:
                await ws.send(raw)


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0, compression=None,
                                max_size=1 << 20) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on 127.0.0.1:{port}", flush=True)
        stop = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGTERM, stop.set_result, None)
        await stop


asyncio.run(main())
