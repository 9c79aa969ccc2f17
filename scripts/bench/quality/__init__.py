"""The patterns' quality benchmark: a task set kept in the repo (tasks.yaml, plus the README's own
pattern examples), one definition of a good result per pattern (checks.py), and the REST calls that
run a task (calls.py). scripts/bench/patterns_quality.py runs it and writes the report;
tests/realmodel asserts success rates over a fixed subset with the same code."""
