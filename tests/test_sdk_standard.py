"""The SDK's standard target tests, run against the strict fake API.

One standard test is replaced, not skipped: `record_missing_key_property` expects the run to
crash with MissingKeyPropertiesError, while docs/contract.md §4 says such a record is rejected
and the run goes on. `test_target.test_unreadable_and_invalid_records_are_rejected_not_a_crash`
asserts that instead.

Every test here, the standard ones included, must leave the fake's contract unbroken.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.resources
import os

import pytest
from singer_sdk.testing import SuiteConfig, TargetTestRunner, get_target_test_class
from singer_sdk.testing.suites import SingerTestSuite, target_tests
from singer_sdk.testing.target_tests import TargetRecordMissingKeyProperty

from target_spotify_conversions.pipeline import RejectLimitError
from target_spotify_conversions.sandbox import FakeSpotify
from target_spotify_conversions.target import TargetSpotifyConversions
from tests.harness import CONNECTION_ID, TOKEN

_FAKE = FakeSpotify(token=TOKEN, connection_id=CONNECTION_ID).start()
atexit.register(_FAKE.stop)

CONFIG = {
    "api_url": _FAKE.url,
    "auth_token": TOKEN,
    "capi_connection_id": CONNECTION_ID,
    "default_event_name": "CUSTOM_EVENT_1",
    "rejects_file": os.devnull,  # the suite runs in the repository: keep no rejects there
    # ... and no ledger either; the standard tests send the same records more than once.
    "ledger_url": "none",
    # In-process beside the fake's server thread, with the default mapping workers: they are
    # fresh interpreters, not forks of this threaded process.
}
STANDARD_STREAMS = importlib.resources.files("singer_sdk.testing") / "target_test_streams"

_SUITE = SingerTestSuite(
    kind="target",
    tests=[test for test in target_tests.tests if test is not TargetRecordMissingKeyProperty],
)



class StandardTarget(TargetSpotifyConversions):
    """The target as the standard tests run it. Their streams carry no identifier, so a run of
    one rejects every record and, as docs/contract.md §5 says, fails at its end (after its
    rejects, summary and STATE) with RejectLimitError. What the standard tests check is that
    the SDK's part gets through each stream: that failure is expected here, and only it."""

    def process_endofpipe(self) -> None:
        try:
            super().process_endofpipe()
        except RejectLimitError:
            report = self.pipeline.report
            assert report.records_read > 0
            assert report.rejected == report.records_read


TestTargetSpotifyConversions = get_target_test_class(
    StandardTarget,
    config=CONFIG,
    include_target_tests=False,
    custom_suites=[_SUITE],
    suite_config=SuiteConfig(),
)


@pytest.fixture(autouse=True)
def _contract_kept():
    """Whatever a test of this module sent, the fake found no breach of the contract in it."""
    before = len(_FAKE.contract_violations)
    yield
    assert _FAKE.contract_violations[before:] == []


def test_a_standard_stream_with_emails_reaches_the_api_hashed():
    """Most standard streams carry no identifier (their records are rejected, nothing is
    sent); `pk_updates` has emails, so its two records must arrive, hashed, as events."""
    before = _FAKE.accepted_count
    runner = TargetTestRunner(
        TargetSpotifyConversions, config=CONFIG,
        input_filepath=STANDARD_STREAMS / "pk_updates.singer",
    )
    runner.sync_all()
    assert _FAKE.accepted_count - before == 2
    by_digest = {
        digest: event
        for event in _FAKE.accepted.values()
        for digest in event["user_data"].get("hashed_emails", [])
    }
    for email in ("alice@example.com", "bob@example.com"):
        event = by_digest[hashlib.sha256(email.encode()).hexdigest()]
        assert event["event_name"] == "CUSTOM_EVENT_1"  # the default: nothing else names it
