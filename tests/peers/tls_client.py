"""An aiohttp client over TLS for tests/tests/tokio_tls_server.rs. Takes the server's
https:// base URL and the CA file to trust; GETs /, POSTs 100 KB to /echo, and echoes a
message over wss:// /ws with the subprotocol "echo". Prints one JSON object."""
import asyncio
import json
import ssl
import sys

import aiohttp


async def main(base, cafile):
    context = ssl.create_default_context(cafile=cafile)
    out = {}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/", ssl=context) as r:
            out["hello"] = [r.status, await r.text()]
        body = b"z" * 100_000
        async with session.post(f"{base}/echo", data=body, ssl=context) as r:
            out["echo"] = [r.status, await r.read() == body]
        ws_url = base.replace("https://", "wss://") + "/ws"
        async with session.ws_connect(ws_url, protocols=["echo"], ssl=context) as ws:
            out["protocol"] = ws.protocol
            await ws.send_str("over TLS")
            message = await ws.receive()
            out["ws"] = message.data
            await ws.close()
            out["close_code"] = ws.close_code
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2]))
