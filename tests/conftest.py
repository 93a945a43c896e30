from __future__ import annotations

import pytest

from tests.fake_spotify import FakeSpotify
from tests.harness import CONNECTION_ID, TOKEN


@pytest.fixture
def fake():
    """A strict fake Spotify API; a test fails if the target ever broke the contract."""
    with FakeSpotify(token=TOKEN, connection_id=CONNECTION_ID) as server:
        yield server
        assert server.contract_violations == []
