"""The README's "Use it" examples, run as written against one live simulator mesh (ports substituted).

Every ```bash block of the section (grpcurl, curl, curl -sN, the `llmmesh` CLI) is split into
commands, and every ```python block (the SDK, sync and async) runs in its own interpreter; each
must succeed and answer something that is not an error. The OpenAI SDK's python block is the one
exception: tests/gateway/test_openai_sdk.py runs it (against its own scripted mesh).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llmmesh.launcher.up import Mesh
from llmmesh_client import DEFAULT_TARGET
from tests.support.mesh import running_mesh

pytestmark = pytest.mark.xdist_group("readme")

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_TARGET = "localhost:8080"
# A command the README marks so (`llmmesh chat`) waits for a human at a prompt: not run here.
INTERACTIVE = "# interactive"
# Run elsewhere, by the test that knows what it should print.
OPENAI_SECTION = "### Use it from an OpenAI SDK"
OPENAI_TEST = ROOT / "tests" / "gateway" / "test_openai_sdk.py"

@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    subsection: str  # the "### …" heading above it, "" before the first


def use_it_section() -> str:
    text = README.read_text()
    start = re.search(r"^## Use it\b.*$", text, re.M)
    assert start, "README has no '## Use it' section"
    end = re.search(r"^## ", text[start.end():], re.M)
    return text[start.end(): start.end() + end.start() if end else len(text)]


def use_it_blocks() -> list[Block]:
    blocks, subsection = [], ""
    for part in re.split(r"^(### .*)$", use_it_section(), flags=re.M):
        if part.startswith("### "):
            subsection = part.strip()
            continue
        blocks += [Block(lang, code, subsection) for lang, code in re.findall(r"```(\w*)\n(.*?)```", part, re.S)]
    return blocks


def shell_commands() -> list[str]:
    """Commands of the bash blocks, continuation lines joined, comment lines dropped."""
    commands = []
    for block in use_it_blocks():
        if block.lang == "bash":
            joined = block.code.replace("\\\n", " ")
            commands += [" ".join(ln.split()) for ln in joined.splitlines()
                         if ln.strip() and not ln.strip().startswith("#")]
    return commands


def runnable_commands() -> list[str]:
    return [c for c in shell_commands() if INTERACTIVE not in c]


def python_blocks() -> list[Block]:
    return [b for b in use_it_blocks() if b.lang == "python" and b.subsection != OPENAI_SECTION]


def _id(text: str) -> str:
    return re.sub(r"\s+", " ", text)[:90]


# --- what the README must show -------------------------------------------------------------------

PATTERNS = {  # pattern: (gRPC unary method, REST unary route, REST stream route)
    "judge": ("llmmesh.judge.v1.JudgeService/Evaluate", "/api/v1/judge/evaluate", "/api/v1/judge/evaluate:stream"),
    "jury": ("llmmesh.jury.v1.JuryService/Evaluate", "/api/v1/jury/evaluate", "/api/v1/jury/evaluate:stream"),
    "tool use": ("llmmesh.tooluse.v1.ToolUseService/Execute", "/api/v1/tool-use/execute",
                 "/api/v1/tool-use/execute:stream"),
    "plan-and-execute": ("llmmesh.planexecute.v1.PlanExecuteService/Run", "/api/v1/plan-execute/run",
                         "/api/v1/plan-execute/run:stream"),
    "reflection": ("llmmesh.reflection.v1.ReflectionService/Improve", "/api/v1/reflection/improve",
                   "/api/v1/reflection/improve:stream"),
    "collaboration": ("llmmesh.collaboration.v1.CollaborationService/Run", "/api/v1/collaborate/run",
                      "/api/v1/collaborate/run:stream"),
}


def test_the_section_names_every_way_in() -> None:
    headings = re.findall(r"^### (.*)$", use_it_section(), re.M)
    for way in ("grpcurl and curl", "Python", "the command line", "an OpenAI SDK", "a browser"):
        assert any(h.startswith(f"Use it from {way}") for h in headings), (way, headings)


def test_readme_has_examples_for_each_kind() -> None:
    commands = shell_commands()
    assert any(c.startswith("grpcurl") and " list" in c for c in commands)
    assert any(c.startswith("grpcurl") and " describe " in c for c in commands)
    assert any(c.startswith("curl -sN") for c in commands)  # SSE


@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_pattern_has_grpcurl_rest_and_sse_examples(pattern: str) -> None:
    method, route, stream_route = PATTERNS[pattern]
    commands = shell_commands()
    assert any(c.startswith("grpcurl ") and c.endswith(f" {method}") for c in commands), method
    assert any(c.startswith("curl -s ") and f"{route} " in c for c in commands), route
    sse = [c for c in commands if c.startswith("curl -sN ") and f"{stream_route} " in c]
    assert sse and all("-d '[" in c for c in sse), f"{stream_route}: bidi over REST takes a JSON array"


def test_the_judge_curl_example_is_the_legacy_body() -> None:
    bodies = [json.loads(re.search(r"-d '(.*)'", c).group(1)) for c in shell_commands()
              if c.startswith("curl -s ") and "/api/v1/judge/evaluate " in c]
    assert any(set(b) == {"question", "answer", "contexts", "ground_truth", "judge_type"}
               and b["judge_type"] == "factual" and isinstance(b["contexts"], list) for b in bodies), bodies


def test_the_python_and_cli_subsections_cover_the_sdk_and_the_commands() -> None:
    code = "\n".join(b.code for b in python_blocks())
    for needle in ("LlmMesh(", "AsyncLlmMesh(", "inference.generate(", "judge.evaluate(", "field_violations"):
        assert needle in code, needle
    cli = [c.split()[1:] for c in shell_commands() if c.startswith("llmmesh ")]
    words = {w for c in cli for w in c}
    assert {"models", "generate", "chat", "judge", "jury", "plan", "--juror"} <= words, words
    # The examples rely on the CLI's default target being the examples' one.
    assert DEFAULT_TARGET == README_TARGET


def test_only_interactive_commands_are_left_out() -> None:
    skipped = [c for c in shell_commands() if INTERACTIVE in c]
    assert skipped and all(c.startswith("llmmesh chat") for c in skipped), skipped


def test_the_openai_python_example_is_run_by_the_gateway_tests() -> None:
    assert [b for b in use_it_blocks() if b.lang == "python" and b.subsection == OPENAI_SECTION]
    assert OPENAI_SECTION in OPENAI_TEST.read_text()


# --- running them --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    # As ./scripts/up --backend sim runs it: the simulator's demo scripts are loaded.
    with running_mesh(tmp_path_factory.mktemp("readme"), backend="sim") as m:
        yield m


def example_env(mesh: Mesh) -> dict[str, str]:
    # The CLI reaches the mesh through its default target, which the README leaves implicit.
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "LLMMESH_TARGET": mesh.ingress}


def json_documents(text: str) -> list[Any] | None:
    """The JSON values `text` consists of (grpcurl prints one per stream message), or None."""
    decoder, docs, pos = json.JSONDecoder(), [], 0
    text = text.strip()
    while pos < len(text):
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return None
        docs.append(value)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return docs


def is_error(doc: Any) -> bool:
    """A google.rpc.Status (REST), a stream's `error` event, or an OpenAI error body."""
    return isinstance(doc, dict) and ("error" in doc or ("code" in doc and "message" in doc))


