"""Drill 10: network faults between one service instance and the broker and the database.

The drill makes a network namespace with a veth pair (iproute2) and starts a third routing
instance in it (run-services.sh's ``routing-ns``, in routing's consumer group), beside the
first. Inside the namespace 127.0.0.1 is the namespace's own: Toxiproxy listens there on the
database's and the broker's ports (the addresses the service is configured with and the
broker advertises) and forwards across the veth to socat on the host side, which reaches the
real ones. Every byte between that instance and Postgres or Kafka thus crosses Toxiproxy,
which the drill tells to add latency with jitter, throttle and stall connections, and then
to cut them off altogether, before healing.

Why Toxiproxy and not ``tc netem``: this machine's kernel has no netem qdisc ("Specified
qdisc kind is unknown"); Toxiproxy gives the same faults at the TCP level (delay, stalls
that end in a timeout, a partition) on the namespace's only path out.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator

import httpx
from prometheus_client.parser import text_string_to_metric_families

from drills.faults import Fault
from drills.stack import DATA_DIR, HTTP_PORTS, KAFKA_PORT, NETNS, PG_PORT, REPO, Stack

TOXIPROXY = REPO / ".data" / "tools" / "toxiproxy-server"
HOST_IP, NS_IP = "10.203.0.1", "10.203.0.2"
HOST_VETH, NS_VETH = "tdrill0", "tdrill1"
SERVICE = "routing"
PORT = HTTP_PORTS[SERVICE] + 20  # run-services.sh: the -ns instance's API
API = f"http://{NS_IP}:8474"
PROXIES = {"postgres": PG_PORT, "kafka": KAFKA_PORT}


def _ip(*args: str, netns: bool = False) -> None:
    prefix = ["ip", "netns", "exec", NETNS] if netns else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True, text=True)


def _make_namespace() -> None:
    _remove_namespace()
    _ip("netns", "add", NETNS)
    _ip("link", "add", HOST_VETH, "type", "veth", "peer", "name", NS_VETH)
    _ip("link", "set", NS_VETH, "netns", NETNS)
    _ip("addr", "add", f"{HOST_IP}/30", "dev", HOST_VETH)
    _ip("link", "set", HOST_VETH, "up")
    _ip("addr", "add", f"{NS_IP}/30", "dev", NS_VETH, netns=True)
    _ip("link", "set", NS_VETH, "up", netns=True)
    _ip("link", "set", "lo", "up", netns=True)


def _remove_namespace() -> None:
    subprocess.run(["ip", "link", "del", HOST_VETH], capture_output=True)
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)


def _spawn(args: list[str], log: str) -> subprocess.Popen[bytes]:
    with open(DATA_DIR / "logs" / log, "ab") as out:
        return subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
        )


def _forwarders() -> list[subprocess.Popen[bytes]]:
    """socat on the host side: the veth address to the real database and broker, and the
    host's 127.0.0.1 to the instance's API inside the namespace."""
    socat = shutil.which("socat") or "socat"
    procs = [
        _spawn(
            [socat, f"TCP-LISTEN:{port},bind={HOST_IP},fork,reuseaddr", f"TCP:127.0.0.1:{port}"],
            f"socat-{name}.log",
        )
        for name, port in PROXIES.items()
    ]
    procs.append(
        _spawn(
            [socat, f"TCP-LISTEN:{PORT},bind=127.0.0.1,fork,reuseaddr", f"TCP:{NS_IP}:{PORT}"],
            "socat-api.log",
        )
    )
    return procs


async def _toxiproxy(client: httpx.AsyncClient) -> subprocess.Popen[bytes]:
    proc = _spawn(
        ["ip", "netns", "exec", NETNS, str(TOXIPROXY), "-host", "0.0.0.0", "-port", "8474"],
        "toxiproxy.log",
    )
    for _ in range(100):
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(f"{API}/version")).status_code == 200:
                break
        await asyncio.sleep(0.1)
    for name, port in PROXIES.items():
        body = {"name": name, "listen": f"127.0.0.1:{port}", "upstream": f"{HOST_IP}:{port}"}
        (await client.post(f"{API}/proxies", json=body)).raise_for_status()
    return proc


@contextlib.asynccontextmanager
async def instance_behind_faulty_network(stack: Stack) -> AsyncIterator[None]:
    """The namespace, its proxies and the routing instance in it, for the drill's length."""
    if not TOXIPROXY.exists():
        raise RuntimeError(f"{TOXIPROXY} missing: `make drills` builds it (go install)")
    await asyncio.to_thread(_make_namespace)
    procs = _forwarders()
    async with httpx.AsyncClient(timeout=5) as client:
        try:
            procs.append(await _toxiproxy(client))
            await asyncio.to_thread(stack.supervisorctl, "start", f"{SERVICE}-ns")
            await _until_ready(client)
            stack.extra_ports.add(PORT)
            yield
        finally:
            stack.extra_ports.discard(PORT)
            await asyncio.to_thread(stack.supervisorctl, "stop", f"{SERVICE}-ns")
            for proc in procs:
                proc.terminate()
            for proc in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            await asyncio.to_thread(_remove_namespace)


