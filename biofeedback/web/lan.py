"""This machine's own addresses, for a dashboard bound to every interface (0.0.0.0 or ::).

A dashboard on a clinic LAN is reached by the tablet in the therapy room through one of the
machine's interface addresses or its host name; those must be printed (so someone can type them)
and accepted by the Host check (so they do not get 421). The addresses are read from the kernel
(getifaddrs, else `ip -j addr`): no packet is sent and no name is looked up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import json
import logging
import shutil
import socket
import subprocess
import sys

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


class _Ifaddrs(ctypes.Structure):
    pass


_Ifaddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_Ifaddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.c_void_p),
    ("ifa_netmask", ctypes.c_void_p),
    ("ifa_ifu", ctypes.c_void_p),
    ("ifa_data", ctypes.c_void_p),
]


def _family(raw: bytes) -> int:
    # Linux: sa_family is a native u16 at offset 0; BSD/macOS: sa_len u8, then sa_family u8
    if sys.platform.startswith("linux"):
        return int.from_bytes(raw[:2], sys.byteorder)
    return raw[1]


def addresses_from_getifaddrs() -> list[IPAddress]:
    """Every address of every interface, via the C library's getifaddrs (Linux, BSD, macOS)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    getifaddrs, freeifaddrs = libc.getifaddrs, libc.freeifaddrs
    head = ctypes.POINTER(_Ifaddrs)()
    if getifaddrs(ctypes.byref(head)) != 0:
        raise OSError(ctypes.get_errno(), "getifaddrs failed")
    found: list[IPAddress] = []
    try:
        node = head
        while node:
            entry = node.contents
            if entry.ifa_addr:
                # sockaddr_in: address at offset 4; sockaddr_in6: at offset 8 (both layouts)
                raw = ctypes.string_at(entry.ifa_addr, 24)
                family = _family(raw)
                if family == socket.AF_INET:
                    found.append(ipaddress.IPv4Address(raw[4:8]))
                elif family == socket.AF_INET6:
                    found.append(ipaddress.IPv6Address(raw[8:24]))
            node = entry.ifa_next
    finally:
        freeifaddrs(head)
    return found


def addresses_from_ip_command() -> list[IPAddress]:
    """Every address of every interface, from iproute2's `ip -j addr` (Linux)."""
    ip = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")
    if ip is None:
        raise OSError("the ip command (iproute2) is not installed")
    out = subprocess.run(
        [ip, "-j", "addr", "show"], capture_output=True, text=True, timeout=5, check=True
    ).stdout
    found: list[IPAddress] = []
    for link in json.loads(out):
        for info in link.get("addr_info", []):
            local = info.get("local")
            if isinstance(local, str):
                found.append(ipaddress.ip_address(local))
    return found


def interface_addresses() -> list[IPAddress]:
    """This machine's interface addresses (empty, with a log line, when none can be read)."""
    for source in (addresses_from_getifaddrs, addresses_from_ip_command):
        try:
            return source()
        except (OSError, AttributeError, ValueError, subprocess.SubprocessError) as exc:
            log.debug("cannot list interface addresses with %s: %s", source.__name__, exc)
    log.warning(
        "cannot list this machine's network addresses: add the names the dashboard is reached "
        "by to [web] allowed_hosts"
    )
    return []


def lan_addresses(bind_host: str) -> list[IPAddress]:
    """Addresses others on the network can reach a socket bound to `bind_host` by.

    0.0.0.0 listens on IPv4 only and :: on IPv6 only (asyncio sets IPV6_V6ONLY). Loopback,
    link-local (needs a zone in a URL) and multicast addresses are left out.
    """
    if bind_host not in WILDCARD_HOSTS:
        return []
    version = 6 if bind_host == "::" else 4
    seen: dict[IPAddress, None] = {}
    for addr in interface_addresses():
        if addr.version != version or addr.is_loopback or addr.is_link_local:
            continue
        if addr.is_multicast or addr.is_unspecified:
            continue
        seen.setdefault(addr)
    return list(seen)


def url_host(host: str) -> str:
    """A host for a URL's authority: IPv6 addresses in brackets, the wildcard as loopback."""
    if host in WILDCARD_HOSTS:
        return "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host
    return f"[{addr}]" if addr.version == 6 else str(addr)


def lan_host_names(bind_host: str) -> list[str]:
    """Names and addresses a wildcard-bound dashboard answers to: its LAN addresses and host name.

    The host name comes from the kernel (gethostname), not from DNS.
    """
    if bind_host not in WILDCARD_HOSTS:
        return []
    names = [str(a) for a in lan_addresses(bind_host)]
    hostname = socket.gethostname().strip().lower()
    if hostname and hostname != "localhost":
        names += [hostname, f"{hostname.split('.')[0]}.local"]
    return names
