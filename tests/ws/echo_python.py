"""A real WebSocket client (Debian python3-websockets) against
ringport-echo --ws-port: echo of many sizes (1 B .. 60 KiB, one ringport
frame per binary message), 64 messages in flight, a fragmented message,
two frames in one message, ping with a payload, and the close handshake.
Usage: python3 echo_python.py PORT. Exits 0 and prints "ok", or prints
what went wrong and exits 1."""
import asyncio
import struct
import sys

import websockets


def frame(n, typ):
    return struct.pack("<HH", n, typ) + bytes((i * 31 + n + typ) & 255
                                              for i in range(n))


async def main(port):
    async with websockets.connect(f"ws://127.0.0.1:{port}/",
                                  max_size=None, compression=None) as ws:
        for n in (0, 1, 2, 121, 122, 123, 125, 126, 1000, 4096, 16384,
                  60000, 61440):
            f = frame(n, 7)
            await ws.send(f)
            got = await ws.recv()
            if got != f:
                raise SystemExit(f"size {n}: got {len(got)} bytes back")
        sent = [frame((i * 97) % 3000, 8) for i in range(64)]
        for f in sent:
            await ws.send(f)
        for f in sent:
            if await ws.recv() != f:
                raise SystemExit("in-flight echo differs")
        f = frame(5000, 9)
        await ws.send([f[:3], f[3:2000], f[2000:]])  # three fragments
        if await ws.recv() != f:
            raise SystemExit("fragmented echo differs")
        a, b = frame(10, 10), frame(20, 11)
        await ws.send(a + b)
        if await ws.recv() != a or await ws.recv() != b:
            raise SystemExit("two frames in one message: echo differs")
        pong = await ws.ping(b"ringport-ping-0123456789")
        await asyncio.wait_for(pong, 10)  # checks the payload itself
        await ws.close(1000, "bye")
        if ws.close_code != 1000:
            raise SystemExit(f"closed with {ws.close_code}")
    print("ok")


try:
    asyncio.run(asyncio.wait_for(main(int(sys.argv[1])), 12))
except SystemExit as e:
    print(f"python websockets client: {e}")
    sys.exit(1)
except Exception as e:  # noqa: BLE001 - any failure is the test's
    print(f"python websockets client: {type(e).__name__}: {e}")
    sys.exit(1)