async def _until_ready(client: httpx.AsyncClient, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(f"http://127.0.0.1:{PORT}/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{SERVICE}-ns not ready in {timeout:.0f} s (log: {SERVICE}-ns.log)")


async def _toxic(
    client: httpx.AsyncClient, proxy: str, kind: str, toxicity: float = 1.0, **attributes: int
) -> None:
    """The toxic ``kind`` both ways on ``proxy`` (toxicity: the share of connections hit)."""
    for stream in ("downstream", "upstream"):
        body = {
            "name": f"{kind}-{stream}",
            "type": kind,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        (await client.post(f"{API}/proxies/{proxy}/toxics", json=body)).raise_for_status()


async def _enable(client: httpx.AsyncClient, proxy: str, enabled: bool) -> None:
    """A disabled proxy closes its connections and refuses new ones: a partition."""
    (await client.post(f"{API}/proxies/{proxy}", json={"enabled": enabled})).raise_for_status()


async def network_faults(stack: Stack, start: float) -> Fault:
    """15 s of a bad network (latency 150 ms ± 100 ms each way, 64 KB/s, a third of the new
    connections stalled until they time out), then 8 s cut off, then healed."""
    struck = time.monotonic()
    async with httpx.AsyncClient(timeout=5) as client:
        before = await _counts(client)
        for proxy in PROXIES:
            await _toxic(client, proxy, "latency", latency=150, jitter=100)
            await _toxic(client, proxy, "bandwidth", rate=64)
            await _toxic(client, proxy, "timeout", toxicity=0.33, timeout=5000)
        await asyncio.sleep(15)
        partition_at = time.monotonic()
        for proxy in PROXIES:
            (
                await client.post(f"{API}/proxies/{proxy}", json={"enabled": False})
            ).raise_for_status()
        await asyncio.sleep(8)
        for proxy in PROXIES:
            (await client.post(f"{API}/proxies/{proxy}", json={"enabled": True})).raise_for_status()
            for toxic in ("latency", "bandwidth", "timeout"):
                for stream in ("downstream", "upstream"):
                    await client.delete(f"{API}/proxies/{proxy}/toxics/{toxic}-{stream}")
        over = time.monotonic()

    async def evidence(stack: Stack, _: object) -> tuple[list[str], list[str]]:
        async with httpx.AsyncClient(timeout=5) as client:
            after = await _counts(client)
        applied = after["applied"] - before["applied"]
        line = (
            f"   {SERVICE}-ns: applied {applied:.0f} events and retried {after['retries']:.0f} "
            f"transient failures since it started; {before['applied']:.0f} applied before the "
            "network went bad"
        )
        problems = [] if after["applied"] else [f"{SERVICE}-ns applied nothing: it proved nothing"]
        return [line], problems

    return Fault(
        f"{SERVICE}-ns (a routing instance in network namespace {NETNS}, beside the first): "
        f"from +{struck - start:.1f} s its links to Postgres and Kafka got 150 ± 100 ms latency "
        "each way, 64 KB/s and a third of new connections stalled; from "
        f"+{partition_at - start:.1f} s cut off for 8 s; healed at +{over - start:.1f} s",
        struck,
        over,
        evidence=evidence,
    )


async def _counts(client: httpx.AsyncClient) -> dict[str, float]:
    """The -ns instance's own counters: events applied, transient retries."""
    key = (DATA_DIR / "dev-admin-key").read_text().strip()
    response = await client.get(
        f"http://127.0.0.1:{PORT}/metrics", headers={"Authorization": f"Bearer {key}"}
    )
    response.raise_for_status()
    counts = {"applied": 0.0, "retries": 0.0}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            if family.name == "tousu_events_consumed" and sample.labels.get("outcome") == "applied":
                counts["applied"] += sample.value
            elif family.name == "tousu_consumer_transient_retries":
                counts["retries"] += sample.value
    return counts
