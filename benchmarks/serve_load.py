"""Load test of `ferlab serve` on loopback: N concurrent clients posting a face photo.

Starts the server in a subprocess (bundled model unless --model), then runs ``--clients``
concurrent clients for ``--seconds``, each sending the bundled astronaut photo again as soon
as its previous answer arrives. Reports requests/s, p50/p99 latency and errors. With
``--streams`` each client sends its photos as the frames of its own live stream
(``?stream=client-N``), so the server tracks and smooths them and, past its 64 streams,
keeps forgetting the least recently used.

    python benchmarks/serve_load.py [--clients 200] [--seconds 30] [--model PATH] [--streams]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources

import httpx2


async def client_loop(client: httpx2.AsyncClient, url: str, photo: bytes, stop: float, latencies: list, errors: list,
                      params: dict):
    while time.perf_counter() < stop:
        start = time.perf_counter()
        try:
            response = await client.post(url, params=params, files={"file": ("astronaut.jpg", photo, "image/jpeg")})
            if response.status_code != 200 or len(response.json()["faces"]) != 1:
                errors.append(f"HTTP {response.status_code}")
            else:
                latencies.append(time.perf_counter() - start)
        except httpx2.HTTPError as error:
            errors.append(type(error).__name__)


async def load(base: str, clients: int, seconds: float, streams: bool = False) -> tuple[list, list, float]:
    photo = (resources.files("ferlab") / "assets" / "astronaut.jpg").read_bytes()
    latencies, errors = [], []
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(timeout=120, limits=limits) as client:
        start = time.perf_counter()
        stop = start + seconds
        await asyncio.gather(*(client_loop(client, base + "/v1/analyze", photo, stop, latencies, errors,
                                           {"stream": f"client-{index}"} if streams else {})
                               for index in range(clients)))
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


@contextlib.contextmanager
def ferlab_server(model: str | None = None, backend: str = "auto") -> Iterator[str]:
    """`ferlab serve` in a subprocess on a free loopback port (bundled model unless ``model``,
    on ``backend``), once it answers; yields its base URL and stops it afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "ferlab.cli", "serve", "--port", str(port), "--backend", backend]
    if model:
        command += ["--model", model]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx2.get(base + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--model")
    parser.add_argument("--streams", action="store_true", help="each client a live stream of its own")
    args = parser.parse_args()
    with ferlab_server(args.model) as base:
        latencies, errors, elapsed = asyncio.run(load(base, args.clients, args.seconds, args.streams))
    done = len(latencies)
    quantiles = statistics.quantiles(latencies, n=100) if done > 1 else [float("nan")] * 99
    print(f"{args.clients} clients{' (each its own stream)' if args.streams else ''} for {elapsed:.1f} s on loopback: "
          f"{done} requests ok, {len(errors)} errors "
          f"({sorted(set(errors))[:5]})")
    print(f"throughput {done / elapsed:.1f} requests/s; latency p50 {1000 * quantiles[49]:.0f} ms, "
          f"p99 {1000 * quantiles[98]:.0f} ms")


if __name__ == "__main__":
    main()
