"""The browser playground served by the mesh at /playground (through Envoy, from the gateway):
plain HTTP checks of what it serves, and headless Chromium (Debian's `chromium`, driven by
Playwright) running a chat and a judge against the simulator and watching them stream in.

The screenshot goes to the test's tmp dir, and to docs/playground.png (the README's) when that is
missing or LLMMESH_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmmesh.launcher.up import Mesh
from tests.playground.browser import WAIT_MS, chromium, run_pattern
from tests.support.mesh import running_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("playground")]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "playground.png"
CHAT_ANSWER = "Sunlight scatters off air molecules, and blue light scatters the most."
JUDGE_REASONING = "Matches the reference exactly."
DEBATE_RATIONALE = "The skeptic weighs the operational cost the optimist leaves out."
COMPARE_PROMPT = "Name the largest planet."
COMPARE_ANSWER = "Jupiter is the largest planet."
RULES = [
    # First: the comparison's jurors quote the prompt, which the answers' rule below matches.
    {"match": "Criterion: helpfulness\n", "response": {"reasoning": "Direct and correct.", "score": 8}},
    {"match": COMPARE_PROMPT, "response": COMPARE_ANSWER},
    {"match": "Why is the sky blue?", "response": CHAT_ANSWER},
    {"match": "Criterion: factual\n", "response": {"reasoning": JUDGE_REASONING, "score": 5}},
    # The debate moderator's structured verdict (collaboration, STRATEGY_DEBATE).
    {"match": "Which answer is best?", "response": {"rationale": DEBATE_RATIONALE, "winner": "skeptic"}},
]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with running_mesh(tmp_path_factory.mktemp("playground"), backend="sim") as mesh:
        resp = httpx.put(f"http://127.0.0.1:{mesh.options.backend_port}/_sim/scripts", json={"rules": RULES},
                         timeout=10)
        resp.raise_for_status()
        yield mesh


# --- plain HTTP --------------------------------------------------------------------------------

EXTERNAL = re.compile(r"""(?:https?:)?//[\w.-]+\.\w|(?:src|href)\s*=\s*["']//|url\(\s*["']?//|@import""", re.I)
REFERENCES = re.compile(r"""(?:src|href)="(/playground/[^"]+)"|from\s+"\./([^"]+)"|import\s+"\./([^"]+)\"""")


