"""Holds a known set of loopback TCP connections for netsight's socket tests.

Modes (all bounded: exits when stdin closes or after 60 s, or
$CONN_HOLDER_SECONDS):
  pairs N           N established pairs with some data moved, plus 3 pairs the
                    client closed (server side left in CLOSE-WAIT).
  leak-and-overflow listener A (backlog 2) never accepts while 6 clients connect;
                    listener B accepts 5 connections whose clients then close and
                    which this process never closes (a CLOSE-WAIT leak).
  listen-overflow   listener (backlog 1) never accepts; 10 clients keep retrying
                    their handshakes for 3 s (TcpExt.ListenOverflows rises).
  udp-overflow      a UDP receiver with a 4 KiB buffer never reads while 2000
                    datagrams of 1000 bytes arrive (Udp.RcvbufErrors rises).
Prints "READY <pid> <port> [<port>]" once the sockets are in place.
"""
import select
import socket
import sys
import time


def listener(backlog):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(backlog)
    return s, s.getsockname()[1]


def pairs(n):
    srv, port = listener(n + 8)
    keep = []
    for i in range(n + 3):
        c = socket.create_connection(("127.0.0.1", port))
        a, _ = srv.accept()
        # Distinct byte counts per pair, all read, so that nothing is left
        # queued (a full window would keep the peer probing it).
        size = 1000 * (i % 500 + 1)
        c.sendall(b"x" * size)
        got = 0
        while got < size:
            chunk = a.recv(size - got)
            if not chunk:
                sys.exit("the client closed early")
            got += len(chunk)
        keep += [c, a]
    for c in keep[-6::2]:  # the last 3 clients close; their servers stay in CLOSE-WAIT
        c.close()
    return [srv] + keep, [port]


def leak_and_overflow():
    full, port_a = listener(2)
    clients = []
    for _ in range(6):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port_a))
        clients.append(c)
    leaky, port_b = listener(16)
    accepted = []
    for _ in range(5):
        c = socket.create_connection(("127.0.0.1", port_b))
        a, _ = leaky.accept()
        accepted.append(a)
        c.close()
    return [full, leaky] + clients + accepted, [port_a, port_b]


def listen_overflow():
    full, port = listener(1)
    clients = []
    for _ in range(10):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        clients.append(c)
    time.sleep(3)  # SYN retransmissions at 1 s and 3 s overflow again
    return [full] + clients, [port]


def udp_overflow():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    rx.bind(("127.0.0.1", 0))
    port = rx.getsockname()[1]
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(2000):
        tx.sendto(b"x" * 1000, ("127.0.0.1", port))
    return [rx, tx], [port]


def main():
    mode = sys.argv[1]
    if mode == "pairs":
        keep, ports = pairs(int(sys.argv[2]))
    elif mode == "leak-and-overflow":
        keep, ports = leak_and_overflow()
    elif mode == "listen-overflow":
        keep, ports = listen_overflow()
    elif mode == "udp-overflow":
        keep, ports = udp_overflow()
    else:
        sys.exit(f"unknown mode {mode}")
    time.sleep(0.3)  # let FINs and handshakes settle
    import os

    print("READY", os.getpid(), *ports, flush=True)
    select.select([sys.stdin], [], [], float(os.environ.get("CONN_HOLDER_SECONDS", "60")))
    del keep


main()
