"""`scoring.BayesScorer` (a class-conditional LM read as a classifier by Bayes' rule) and its
training objective `train.train_class_conditional`."""
import json
import math

import pytest
import torch
from conftest import random_llama

import workbench as wb
from workbench.meta.base import TextOutput
from workbench.meta import best_of_n
from workbench.scoring import (BayesScorer, JointScorer, ProcessScorer,
                               VerifierScorer)
from workbench.tinyworld.train import TrainSpec, train_class_conditional

CODES = {"right": "+", "wrong": "-"}


@pytest.fixture(scope="module")
def scorer(tokenizer):
    return BayesScorer(random_llama(tokenizer, seed=3), tokenizer, CODES, 0.4, name="random")


def direct_log_odds(scorer, text, prior):
    """Bayes' rule on whole-sequence probabilities, one text and one code at a time."""
    tok = scorer.tokenizer
    ids = tok(text)["input_ids"]
    logp = []
    for code in CODES.values():
        full = torch.tensor([[ids[0], tok.convert_tokens_to_ids(code)] + ids[1:]])
        with torch.no_grad():
            lp = torch.log_softmax(scorer.model(input_ids=full).logits[0].float(), -1)
        logp.append([lp[k + 1, full[0, k + 2]].item() for k in range(len(ids) - 1)])
    return [prior + sum(a - b for a, b in zip(logp[0][:t], logp[1][:t]))
            for t in range(len(ids))]


def test_probabilities_are_bayes_rule_at_every_position(scorer):
    texts = ["Q: 12+7\n12+7=19\nA: 19", "Q: 3*4\n3*4=13\nA: 13", "Q: 5\nA: 5"]
    probs = scorer.position_probs(texts)   # one padded batch of unequal lengths
    for text, p in zip(texts, probs):
        want = [1 / (1 + math.exp(-z)) for z in direct_log_odds(scorer, text, 0.4)]
        assert len(p) == len(want) and p[0] == pytest.approx(1 / (1 + math.exp(-0.4)))
        assert p == pytest.approx(want, abs=1e-5)
    assert scorer.score(texts) == pytest.approx([p[-1] for p in probs])


def test_batches_by_length_keep_the_input_order(scorer):
    """Texts are batched in order of length (less padding); each result must still land at
    its text's place, across batches, and equal the text scored alone."""
    texts = [f"Q: {i}+{i}\n" + "1+1=2\n" * (i % 5) + f"A: {2 * i}" for i in range(7)]
    batched = scorer.position_probs(texts, batch_size=3)   # 3 batches of mixed order
    for text, p in zip(texts, batched):
        assert p == pytest.approx(scorer.position_probs([text])[0], abs=1e-5)
    assert [len(p) for p in batched] == [len(scorer.encode(t)) for t in texts]


def test_cost_counts_both_passes(scorer):
    texts = ["Q: 1+2\n1+2=3\nA: 3", "Q: 9\nA: 9"]
    before = scorer.spent.external_tokens
    scorer.score(texts)
    spent = scorer.spent.external_tokens - before
    assert spent == scorer.cost_of(texts).external_tokens
    assert spent == sum(2 * (len(scorer.encode(t)) + 1) for t in texts)


def test_meta_scorers_accept_it(scorer):
    outs = [TextOutput(text="2*3=6\nA: 6"), TextOutput(text="2*3=5\nA: 5")]
    scores, cost = VerifierScorer(scorer)("Q: 2*3\n", outs)
    assert len(scores) == 2 and all(0 < s < 1 for s in scores) and cost.external_tokens > 0
    steps = ProcessScorer(scorer).step_scores("Q: 2*3\n", [o.text for o in outs])
    assert [len(s) for s in steps] == [2, 2]


class Fixed:
    """A generator that returns the same candidates every time."""

    def __init__(self, outs):
        self.outs = outs

    def generate(self, prompt, n, seed=None):
        return self.outs[:n]


