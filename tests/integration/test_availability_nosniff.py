"""Every answer of the availability service, whatever its route or refusal, carries
`X-Content-Type-Options: nosniff` (the Fetch standard's only value), so a browser that is sent one
never guesses another type for it. Real HTTP to the service as its own process; no database is
needed (nothing listens on its port), which also covers the answers given without it.
"""

from __future__ import annotations

import requests

from devstack.availability_process import AvailabilityProcess
from tests.integration import test_availability as availability_tests

no_database = availability_tests.no_database  # the service whose database port has nobody listening


def test_every_answer_says_nosniff(no_database: AvailabilityProcess) -> None:
    service = no_database
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    base = service.endpoint.removesuffix(service.path)
    probe = b".catalog=shop&.id=_fake_yahoo_item_&.code=_fake_yahoo_code_"  # the platform's validation request
    secret = {"X-Inventory-Secret": service.secret or ""}  # docs/availability.md: the shared secret's header
    answers = {
        "probe": requests.post(service.endpoint, data=probe, headers={**form, **secret},
                               timeout=10),
        "item without database": requests.post(service.endpoint, data=b".code=SKU-1",
                                               headers={**form, **secret}, timeout=10),
        "wrong secret": requests.post(service.endpoint, data=b".code=SKU-1",
                                      headers={**form, "X-Inventory-Secret": "wrong"}, timeout=10),
        "health": requests.get(f"{base}/health", timeout=10),
        "metrics without secret": requests.get(f"{base}/metrics", timeout=10),
        "unknown path": requests.get(f"{base}/nothing-here", timeout=10),
        "wrong method": requests.get(service.endpoint, timeout=10),
    }
    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {"probe": 200, "item without database": 200, "wrong secret": 403, "health": 200,
                        "metrics without secret": 403, "unknown path": 404, "wrong method": 405}
    assert {name: r.headers.get("X-Content-Type-Options") for name, r in answers.items()} == dict.fromkeys(
        answers, "nosniff")
