"""Real brokers for tests: Mosquitto (plain, or TLS + passwords + ACL) and the embedded broker.

Import what you need in a test module:

    from tests.brokers import BrokerHandle, any_broker, mosquitto_plain, mosquitto_secure

`mosquitto_plain()` / `mosquitto_secure(tmp_path)` / `embedded(backend)` are async context
managers yielding a `BrokerHandle`; `settings(protocol=5)` on the handle gives `MqttSettings` with
the right URL, CA file and credentials. The pytest fixtures `mosquitto` (plain Mosquitto),
`secure_mosquitto` (TLS + password + ACL) and `any_broker` (parametrized over plain Mosquitto,
TLS Mosquitto, the embedded broker as the service starts it, and the amqtt in-process fallback)
are defined here too; import them into a test module to use them. Every broker is stopped and its
files removed when the context ends. `sever(link)` cuts a link's connection without DISCONNECT;
`wait_disconnected(link)` waits until a link noticed its broker is gone. `link_name(prefix)`
gives a client id no other link of the run has; `next_message` / `collect_messages` /
`collect_until` read a link.

TLS material (a CA, a server certificate for 127.0.0.1/localhost, a client certificate, and an
unrelated second CA for "bad CA" tests) is generated per test with the `openssl` CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from biofeedback.service.broker import (
    EmbeddedBroker,
    MosquittoProcess,
    MosquittoTls,
    mosquitto_password_line,
)
from biofeedback.service.mqtt import IncomingMessage, MqttLink, MqttSettings
from tests.support import require_binary

# The ACL of config/mosquitto/acl.example, with the roles used by tests. Keep them in step.
ROLE_USERS = ("service", "dashboard", "recorder", "c-7f3a")  # c-7f3a: a client's own app


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """PEM files: CA, server cert/key (SAN 127.0.0.1, localhost), client cert/key, a foreign CA."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path
    stranger_cert: Path  # a client certificate signed by other_ca
    stranger_key: Path


@dataclass(slots=True)
class BrokerHandle:
    """A running broker as tests see it."""

    name: str
    url: str
    protocols: tuple[int, ...]
    process: MosquittoProcess | None = None  # None for amqtt in-process
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    users: dict[str, str] = field(default_factory=dict, repr=False)
    tls: TlsMaterial | None = None

    def settings(self, protocol: int | None = None, **options: Any) -> MqttSettings:
        """MqttSettings for this broker (first supported protocol unless one is given)."""
        proto = protocol if protocol is not None else self.protocols[0]
        options.setdefault("reconnect_min_s", 1)
        options.setdefault("reconnect_max_s", 2)
        options.setdefault("connect_timeout_s", 3.0)
        return MqttSettings.from_url(
            self.url,
            username=options.pop("username", self.username),
            password=options.pop("password", self.password),
            ca_file=options.pop("ca_file", self.ca_file),
            protocol=proto,
            env={},
            **options,
        )


def sever(link: MqttLink) -> None:
    """Cut a link's TCP connection without an MQTT DISCONNECT (what a crash or a pulled cable
    looks like to the broker); the link then reconnects by itself."""
    client = link._client
    assert client is not None, "link is not open"
    sock = client.socket()
    assert sock is not None, "link has no socket"
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


async def wait_disconnected(link: MqttLink, limit_s: float = 30.0) -> None:
    """Wait until the link noticed that its broker went away."""
    async with asyncio.timeout(limit_s):
        await link.wait_disconnected()


class Subscriptions:
    """Counts the subscriptions a link's broker acknowledged (its `subscribe` returned), so a
    test can wait until code it started (a command pump) listens, instead of sleeping a while."""

    def __init__(self, link: MqttLink) -> None:
        self.acked: list[str] = []
        self._changed = asyncio.Event()
        subscribe = link.subscribe

        async def counted(topic_filter: str, qos: int = 1) -> None:
            await subscribe(topic_filter, qos)
            self.acked.append(topic_filter)
            self._changed.set()

        link.subscribe = counted  # type: ignore[method-assign]

    async def wait(self, n: int, limit_s: float = 30.0) -> None:
        """Wait until `n` subscriptions were acknowledged."""
        async with asyncio.timeout(limit_s):
            while len(self.acked) < n:
                self._changed.clear()
                await self._changed.wait()