def test_joint_scorer_is_log_p_plus_log_v_and_picks_the_mode_of_q_star(scorer):
    prompt = "Q: 2*3\n"
    texts = ["2*3=6\nA: 6", "2*3=5\nA: 5", "2*3=66\nA: 66"]
    v = scorer.score([prompt + t for t in texts])
    # the generator makes the candidate the verifier likes least by far the most probable
    worst = min(range(3), key=lambda i: v[i])
    lps = [-40.0, -40.0, -40.0]
    lps[worst] = -1.0
    outs = [TextOutput(text=t, logprob=lp) for t, lp in zip(texts, lps)]
    scores, cost = JointScorer(scorer)(prompt, outs)
    assert scores == pytest.approx([lp + math.log(p) for lp, p in zip(lps, v)], abs=1e-9)
    assert cost == scorer.cost_of([prompt + t for t in texts])   # log p comes free
    picked = best_of_n(prompt, Fixed(outs), JointScorer(scorer), 3)
    assert picked.text == texts[worst]                 # mode of p_theta * v, not argmax v
    assert best_of_n(prompt, Fixed(outs), VerifierScorer(scorer), 3).text == texts[
        max(range(3), key=lambda i: v[i])]
    with pytest.raises(ValueError, match="LogProbScorer"):      # no log p and no lm to get it
        JointScorer(scorer)(prompt, [TextOutput(text=texts[0])])


def test_loads_from_a_directory_with_scorer_json(tokenizer, tmp_path):
    model = random_llama(tokenizer, seed=4)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert isinstance(wb.load(str(tmp_path), device="cpu"), wb.LanguageModel)
    (tmp_path / "scorer.json").write_text(json.dumps({"codes": CODES, "prior_log_odds": -0.2}))
    s = wb.load(str(tmp_path), device="cpu")
    assert isinstance(s, BayesScorer) and s.prior_log_odds == -0.2


@pytest.mark.parametrize("codes", [{"right": "+", "wrong": "not-a-token"},
                                   {"right": "+", "wrong": "+"}, {"right": "+"}])
def test_rejects_codes_that_are_not_two_single_tokens(tokenizer, codes):
    with pytest.raises(ValueError, match="codes"):
        BayesScorer(random_llama(tokenizer, seed=3), tokenizer, codes, 0.0)


def test_rejects_texts_without_bos(scorer):
    with pytest.raises(ValueError, match="BOS"):
        scorer.position_probs([[5, 6, 7]])


def test_training_learns_to_tell_right_from_wrong(tokenizer, tmp_path):
    init = tmp_path / "init"
    random_llama(tokenizer, seed=5).save_pretrained(init)
    enc = lambda t: tokenizer(t)["input_ids"][1:]  # noqa: E731 (the trainer adds BOS + code)
    examples = []
    for a in range(1, 9):
        for b in range(1, 9):
            examples.append((enc(f"Q: {a}+{b}\n{a}+{b}={a + b}\nA: {a + b}"), 1))
            examples.append((enc(f"Q: {a}+{b}\n{a}+{b}=0\nA: 0"), 0))   # wrong: always 0
    spec = TrainSpec(steps=60, batch_size=16, lr=3e-3, warmup=5, seed=0, bf16=False)
    model, info, meta = train_class_conditional(spec, examples, init, tmp_path / "run",
                                                tokenizer, lam=0.5, desc="test")
    assert meta["prior_log_odds"] == pytest.approx(0.0)
    assert info["log"][-1][1] < info["log"][0][1]
    s = BayesScorer(model.eval(), tokenizer, meta["codes"], meta["prior_log_odds"])
    right = s.score(["Q: 4+5\n4+5=9\nA: 9", "Q: 2+6\n2+6=8\nA: 8"])
    wrong = s.score(["Q: 4+5\n4+5=0\nA: 0", "Q: 2+6\n2+6=0\nA: 0"])
    assert min(right) > max(wrong), (right, wrong)


def test_training_needs_both_labels(tokenizer, tmp_path):
    random_llama(tokenizer).save_pretrained(tmp_path / "init")
    with pytest.raises(ValueError, match="both labels"):
        train_class_conditional(TrainSpec(steps=1), [([5, 6], 1)], tmp_path / "init",
                                tmp_path / "run", tokenizer)


def test_evidence_adds_up_to_the_score(scorer):
    text = "Q: 7*8\n7*8=56\nA: 56"
    votes = scorer.evidence([text])[0]
    assert len(votes) == len(scorer.encode(text)) - 1
    assert 1 / (1 + math.exp(-(0.4 + sum(votes)))) == pytest.approx(scorer.score(text), abs=1e-6)
