"""uvicorn's httptools protocol with the ASGI "zero copy send" extension, done with splice(2).

A download through the appliance would otherwise copy every byte twice in this process: from
the store's socket into Python, and from Python into the client's socket. On a small machine
that copy is what makes a relayed download slower than reading the store directly. With
splice the kernel moves the pages from one socket to the other through a pipe, and this
process only counts bytes.

The extension is the one the ASGI spec defines
(https://asgi.readthedocs.io/en/latest/extensions.html#zero-copy-send):

    {"type": "http.response.zerocopysend", "file": <object with fileno()>,
     "offset": <int, files only>, "count": <int>, "more_body": <bool>}

advertised as scope["extensions"]["http.response.zerocopysend"] on plain-HTTP connections of
Linux hosts (a TLS connection has to encrypt in user space, so it is not offered there).
"file" may be a regular file or a socket; `count` is required for a socket. An application
checks for the key and otherwise sends the bytes itself.

Started with `uvicorn --http bml_site.zero_copy_http:ZeroCopyHttpToolsProtocol`.
"""

import asyncio
import fcntl
import os
import select
import stat
import threading
import time

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

ZERO_COPY_SEND = "http.response.zerocopysend"
PIPE_SIZE = 1024 * 1024
# A send that moves nothing this long ends (a stalled source would otherwise hold a thread
# forever); long enough for a client to pause a download and go on.
IDLE_SECONDS = 300.0
SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

AVAILABLE = hasattr(os, "splice")


class ClientDisconnected(Exception):
    pass


def splice_all(src_fd: int, dst_fd: int, count: int, offset: int | None, stop: threading.Event):
    """Move `count` bytes from src_fd to the socket dst_fd through a pipe. Blocking; meant
    for a thread of its own. Waits with poll(), which never disturbs the event loop's epoll
    registration of the same socket."""
    read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        try:
            room = fcntl.fcntl(write_end, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:  # an unprivileged process may be capped lower; the default works
            room = 64 * 1024
        in_pipe = 0
        last_move = time.monotonic()
        while count or in_pipe:
            if stop.is_set():
                raise ClientDisconnected()
            moved = False
            if count and in_pipe < room:
                try:
                    n = os.splice(
                        src_fd, write_end, min(count, room - in_pipe), offset, None, SPLICE_FLAGS
                    )
                except BlockingIOError:
                    n = None
                if n == 0:
                    raise ConnectionError("the source ended before the promised length")
                if n:
                    count -= n
                    in_pipe += n
                    offset = offset + n if offset is not None else None
                    moved = True
            if in_pipe:
                try:
                    n = os.splice(read_end, dst_fd, in_pipe, None, None, SPLICE_FLAGS)
                except BlockingIOError:
                    n = 0
                except (BrokenPipeError, ConnectionResetError) as exc:
                    raise ClientDisconnected() from exc
                in_pipe -= n
                moved = moved or n > 0
            if moved:
                last_move = time.monotonic()
            elif time.monotonic() - last_move > IDLE_SECONDS:
                raise TimeoutError(f"nothing moved for {IDLE_SECONDS:g} s")
            else:
                # Wait for a side that can move something: the source only while the pipe
                # has room (a readable source and a full pipe would spin), the client only
                # while the pipe holds bytes for it.
                waiting = select.poll()
                if count and in_pipe < room:
                    waiting.register(src_fd, select.POLLIN)
                if in_pipe:
                    waiting.register(dst_fd, select.POLLOUT)
                waiting.poll(500)
    finally:
        os.close(read_end)
        os.close(write_end)


class ZeroCopyCycle(RequestResponseCycle):
    async def send(self, message) -> None:
        if message["type"] != ZERO_COPY_SEND:
            return await super().send(message)
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started or self.response_complete or self.chunked_encoding:
            raise RuntimeError("zero copy send needs a started response with a Content-Length")
        source = message["file"]
        offset = message.get("offset")
        count = message.get("count")
        if count is None:
            if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                raise RuntimeError("zero copy send from a socket or pipe needs a count")
            count = os.fstat(source.fileno()).st_size - (offset or 0)
        if self.scope["method"] == "HEAD":
            count = 0
        elif count > self.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        if count:
            # What the transport still holds (the head) must reach the socket first.
            while self.transport.get_write_buffer_size() and not self.disconnected:
                await asyncio.sleep(0.001)
            client = self.transport.get_extra_info("socket")
            if self.disconnected or client is None or self.transport.is_closing():
                self.disconnected = True
                return
            try:
                await _in_thread(source.fileno(), client.fileno(), count, offset)
            except ClientDisconnected:
                self.disconnected = True
                self.transport.close()
                return
            self.expected_content_length -= count
        if not message.get("more_body", False):
            await super().send({"type": "http.response.body", "body": b"", "more_body": False})


async def _in_thread(src_fd: int, dst_fd: int, count: int, offset: int | None):
    """splice_all in a thread of its own (not the shared executor, whose few workers would
    make concurrent downloads queue), awaited without blocking the loop."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    stop = threading.Event()
    # The thread works on duplicates of its own: the server closes the client's descriptor
    # as soon as it sees the connection go, and a number closed under the thread could be
    # reused by the next connection, which would then receive this response's bytes.
    src_fd, dst_fd = os.dup(src_fd), os.dup(dst_fd)

    def run():
        try:
            splice_all(src_fd, dst_fd, count, offset, stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            loop.call_soon_threadsafe(_settle, done, exc)
        else:
            loop.call_soon_threadsafe(_settle, done, None)
        finally:
            os.close(src_fd)
            os.close(dst_fd)

    threading.Thread(target=run, name="zero-copy-send", daemon=True).start()
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        stop.set()  # the thread notices within one poll; the fds stay open until then
        await asyncio.wait([done])
        raise


def _settle(future: asyncio.Future, exc: BaseException | None):
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)


class ZeroCopyHttpToolsProtocol(HttpToolsProtocol):
    def _start_asgi_task(self, cycle, app) -> None:
        if AVAILABLE and self.transport.get_extra_info("sslcontext") is None:
            cycle.__class__ = ZeroCopyCycle  # created by the parent's on_headers_complete
            cycle.scope.setdefault("extensions", {})[ZERO_COPY_SEND] = {}
        super()._start_asgi_task(cycle, app)
