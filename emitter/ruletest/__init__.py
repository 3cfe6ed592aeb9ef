"""Rule tests (`emitter test`): `*.test.yaml` files beside the rule files they test.

parse.py reads test files (with file:line:col for every problem), inputs.py turns a case's
trigger input into Firings as the triggers do, runner.py drives the daemon's Pipeline with
in-memory state and an injected clock, compare.py judges the events against the
expectation, report.py prints text/json/github (JUnit: emitter.ruletest.junit).

The format is a separate file rather than a `tests:` section in the rule file so that rule
files stay what the daemon loads (no test data shipped to production hosts), a test file can
cover several rule files, and `emitter validate`/`run` skip `*.test.yaml` when they load a
directory.
"""
