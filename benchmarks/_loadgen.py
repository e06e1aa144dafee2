"""A small HTTP/1.1 keep-alive load generator: the middleware row's fallback when wrk is missing.

    python benchmarks/_loadgen.py PORT SECONDS CONNECTIONS TOKEN

Opens CONNECTIONS keep-alive connections to 127.0.0.1:PORT, each sending GET / with the bearer
token and reading the response (Content-Length framing only) in a loop, and prints wrk's
"Requests/sec:" line (plus "Non-2xx" when any response was not a 2xx).
"""

from __future__ import annotations

import asyncio
import sys
import time


async def _connection(port: int, request: bytes, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            counts[0 if 200 <= status < 300 else 1] += 1
    finally:
        writer.close()


async def _main(port: int, seconds: float, connections: int, token: str) -> None:
    request = (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    counts = [0, 0]
    start = time.monotonic()
    deadline = start + seconds
    await asyncio.gather(
        *(_connection(port, request, deadline, counts) for _ in range(connections))
    )
    elapsed = time.monotonic() - start
    if counts[1]:
        print(f"  Non-2xx or 3xx responses: {counts[1]}")
    print(f"Requests/sec: {sum(counts) / elapsed:.2f}")


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
