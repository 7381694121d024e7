#!/usr/bin/env python3
"""fault_proxy.py -- a TCP proxy on loopback that injects network faults
between a client and a server, for the network fault suite (83-network).

    fault_proxy.py LISTEN_PORT TARGET_PORT STATS_FILE [SEED [AFTER_MAX]]

Each accepted connection is forwarded to 127.0.0.1:TARGET_PORT with one
fault drawn at random (seeded), which strikes once some bytes (0..16384,
so before, inside or between replies; AFTER_MAX bytes at most when
given, for a protocol whose handshake is longer) have gone toward the client:

    close      both sides are closed (FIN), as a server that goes away
    delay      every chunk in either direction waits 1-150 ms first; then
               both sides are closed
    drop       nothing more is passed either way and nothing is closed: a
               black hole, as a peer whose packets are all lost (the client
               must time out)
    reset      both sides are reset (RST, SO_LINGER 0), mid-reply
    half-close the proxy shuts its write side to the client (the client
               reads EOF) and keeps the server's side open

    fault_proxy.py LISTEN_PORT TARGET_PORT STATS_FILE --hole-on TEXT

With --hole-on, no fault is drawn: every connection passes untouched until
the client sends TEXT (say, a word of the one query under test), then it
is black-holed as by drop, from that query on (its bytes never reach the
server). The statistics count those as "hole-on".

Every connection meets its fault, so clients keep reconnecting, until
SIGUSR1: connections accepted after it pass untouched (the network has
healed, and what the clients left unknown must now settle). On SIGTERM the proxy writes one line per fault, "NAME COUNT", to
STATS_FILE and exits. It prints "listening" once it accepts connections, and
"fault NAME" as each connection draws its fault.
"""
import asyncio
import random
import signal
import socket
import struct
import sys

FAULTS = ["close", "delay", "drop", "reset", "half-close"]
WEIGHTS = [3, 2, 1, 2, 1]
CHUNK_BYTES = 65536
DELAY_MS_MAX = 150
FAULT_AFTER_BYTES_MAX = 16384


def reset(writer):
    """Closes the connection with an RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


class Proxy:
    def __init__(self, target_port, seed, after_max, hole_on=None):
        self.target_port = target_port
        self.after_max = after_max
        self.hole_on = hole_on
        self.random = random.Random(seed)
        self.counts = {name: 0 for name in (["hole-on"] if hole_on else FAULTS)}
        self.holes = []   # black-holed connections, kept open until exit
        self.healed = False   # SIGUSR1: new connections meet no fault

    async def pump(self, reader, writer, fault, toward_client, state, peers):
        """Copies reader to writer, applying fault once state["left"]
        bytes have gone toward the client; after that nothing passes."""
        try:
            while not state["struck"]:
                data = await reader.read(CHUNK_BYTES)
                if not data or state["struck"]:
                    if not data and not state["struck"]:
                        writer.write_eof()
                    return
                if fault == "hole-on" and not toward_client:
                    seen = state["tail"] + data
                    if self.hole_on in seen:
                        state["struck"] = True
                        self.strike("drop", peers)
                        return
                    state["tail"] = seen[-len(self.hole_on):]
                if fault == "delay":
                    await asyncio.sleep(self.random.uniform(1, DELAY_MS_MAX) / 1000)
                if toward_client and len(data) >= state["left"]:
                    writer.write(data[: state["left"]])
                    await writer.drain()
                    state["struck"] = True
                    self.strike(fault, peers)
                    return
                if toward_client:
                    state["left"] -= len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            for peer in peers:
                peer.close()

    def strike(self, fault, peers):
        client_writer, server_writer = peers
        if fault == "reset":
            reset(client_writer)
            reset(server_writer)
        elif fault == "half-close":
            if client_writer.can_write_eof():
                client_writer.write_eof()
        elif fault == "drop":
            self.holes.append(peers)   # both stay open; nothing more passes
        else:
            client_writer.close()
            server_writer.close()

    async def handle(self, client_reader, client_writer):
        healed = self.healed
        fault = "hole-on" if self.hole_on else self.random.choices(FAULTS, WEIGHTS)[0]
        if not healed:
            self.counts[fault] += 1
            print("fault", fault, flush=True)
        try:
            server_reader, server_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port)
        except OSError:
            reset(client_writer)
            return
        left = self.random.randint(0, self.after_max) if not self.hole_on else float("inf")
        if healed:
            fault, left = "none", float("inf")
        state = {"left": left, "struck": False, "tail": b""}
        peers = (client_writer, server_writer)
        await asyncio.gather(
            self.pump(client_reader, server_writer, fault, False, state, peers),
            self.pump(server_reader, client_writer, fault, True, state, peers))
        if not state["struck"] or fault not in ("drop", "hole-on"):
            for peer in peers:
                peer.close()


async def main():
    listen_port, target_port, stats_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    hole_on = sys.argv[5].encode() if len(sys.argv) > 5 and sys.argv[4] == "--hole-on" else None
    seed = int(sys.argv[4]) if len(sys.argv) > 4 and hole_on is None else 1
    after_max = int(sys.argv[5]) if len(sys.argv) > 5 and hole_on is None \
        else FAULT_AFTER_BYTES_MAX
    proxy = Proxy(target_port, seed, after_max, hole_on)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", listen_port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGUSR1, lambda: setattr(proxy, "healed", True))
    print("listening", flush=True)
    async with server:
        await stop.wait()
    with open(stats_file, "w") as out:
        for name in proxy.counts:
            out.write(f"{name} {proxy.counts[name]}\n")


if __name__ == "__main__":
    asyncio.run(main())
