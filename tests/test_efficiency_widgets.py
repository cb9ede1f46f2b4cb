"""The KV-cache and speculative-decoding views build figures from results (no browser)."""
import plotly.graph_objects as go
import pytest
import torch

import workbench as wb
from widgets import kv_cache, speculative
from workbench import efficiency as eff


@pytest.fixture(scope="module")
def models(tokenizer):
    from conftest import random_llama
    torch.set_num_threads(1)
    target = wb.LanguageModel(random_llama(tokenizer, seed=0, layers=2), tokenizer, "t")
    return target, eff.truncated_draft(target, 1)


def test_cache_grid_follows_the_timeline(models):
    lm, _ = models
    g = eff.timed_greedy(lm, "Story: The", 6)
    P = len(lm.encode("Story: The"))
    grid = kv_cache.cache_grid(g, 3)
    assert grid["written"] == ["prefill"] * P + [1, 2, 3]
    assert grid["bytes"] == eff.kv_cache_bytes(lm.model.config, P + 3)
    fig = kv_cache.cache_grid_figure(g, 3)
    z = fig.data[0].z
    assert len(z) == lm.model.config.num_hidden_layers and len(z[0]) == P + 3
    assert list(z[0]) == [0] * P + [1, 1, 2]            # the newest position stands out
    with pytest.raises(ValueError, match="step"):
        kv_cache.cache_grid(g, 6)
    with pytest.raises(ValueError, match="recomputed"):
        kv_cache.cache_grid_figure(eff.timed_greedy(lm, "Story:", 3, use_cache=False))


def test_timeline_and_sizes_figures(models):
    lm, _ = models
    a = eff.timed_greedy(lm, "Story:", 5)
    b = eff.timed_greedy(lm, "Story:", 5, use_cache=False)
    fig = kv_cache.timeline_figure(a, b)
    assert [t.name for t in fig.data] == ["with KV cache", "recomputing"]
    assert len(fig.data[0].y) == 5 and all(y > 0 for y in fig.data[1].y)
    sizes = kv_cache.cache_sizes_figure(eff.attention_variants(lm, 100))
    assert list(sizes.data[0].y) == sorted(sizes.data[0].y, reverse=True)


def test_kv_cache_view_steps(models):
    lm, _ = models
    view = kv_cache.KVCacheView(eff.timed_greedy(lm, "Story:", 5), tokenizer=lm.tokenizer)
    assert isinstance(view.grid, go.FigureWidget)
    view.slider.value = 4
    assert "step 4 (decode)" in view.detail.value
    assert len(view.grid.data[0].z[0]) == len(lm.encode("Story:")) + 4


def test_round_cells_classify_every_token(models):
    target, draft = models
    out = eff.speculative_decode(target, draft, "Story:", k=3, max_new_tokens=40, seed=0,
                                 stop_at_eos=False)
    cells = speculative.round_cells(out, target.tokenizer)
    added = [c for c in cells if c.get("added")]
    assert len(added) == len(out.info["rounds"])
    counts = {s: sum(c["status"] == s for c in cells) for s in speculative.COLORS}
    assert counts["accepted"] == out.info["accepted"]
    assert counts["rejected"] == counts["resampled"]
    assert counts["accepted"] + counts["rejected"] + counts["unchecked"] == out.info["drafted"]
    emitted = [c["token"] for c in sorted(cells, key=lambda c: (c["round"], c.get("added", 0),
                                                               c["pos"]))
               if c["status"] in ("accepted", "resampled", "bonus", "target")]
    assert emitted == out.token_ids


def test_speculative_figures(models):
    target, draft = models
    out = eff.speculative_decode(target, draft, "Story:", k=4, max_new_tokens=30, seed=1,
                                 stop_at_eos=False)
    fig = speculative.rounds_figure(out, target.tokenizer, rounds=5)
    grid = fig.data[0]
    assert list(grid.y) == [f"round {r}" for r in range(5)] and list(grid.x)[-1] == "target"
    codes = list(speculative.COLORS)
    for r, row in enumerate(grid.z):   # each row: accepted drafts, then the outcome
        rd = out.info["rounds"][r]
        n = rd["accepted"]
        assert [codes[c] for c in row[:n]] == ["accepted"] * n
        assert codes[row[-1]] == ("bonus" if n == len(rd["drafted"]) else "resampled")
    assert {t.name for t in fig.data[1:]} <= set(speculative.COLORS)
    hist = speculative.acceptance_figure(out)
    assert sum(hist.data[0].y) == pytest.approx(1.0)
    assert sum(hist.data[1].y) == pytest.approx(1.0)
    rows = [{"k": 2, "speedup": 1.4, "alpha": 0.8}, {"k": 4, "speedup": 1.7, "alpha": 0.8}]
    sp = speculative.speedup_figure(rows, c=0.1)
    assert list(sp.data[2].y) == pytest.approx([eff.expected_speedup(0.8, 2, 0.1),
                                                eff.expected_speedup(0.8, 4, 0.1)])
    view = speculative.SpeculativeView(out, target.tokenizer, sweep=rows, c=0.1, rounds=4)
    view.slider.value = view.slider.max
    assert len(view.widget.children) == 4


def test_prefix_stepper_replays_the_stream_request_by_request(models):
    """Each step serves one more prompt; the per-request log adds up to the cache's totals,
    moving back or changing the capacity replays from an empty cache, and a capacity too small
    for the shared header serves nothing of it."""
    lm = models[0]
    header = "Story: the cat sat on the mat and the dog ran to the park. "
    stream = [header + "Q: 1", header + "Q: 2", "Review: good. " + "Q: 1", header + "Q: 3"]
    st = kv_cache.PrefixStepper(lm, stream, capacities=(None, 8))
    assert st.request.value == 1 and len(st.log) == 1 and st.log[0][1] == 0   # nothing stored
    st.request.value = 4
    assert len(st.log) == 4 and st.log[1][1] >= len(lm.encode(header)) - 1     # header served
    asked, served, computed = (sum(x) for x in zip(*st.log))
    c = st.cache
    assert (asked, served, computed) == (c.requested_tokens, c.reused_tokens, c.computed_tokens)
    assert served + computed == asked and "request 4 of 4" in st.info.value
    assert len(st.fig.data) == len(kv_cache.prefix_tree_figure(st.cache).data) >= 2
    unbounded = st.cache
    st.request.value = 2                               # back: replayed from scratch
    assert st.cache is not unbounded and len(st.log) == 2
    st.capacity.value = 8
    st.request.value = 4
    assert st.cache.max_tokens == 8 and st.cache.stored_tokens <= 8
    assert st.log[3][1] < len(lm.encode(header)) - 1   # the header did not survive
    with pytest.raises(ValueError, match="stream"):
        kv_cache.PrefixStepper(lm, [])
