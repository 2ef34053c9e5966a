"""A deliberately hostile service for the lab: what a scanner must survive reading.

``python -m leadline.lab.hostile ADDRESS REDIRECT_TO`` listens on ADDRESS:

* 2001: a banner with terminal escape sequences (colour, window title, clear
  screen, a C1 CSI byte, a right-to-left override) and invalid UTF-8;
* 2002: a 10 MB banner, sent as fast as the reader takes it;
* 2003: a banner crafted for backtracking patterns (long runs that almost match);
* 8000: an HTTP server whose every answer is a redirect to REDIRECT_TO
  (another address; a scanner must never follow it), with an escape-laden
  Server header and title.  It sits on a port both tools' HTTP scripts take
  as HTTP by number (http-alt), so -sC's http-title meets the redirect
  whether or not version detection names the service.

Every port answers every connection the same way, so any probe order sees it.
"""

from __future__ import annotations

import asyncio
import sys

__all__ = ["BOMB_BANNER", "ESCAPE_BANNER", "HOSTILE_PORTS", "HUGE_BANNER_SIZE", "redirect_answer", "serve"]

ESCAPE_BANNER = (b"220 \x1b[31mred\x1b[0m \x1b]0;owned\x07 \x1b[2J\x9b6n \xe2\x80\xaeevil \xff\xfe\xc3\x28 ftp\r\n"
                 b"\x1b[1A\x1b[K\x00\r\n")
HUGE_BANNER_SIZE = 10 * 1024 * 1024
# Long runs of the characters broad patterns repeat, each ending just short of a match.
BOMB_BANNER = b"SSH-2.0-" + b"a" * 20000 + b"\t" + b"HTTP/1.1 200 " + b"x" * 20000 + b"\r\n" * 2 + b"220 " + b"." * 30000
HOSTILE_PORTS = {"escapes": 2001, "huge": 2002, "bomb": 2003, "redirect": 8000}


def redirect_answer(target: str) -> bytes:
    body = b"<html><title>\x1b]0;pwn\x07Moved \xc0\xaf</title></html>"
    return (b"HTTP/1.1 301 Moved Permanently\r\nServer: evil\x1b[2J/1.0\r\n"
            b"Location: http://" + target.encode() + b"/\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n" + body)


async def _banner(data: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        writer.write(data)
        await writer.drain()
        await asyncio.wait_for(reader.read(65536), 10)
    except (OSError, asyncio.TimeoutError):
        pass
    finally:
        writer.close()


async def _huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    chunk = b"A" * 65536
    try:
        for _ in range(HUGE_BANNER_SIZE // len(chunk)):
            writer.write(chunk)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def _redirect(target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.write(redirect_answer(target))
        await writer.drain()
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def serve(address: str, redirect_to: str) -> None:
    servers = [
        await asyncio.start_server(lambda r, w: _banner(ESCAPE_BANNER, r, w), address, HOSTILE_PORTS["escapes"]),
        await asyncio.start_server(_huge, address, HOSTILE_PORTS["huge"]),
        await asyncio.start_server(lambda r, w: _banner(BOMB_BANNER, r, w), address, HOSTILE_PORTS["bomb"]),
        await asyncio.start_server(lambda r, w: _redirect(redirect_to, r, w), address, HOSTILE_PORTS["redirect"]),
    ]
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: python -m leadline.lab.hostile ADDRESS REDIRECT_TO", file=sys.stderr)
        sys.exit(2)
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
