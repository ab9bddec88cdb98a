"""A dashboard on a clinic LAN: `[web] allowed_hosts` from the config, and 0.0.0.0 / :: binding.

Bound to every interface, the service prints this machine's real LAN URLs and they work: a real
server bound to 0.0.0.0 is reached through a non-loopback address of this machine (the test
skips, saying so, on a machine with loopback only). The addresses the test expects come from
iproute2 (`ip -j addr`), the dashboard's own come from getifaddrs: two independent readings.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest

from biofeedback.config import parse_config
from biofeedback.errors import ConfigError
from biofeedback.service.app import dashboard
from biofeedback.web.auth import COOKIE_NAME
from tests.support import require_binary

SECRET = "therapist-secret-for-lan-tests"


def ip_command_addresses(version: int) -> list[str]:
    """Global (non-loopback, non-link-local) addresses of this machine, as iproute2 lists them."""
    ip = require_binary("ip", "iproute2")
    out = subprocess.run([ip, "-j", "addr", "show"], capture_output=True, text=True, check=True)
    found = []
    for link in json.loads(out.stdout):
        for info in link.get("addr_info", []):
            addr = ipaddress.ip_address(info["local"])
            if addr.version == version and not (addr.is_loopback or addr.is_link_local):
                found.append(str(addr))
    return found


def lan_address(version: int) -> str:
    found = ip_command_addresses(version)
    if not found:
        pytest.skip(f"this machine has no non-loopback IPv{version} address to test LAN access")
    return found[0]


def config_for(host: str, allowed: list[str] | None = None) -> object:
    extra = f"allowed_hosts = {json.dumps(allowed)}\n" if allowed is not None else ""
    cfg = parse_config(f'[web]\nhost = "{host}"\nport = 0\n{extra}', env={})
    return dataclasses.replace(cfg, web=dataclasses.replace(cfg.web, therapist_secret=SECRET))


@asynccontextmanager
async def served(
    cfg: object, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, list[str]]]:
    """The service's own dashboard (no broker), announcing as it would on a terminal."""
    said: list[str] = []
    # an interactive terminal, as when a therapist starts it by hand: the links are printed
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    async with dashboard(cfg, None, said.append, fixed_port=False) as url:  # type: ignore[arg-type]
        yield url, said


def port_of(said: list[str]) -> int:
    m = re.search(r":(\d+)/", "\n".join(said))
    assert m is not None, said
    return int(m[1])


# ---- config ------------------------------------------------------------------------------------


def test_config_file_carries_allowed_hosts() -> None:
    hosts = '["Therapy-Room.local", "192.168.1.20", "[fd00::7]"]'
    cfg = parse_config(f'[web]\nhost = "0.0.0.0"\nallowed_hosts = {hosts}\n', env={})
    assert cfg.web.allowed_hosts == ("therapy-room.local", "192.168.1.20", "fd00::7")
    assert parse_config("", env={}).web.allowed_hosts == ()


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ('"room.local"', "must be a list"),
        ('["room.local:8080"]', "'room.local:8080'"),
        ('["http://room.local"]', "'http://room.local'"),
        ('["room.local/x"]', "'room.local/x'"),
        ('[""]', "''"),
        ("[7]", "7"),
    ],
)
def test_bad_allowed_hosts_are_refused_by_name(value: str, named: str) -> None:
    with pytest.raises(ConfigError, match=r"\[web\]\.allowed_hosts") as info:
        parse_config(f"[web]\nallowed_hosts = {value}\n", env={})
    assert named in str(info.value)


async def test_allowed_hosts_from_config_are_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config_for("127.0.0.1", ["therapy-room.local", "192.0.2.99"])
    async with served(cfg, monkeypatch) as (_url, said):
        port = port_of(said)
        async with aiohttp.ClientSession() as s:
            for host, status in [
                (f"therapy-room.local:{port}", 200),
                (f"THERAPY-ROOM.LOCAL:{port}", 200),
                (f"192.0.2.99:{port}", 200),
                (f"elsewhere.example:{port}", 421),
            ]:
                async with s.get(
                    f"http://127.0.0.1:{port}/healthz", headers={"Host": host}
                ) as resp:
                    assert resp.status == status, host


# ---- binding to every interface --------------------------------------------------------------


async def test_bound_to_all_ipv4_interfaces_prints_and_answers_lan_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    addr = lan_address(4)
    async with served(config_for("0.0.0.0"), monkeypatch) as (_url, said):
        port = port_of(said)
        lan_url = f"http://{addr}:{port}"
        printed = "\n".join(said)
        assert lan_url in printed, printed
        assert "0.0.0.0" not in printed, printed  # an address nobody can browse to
        therapist = re.search(r"therapist dashboard: (\S+)", printed)
        client = re.search(r"client screen: +(\S+)", printed)
        assert therapist is not None, printed
        assert client is not None, printed
        assert therapist[1].startswith(lan_url), printed
        assert client[1].startswith(lan_url), printed
        async with aiohttp.ClientSession() as s:
            # through the LAN address, as the tablet in the room would
            async with s.get(f"{lan_url}/healthz") as resp:
                assert resp.status == 200
            async with s.get(therapist[1], allow_redirects=False) as resp:
                assert resp.status == 303
                assert COOKIE_NAME in resp.cookies
            async with s.get(client[1]) as resp:
                assert resp.status == 200
            # the machine's own name works too; a foreign name still gets 421
            name = socket.gethostname()
            async with s.get(f"{lan_url}/healthz", headers={"Host": f"{name}:{port}"}) as resp:
                assert resp.status == 200, name
            async with s.get(
                f"{lan_url}/healthz", headers={"Host": f"rebind.example:{port}"}
            ) as resp:
                assert resp.status == 421


async def test_bound_to_all_ipv6_interfaces_answers_lan_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6")
    addr = lan_address(6)
    async with served(config_for("::"), monkeypatch) as (_url, said):
        port = port_of(said)
        lan_url = f"http://[{addr}]:{port}"
        assert lan_url in "\n".join(said), said
        async with aiohttp.ClientSession() as s, s.get(f"{lan_url}/healthz") as resp:
            assert resp.status == 200


def test_interface_addresses_agree_with_iproute2() -> None:
    from biofeedback.web.lan import addresses_from_getifaddrs, addresses_from_ip_command

    require_binary("ip", "iproute2")
    assert set(addresses_from_getifaddrs()) == set(addresses_from_ip_command())