@pytest.mark.parametrize("command", runnable_commands(), ids=_id)
def test_readme_command_runs_against_the_mesh(mesh: Mesh, command: str) -> None:
    env = example_env(mesh)
    command = command.replace(README_TARGET, mesh.ingress)
    if command.startswith("llmmesh ") and not shutil.which("llmmesh", path=env["PATH"]):
        command = f"{sys.executable} -m llmmesh_client.cli {command.removeprefix('llmmesh ')}"
    result = subprocess.run(command, shell=True, capture_output=True, text=True, env=env, timeout=120)
    out = result.stdout
    assert result.returncode == 0, f"{command}\n{out}\n{result.stderr}"
    assert out.strip(), f"{command} printed nothing\n{result.stderr}"
    if command.startswith("curl -sN"):
        assert out.startswith("data: "), f"{command} answered no event stream:\n{out}"
        events = [json.loads(ln.removeprefix("data: ")) for ln in out.splitlines() if ln.startswith("data: ")]
        assert not any(is_error(e) for e in events), f"{command} streamed an error:\n{out}"
        assert {"done", "result"} & set(events[-1]), f"{command} did not end with done/result:\n{out}"
        return
    docs = json_documents(out)
    if docs is not None:  # curl and grpcurl calls; listings, describe and the CLI print text
        assert all(docs) and not any(is_error(d) for d in docs), f"{command} answered an error:\n{out}"


@pytest.mark.parametrize("block", python_blocks(), ids=lambda b: _id(b.code.strip().splitlines()[0]))
def test_readme_python_block_runs_against_the_mesh(mesh: Mesh, block: Block, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.code.replace(README_TARGET, mesh.ingress))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                            env=example_env(mesh), timeout=120)
    out = result.stdout
    assert result.returncode == 0, f"{block.code}\n{out}\n{result.stderr}"
    assert len(out.split()) > 5, f"{block.code} printed too little:\n{out}\n{result.stderr}"
    assert "jury failed:" not in out, out  # the async block's `except LlmMeshError` branch
    if "except InvalidArgumentError" in block.code:
        # The error-handling example reaches its except branch: one line per bad field.
        assert re.search(r"^answer: ", out, re.M) and re.search(r"^judge_type: ", out, re.M), out
