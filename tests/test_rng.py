"""workbench.rng: one seed argument for every random choice, and one way to split it."""
import pytest
import torch

from workbench import rng
from workbench.meta import base


def test_split_is_reproducible_independent_and_the_one_splitter():
    a, b = rng.split(7, 5), rng.split(7, 5)
    assert a == b and len(set(a)) == 5 and all(0 <= s < 2**62 for s in a)
    assert rng.split(8, 5) != a
    assert rng.split(7, 3) == a[:3]                 # a prefix: asking for fewer changes nothing
    assert base._seeds is rng.split                 # meta's algorithms split through it
    g = torch.Generator().manual_seed(7)
    assert rng.split(g, 5) == a                     # a Generator seeded alike gives the same
    assert len(set(rng.split(None, 4))) == 4        # None: fresh entropy


@pytest.mark.parametrize("bad", [-1, 2.5, True, "3"])
def test_split_names_a_bad_count(bad):
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        rng.split(0, bad)


def test_make_generator_refuses_a_non_integer_seed():
    with pytest.raises(TypeError, match="seed must be an int"):
        rng.make_generator(1.5)
