"""A WebSocket echo server on the `websockets` library, for testing our client. Prints its
port. Every message is echoed; a text message "close-me" makes the server close with 4001.
"""
import asyncio

import websockets


async def echo(ws):
    async for message in ws:
        if message == "close-me":
            await ws.close(code=4001, reason="asked to")
            return
        await ws.send(message)


async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=4 << 20,
                                subprotocols=["echo"], ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(port, flush=True)
        await asyncio.Future()


asyncio.run(main())
