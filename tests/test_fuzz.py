"""Fuzzing the HTTP API from its own OpenAPI schema (schemathesis): no 5xx, every error a 4xx JSON object.

Bounded: at most CASES_PER_OPERATION valid and as many invalid requests per operation (fewer when
an operation has fewer distinct inputs); the number that ran is printed. Runs on the HashEncoder
(the HTTP layer is what is fuzzed, not the model).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from rag.server import create_app

from .conftest import built_hash_assistant

CASES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    app = create_app(built_hash_assistant(tmp_path_factory.mktemp("fuzz")))  # warmed up: no first-ask stall
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _check(case, response) -> None:
    where = f"{case.method} {case.formatted_path} body={case.body!r} query={case.query!r}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    body = response.json()
    assert isinstance(body, dict), f"{where}: not a JSON object: {response.text[:300]}"
    if response.status_code >= 400:
        assert isinstance(body.get("error"), str) and body["error"], f"{where}: error without a message: {body}"
    assert response.headers.get("x-content-type-options") == ["nosniff"] or response.headers.get(
        "x-content-type-options"
    ) == "nosniff", where


def test_fuzzed_requests_never_cause_a_server_error(schema, capsys):
    operations = [r.ok() for r in schema.get_all_operations()]
    assert {f"{o.method.upper()} {o.path}" for o in operations} >= {
        "POST /ask", "POST /ask/batch", "GET /passages/{passage_id}", "GET /healthz", "GET /documents"
    }
    counts = {"valid": 0, "invalid": 0, "4xx": 0}
    for op in operations:
        takes_input = bool(list(op.iter_parameters())) or len(op.body) > 0
        # An operation without parameters or body (GET /healthz) has no invalid input to send.
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if takes_input else (GenerationMode.POSITIVE,):
            kind = "valid" if mode == GenerationMode.POSITIVE else "invalid"

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=CASES_PER_OPERATION, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case):
                counts[kind] += 1
                response = case.call(timeout=60)
                counts["4xx"] += 400 <= response.status_code < 500
                _check(case, response)

            run()
    total = counts["valid"] + counts["invalid"]
    with capsys.disabled():
        print(
        f"\nfuzz: {total} requests ({counts['valid']} valid, {counts['invalid']} invalid by the schema), "
        f"{counts['4xx']} answered 4xx, none 5xx"
        )
    assert counts["invalid"] > 0 and counts["valid"] > 0
