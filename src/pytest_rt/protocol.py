"""The protocol's vocabulary, in one place: what the plugin sends, what receivers read.

Imports nothing from pytest or the server, so the plugin, the receiver, the
`watch` client, the dashboard (served as JSON, ``/protocol.json``) and the docs
all spell these words from here. docs/protocol.md explains each one; the seed's
words (event types, the four statuses, the field names Testgr reads) never change.
"""

from __future__ import annotations

from typing import Final

FW: Final = "2"  # the `fw` field: the version of these events (the seed's plugin sent none)

# -- events ----------------------------------------------------------------------------

START_RUN: Final = "startTestRun"
START_ITEM: Final = "startTestItem"
STOP_ITEM: Final = "stopTestItem"
STOP_RUN: Final = "stopTestRun"
HEARTBEAT: Final = "heartbeat"  # only to receivers that announce HEARTBEAT_HEADER
EVENT_TYPES: Final = (START_RUN, START_ITEM, STOP_ITEM, STOP_RUN, HEARTBEAT)
# The seed's unittest family (nose2rt; no `fw` or `fw: "1"`): a receiver reads them as
# startTestItem and stopTestItem. The pytest plugin never sends them.
START_TEST: Final = "startTest"
STOP_TEST: Final = "stopTest"
UNITTEST_EVENT_TYPES: Final = (START_TEST, STOP_TEST)

# Fields every event carries (the seed's first two, the rest added for dedupe and order).
COMMON_FIELDS: Final = ("fw", "type", "job_id", "custom_id", "event_id", "run_id", "seq")
# startTestRun's `ci`: where the run comes from, each null when unknown.
CI_FIELDS: Final = ("provider", "repository", "branch", "commit", "pull_request", "build",
                    "build_url")

# -- a test's result -------------------------------------------------------------------

# stopTestItem `status`: the seed's four words, what every receiver reads.
STATUSES: Final = ("passed", "failed", "error", "skipped")
# stopTestItem `outcome`: pytest's precise outcome.
OUTCOMES: Final = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "interrupted")
# outcome -> status.
STATUS_OF: Final = {
    "passed": "passed",
    "failed": "failed",
    "error": "error",
    "skipped": "skipped",
    "xfailed": "skipped",
    "xpassed": "passed",
    "interrupted": "error",
}
# Outcomes that are a failure of the run (the summary lists them; their output is captured).
FAILED_OUTCOMES: Final = ("failed", "error", "interrupted")

# -- what receivers show (the receiver's API and the dashboard) -------------------------

# A test's status as shown: the four, plus a test not yet over ("running"), never
# started ("not_started"), or still running when its job ended ("aborted").
SHOWN_STATUSES: Final = (*STATUSES, "running", "not_started", "aborted")
# A job's status. `abandoned`: nothing heard for --stale-after seconds while running.
JOB_STATUSES: Final = ("running", "abandoned", "passed", "failed", "interrupted")
FINISHED_JOB_STATUSES: Final = ("passed", "failed", "interrupted")

# -- HTTP ------------------------------------------------------------------------------

# In a receiver's answer: "1" takes arrays of events (batches).
BATCH_HEADER: Final = "X-Pytest-RT-Batch"
# In a receiver's answer: seconds; the plugin sends a heartbeat event that often when idle.
HEARTBEAT_HEADER: Final = "X-Pytest-RT-Heartbeat"
# In a receiver's answer: its dashboard's URL, ending in "/", for the live link.
DASHBOARD_HEADER: Final = "X-Pytest-RT-Dashboard"


def vocabulary() -> dict[str, object]:
    """What the dashboard and other clients need, as JSON (served as /protocol.json)."""
    return {
        "fw": FW,
        "event_types": list(EVENT_TYPES),
        "statuses": list(STATUSES),
        "outcomes": list(OUTCOMES),
        "status_of": dict(STATUS_OF),
        "shown_statuses": list(SHOWN_STATUSES),
        "job_statuses": list(JOB_STATUSES),
        "finished_job_statuses": list(FINISHED_JOB_STATUSES),
    }
