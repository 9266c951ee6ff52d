"""An aiohttp web server for testing our HTTP client. Prints its port, then serves:

* GET /cl: a Content-Length body of 100 000 bytes (bytes i % 251);
* GET /chunked?n=N: a streamed (chunked) body of N lines "line i\\n";
* GET /redirect/N: a 302 chain down to /redirect/0, which answers "final"; the Location is
  an absolute path, a relative path or a full URL in turn;
* POST /see-other: 303 to /method; POST /temporary: 307 to /method;
* /method (any method): "<method> <body length> <content-type or ->";
* GET /loop: 302 to itself;
* GET /ws: a WebSocket echo with a heartbeat (0.2 s) and compression (aiohttp's default);
  the text "info" answers JSON {compress, protocol}, the text "close-me" closes with 4001;
* GET /bearer: "bearer ok" for `Authorization: Bearer <the valid token>`, else 401 with
  `WWW-Authenticate: Bearer realm="tether", error="invalid_token"`; the valid token is
  "fresh-1" at start;
* POST /bearer/rotate: makes "fresh-<k+1>" the valid token (and "fresh-<k>" invalid), and
  answers the new token, as an expiry would (the client then has to refresh);
* GET /bearer/stats: JSON {"ok": n, "unauthorized": m}, how /bearer answered so far;
* GET /basic: "basic ok" for Basic credentials alice / s3cret (decoded by aiohttp's
  `BasicAuth`), else 401 with `WWW-Authenticate: Basic realm="tether"`.
"""
import asyncio
import json

from aiohttp import BasicAuth, WSMsgType, web


async def content_length(request):
    return web.Response(body=bytes(i % 251 for i in range(100_000)),
                        content_type="application/octet-stream")


async def chunked(request):
    n = int(request.query.get("n", "10"))
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for i in range(n):
        await response.write(f"line {i}\n".encode())
        if i % 10 == 9:
            await asyncio.sleep(0.001)
    await response.write_eof()
    return response


async def redirect(request):
    n = int(request.match_info["n"])
    if n == 0:
        return web.Response(text="final")
    target = n - 1
    if n % 3 == 0:
        location = f"/redirect/{target}"
    elif n % 3 == 2:
        location = str(target)
    else:
        location = f"http://{request.host}/redirect/{target}"
    raise web.HTTPFound(location)


async def see_other(request):
    await request.read()
    raise web.HTTPSeeOther("/method")


async def temporary(request):
    await request.read()
    raise web.HTTPTemporaryRedirect("/method")


async def method(request):
    body = await request.read()
    content_type = request.headers.get("Content-Type", "-")
    return web.Response(text=f"{request.method} {len(body)} {content_type}")


async def loop(request):
    raise web.HTTPFound("/loop")


async def websocket(request):
    ws = web.WebSocketResponse(heartbeat=0.2, protocols=("echo",), max_msg_size=4 << 20)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            if msg.data == "info":
                await ws.send_str(json.dumps({"compress": ws.compress,
                                              "protocol": ws.ws_protocol}))
            elif msg.data == "close-me":
                await ws.close(code=4001, message=b"asked to")
            else:
                await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


class Bearer:
    """The one valid token and how /bearer answered, shared by all connections."""

    def __init__(self):
        self.generation = 1
        self.ok = 0
        self.unauthorized = 0

    def token(self):
        return f"fresh-{self.generation}"


bearer_state = Bearer()


async def bearer(request):
    if request.headers.get("Authorization") == f"Bearer {bearer_state.token()}":
        bearer_state.ok += 1
        return web.Response(text="bearer ok")
    bearer_state.unauthorized += 1
    raise web.HTTPUnauthorized(
        headers={"WWW-Authenticate": 'Bearer realm="tether", error="invalid_token"'})


async def bearer_rotate(request):
    await request.read()
    bearer_state.generation += 1
    return web.Response(text=bearer_state.token())


async def bearer_stats(request):
    return web.json_response({"ok": bearer_state.ok,
                              "unauthorized": bearer_state.unauthorized})


async def basic(request):
    """aiohttp's own parser of Basic credentials decides."""
    try:
        credentials = BasicAuth.decode(request.headers.get("Authorization", ""))
    except ValueError:
        credentials = None
    if credentials and (credentials.login, credentials.password) == ("alice", "s3cret"):
        return web.Response(text="basic ok")
    raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="tether"'})


async def main():
    app = web.Application(client_max_size=4 << 20)
    app.router.add_get("/cl", content_length)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/redirect/{n}", redirect)
    app.router.add_post("/see-other", see_other)
    app.router.add_post("/temporary", temporary)
    app.router.add_route("*", "/method", method)
    app.router.add_get("/loop", loop)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/bearer", bearer)
    app.router.add_post("/bearer/rotate", bearer_rotate)
    app.router.add_get("/bearer/stats", bearer_stats)
    app.router.add_get("/basic", basic)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(port, flush=True)
    await asyncio.Future()


asyncio.run(main())
