"""Several Rasa processes behind one port, with sticky socket.io sessions.

``emobot run`` starts one Rasa process per core (``EMOBOT_RASA_WORKERS``, README "Under load").
Sanic's own workers (``SANIC_WORKERS``) share one listening socket, so each TCP connection goes
to whichever process accepts it first. That is fine for Rasa's REST channel, but not for
socket.io: a session lives in the process that created it, and a client that starts with
long-polling (rasa-webchat does, and cannot be told otherwise) opens further connections for its
polls and for the upgrade to a websocket, which then reach another process and get
``400 Bad Request``; the chat never answers.

This front listens on Rasa's port and starts the Rasa processes itself, each on a private
loopback port. Each process marks the socket.io sessions it creates with its number
(``EMOBOT_RASA_PROCESS``, read by :mod:`emobot.channels`), and the front sends every request
that names a session (``?sid=``) to the process that holds it, websockets included. Anything
else goes to the process with the fewest requests in flight. The processes share one tracker
store and the file lock store, so a conversation may move between them from turn to turn.

It imports neither Rasa nor TensorFlow (30 MB RSS measured), and adds one loopback hop a
request. When a Rasa process dies, the front stops the others and exits, as one Rasa would;
when the front dies (even by SIGKILL), the kernel stops its Rasa processes
(``PR_SET_PDEATHSIG``).

Usage (the stack builds this line)::

    python -m emobot.front --host 127.0.0.1 --port 5005 --processes 2 -- rasa run --enable-api ...
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import aiohttp
from aiohttp import web

from emotion_sensing.processes import die_with_parent_hook, free_port

PROCESS_ENV = "EMOBOT_RASA_PROCESS"
SID_PATTERN = re.compile(r"^p(\d+)\.")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}
MAX_BODY = 1 << 30  # Rasa's model upload is the largest request; Rasa applies its own limits


def session_prefix(index: int) -> str:
    """What the socket.io session ids of Rasa process ``index`` start with."""
    return f"p{index}."


def process_of_session(sid: str) -> Optional[int]:
    match = SID_PATTERN.match(sid or "")
    return int(match.group(1)) if match else None


def log(message: str) -> None:
    print(f"emobot front: {message}", file=sys.stderr, flush=True)


class Backend:
    """One Rasa process on a private loopback port."""

    def __init__(self, index: int, command: Sequence[str], port: int) -> None:
        self.index, self.port = index, port
        self.command = [*command, "--interface", "127.0.0.1", "--port", str(port)]
        self.url = f"http://127.0.0.1:{port}"
        self.in_flight = 0
        self.popen: Optional[subprocess.Popen] = None

    def start(self) -> None:
        env = {**os.environ, PROCESS_ENV: str(self.index), "SANIC_WORKERS": "1"}
        # Same process group as the front: whoever stops the front's group stops these too.
        self.popen = subprocess.Popen(self.command, env=env, preexec_fn=die_with_parent_hook())

    def exited(self) -> Optional[int]:
        return None if self.popen is None else self.popen.poll()


class Front:
    def __init__(self, backends: List[Backend]) -> None:
        self.backends = backends
        self.session: Optional[aiohttp.ClientSession] = None
        self._turn = itertools.count()

    # -- routing ---------------------------------------------------------------------------
    def choose(self, request: web.Request) -> Backend:
        index = process_of_session(request.query.get("sid", ""))
        if index is not None and index < len(self.backends):
            return self.backends[index]
        turn = next(self._turn)
        # Fewest requests in flight; ties in turn, so idle processes share the work.
        return min(self.backends, key=lambda b: (b.in_flight, (b.index - turn) % len(self.backends)))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        backend = self.choose(request)
        backend.in_flight += 1
        try:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return await self.relay_websocket(request, backend)
            return await self.relay_http(request, backend)
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as error:
            return web.json_response({"error": f"Rasa process {backend.index} did not answer: {error}"}, status=502)
        finally:
            backend.in_flight -= 1

    @staticmethod
    def _headers(headers) -> Dict[str, str]:
        return {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}

    async def relay_http(self, request: web.Request, backend: Backend) -> web.StreamResponse:
        body = await request.read() if request.body_exists else None
        async with self.session.request(request.method, backend.url + request.rel_url.raw_path_qs,
                                        headers=self._headers(request.headers), data=body,
                                        allow_redirects=False) as answer:
            response = web.StreamResponse(status=answer.status, reason=answer.reason,
                                          headers=self._headers(answer.headers))
            if answer.content_length is not None:
                response.content_length = answer.content_length
            await response.prepare(request)
            async for chunk in answer.content.iter_chunked(1 << 16):
                await response.write(chunk)
            await response.write_eof()
            return response

    async def relay_websocket(self, request: web.Request, backend: Backend) -> web.StreamResponse:
        headers = {k: v for k, v in self._headers(request.headers).items()
                   if not k.lower().startswith("sec-websocket")}
        try:
            upstream = await self.session.ws_connect(backend.url + request.rel_url.raw_path_qs, headers=headers,
                                                     autoping=False, max_msg_size=0)
        except aiohttp.WSServerHandshakeError as refused:  # e.g. an unknown session: say so, as Rasa did
            return web.Response(status=refused.status, text=refused.message or "websocket refused")
        client = web.WebSocketResponse(autoping=False, max_msg_size=0)
        await client.prepare(request)

        async def pump(source, sink) -> None:
            async for message in source:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await sink.send_str(message.data)
                elif message.type == aiohttp.WSMsgType.BINARY:
                    await sink.send_bytes(message.data)
                elif message.type == aiohttp.WSMsgType.PING:
                    await sink.ping(message.data)
                elif message.type == aiohttp.WSMsgType.PONG:
                    await sink.pong(message.data)
                else:
                    break

        tasks = [asyncio.ensure_future(pump(client, upstream)), asyncio.ensure_future(pump(upstream, client))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await upstream.close()
            await client.close()
        return client


async def wait_until_up(backends: List[Backend], timeout: float) -> None:
    """Every Rasa process answers (model loaded), or raise with the one that did not."""
    deadline = time.monotonic() + timeout
    waiting = list(backends)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while waiting:
            for backend in list(waiting):
                code = backend.exited()
                if code is not None:
                    raise RuntimeError(f"Rasa process {backend.index} exited with code {code} while starting")
                try:
                    async with session.get(backend.url + "/") as answer:
                        if answer.status == 200:
                            waiting.remove(backend)
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Rasa processes {[b.index for b in waiting]} did not start within {timeout:.0f} s")
            if waiting:
                await asyncio.sleep(0.5)


def stop_all(backends: List[Backend], timeout: float = 10.0) -> None:
    for backend in backends:
        if backend.exited() is None:
            backend.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for backend in backends:
        if backend.popen is None:
            continue
        try:
            backend.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            backend.popen.kill()
            backend.popen.wait()


async def serve(host: str, port: int, backends: List[Backend], start_timeout: float) -> int:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    for backend in backends:
        backend.start()
    up = asyncio.ensure_future(wait_until_up(backends, start_timeout))
    stop_wait = asyncio.ensure_future(stopping.wait())
    await asyncio.wait([up, stop_wait], return_when=asyncio.FIRST_COMPLETED)
    if stopping.is_set():
        up.cancel()
        return 0
    up.result()  # raises when a process failed to start
    front = Front(backends)
    front.session = aiohttp.ClientSession(
        auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        connector=aiohttp.TCPConnector(limit=0, force_close=False))
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", front.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    log(f"serving http://{host}:{port} with {len(backends)} Rasa processes "
        f"(ports {', '.join(str(b.port) for b in backends)})")
    code = 0
    while not stopping.is_set():
        died = [b for b in backends if b.exited() is not None]
        if died:
            log(f"Rasa process {died[0].index} exited with code {died[0].exited()}; stopping")
            code = 1
            break
        try:
            await asyncio.wait_for(stopping.wait(), timeout=0.5)
        except asyncio.TimeoutError:
            pass
    await runner.cleanup()
    await front.session.close()
    return code


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: python -m emobot.front --host H --port P --processes N -- rasa run [options]", file=sys.stderr)
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="python -m emobot.front", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--start-timeout", type=float, default=600.0)
    args = parser.parse_args(argv[:split])
    command = argv[split + 1:]
    if not command or args.processes < 1:
        parser.error("give a Rasa command after -- and at least one process")
    backends = [Backend(i, command, free_port()) for i in range(args.processes)]
    try:
        return asyncio.run(serve(args.host, args.port, backends, args.start_timeout))
    except (RuntimeError, OSError) as error:
        log(str(error))
        return 1
    finally:
        stop_all(backends)


if __name__ == "__main__":
    sys.exit(main())