def test_playground_is_served_with_every_asset_local(mesh: Mesh) -> None:
    base = f"http://{mesh.ingress}"
    page = httpx.get(f"{base}/playground", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>llmmesh playground</title>" in page.text
    assert httpx.get(f"{base}/playground/", timeout=10).text == page.text
    # Same origin: the page calls the ingress it came from.
    assert '<meta name="llmmesh-api-base" content="">' in page.text

    seen: dict[str, str] = {"/playground": page.text}
    todo = [m for groups in REFERENCES.findall(page.text) for m in groups if m]
    while todo:
        ref = todo.pop()
        path = ref if ref.startswith("/") else f"/playground/{ref}"
        if path in seen:
            continue
        resp = httpx.get(f"{base}{path}", timeout=10)
        assert resp.status_code == 200, path
        expected = {".js": "text/javascript", ".css": "text/css"}[Path(path).suffix]
        assert resp.headers["content-type"].startswith(expected), (path, resp.headers["content-type"])
        seen[path] = resp.text
        todo += [m for groups in REFERENCES.findall(resp.text) for m in groups if m]
    assert {"/playground/app.js", "/playground/sse.js", "/playground/render.js", "/playground/patterns.js",
            "/playground/playground.css"} <= set(seen)
    for path, text in seen.items():
        assert not EXTERNAL.search(text), f"{path} references something outside the mesh: {EXTERNAL.search(text)}"
    assert httpx.get(f"{base}/playground/../settings.py", timeout=10).status_code == 404
    assert httpx.get(f"{base}/playground/nope.js", timeout=10).status_code == 404


# --- headless Chromium ---------------------------------------------------------------------------


def test_chat_and_judge_stream_into_the_page(mesh: Mesh, tmp_path: Path) -> None:
    errors: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://{mesh.ingress}/playground", timeout=WAIT_MS)

        # Models come from GET /api/v1/inference/models; backend health from .../backends.
        page.wait_for_selector("#model[data-loaded=true]", timeout=WAIT_MS)
        models = page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
        assert {"smollm2:135m", "llama3.2:1b"} <= set(models)
        page.wait_for_selector("#backends tr[data-backend=sim]", timeout=WAIT_MS)
        assert "healthy" in page.inner_text("#backends tr[data-backend=sim]")

        # Chat: tokens stream into one block, then the `done` card.
        run_pattern(page, "chat", "done")
        assert page.inner_text("#output [data-testid=tokens]").strip() == CHAT_ANSWER
        done = page.inner_text("#output .event-done")
        assert "smollm2:135m" in done and "sim" in done
        assert page.inner_text("#status").startswith("done after")

        # Judge: reasoning tokens, then the `result` card with the verdict.
        run_pattern(page, "judge", "result")
        assert JUDGE_REASONING in page.inner_text("#output [data-testid=tokens]")
        result = page.inner_text("#output .event-result")
        assert "pass" in result and "5 (1\u20135)" in result and JUDGE_REASONING in result
        assert page.locator("#output [data-testid=terminal]").count() == 1

        page.screenshot(path=str(tmp_path / "playground.png"), full_page=True)
    assert not errors, errors
    assert (tmp_path / "playground.png").stat().st_size > 10_000
    if not SCREENSHOT.exists() or os.environ.get("LLMMESH_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "playground.png", SCREENSHOT)


def test_collaboration_debate_shows_who_won_and_why(mesh: Mesh) -> None:
    errors: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://{mesh.ingress}/playground", timeout=WAIT_MS)
        page.wait_for_selector("#model[data-loaded=true]", timeout=WAIT_MS)
        page.select_option("#pattern", "collaboration")
        page.select_option("#field-strategy", "STRATEGY_DEBATE")
        run_pattern(page, "collaboration", "result")
        result = page.inner_text("#output .event-result")
        facts = dict(zip(page.eval_on_selector_all("#output .event-result dt", "ds => ds.map(d => d.textContent)"),
                         page.eval_on_selector_all("#output .event-result dd", "ds => ds.map(d => d.textContent)"),
                         strict=True))
    assert not errors, errors
    assert "[object Object]" not in result
    assert facts["winner"] == "skeptic" and facts["rationale"] == DEBATE_RATIONALE


# [model, its answer's text] of every answer column.
ANSWER_COLUMNS = "cs => cs.map(c => [c.dataset.model, c.querySelector('.tokens').textContent])"


def test_compare_side_by_side_then_history_opens_and_deletes_it(mesh: Mesh) -> None:
    errors: list[str] = []
    models = ["smollm2:135m", "llama3.2:1b"]
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://{mesh.ingress}/playground", timeout=WAIT_MS)
        page.click("#tabs [data-tab=compare]")
        page.wait_for_selector("#compare-models[data-loaded=true]", timeout=WAIT_MS)
        # The model choices come from GET /api/v1/inference/models.
        for box in page.query_selector_all("#compare-models input"):
            box.set_checked(box.get_attribute("value") in models)
        page.fill("#compare-prompt", COMPARE_PROMPT)
        page.click("#compare-run")
        page.wait_for_selector("#compare-output[data-terminal=result]", timeout=WAIT_MS)
        # One column per model, each holding that model's streamed answer.
        columns = page.eval_on_selector_all("#compare-output .answer-col", ANSWER_COLUMNS)
        ranking = page.eval_on_selector_all(
            "#ranking tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))")
        assert page.inner_text("#compare-status").startswith("result after")

        # History: the comparison is listed first, and opens with its request and answers again.
        page.click("#tabs [data-tab=history]")
        page.wait_for_selector("#history tr[data-pattern=compare]", timeout=WAIT_MS)
        row = page.locator("#history tbody tr").first
        run_id = row.get_attribute("data-run-id")
        listed = row.inner_text()
        row.locator("[data-action=open]").click()
        page.wait_for_selector("#history-run[data-terminal=result]", timeout=WAIT_MS)
        reopened = page.eval_on_selector_all("#history-run .answer-col", ANSWER_COLUMNS)
        request = page.text_content("#history-request")
        reranked = page.eval_on_selector_all("#history-run #ranking tbody tr", "rs => rs.length")

        row.locator("[data-action=delete]").click()
        page.wait_for_selector(f"#history tr[data-run-id='{run_id}']", state="detached", timeout=WAIT_MS)
    assert not errors, errors
    assert sorted(columns) == sorted([m, COMPARE_ANSWER] for m in models)
    assert sorted(r[1] for r in ranking) == sorted(models) and all(r[2] == "0.78" for r in ranking)  # (8-1)/9
    assert "compare (RunStream)" in listed and "succeeded" in listed and "smollm2:135m" in listed
    assert sorted(reopened) == sorted(columns) and reranked == 2
    assert COMPARE_PROMPT in request and '"models"' in request
    assert httpx.get(f"http://{mesh.ingress}/api/v1/runs/{run_id}", timeout=10).status_code == 404
