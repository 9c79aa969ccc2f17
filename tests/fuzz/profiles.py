"""Hypothesis settings for the fuzzers: reproducible in CI, bigger on demand.

- `ci` (default): derandomized (the same examples on every run, so a red CI run reproduces
  locally), no example database, no per-example deadline (a batch of live requests takes as long
  as it takes; hangs are caught by the requests' own deadlines instead).
- `local`: random, ten times the examples, failing batches shrunk;
  `LLMMESH_FUZZ_PROFILE=local ./scripts/test tests/fuzz`.
- `LLMMESH_FUZZ_EXAMPLES=N` overrides the number of examples (batches) of either profile.

Profiles are applied per test with `@settings(fuzz_settings(n))`, never loaded globally, so other
tests using Hypothesis keep their own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                 HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture]

# CI does not shrink: a failing example is a batch of live requests, reported verbatim (every
# offending request with its outcome), and shrinking would replay hundreds of batches, each
# waiting out any hang's deadline. Locally, shrinking is on.
settings.register_profile("llmmesh-fuzz-ci", deadline=None, derandomize=True, database=None,
                          suppress_health_check=_SLOW_IS_FINE, print_blob=True, report_multiple_bugs=False,
                          phases=(Phase.explicit, Phase.reuse, Phase.generate))
settings.register_profile("llmmesh-fuzz-local", parent=settings.get_profile("llmmesh-fuzz-ci"), derandomize=False,
                          phases=tuple(Phase))


def fuzz_settings(ci_examples: int) -> settings:
    """Settings for a fuzz test whose CI run has `ci_examples` examples."""
    profile = os.environ.get("LLMMESH_FUZZ_PROFILE", "ci")
    examples = ci_examples * (10 if profile == "local" else 1)
    examples = int(os.environ.get("LLMMESH_FUZZ_EXAMPLES", examples))
    return settings(settings.get_profile(f"llmmesh-fuzz-{profile}"), max_examples=examples)