_names = itertools.count()


def link_name(prefix: str) -> str:
    """A client id no other link of this test run has ("sub-12": a broker drops the older of
    two links with one id)."""
    return f"{prefix}-{next(_names)}"


async def next_message(it: object, wait_s: float = 30.0) -> IncomingMessage:
    """The next message from a link's `messages()` iterator, or TimeoutError after `wait_s`
    (a deadline for a message that must come, generous for a loaded machine)."""
    return await asyncio.wait_for(it.__anext__(), wait_s)  # type: ignore[attr-defined]


async def collect_messages(link: MqttLink, quiet_s: float) -> list[IncomingMessage]:
    """Everything that arrives until nothing came for `quiet_s` seconds."""
    got: list[IncomingMessage] = []
    it = link.messages()
    while True:
        try:
            got.append(await next_message(it, quiet_s))
        except TimeoutError:
            return got


async def collect_until(
    link: MqttLink,
    arrived: Callable[[list[IncomingMessage]], bool],
    quiet_s: float,
    limit_s: float = 30.0,
) -> list[IncomingMessage]:
    """Everything that arrives until `arrived(got)` holds (or `limit_s` passed: the caller's
    asserts then say what is missing), then until nothing more came for `quiet_s` seconds.

    For "these must come, and nothing else": a quiet window alone ends early on a loaded
    machine when the first message is late; here it only looks for extras after the rest came.
    """
    got: list[IncomingMessage] = []
    it = link.messages()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not arrived(got):
        left = deadline - loop.time()
        if left <= 0:
            return got
        try:
            got.append(await next_message(it, left))
        except TimeoutError:
            return got
    return got + await collect_messages(link, quiet_s)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_tls_material(folder: Path) -> TlsMaterial:
    """Generate a throwaway CA, server and client certificates with the openssl CLI."""
    require_binary("openssl", "openssl")
    folder.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_ext = [
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]
    for name in ("ca", "other-ca"):
        _openssl(
            "req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.crt",
            "-days", "2", "-subj", f"/CN=biofeedback test {name}", *ca_ext, cwd=folder,
        )  # fmt: skip
    (folder / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    (folder / "client.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    for name in ("server", "client", "stranger"):
        _openssl(
            "req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={'localhost' if name == 'server' else 'bf-test-' + name}", cwd=folder,
        )  # fmt: skip
        ca = "other-ca" if name == "stranger" else "ca"  # a client cert from a CA nobody trusts
        ext = "client.ext" if name == "stranger" else f"{name}.ext"
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", ext,
            cwd=folder,
        )  # fmt: skip
    for p in folder.glob("*.key"):
        p.chmod(0o600)
    return TlsMaterial(
        ca_cert=folder / "ca.crt",
        server_cert=folder / "server.crt",
        server_key=folder / "server.key",
        client_cert=folder / "client.crt",
        client_key=folder / "client.key",
        other_ca_cert=folder / "other-ca.crt",
        stranger_cert=folder / "stranger.crt",
        stranger_key=folder / "stranger.key",
    )


def write_password_file(path: Path, users: dict[str, str]) -> Path:
    """A Mosquitto password file for `users` (name -> password), hashed like mosquitto_passwd."""
    path.write_text("".join(mosquitto_password_line(u, p) + "\n" for u, p in users.items()))
    path.chmod(0o600)
    return path


def example_acl() -> Path:
    """The repository's example ACL (config/mosquitto/acl.example)."""
    return Path(__file__).resolve().parent.parent / "config" / "mosquitto" / "acl.example"


@contextlib.asynccontextmanager
async def mosquitto_plain(*, persistence: bool = False) -> AsyncIterator[BrokerHandle]:
    """A plain Mosquitto (anonymous, no TLS) on a free loopback port."""
    binary = require_binary("mosquitto", "mosquitto")
    async with MosquittoProcess(binary=binary, persistence=persistence) as proc:
        yield BrokerHandle("mosquitto", proc.url, (5, 311), process=proc)


@contextlib.asynccontextmanager
async def mosquitto_secure(
    folder: Path,
    *,
    acl: Path | None = None,
    require_certificate: bool = False,
    persistence: bool = False,
) -> AsyncIterator[BrokerHandle]:
    """Mosquitto with TLS and passwords (users = ROLE_USERS, random passwords) and an ACL.

    The handle logs in as "service"; `handle.users` holds every user's password.
    """
    binary = require_binary("mosquitto", "mosquitto")
    tls = make_tls_material(folder / "tls")
    users = {u: secrets.token_urlsafe(12) for u in ROLE_USERS}
    pwfile = write_password_file(folder / "passwords", users)
    acl_path = acl if acl is not None else example_acl()
    async with MosquittoProcess(
        binary=binary,
        password_file=str(pwfile),
        acl_file=str(acl_path) if acl_path.is_file() else None,
        tls=MosquittoTls(
            certfile=str(tls.server_cert),
            keyfile=str(tls.server_key),
            cafile=str(tls.ca_cert),
            require_certificate=require_certificate,
        ),
        persistence=persistence,
        workdir=folder / "mosquitto",
    ) as proc:
        yield BrokerHandle(
            "mosquitto-tls",
            proc.url,
            (5, 311),
            process=proc,
            username="service",
            password=users["service"],
            ca_file=str(tls.ca_cert),
            users=users,
            tls=tls,
        )


@contextlib.asynccontextmanager
async def embedded(backend: str = "auto", *, acl: bool = False) -> AsyncIterator[BrokerHandle]:
    """The embedded broker (auto = managed Mosquitto when installed, else amqtt).

    It refuses anonymous clients: the handle logs in as its `service` user, and `handle.users`
    holds every role's password. `acl=False` (the default here) lets those users use any topic,
    for tests of MQTT itself; `acl=True` is the broker exactly as the service runs it.
    """
    if backend == "mosquitto":
        require_binary("mosquitto", "mosquitto")
    async with EmbeddedBroker(backend=backend, acl=acl) as b:  # type: ignore[arg-type]
        yield BrokerHandle(
            f"embedded-{b.backend}",
            b.url,
            b.protocols,
            process=b.process,
            username=b.logins.service.username,
            password=b.logins.service.password,
            users={login.username: login.password for login in b.logins.all()},
        )


@pytest.fixture
async def mosquitto() -> AsyncIterator[BrokerHandle]:
    """Plain Mosquitto for one test."""
    async with mosquitto_plain() as handle:
        yield handle


@pytest.fixture
async def secure_mosquitto(tmp_path: Path) -> AsyncIterator[BrokerHandle]:
    """Mosquitto with TLS, passwords and the example ACL for one test."""
    (tmp_path / "broker").mkdir()
    async with mosquitto_secure(tmp_path / "broker") as handle:
        yield handle


@pytest.fixture(params=["mosquitto", "mosquitto-tls", "embedded", "embedded-amqtt"])
async def any_broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BrokerHandle]:
    """Each broker the service must work with, in turn (conformance tests)."""
    kind = request.param
    if kind == "mosquitto":
        async with mosquitto_plain() as handle:
            yield handle
    elif kind == "mosquitto-tls":
        # No ACL here: conformance tests use free-form topics; the ACL has its own tests.
        async with mosquitto_secure(tmp_path, acl=tmp_path / "no-acl") as handle:
            yield handle
    elif kind == "embedded":
        # the single-machine default as the service starts it (managed Mosquitto here), but
        # without its topic ACL: conformance tests use free-form topics (the ACL has its own
        # tests in tests/service/test_broker_access.py). "auto" quietly picks amqtt where
        # Mosquitto is missing, which embedded-amqtt covers: here it must be Mosquitto.
        require_binary("mosquitto", "mosquitto")
        async with embedded("auto") as handle:
            assert handle.name == "embedded-mosquitto", handle.name
            yield handle
    else:
        async with embedded("amqtt") as handle:
            yield handle
