"""pamlib's own providers pass the conformance kit it ships to vendors."""

from __future__ import annotations

import pytest

from pamlib.scoring.provider import ScoringProvider
from pamlib.scoring.raw_sum import RawSumProvider
from pamlib.testing import ProviderConformance


class TestRawSum(ProviderConformance):
    @pytest.fixture
    def provider(self) -> ScoringProvider:
        return RawSumProvider()
