"""The playground against a mesh with API keys on, from its own origin and from another one.

The mesh runs as `./scripts/up --api-keys …` runs it (its ingress allows no cross-origin access,
the default). A second Envoy, rendered by the same topology code with `cors_origins` set to the
playground's origin (http://127.0.0.1:<ingress>), fronts the same services: that is the API on
another origin. The same page loaded as http://localhost:<ingress> is an origin it does not allow.

In headless Chromium: without a key the calls fail with a visible 401; with the key (typed into the
page, kept in sessionStorage only, sent only to the API as `Authorization: Bearer`) a judge run
succeeds, same-origin and cross-origin; from the other origin the browser refuses the answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Request

from llmmesh.launcher.up import Mesh
from llmmesh.topology.description import Shape
from llmmesh.topology.presets import local_params
from llmmesh.topology.render import render_yaml
from tests.playground.browser import WAIT_MS, chromium, run_pattern
from tests.support.envoy_proc import EnvoyProcess, start_envoy
from tests.support.keys import KeySpec, write_keys
from tests.support.mesh import running_mesh
from tests.support.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("playground")]

JUDGE_REASONING = "Matches the reference exactly."
RULES = [{"match": "Criterion: factual\n", "response": {"reasoning": JUDGE_REASONING, "score": 5}}]
TIMEOUT = 30


@dataclass
class Secured:
    mesh: Mesh
    cors_envoy: EnvoyProcess
    cors_port: int
    keys: dict[str, str]

    @property
    def page_origin(self) -> str:
        """The playground's own origin, the one the CORS Envoy allows."""
        return f"http://127.0.0.1:{self.mesh.options.ingress_port}"

    @property
    def other_origin(self) -> str:
        """The same page under another name: an origin nobody allowed."""
        return f"http://localhost:{self.mesh.options.ingress_port}"

    @property
    def cors_api(self) -> str:
        return f"http://127.0.0.1:{self.cors_port}"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    work = Path(tmp_path_factory.mktemp("playground-secured"))
    keys = write_keys(work / "keys.json", admin=KeySpec(("*",)), jury_only=KeySpec(("jury",)))
    with running_mesh(work / "state", backend="sim", api_keys_file=work / "keys.json") as mesh:
        httpx.put(f"http://127.0.0.1:{mesh.options.backend_port}/_sim/scripts", json={"rules": RULES},
                  timeout=10).raise_for_status()
        origin = f"http://127.0.0.1:{mesh.options.ingress_port}"
        port = free_port()
        params = dataclasses.replace(
            local_params(Shape.MONOLITH, monolith_port=mesh.options.grpc_port, gateway_port=mesh.gateway_port,
                         ingress_port=port, admin_port=free_port(), egress_port=free_port()),
            cors_origins=(origin,))
        config = work / "cors-envoy.yaml"
        config.write_text(render_yaml(params))
        with start_envoy(config, log_dir=work / "cors-envoy") as envoy:
            envoy.wait_healthy("svc_inference", "http_gateway", timeout=30)
            yield Secured(mesh, envoy, port, keys)


# --- the CORS policy, as a browser's requests meet it ----------------------------------------------


def preflight(url: str, origin: str, method: str = "POST") -> httpx.Response:
    return httpx.options(url, timeout=TIMEOUT, headers={
        "origin": origin, "access-control-request-method": method,
        "access-control-request-headers": "authorization,content-type"})


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_cross_origin_access_only_for_the_configured_origin(secured: Secured) -> None:
    api, allowed, other = secured.cors_api, secured.page_origin, secured.other_origin
    # REST, SSE and the OpenAI front door: the preflight is answered for the configured origin.
    for path, method in [("/api/v1/judge/evaluate:stream", "POST"), ("/api/v1/inference/models", "GET"),
                         ("/v1/chat/completions", "POST"), ("/v1/models", "GET")]:
        ok = preflight(api + path, allowed, method)
        assert ok.status_code == 200, (path, ok.status_code, ok.text)
        assert ok.headers["access-control-allow-origin"] == allowed, path
        assert "authorization" in ok.headers["access-control-allow-headers"], path
        assert method in ok.headers["access-control-allow-methods"], path
        assert "access-control-allow-credentials" not in ok.headers  # the key is the only credential
        refused = preflight(api + path, other, method)
        assert "access-control-allow-origin" not in refused.headers, path
    # The answers themselves carry the header, a 401 included (the page must be able to read it).
    models = f"{api}/api/v1/inference/models"
    unauthenticated = httpx.get(models, headers={"origin": allowed}, timeout=TIMEOUT)
    assert unauthenticated.status_code == 401 and unauthenticated.json()["code"] == 16
    assert unauthenticated.headers["access-control-allow-origin"] == allowed
    ok = httpx.get(models, headers={"origin": allowed, **bearer(secured.keys["admin"])}, timeout=TIMEOUT)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == allowed
    assert "x-request-id" in ok.headers["access-control-expose-headers"]
    openai = httpx.get(f"{api}/v1/models", headers={"origin": allowed, **bearer(secured.keys["admin"])},
                       timeout=TIMEOUT)
    assert openai.status_code == 200 and openai.headers["access-control-allow-origin"] == allowed
    elsewhere = httpx.get(models, headers={"origin": other, **bearer(secured.keys["admin"])}, timeout=TIMEOUT)
    assert "access-control-allow-origin" not in elsewhere.headers
    # The mesh's own ingress was rendered without origins: no cross-origin access at all.
    default = preflight(f"http://{secured.mesh.ingress}/api/v1/judge/evaluate:stream", allowed)
    assert "access-control-allow-origin" not in default.headers


