"""A WebSocket client on the `websockets` library (or aiohttp with --aiohttp): talks to our
/ws echo and prints what happened as JSON. Compression is whatever the library offers by
default (permessage-deflate for both) unless --no-compression.
"""
import asyncio
import json
import sys

MESSAGES = ["hello", "ünïcödé ✓", "x" * 70_000, "", "z" * 1_000_000]
BINARY = [bytes(range(256)) * 300, b"", b"\x00\xff" * 10]


async def with_websockets(url, compression):
    import websockets

    kwargs = {"max_size": 4 << 20, "subprotocols": ["echo"]}
    if not compression:
        kwargs["compression"] = None
    async with websockets.connect(url, **kwargs) as ws:
        result = {"subprotocol": ws.subprotocol, "extensions": [type(e).__name__ for e in ws.protocol.extensions]}
        echoed = []
        for m in MESSAGES + BINARY:
            await ws.send(m)
            echoed.append(await ws.recv() == m)
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        result["pong"] = True
        result["echoed"] = echoed
        await ws.close(code=1000, reason="done")
        result["close_code"] = ws.close_code
        result["close_reason"] = ws.close_reason
        return result


async def with_aiohttp(url, compression):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, heartbeat=1.0, compress=15 if compression else 0,
                                      protocols=["echo"], max_msg_size=4 << 20) as ws:
            result = {"subprotocol": ws.protocol, "compress": ws.compress}
            echoed = []
            for m in MESSAGES:
                await ws.send_str(m)
                echoed.append((await ws.receive()).data == m)
            for m in BINARY:
                await ws.send_bytes(m)
                echoed.append((await ws.receive()).data == m)
            # Stay quiet past the heartbeat: our server must answer aiohttp's pings.
            await asyncio.sleep(2.5)
            await ws.send_str("still here")
            echoed.append((await ws.receive()).data == "still here")
            result["echoed"] = echoed
            await ws.close(code=1000, message=b"done")
            result["close_code"] = ws.close_code
            return result


async def main():
    url = sys.argv[1]
    compression = "--no-compression" not in sys.argv
    run = with_aiohttp if "--aiohttp" in sys.argv else with_websockets
    print(json.dumps(await run(url, compression)))


asyncio.run(main())
