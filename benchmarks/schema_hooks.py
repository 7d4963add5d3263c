"""schemathesis hooks for benchmarks/schema_server.py (loaded through SCHEMATHESIS_HOOKS=schema_hooks).

The server's OpenAPI schema states every rule JSON Schema can: types, ranges, lengths, the content a
message needs, which messages may carry tool calls, the models, zones and embedding sizes it serves. Two
rules are beyond any schema, and a request breaking them gets a 400 that schemathesis would report as a
"schema-valid request rejected" (ST202):

- a tool_choice naming a function must name one of `tools` (a relation between two fields' values);
- the prompt must fit the model's context (it depends on the tokenizer and the model).

This hook drops exactly those reports, recognised by the server's error, and keeps every other failure.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis

# (error code, message fragment) of each rule; None matches any code.
RULES_NO_SCHEMA_CAN_STATE = (
    (None, "which is not in tools"),  # python/cactus/server/protocol.py, _check_tool_choice
    ("context_length_exceeded", "but the context holds"),  # csrc/completion.c, prepare
)


def unstatable_rule(code: str, status: int, body: bytes) -> str | None:
    """The rule (its message fragment) when a failure is a rejected schema-valid request (ST202) whose 400
    is one of those rules; else None."""
    if code != "ST202" or status != 400:
        return None
    try:
        error = json.loads(body)["error"]
        message, error_code = str(error["message"]), error.get("code")
    except (ValueError, KeyError, TypeError):
        return None
    for rule_code, text in RULES_NO_SCHEMA_CAN_STATE:
        if (rule_code is None or rule_code == error_code) and text in message:
            return text
    return None


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep (True) every failure but a rejection by a rule no schema can state; each one dropped is
    recorded (a JSON line) in the file $SCHEMA_HOOKS_DROPPED names, when set."""
    rule = unstatable_rule(str(failure.code), int(response.status_code), response.content)
    log = os.environ.get("SCHEMA_HOOKS_DROPPED")
    if rule is not None and log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"rule": rule, "operation": str(failure.operation)}) + "\n")
    return rule is None