# --- the page, in Chromium -------------------------------------------------------------------------


def record_requests(page: Page) -> list[Request]:
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request))
    return seen


def storage(page: Page) -> tuple[dict[str, str], dict[str, str]]:
    """(sessionStorage, localStorage) of the page's origin."""
    return (page.evaluate("() => ({...sessionStorage})"), page.evaluate("() => ({...localStorage})"))


def test_without_a_key_the_page_shows_401_and_with_it_a_judge_run_succeeds(secured: Secured) -> None:
    key = secured.keys["admin"]
    errors: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        requests = record_requests(page)
        page.goto(f"{secured.page_origin}/playground", timeout=WAIT_MS)

        # No key: the model list and the backends say 401, and so does a run, with what to do.
        page.wait_for_function("() => document.querySelector('#connection-status').textContent.includes('401')",
                               timeout=WAIT_MS)
        assert "HTTP 401" in page.inner_text("#model")
        page.wait_for_selector("#backends td.bad-text", timeout=WAIT_MS)
        assert "HTTP 401" in page.inner_text("#backends")
        run_pattern(page, "judge", "error")
        error = page.inner_text("#output .event-error")
        assert "UNAUTHENTICATED" in error and "HTTP 401" in error and "missing API key" in error
        assert "API key" in page.inner_text("#output [data-testid=error-hint]")
        assert page.inner_text("#status").startswith("failed: HTTP 401")

        # A key without the judge's scope: 403, said as plainly.
        page.fill("#api-key", secured.keys["jury_only"])
        run_pattern(page, "judge", "error")
        error = page.inner_text("#output .event-error")
        assert "PERMISSION_DENIED" in error and "HTTP 403" in error
        assert page.inner_text("#status").startswith("failed: HTTP 403")

        # The admin key: models load, the judge runs to its result.
        page.fill("#api-key", key)
        page.wait_for_selector("#model[data-loaded=true]", timeout=WAIT_MS)
        run_pattern(page, "judge", "result")
        assert "pass" in page.inner_text("#output .event-result")
        assert JUDGE_REASONING in page.inner_text("#output .event-result")

        # The key is this tab's alone, and reached nothing but the API, as a bearer token.
        session, local = storage(page)
        assert session.get("llmmesh.apiKey") == key and local == {}
        with_key = [r for r in requests if r.headers.get("authorization")]
        assert {r.headers["authorization"] for r in with_key} == {f"Bearer {k}" for k in secured.keys.values()}
        assert all(urlsplit(r.url).path.startswith("/api/") for r in with_key), [r.url for r in with_key]
        assert not any(key in r.url or key in (r.post_data or "") for r in requests)
        assert not any(r.headers.get("authorization") for r in requests if "/playground" in r.url)
    assert not errors, errors


def test_cross_origin_api_from_an_allowed_origin_works_and_from_another_is_refused(secured: Secured) -> None:
    key = secured.keys["admin"]
    errors: list[str] = []
    with chromium() as browser:
        # The allowed origin: the page's API base is the CORS Envoy, another origin.
        page = browser.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        requests = record_requests(page)
        page.goto(f"{secured.page_origin}/playground", timeout=WAIT_MS)
        page.fill("#api-base", secured.cors_api)
        page.fill("#api-key", key)
        page.wait_for_selector("#model[data-loaded=true]", timeout=WAIT_MS)
        run_pattern(page, "judge", "result")
        assert "pass" in page.inner_text("#output .event-result")
        judged = [r for r in requests if r.url.endswith("/api/v1/judge/evaluate:stream") and r.method == "POST"]
        assert [urlsplit(r.url).netloc for r in judged] == [urlsplit(secured.cors_api).netloc]
        assert storage(page)[0].get("llmmesh.apiBase") == secured.cors_api

        # Another origin (a fresh tab: nothing stored): the browser refuses every answer.
        other = browser.new_page()
        other.on("pageerror", lambda exc: errors.append(str(exc)))
        failed: list[Request] = []
        other.on("requestfailed", lambda request: failed.append(request))
        other.goto(f"{secured.other_origin}/playground", timeout=WAIT_MS)
        assert storage(other) == ({}, {})
        other.fill("#api-base", secured.cors_api)
        other.fill("#api-key", key)
        run_pattern(other, "judge", "error")
        error = other.inner_text("#output .event-error")
        assert "CORS policy does not allow this page's origin" in error and secured.other_origin in error
        assert other.inner_text("#status") == "failed"
        assert any(r.url.endswith("/api/v1/judge/evaluate:stream") for r in failed)
        # The backend list, reloaded from the new base, says the same.
        other.wait_for_function("() => document.querySelector('#backends').textContent.includes('CORS policy')",
                                timeout=WAIT_MS)
    assert not errors, errors
