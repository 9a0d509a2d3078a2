"""rag.config: the one check of k and mode that the API, the CLI and the HTTP API call."""

import pytest

from rag import config
from rag.errors import InvalidArgumentError


@pytest.mark.parametrize("k", [1, 5, 50])
def test_whole_positive_k_is_accepted(k):
    assert config.check_k(k) == k and config.check_k(k, limit=50) == k


@pytest.mark.parametrize("k", [0, -1, True, False, 2.5, "5", None])
def test_other_k_is_refused_with_a_clear_message(k):
    with pytest.raises(InvalidArgumentError, match="positive whole number"):
        config.check_k(k)


def test_k_over_the_limit_is_refused():
    with pytest.raises(InvalidArgumentError, match="at most 50"):
        config.check_k(51, limit=50)


def test_the_modes_are_the_public_ones_only():
    assert [config.check_mode(m) for m in config.MODES] == ["hybrid", "dense", "bm25"]
    for bad in ("HYBRID", "hybrid-nobridge", "dense-nobridge", "", None, "magic"):
        with pytest.raises(InvalidArgumentError, match="unknown mode"):
            config.check_mode(bad)
