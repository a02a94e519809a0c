"""Slow clients: open N connections that send half a request and then nothing, and report how
many the provider had closed by the end (it should close them all after its header timeout)."""
import socket, sys, time

host, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for _ in range(n):
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n")
    s.setblocking(False)
    socks.append(s)
deadline = time.time() + secs
closed = set()
while time.time() < deadline and len(closed) < n:
    for i, s in enumerate(socks):
        if i in closed:
            continue
        try:
            if s.recv(4096) == b"":
                closed.add(i)
        except BlockingIOError:
            pass
        except OSError:
            closed.add(i)
    time.sleep(0.2)
print(f"slow connections: {n} opened, {len(closed)} closed by the provider within {secs:.0f} s")
