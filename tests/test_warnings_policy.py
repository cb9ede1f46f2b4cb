"""The suite's warning policy (tests/conftest.py) and the one compatibility point with
transformers' cache API (workbench.models): our own calls raise no deprecation warnings."""
import warnings

import pytest
import torch

from workbench import models


def _in_file(source: str, filename: str, **names) -> dict:
    """Functions compiled as if they lived in ``filename`` (ours, or a library's)."""
    ns = dict(names)
    exec(compile(source, filename, "exec"), ns)
    return ns


SITE = "/venv/lib/python3.11/site-packages/"
inner = _in_file("def renamed_argument():\n"      # transformers' deprecate_kwarg: names its caller
                 "    warnings.warn('old name', FutureWarning, stacklevel=2)\n"
                 "def own_internals():\n"          # plotly: a deprecated class it builds itself
                 "    warnings.warn('old trace type', DeprecationWarning, stacklevel=2)\n",
                 SITE + "somelib/_inner.py", warnings=warnings)
lib = _in_file("def forward():\n    return renamed_argument()\n"    # torch's Module.__call__
               "def figure():\n    return validate()\n", SITE + "somelib/api.py",
               renamed_argument=inner["renamed_argument"],
               validate=_in_file("def validate():\n    return own_internals()\n",
                                 SITE + "somelib/_validators.py",
                                 own_internals=inner["own_internals"])["validate"])
ours = _in_file("def call(f):\n    return f()\n", models.__file__)


def test_a_library_deprecating_our_call_fails_the_test():
    with warnings.catch_warnings():      # no record: the suite's hook stays in place
        warnings.simplefilter("always")
        with pytest.raises(FutureWarning, match="raised by the workbench's call"):
            ours["call"](lib["forward"])
        with pytest.raises(FutureWarning):   # attributed to our line itself
            ours["call"](inner["renamed_argument"])


def test_a_real_renamed_transformers_argument_fails_the_test(tiny_lm):
    import transformers
    if tuple(int(x) for x in transformers.__version__.split(".")[:2]) < (5, 24):
        pytest.skip("past_key_values is the current name before transformers 5.24")
    from transformers import DynamicCache
    ns = _in_file("def call(m, c):\n    return m(input_ids=ids, past_key_values=c)\n",
                  models.__file__, ids=torch.tensor([[1, 2]]))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with pytest.raises(FutureWarning, match="past_key_values"):
            ns["call"](tiny_lm.model, DynamicCache(config=tiny_lm.model.config))


@pytest.fixture
def shown(monkeypatch):
    """What the suite's hook passes on to be shown (kept out of the run's warning summary)."""
    seen = []
    monkeypatch.setattr(warnings, "_showwarnmsg_impl", seen.append)
    return seen


def test_a_library_warning_about_its_own_internals_stays_a_warning(shown):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        ours["call"](lib["figure"])
    assert [w.category for w in shown] == [DeprecationWarning]


def test_a_test_calling_a_library_directly_gets_a_warning(shown):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        lib["forward"]()                            # no workbench frame on the stack
    assert [w.category for w in shown] == [FutureWarning]


def test_the_cache_goes_in_and_out_under_this_releases_name(tiny_lm):
    import transformers
    major_minor = tuple(int(x) for x in transformers.__version__.split(".")[:2])
    assert models.CACHE_ARG == ("cache" if major_minor >= (5, 24) else "past_key_values")
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no deprecation from the library, whatever its release
        logits, cache = tiny_lm.forward(torch.tensor([[1, 5, 6]]))
        logits2, cache = tiny_lm.forward(torch.tensor([[7]]), cache=cache)
    assert models.cache_tensors(cache)[0].shape[-2] == 4
    full, _ = tiny_lm.forward(torch.tensor([[1, 5, 6, 7]]))
    assert torch.allclose(logits2[0, -1], full[0, -1], atol=1e-5)

