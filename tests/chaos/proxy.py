"""A loopback TCP proxy the chaos campaign controls: penstock connects to the
proxy's port, the proxy to the real server. Faults are commands from another
thread: drop every connection, stall both directions for some seconds, reset
the connection that carried data last (a transaction in flight), or hold one
direction (a blackhole: nothing is delivered that way until it lifts).

Held bytes are not lost: the pump stops reading, so TCP's own flow control
pushes back on the sender, as a path that delivers nothing would.
"""
import asyncio
import socket
import struct
import threading
import time


class _Conn:
    def __init__(self, cw, uw):
        self.writers = (cw, uw)
        self.last = time.monotonic()
        self.bytes = 0
        self.dead = False

    def abort(self):
        """Closes both sides with a TCP reset (SO_LINGER 0), not a FIN."""
        if self.dead:
            return
        self.dead = True
        for w in self.writers:
            sock = w.get_extra_info("socket")
            try:
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            w.transport.abort()

    def close(self):
        if self.dead:
            return
        self.dead = True
        for w in self.writers:
            w.transport.close()


class Proxy:
    def __init__(self, loop, name, upstream_port):
        self.loop = loop
        self.name = name
        self.upstream_port = upstream_port
        self.conns = set()
        self.accepted = 0
        self.port = None
        self._gates = None
        self._run(self._start())

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _start(self):
        self._gates = {"up": asyncio.Event(), "down": asyncio.Event()}
        for g in self._gates.values():
            g.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, creader, cwriter):
        self.accepted += 1
        try:
            ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            cwriter.transport.abort()   # the server is down: refused, as it would be
            return
        conn = _Conn(cwriter, uwriter)
        self.conns.add(conn)
        try:
            await asyncio.gather(self._pump(conn, creader, uwriter, "up"),
                                 self._pump(conn, ureader, cwriter, "down"))
        finally:
            self.conns.discard(conn)

    async def _pump(self, conn, reader, writer, direction):
        try:
            while not conn.dead:
                data = await reader.read(65536)
                if not data:
                    break
                await self._gates[direction].wait()
                if conn.dead:
                    break
                writer.write(data)
                await writer.drain()
                conn.last = time.monotonic()
                conn.bytes += len(data)
        except (ConnectionError, OSError):
            pass
        finally:
            conn.close()

    # --- faults (called from other threads) ---------------------------------

    def drop_all(self):
        async def go():
            n = len(self.conns)
            for c in list(self.conns):
                c.abort()
            return n
        return self._run(go())

    def reset_busiest(self):
        """Resets the connection that carried data most recently."""
        async def go():
            live = [c for c in self.conns if not c.dead]
            if not live:
                return 0
            max(live, key=lambda c: c.last).abort()
            return 1
        return self._run(go())

    def hold(self, directions):
        async def go():
            for d in directions:
                self._gates[d].clear()
        self._run(go())

    def release(self):
        async def go():
            for g in self._gates.values():
                g.set()
        self._run(go())

    def close(self):
        async def go():
            self._server.close()
            for c in list(self.conns):
                c.abort()
        self._run(go())


class ProxyLoop:
    """One asyncio loop in a daemon thread serving every proxy."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def proxy(self, name, upstream_port):
        return Proxy(self.loop, name, upstream_port)
