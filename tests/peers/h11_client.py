"""A strict HTTP/1.1 client built on h11: sends the scenarios named on the command line over
ONE keep-alive connection and prints what it received as JSON (one object per request).

h11 validates everything it receives (framing, header syntax, keep-alive rules), so a
response h11 accepts is a response a careful client accepts.
"""
import json
import socket
import sys

import h11


def scenario(name):
    host = ("host", "127.0.0.1")
    if name == "get":
        return h11.Request(method="GET", target="/", headers=[host]), []
    if name == "head":
        return h11.Request(method="HEAD", target="/", headers=[host]), []
    if name == "echo-length":
        body = b"x" * 100_000
        headers = [host, ("content-length", str(len(body))), ("content-type", "application/x-test")]
        return h11.Request(method="POST", target="/echo", headers=headers), [body]
    if name == "echo-chunked":
        headers = [host, ("transfer-encoding", "chunked")]
        return h11.Request(method="POST", target="/echo", headers=headers), [b"abc", b"d" * 5000, b"e"]
    if name == "stream":
        return h11.Request(method="GET", target="/stream?n=50", headers=[host]), []
    if name == "missing":
        return h11.Request(method="GET", target="/nope", headers=[host]), []
    raise SystemExit(f"unknown scenario {name}")


def main():
    port = int(sys.argv[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h11.Connection(h11.CLIENT)
    results = []
    for name in sys.argv[2:]:
        if conn.states[h11.CLIENT] is h11.DONE:
            conn.start_next_cycle()
        request, body = scenario(name)
        sock.sendall(conn.send(request))
        for piece in body:
            sock.sendall(conn.send(h11.Data(data=piece)))
        sock.sendall(conn.send(h11.EndOfMessage()))
        result = {"scenario": name, "body": ""}
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
                continue
            if isinstance(event, h11.Response):
                result["status"] = event.status_code
                result["headers"] = [[k.decode(), v.decode()] for k, v in event.headers]
            elif isinstance(event, h11.Data):
                result["body"] += event.data.decode("latin-1")
            elif isinstance(event, h11.EndOfMessage):
                break
        result["our_state"] = conn.our_state.__name__ if hasattr(conn.our_state, "__name__") else str(conn.our_state)
        result["their_state"] = str(conn.their_state)
        results.append(result)
    print(json.dumps(results))


main()
