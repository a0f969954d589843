"""A small IMAP4rev1 responder on loopback for the ingest tests: real sockets, real imaplib.

It speaks just enough of RFC 3501 for ``imaplib``: CAPABILITY, STARTTLS, LOGIN, SELECT/EXAMINE,
SEARCH and UID SEARCH (ALL), FETCH and UID FETCH (BODY[] / BODY.PEEK[] / RFC822, or only the
Message-ID header with BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]; with UID), NOOP, LOGOUT; in plain
text, TLS from the start, or upgraded with STARTTLS. Every command it hears is kept in
``commands``, and every message part it sends in ``sent`` as (UID, ``"body"`` or ``"message-id"``),
so a test can see what the client did and what it downloaded.

    with FakeImap({"INBOX": [raw1, raw2]}, user="sam", password="s3cret") as server:
        crm.ingest.imap("127.0.0.1", "sam", "s3cret", port=server.port, security="plain")
"""

from __future__ import annotations

import re
import socketserver
import ssl
import subprocess
import threading
from pathlib import Path


class FakeImap:
    def __init__(
        self,
        folders: dict[str, list[bytes]],
        *,
        user: str,
        password: str,
        tls: ssl.SSLContext | None = None,
        starttls: ssl.SSLContext | None = None,
    ):
        """``tls``: speak TLS from the first byte (port 993 style); ``starttls``: offer STARTTLS."""
        self.folders = folders
        self.tls = tls
        self.starttls = starttls
        self.user = user
        self.password = password
        self.commands: list[str] = []
        self.sent: list[tuple[int, str]] = []
        self.logins = 0
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                if outer.tls is not None:
                    self.request = outer.tls.wrap_socket(self.request, server_side=True)
                    self.rfile, self.wfile = self.request.makefile("rb"), self.request.makefile("wb")
                outer._session(self)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeImap:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- one client's session ---------------------------------------------------------------

    def _session(self, handler) -> None:
        def send(line: bytes | str) -> None:
            # one write a line: a second small one waits for the client's delayed ACK (40 ms)
            handler.wfile.write((line.encode() if isinstance(line, str) else line) + b"\r\n")
            handler.wfile.flush()

        capabilities = "IMAP4rev1 AUTH=PLAIN" + (" STARTTLS" if self.starttls else "")
        send(f"* OK [CAPABILITY {capabilities}] fake server ready")
        authenticated, selected = False, None
        while True:
            try:
                raw = handler.rfile.readline()
            except (OSError, ssl.SSLError):  # a client that gave up on our certificate
                return
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")  # a TLS hello is not text
            tag, _, rest = line.partition(" ")
            verb, _, args = rest.partition(" ")
            verb = verb.upper()
            uid = verb == "UID"
            if uid:
                verb, _, args = args.partition(" ")
                verb = verb.upper()
            self.commands.append(f"{'UID ' if uid else ''}{verb}")
            if verb == "CAPABILITY":
                send(f"* CAPABILITY {capabilities}")
                send(f"{tag} OK CAPABILITY completed")
            elif verb == "STARTTLS" and self.starttls:
                send(f"{tag} OK begin TLS now")
                try:
                    handler.request = self.starttls.wrap_socket(handler.request, server_side=True)
                except (OSError, ssl.SSLError):
                    return
                handler.rfile, handler.wfile = handler.request.makefile("rb"), handler.request.makefile("wb")
                capabilities = "IMAP4rev1 AUTH=PLAIN"
            elif verb == "NOOP":
                send(f"{tag} OK NOOP completed")
            elif verb == "LOGOUT":
                send("* BYE logging out")
                send(f"{tag} OK LOGOUT completed")
                return
            elif verb == "LOGIN":
                user, password = _strings(args)
                if (user, password) == (self.user, self.password):
                    authenticated = True
                    self.logins += 1
                    send(f"{tag} OK LOGIN completed")
                else:
                    send(f"{tag} NO [AUTHENTICATIONFAILED] invalid credentials")
            elif not authenticated:
                send(f"{tag} BAD log in first")
            elif verb in ("SELECT", "EXAMINE"):
                name = _strings(args)[0]
                if name not in self.folders:
                    send(f"{tag} NO [NONEXISTENT] no folder {name}")
                    continue
                selected = name
                send(f"* {len(self.folders[name])} EXISTS")
                send("* 0 RECENT")
                send("* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)")
                send("* OK [UIDVALIDITY 1] UIDs valid")
                mode = "READ-ONLY" if verb == "EXAMINE" else "READ-WRITE"
                send(f"{tag} OK [{mode}] {verb} completed")
            elif selected is None:
                send(f"{tag} BAD select a folder first")
            elif verb == "SEARCH":
                numbers = range(1, len(self.folders[selected]) + 1)
                ids = [_uid(n) for n in numbers] if uid else list(numbers)
                send("* SEARCH " + " ".join(map(str, ids)))
                send(f"{tag} OK SEARCH completed")
            elif verb == "FETCH":
                wanted, _, items = args.partition(" ")
                headers_only = "HEADER.FIELDS (MESSAGE-ID)" in items.upper()
                section = "BODY[HEADER.FIELDS (MESSAGE-ID)]" if headers_only else "BODY[]"
                messages = self.folders[selected]
                answer = bytearray()  # one write for the whole answer, as for a line
                for n in _numbers(wanted, len(messages), by_uid=uid):
                    body = _message_id_lines(messages[n - 1]) if headers_only else messages[n - 1]
                    self.sent.append((_uid(n), "message-id" if headers_only else "body"))
                    answer += f"* {n} FETCH (UID {_uid(n)} {section} {{{len(body)}}}\r\n".encode() + body + b")\r\n"
                send(bytes(answer) + f"{tag} OK FETCH completed".encode())
            else:
                send(f"{tag} BAD unknown command {verb}")


def _uid(n: int) -> int:
    """UIDs that are not the sequence numbers, so mixing them up shows."""
    return 100 + n


def _message_id_lines(raw: bytes) -> bytes:
    """The Message-ID header as the message has it (folded lines included) and the blank line
    ending the header, as RFC 3501 answers HEADER.FIELDS: only the blank line when it has none."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    found = re.search(rb"^message-id:.*(?:\r?\n[ \t].*)*", head, re.IGNORECASE | re.MULTILINE)
    return (found.group(0).rstrip(b"\r\n") + b"\r\n" if found else b"") + b"\r\n"


def _numbers(wanted: str, count: int, by_uid: bool) -> list[int]:
    """Sequence numbers named by a set such as ``1,3:5`` (UIDs when ``by_uid``)."""
    offset = _uid(0) if by_uid else 0
    found = set()
    for part in wanted.split(","):
        low, _, high = part.partition(":")
        low_n = int(low)
        high_n = (10**9 if high == "*" else int(high)) if high else low_n
        found.update(range(max(low_n - offset, 1), min(high_n - offset, count) + 1))
    return sorted(found)


def _strings(args: str) -> list[str]:
    """IMAP atoms and quoted strings (``sam "pa ss\\"word"``)."""
    return [
        q.replace('\\"', '"').replace("\\\\", "\\") if q or not a else a
        for q, a in re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', args)
    ]


def self_signed(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 made with the openssl command: its file (for the client to
    trust) and a server context holding it."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return cert, context
