"""Schemathesis hooks for the conformance run (loaded with SCHEMATHESIS_HOOKS=this file).

Every mutating route honours `Idempotency-Key`: the first response to a key is stored and a
retry with the same key gets it back. Schemathesis would otherwise reuse the few values it
generates for that optional header ("", "0", ...), so later cases would be answered from the
store (or refused as a key reused with another body) instead of being run. Each request gets a
fresh key instead, so every case reaches its handler.
"""

import random
import uuid

import schemathesis

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


# Every query accepts `min_position` (and the `Anjia-Min-Position` header): a position the log
# does not hold is refused with 422, and a generated one almost never exists, so with it nearly
# every generated query would stop there. Four in five cases go without it, so the rest of the
# operation is exercised too; the fifth keeps testing the refusal.
POSITION_NAMES = {"min_position", "anjia-min-position"}
chance = random.Random(1)


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.method.upper() not in MUTATING:
        if chance.random() < 0.8:
            for part in ("query", "headers"):
                values = getattr(case, part)
                if values:
                    setattr(
                        case,
                        part,
                        {name: value for name, value in values.items() if name.lower() not in POSITION_NAMES},
                    )
        return
    headers = dict(case.headers or {})
    for name in [name for name in headers if name.lower() == "idempotency-key"]:
        del headers[name]
    headers["Idempotency-Key"] = f"conformance-{uuid.uuid4()}"
    case.headers = headers
