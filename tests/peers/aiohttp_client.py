"""An aiohttp client for the axum-on-tether test (tests/tests/tokio_axum.rs). Takes the
server's base URL; makes the requests below and prints one JSON object with what came back:

* GET /users/7?greeting=hi (path and query extractors);
* POST /json (a JSON body, echoed with a count from the app's state), twice;
* GET /stream (a body streamed in pieces);
* GET /sse (server-sent events), the data lines;
* GET /hello with Accept-Encoding: gzip (tower-http's compression layer);
* GET /missing (the router's 404).
"""
import asyncio
import json
import sys

import aiohttp


async def main(base):
    out = {}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/users/7", params={"greeting": "hi"}) as r:
            out["user"] = [r.status, await r.text()]
        counts = []
        for n in (1, 2):
            async with session.post(f"{base}/json", json={"n": n}) as r:
                counts.append([r.status, await r.json()])
        out["json"] = counts
        async with session.get(f"{base}/stream") as r:
            pieces = []
            async for piece in r.content.iter_any():
                pieces.append(piece.decode())
            out["stream"] = [r.status, "".join(pieces), r.headers.get("Transfer-Encoding")]
        async with session.get(f"{base}/sse") as r:
            text = await r.text()
            data = [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]
            out["sse"] = [r.status, r.headers.get("Content-Type"), data]
        async with session.get(f"{base}/hello", headers={"Accept-Encoding": "gzip"}) as r:
            out["gzip"] = [r.status, r.headers.get("Content-Encoding"), await r.text()]
        async with session.get(f"{base}/missing") as r:
            out["missing"] = r.status
    print(json.dumps(out))


asyncio.run(main(sys.argv[1]))
