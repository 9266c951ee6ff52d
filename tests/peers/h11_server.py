"""A strict HTTP/1.1 server built on h11, for testing our client connection. Prints its port,
then serves connections one at a time (keep-alive included) until killed.

Routes: /length (Content-Length body), /chunked (chunked body with trailers), /early-hints
(a 103 before the response), /no-content (204), /close (Connection: close).
"""
import socket

import h11


def respond(conn, sock, request):
    target = request.target.decode()
    if target == "/length":
        events = [h11.Response(status_code=200, headers=[("content-length", "11")]),
                  h11.Data(data=b"hello world"), h11.EndOfMessage()]
    elif target == "/chunked":
        events = [h11.Response(status_code=200, headers=[("transfer-encoding", "chunked")]),
                  h11.Data(data=b"chunk-one,"), h11.Data(data=b"chunk-two"),
                  h11.EndOfMessage(headers=[("x-trailer", "done")])]
    elif target == "/early-hints":
        events = [h11.InformationalResponse(status_code=103, headers=[("link", "</a.css>; rel=preload")]),
                  h11.Response(status_code=200, headers=[("content-length", "2")]),
                  h11.Data(data=b"ok"), h11.EndOfMessage()]
    elif target == "/no-content":
        events = [h11.Response(status_code=204, headers=[]), h11.EndOfMessage()]
    elif target == "/close":
        events = [h11.Response(status_code=200, headers=[("connection", "close"), ("content-length", "3")]),
                  h11.Data(data=b"bye"), h11.EndOfMessage()]
    else:
        events = [h11.Response(status_code=404, headers=[("content-length", "0")]), h11.EndOfMessage()]
    for event in events:
        sock.sendall(conn.send(event))


def serve(sock):
    conn = h11.Connection(h11.SERVER)
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = sock.recv(65536)
            conn.receive_data(data)
            if not data and conn.their_state is not h11.DONE:
                return
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage):
            respond(conn, sock, request)
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
        elif isinstance(event, h11.ConnectionClosed):
            return


def main():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    print(listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        try:
            serve(sock)
        except h11.RemoteProtocolError as e:
            print("protocol error:", e, flush=True)
        finally:
            sock.close()


main()
