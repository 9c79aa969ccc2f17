"""API keys, quotas and the `llmmesh-keys` CLI as units: the key file is checked strictly, keys are
compared as hashes, scopes and the service identity's delegation hold, and the token buckets
admit, refuse (with the wait in RetryInfo) and refill on a fake clock."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from google.rpc import error_details_pb2

from llmmesh.common.priority import Priority
from llmmesh.framework import keyfile
from llmmesh.framework.auth import ON_BEHALF_OF, SERVICE_PRINCIPAL, ApiKeyAuthenticator, hash_key
from llmmesh.framework.errors import PermissionDenied, Unauthenticated, to_status
from llmmesh.framework.principal import KeyLimits, Principal
from llmmesh.framework.quotas import QuotaExceeded, Quotas
from llmmesh.framework.shared_state import LocalState
from llmmesh.launcher.up import parse_args
from llmmesh.topology.description import SERVICES
from tests.support.keys import KeySpec, write_keys

pytestmark = pytest.mark.xdist_group("security_unit")

NAMES = {s.grpc_service: s.name for s in SERVICES}
JUDGE, INFERENCE = "llmmesh.judge.v1.JudgeService", "llmmesh.inference.v1.InferenceService"
SERVICE_KEY = "internal-service-key-0123456789"


def entry(**overrides) -> dict:
    return {"name": "ci", "sha256": hash_key("k"), "scopes": ["judge"], **overrides}


@pytest.mark.parametrize("bad, message", [
    ({"scopes": ["judgee"]}, "unknown ['judgee']"),
    ({"sha256": "abc"}, "SHA-256 hex digest"),
    ({"name": ""}, "name must be"),
    ({"name": "a b"}, "name must be"),
    ({"scopes": "judge"}, "list of service names"),
    ({"limits": {"requests_per_second": 0}}, "must be > 0"),
    ({"limits": {"requests_per_second": True}}, "must be a number"),
    ({"limits": {"tokens_per_day": 1.5}}, "whole number"),
    ({"limits": {"burst": 3}}, "burst needs requests_per_second"),
    ({"limits": {"rps": 3}}, "unknown fields ['rps']"),
    ({"admin": True}, "unknown fields ['admin']"),
    ({"weight": 0}, "weight must be a number in"),
    ({"weight": "2"}, "weight must be a number in"),
    ({"max_priority": "urgent"}, "max_priority must be one of ['interactive', 'batch']"),
])
def test_the_key_file_is_checked_strictly(bad: dict, message: str) -> None:
    with pytest.raises(keyfile.KeyFileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        keyfile.parse({"keys": [entry(**bad)]})


def test_admission_weight_and_class_are_optional_per_key() -> None:
    (old,) = keyfile.parse({"keys": [entry()]}).values()
    (new,) = keyfile.parse({"keys": [entry(weight=2.5, max_priority="batch")]}).values()
    assert (old.weight, old.max_priority) == (1.0, Priority.INTERACTIVE)
    assert (new.weight, new.max_priority) == (2.5, Priority.BATCH)


def test_duplicates_and_shape_errors_are_refused(tmp_path: Path) -> None:
    with pytest.raises(keyfile.KeyFileError, match="repeats the name"):
        keyfile.parse({"keys": [entry(), entry(sha256=hash_key("other"))]})
    with pytest.raises(keyfile.KeyFileError, match="repeats the digest"):
        keyfile.parse({"keys": [entry(), entry(name="other")]})
    with pytest.raises(keyfile.KeyFileError, match="expected"):
        keyfile.parse([])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(keyfile.KeyFileError, match="not valid JSON"):
        keyfile.load(tmp_path / "bad.json")
    with pytest.raises(keyfile.KeyFileError, match="cannot read"):
        keyfile.load(tmp_path / "missing.json")
    limits = {"requests_per_second": 2.5, "burst": 4, "tokens_per_minute": 100, "tokens_per_day": 1000}
    (principal,) = keyfile.parse({"keys": [entry(limits=limits, scopes=["*"])]}).values()
    assert principal.limits == KeyLimits(2.5, 4, 100, 1000) and principal.may_call("anything")


def authenticator(tmp_path: Path) -> tuple[ApiKeyAuthenticator, dict[str, str]]:
    keys = write_keys(tmp_path / "keys.json", judge=KeySpec(("judge",)), all=KeySpec(("*",)))
    return ApiKeyAuthenticator.from_file(str(tmp_path / "keys.json"), NAMES, SERVICE_KEY), keys


def test_keys_scopes_and_the_two_headers(tmp_path: Path) -> None:
    auth, keys = authenticator(tmp_path)
    assert auth.authenticate(JUDGE, {"authorization": f"Bearer {keys['judge']}"}).name == "judge"
    assert auth.authenticate(JUDGE, {"authorization": f"bearer  {keys['judge']} "}).name == "judge"
    assert auth.authenticate(JUDGE, {"x-api-key": keys["judge"]}).name == "judge"
    assert auth.authenticate(None, {"x-api-key": keys["judge"]}).name == "judge"  # any valid key
    with pytest.raises(Unauthenticated, match="missing API key"):
        auth.authenticate(JUDGE, {})
    with pytest.raises(Unauthenticated, match="invalid API key"):
        auth.authenticate(JUDGE, {"authorization": "Bearer nope"})
    with pytest.raises(Unauthenticated, match="invalid API key"):  # the digest itself is not a key
        auth.authenticate(JUDGE, {"authorization": f"Bearer {hash_key(keys['judge'])}"})
    with pytest.raises(PermissionDenied, match="may not call inference"):
        auth.authenticate(INFERENCE, {"x-api-key": keys["judge"]})
    assert to_status(PermissionDenied("x")).code == 7 and to_status(Unauthenticated("x")).code == 16


def test_only_the_service_identity_may_act_for_another_key(tmp_path: Path) -> None:
    auth, keys = authenticator(tmp_path)
    service = {"authorization": f"Bearer {SERVICE_KEY}"}
    itself = auth.authenticate(INFERENCE, service)
    assert (itself.name, itself.service) == (SERVICE_PRINCIPAL, True)
    acting = auth.authenticate(INFERENCE, {**service, ON_BEHALF_OF: "judge"})
    # The judge-only key is charged, although it may not call inference itself.
    assert (acting.name, acting.delegated, acting.service) == ("judge", True, False)
    with pytest.raises(PermissionDenied, match="on behalf"):
        auth.authenticate(INFERENCE, {"x-api-key": keys["all"], ON_BEHALF_OF: "judge"})
    with pytest.raises(Unauthenticated, match="unknown caller"):
        auth.authenticate(INFERENCE, {**service, ON_BEHALF_OF: "nobody"})
    # Without a configured service key, nothing authenticates as the service.
    plain = ApiKeyAuthenticator.from_file(str(tmp_path / "keys.json"), NAMES)
    with pytest.raises(Unauthenticated):
        plain.authenticate(INFERENCE, service)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def retry_delay(exc: QuotaExceeded) -> float:
    status = to_status(exc)
    assert status.code == 8  # RESOURCE_EXHAUSTED
    info, failure = error_details_pb2.RetryInfo(), error_details_pb2.QuotaFailure()
    assert status.details[0].Unpack(info) and status.details[1].Unpack(failure)
    assert failure.violations[0].subject.startswith("key:")
    return info.retry_delay.ToNanoseconds() / 1e9


async def test_request_rate_is_a_token_bucket_with_burst() -> None:
    clock = FakeClock()
    quotas = Quotas(LocalState(clock))
    who = Principal("ci", frozenset({"*"}), KeyLimits(requests_per_second=2, burst=3))
    for _ in range(3):
        await quotas.admit_request(who)
    with pytest.raises(QuotaExceeded) as err:
        await quotas.admit_request(who)
    assert retry_delay(err.value) == pytest.approx(0.5)
    clock.now += 0.5
    await quotas.admit_request(who)  # one refilled
    with pytest.raises(QuotaExceeded):
        await quotas.admit_request(who)
    clock.now += 100
    for _ in range(3):  # refills up to the burst, never beyond
        await quotas.admit_request(who)
    with pytest.raises(QuotaExceeded):
        await quotas.admit_request(who)
    # The service identity and calls made on a caller's behalf are not rate limited again; keys
    # without limits and anonymous callers (auth off) never are.
    for exempt in (Principal("svc", frozenset({"*"}), who.limits, service=True),
                   Principal("ci", frozenset(), who.limits, delegated=True),
                   Principal("free", frozenset()), None):
        for _ in range(10):
            await quotas.admit_request(exempt)


async def test_token_budgets_admit_charge_go_into_debt_and_refill() -> None:
    clock = FakeClock()
    quotas = Quotas(LocalState(clock))
    who = Principal("ci", frozenset({"*"}), KeyLimits(tokens_per_minute=60, tokens_per_day=10_000))
    await quotas.admit_tokens(who)
    await quotas.charge_tokens(who, 90)  # a generation already running is not cut off: 30 tokens of debt
    assert (await quotas.remaining_tokens(who))["tokens_per_minute"] == pytest.approx(-30)
    with pytest.raises(QuotaExceeded) as err:
        await quotas.admit_tokens(who)
    assert err.value.quota == "tokens_per_minute"
    assert retry_delay(err.value) == pytest.approx(31.0)  # 1 token/s refill: the debt, then one
    clock.now += 31
    await quotas.admit_tokens(who)
    assert (await quotas.remaining_tokens(who))["tokens_per_day"] == pytest.approx(10_000 - 90 + 31 * 10_000 / 86400)
    # Delegated calls are charged to the caller they were made for.
    await quotas.charge_tokens(Principal("ci", frozenset(), who.limits, delegated=True), 100)
    with pytest.raises(QuotaExceeded):
        await quotas.admit_tokens(who)


def run_keys(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmmesh.framework.keys_cli", "--file", str(tmp_path / "keys.json"),
                           *args], capture_output=True, text=True, timeout=60)


def test_keys_cli_prints_the_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    added = run_keys(tmp_path, "add", "ci", "--scopes", "judge,jury", "--rps", "5", "--burst", "10",
                     "--tokens-per-minute", "20000")
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith("llmm_") and len(key) > 40 and "only once" in added.stderr
    path = tmp_path / "keys.json"
    text = path.read_text()
    assert key not in text and hash_key(key) in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    auth = ApiKeyAuthenticator.from_file(str(path), NAMES)
    who = auth.authenticate(JUDGE, {"x-api-key": key})
    assert who.scopes == {"judge", "jury"} and who.limits == KeyLimits(5.0, 10, 20000, None)

    assert run_keys(tmp_path, "add", "ci", "--scopes", "judge").returncode == 1  # names are unique
    assert run_keys(tmp_path, "add", "nightly", "--scopes", "inference", "--weight", "0.5",
                    "--max-priority", "batch").returncode == 0
    nightly = next(p for p in keyfile.load(path).values() if p.name == "nightly")
    assert (nightly.weight, nightly.max_priority) == (0.5, Priority.BATCH)
    assert run_keys(tmp_path, "remove", "nightly").returncode == 0
    bad = run_keys(tmp_path, "add", "x", "--scopes", "judgee")
    assert bad.returncode == 2 and "unknown ['judgee']" in bad.stderr
    listed = run_keys(tmp_path, "list")
    assert listed.returncode == 0 and "ci\tscopes=judge,jury" in listed.stdout and key not in listed.stdout
    assert run_keys(tmp_path, "remove", "ci").returncode == 0
    assert json.loads(path.read_text()) == {"keys": []}
    assert run_keys(tmp_path, "remove", "ci").returncode == 1


def test_up_accepts_keys_and_certificates(tmp_path: Path) -> None:
    files = {name: tmp_path / name for name in ("keys.json", "c.pem", "c.key", "ca.pem")}
    for f in files.values():
        f.write_text("x")
    opts = parse_args(["--api-keys", str(files["keys.json"]), "--tls-cert", str(files["c.pem"]), "--tls-key",
                       str(files["c.key"]), "--mtls-ca", str(files["ca.pem"]), "--mtls-cert", str(files["c.pem"]),
                       "--mtls-key", str(files["c.key"])])
    assert opts.api_keys_file == files["keys.json"]
    assert opts.ingress_tls is not None and opts.ingress_tls.cert_file == str(files["c.pem"])
    assert opts.service_tls is not None and opts.service_tls.ca_file == str(files["ca.pem"])
    for argv in (["--tls-cert", str(files["c.pem"])], ["--mtls-ca", str(files["ca.pem"])],
                 ["--api-keys", str(tmp_path / "missing.json")]):
        with pytest.raises(SystemExit):
            parse_args(argv)
