"""Hub reward models behind the scorer interfaces (`workbench.reward_models`): tiny checkpoints
of the real architectures and heads, saved with save_pretrained and loaded back by path; their
scores against references computed by hand from the raw logits, and their use as verifier,
value and step value in the meta-generators."""
import math

import pytest
import torch

import workbench as wb
from chapter_run import fit
from workbench import meta, scoring
from workbench.meta import values
from workbench.reward_models import (LLMJudge, OutcomeRewardModel, ProcessRewardModel,
                                     load_orm, load_prm)

PROMPT = "Q: 2+3\n"
REPLIES = ["2+3=5\nA: 5", "2+3=6\n\nA: 6\n", "A: 5", "", "7+1=8\n8-2=6\nA: 6"]


def solution(a, b):
    return f"Q: {a}+{b}\n{a}+{b}={a + b}\nA: {a + b}\n\n"


CORPUS = "".join(solution(a, b) for a in range(1, 6) for b in range(2, 5))
JUDGED = (CORPUS[:200] + "\n\nIs this solution correct? Answer Yes or No.\nAnswer: Yes No\n"
          "Are the steps so far correct? Answer Yes or No.\nAnswer: No Yes\n")


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    """A byte-level BPE trained here, with a step tag and a step separator as special tokens;
    its pad token is its EOS (as GPT-2's)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([CORPUS, JUDGED * 8], vocab_size=400,
                            special_tokens=["<|endoftext|>", "<extra_0>", "ки"])
    t = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>",
                                pad_token="<|endoftext|>")
    for s in (" Yes", " No", "+", "-", "ки", "<extra_0>"):
        assert len(t(s, add_special_tokens=False)["input_ids"]) == 1, s
    return t


def save(tmp_path_factory, name, model, tok):
    path = tmp_path_factory.mktemp(name)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def llama_config(tok, **kw):
    from transformers import LlamaConfig
    kw = {"hidden_size": 32, "initializer_range": 0.3, **kw}
    return LlamaConfig(vocab_size=len(tok), num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=2 * kw["hidden_size"], max_position_embeddings=512,
                       eos_token_id=tok.eos_token_id, **kw)


@pytest.fixture(scope="module")
def orm_paths(tmp_path_factory, tok):
    """A 2-label Llama ORM and a 1-label GPT-2 reward model, neither with a pad id in its
    config."""
    from transformers import GPT2Config, GPT2ForSequenceClassification, \
        LlamaForSequenceClassification
    torch.manual_seed(0)
    llama = LlamaForSequenceClassification(llama_config(tok, num_labels=2))
    gpt2 = GPT2ForSequenceClassification(GPT2Config(
        vocab_size=len(tok), n_positions=512, n_embd=32, n_layer=2, n_head=4, num_labels=1,
        initializer_range=0.3, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id))
    assert llama.config.pad_token_id is None and gpt2.config.pad_token_id is None
    return save(tmp_path_factory, "orm2", llama, tok), save(tmp_path_factory, "orm1", gpt2, tok)


@pytest.fixture(scope="module")
def prm_paths(tmp_path_factory, tok):
    """A Math-Shepherd-style causal LM and a Qwen-PRM-style 2-label token classifier."""
    from transformers import LlamaForCausalLM, LlamaForTokenClassification
    torch.manual_seed(1)
    lm = LlamaForCausalLM(llama_config(tok, pad_token_id=tok.pad_token_id))
    head = LlamaForTokenClassification(llama_config(tok, num_labels=2,
                                                    pad_token_id=tok.pad_token_id))
    return save(tmp_path_factory, "prm-token", lm, tok), save(tmp_path_factory, "prm-head",
                                                               head, tok)


@pytest.fixture(scope="module")
def gen_lm(tmp_path_factory, tok):
    """A small Llama trained briefly to write the corpus' solutions, one per row (so that it
    answers a lone prompt), loaded back with wb.load."""
    from transformers import LlamaForCausalLM
    torch.manual_seed(2)
    model = LlamaForCausalLM(llama_config(tok, pad_token_id=tok.pad_token_id,
                                          hidden_size=64, initializer_range=0.02))
    rows = [tok(solution(a, b))["input_ids"] + [tok.eos_token_id]
            for a in range(1, 6) for b in range(2, 5)]
    n = max(map(len, rows))
    x = torch.tensor([r + [tok.pad_token_id] * (n - len(r)) for r in rows])
    labels = torch.tensor([r + [-100] * (n - len(r)) for r in rows])
    loss = fit(model, x, labels, 80, lr=1e-2)
    assert loss < 0.5, loss
    return wb.load(save(tmp_path_factory, "gen", model, tok), device="cpu")


def head_logits(model, ids):
    """Per-position logits of a sequence-classification model, by hand: its base model, then
    its score head (before the library pools them at a last token)."""
    base = getattr(model, model.base_model_prefix)
    with torch.no_grad():
        return model.score(base(input_ids=torch.tensor([ids])).last_hidden_state)[0].float()


def close(a, b, tol=1e-5):
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


# -- outcome reward models ----------------------------------------------------------------------

def test_orm_scores_are_the_head_at_the_last_token(orm_paths, tok):
    two, one = orm_paths
    orm = load_orm(two, device="cpu")
    assert isinstance(orm, OutcomeRewardModel) and orm.num_labels == 2
    assert orm.model.config.pad_token_id == tok.pad_token_id          # set when missing
    # the last text ends with the pad id (EOS): the head must still read that last token
    texts = [PROMPT + r for r in REPLIES] + ["2+2=4<|endoftext|>"]
    ref = [torch.softmax(head_logits(orm.model, tok(t)["input_ids"])[-1], -1)[1].item()
           for t in texts]
    assert close(orm.score(texts), ref)
    assert close([orm.score(t) for t in texts], ref)                  # one by one
    assert close(orm.score(texts[::-1]), ref[::-1])
    assert len(set(round(x, 6) for x in ref)) > 3                     # the test can fail
    # one label: the raw reward, or its sigmoid
    raw, p = wb.load(one, device="cpu"), load_orm(one, device="cpu", probability=True)
    assert isinstance(raw, OutcomeRewardModel) and raw.num_labels == 1
    z = [head_logits(raw.model, tok(t)["input_ids"])[-1, 0].item() for t in texts]
    assert close(raw.score(texts), z)
    assert close(p.score(texts), [1 / (1 + math.exp(-v)) for v in z])
    assert close(raw.reply_scores(PROMPT, REPLIES), z[:len(REPLIES)])  # prompt + reply


def test_orm_costs_formats_and_bad_parameters(orm_paths, tok):
    orm = load_orm(orm_paths[0], device="cpu", batch_size=2)
    texts = [PROMPT + r for r in REPLIES]
    n = sum(len(tok(t)["input_ids"]) for t in texts)
    assert orm.cost_of(texts) == wb.Cost(external_tokens=n)
    orm.score(texts)
    assert orm.spent == wb.Cost(external_tokens=n)                    # booked what it spent
    # a format of its own, and a chat template when asked for
    custom = load_orm(orm_paths[0], device="cpu", format=lambda q, y: f"{y} | {q}")
    assert custom.reply_scores(PROMPT, REPLIES[:2]) == \
        pytest.approx(orm.score([f"{y} | {PROMPT}" for y in REPLIES[:2]]), abs=1e-6)
    with pytest.raises(ValueError, match="chat"):
        load_orm(orm_paths[0], device="cpu", chat=True)               # no chat template
    chat_tok = _with_chat_template(orm_paths[0])
    chat = OutcomeRewardModel(orm.model, chat_tok, chat=True)
    text = chat.format(PROMPT, REPLIES[0])
    assert text == f"<|user|>\n{PROMPT}\n<|assistant|>\n{REPLIES[0]}\n"
    assert chat.reply_scores(PROMPT, REPLIES[:1]) == pytest.approx(orm.score([text]), abs=1e-6)
    with pytest.raises(ValueError, match="good_label"):
        load_orm(orm_paths[0], device="cpu", good_label=2)
    with pytest.raises(ValueError, match="batch_size"):
        OutcomeRewardModel(orm.model, tok, batch_size=0)


CHAT = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


def _with_chat_template(path):
    from transformers import AutoTokenizer
    t = AutoTokenizer.from_pretrained(path)
    t.chat_template = CHAT
    return t


# -- process reward models ----------------------------------------------------------------------

def steps_of(reply, split="\n"):
    return [s.strip() for s in reply.split(split) if s.strip()] or [""]


def test_token_prm_reads_good_vs_bad_at_each_step_tag(prm_paths, tok):
    prm = load_prm(prm_paths[0], kind="token", device="cpu", batch_size=2)
    assert isinstance(prm, ProcessRewardModel)
    tag, good, bad = (tok.convert_tokens_to_ids(t) for t in ("ки", "+", "-"))
    ref = []
    for r in REPLIES:   # Math-Shepherd's input: "{question} {step} ки\n{step} ки"
        ids = tok(PROMPT.rstrip() + " " + "\n".join(f"{s} ки" for s in steps_of(r)))["input_ids"]
        with torch.no_grad():
            logits = prm.model(input_ids=torch.tensor([ids])).logits[0]
        at = [i for i, t in enumerate(ids) if t == tag]
        ref.append(torch.softmax(logits[at][:, [good, bad]], -1)[:, 0].tolist())
    got = prm.step_scores(PROMPT, REPLIES)
    assert [len(s) for s in got] == [2, 2, 1, 1, 3]                   # empty steps dropped
    assert all(close(g, r) for g, r in zip(got, ref))
    assert all(close(prm.step_scores(PROMPT, [r])[0], s) for r, s in zip(REPLIES, ref))
    assert close(prm.reply_scores(PROMPT, REPLIES), [min(s) for s in ref])
    n = sum(len(tok(PROMPT.rstrip() + " " + "\n".join(f"{s} ки" for s in steps_of(r)))
                ["input_ids"]) for r in REPLIES)
    assert prm.step_cost(PROMPT, REPLIES) == wb.Cost(external_tokens=n)
    assert prm.spent == wb.Cost(external_tokens=3 * n)                # three calls so far
    # "\n\n" steps
    two = load_prm(prm_paths[0], kind="token", device="cpu", step_split="\n\n")
    assert [len(s) for s in two.step_scores(PROMPT, REPLIES)] == [1, 2, 1, 1, 1]


def test_head_prm_reads_the_good_label_at_each_separator(prm_paths, tok):
    prm = load_prm(prm_paths[1], kind="head", device="cpu", reduce="prod")
    sep = tok.convert_tokens_to_ids("<extra_0>")

    def ref(model, text):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        return torch.softmax(logits[[i for i, t in enumerate(ids) if t == sep]], -1)[:, 1].tolist()

    want = [ref(prm.model, PROMPT + "".join(s + "<extra_0>" for s in steps_of(r)))
            for r in REPLIES]                                          # no chat template
    assert all(close(g, w) for g, w in zip(prm.step_scores(PROMPT, REPLIES), want))
    assert close(prm.score([PROMPT + REPLIES[0]]), [math.prod(ref(
        prm.model, "".join(s + "<extra_0>" for s in steps_of(PROMPT + REPLIES[0]))))])
    # Qwen2.5-Math-PRM's format: system, user, assistant with a separator after every step
    chat = ProcessRewardModel(prm.model, _with_chat_template(prm_paths[1]), kind="head")
    text = chat.format(PROMPT, steps_of(REPLIES[4]))
    assert text == ("<|system|>\nPlease reason step by step, and put your final answer within "
                    "\\boxed{}.\n<|user|>\n" + PROMPT + "\n<|assistant|>\n"
                    "7+1=8<extra_0>8-2=6<extra_0>A: 6<extra_0>\n")
    assert close(chat.step_scores(PROMPT, [REPLIES[4]])[0], ref(prm.model, text))

    class TupleOut(torch.nn.Module):   # remote-code PRMs return a tuple (logits, ...)
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, **kw):
            return (self.inner(**kw).logits, None)

    tup = ProcessRewardModel(TupleOut(prm.model), tok, kind="head")
    assert all(close(g, w) for g, w in zip(tup.step_scores(PROMPT, REPLIES), want))
    with pytest.raises(ValueError, match="step marks"):
        prm.step_scores("Q: <extra_0>\n", REPLIES[:1])


def test_prm_bad_parameters_are_named(prm_paths, tok):
    path = prm_paths[0]
    for kw, name in [({"tag": "кк"}, "tag"), ({"good": "Yes No"}, "good"),
                     ({"bad": ""}, "bad"), ({"good": "+", "bad": "+"}, "good and bad"),
                     ({"reduce": "max"}, "reduce"), ({"step_split": ""}, "step_split"),
                     ({"chat": True}, "chat")]:
        with pytest.raises(ValueError, match=name):
            load_prm(path, kind="token", device="cpu", **kw)
    with pytest.raises(ValueError, match="separator"):
        load_prm(prm_paths[1], kind="head", device="cpu", separator="<sep>")
    with pytest.raises(ValueError, match="kind"):
        load_prm(path, kind="value", device="cpu")
    with pytest.raises(ValueError, match="2 logits"):   # a causal LM read as a 'head' PRM
        ProcessRewardModel(load_prm(path, device="cpu").model, tok,
                           kind="head").step_scores(PROMPT, REPLIES[:1])


# -- LLM as a judge -----------------------------------------------------------------------------

def test_judge_is_p_yes_over_p_yes_plus_no(gen_lm, tok):
    judge = LLMJudge(gen_lm, batch_size=2)
    yes, no = (tok.convert_tokens_to_ids(t) for t in ("ĠYes", "ĠNo"))

    def ref(text):
        with torch.no_grad():
            p = torch.softmax(gen_lm.model(input_ids=torch.tensor([gen_lm.encode(text)]))
                              .logits[0, -1].float(), -1)
        return (p[yes] / (p[yes] + p[no])).item()

    q = "\n\nIs this solution correct? Answer Yes or No.\nAnswer:"
    want = [ref(PROMPT + r + q) for r in REPLIES]
    assert close(judge.reply_scores(PROMPT, REPLIES), want)
    assert close([judge.reply_scores(PROMPT, [r])[0] for r in REPLIES], want)
    assert close(judge.score([PROMPT + r for r in REPLIES]), want)
    n = sum(len(gen_lm.encode(PROMPT + r + q)) for r in REPLIES)
    assert judge.cost_of([PROMPT + r for r in REPLIES]) == wb.Cost(external_tokens=n)
    assert judge.spent == wb.Cost(external_tokens=3 * n)
    # a step value: each prefix of steps judged by the step template
    s = "\n\nAre the steps so far correct? Answer Yes or No.\nAnswer:"
    got = judge.step_scores(PROMPT, REPLIES[4:] + REPLIES[3:4])
    assert close(got[0], [ref(PROMPT + p + s) for p in ("7+1=8", "7+1=8\n8-2=6", REPLIES[4])])
    assert close(got[1], [ref(PROMPT + s)])                            # no step: one judgement
    # with a chat template the judge prompt is the user's turn
    chat = LLMJudge(wb.LanguageModel(gen_lm.model, _with_chat_template_of(tok)), yes=" Yes")
    assert chat.judge_prompt(PROMPT, "A: 5") == \
        f"<|user|>\n{PROMPT}A: 5{q}\n<|assistant|>\n"
    assert close(chat.reply_scores(PROMPT, ["A: 5"]), [ref(chat.judge_prompt(PROMPT, "A: 5"))])


def _with_chat_template_of(tok):
    import copy
    t = copy.deepcopy(tok)
    t.chat_template = CHAT
    return t


def test_judge_c_s_is_table5s_tokens_per_judgement(gen_lm, tok):
    """C_s(T_in + T) predicts what one judgement reads (T_in counted with BOS, as chapters do),
    with and without a chat template; best-of-N's bill is then N·C_s of the mean length."""
    for judge in (LLMJudge(gen_lm),
                  LLMJudge(wb.LanguageModel(gen_lm.model, _with_chat_template_of(tok)))):
        for r in REPLIES[:3]:
            n = len(gen_lm.encode(PROMPT)) + len(gen_lm.encode(r, bos=False))
            assert judge.c_s(n) == judge.reply_cost(PROMPT, [r]).external_tokens
    assert LLMJudge(gen_lm).c_s(10) - 10 == len(gen_lm.encode(
        "\n\nIs this solution correct? Answer Yes or No.\nAnswer:", bos=False))


def test_judge_bad_parameters_are_named(gen_lm):
    for kw, name in [({"yes": " Yes indeed"}, "yes"), ({"no": ""}, "^no"),
                     ({"yes": " No"}, "yes and no"), ({"template": "Is it right?"}, "template"),
                     ({"step_template": "{prompt}"}, "step_template"),
                     ({"step_split": ""}, "step_split"), ({"chat": True}, "chat")]:
        with pytest.raises(ValueError, match=name):
            LLMJudge(gen_lm, **kw)
    with pytest.raises(TypeError, match="lm"):
        LLMJudge("gpt2")


# -- in the meta-generators ---------------------------------------------------------------------

def test_as_verifiers_in_best_of_n_voting_and_refinement(gen_lm, orm_paths, prm_paths):
    gen = meta.LMGenerator(gen_lm, stop="\n\n", max_new_tokens=16)
    orm, rm1 = load_orm(orm_paths[0], device="cpu"), load_orm(orm_paths[1], device="cpu")
    prm, judge = load_prm(prm_paths[1], kind="head", device="cpu"), LLMJudge(gen_lm)
    for v in (orm, rm1, prm, judge):
        r = meta.best_of_n(PROMPT, gen, scoring.VerifierScorer(v), 4, seed=0)
        texts = [c.text for c in r.candidates]
        assert r.scores == pytest.approx(v.reply_scores(PROMPT, texts), abs=1e-6)
        assert r.text == texts[max(range(4), key=lambda i: (r.scores[i], -i))]
        assert r.cost.external_tokens == v.reply_cost(PROMPT, texts).external_tokens > 0
        w = meta.weighted_vote(PROMPT, gen, scoring.VerifierScorer(v), 4, seed=0)
        assert w.answer is not None and sum(w.votes.values()) == pytest.approx(
            sum(s for s, a in zip(w.scores, w.info["answers"]) if a is not None))
        j = scoring.JointScorer(v)(PROMPT, r.candidates)[0]
        assert j == pytest.approx([scoring.joint_log_score(c.logprob, s)
                                   for c, s in zip(r.candidates, r.scores)])
        vv = values.verifier_value(v)
        parts = [meta.Partial(t) for t in texts]
        assert vv(PROMPT, parts)[0] == pytest.approx(r.scores, abs=1e-6)
        assert vv.cost_of(PROMPT, parts) == v.reply_cost(PROMPT, texts)
    h = meta.verifier_feedback(judge, threshold=0.5)
    z = h(PROMPT, ["2+3=5\nA: 5"], [])
    assert z.info["p_correct"] == pytest.approx(judge.score([PROMPT + "2+3=5\nA: 5"])[0])
    assert z.cost == judge.cost_of([PROMPT + "2+3=5\nA: 5"]) and z.done == (z.info["p_correct"]
                                                                            >= 0.5)
    r = meta.refine(PROMPT, gen, meta.verifier_feedback(judge, threshold=1.0),
                    meta.resample(gen), max_iterations=2, seed=0)
    assert r.info["stopped"] in ("max_iterations", "no change")
    assert r.cost.external_tokens == sum(
        judge.cost_of([PROMPT + t]).external_tokens for t in r.info["versions"][:len(
            r.info["feedback"])])


def test_as_step_values_in_step_level_beam_search(gen_lm, prm_paths, orm_paths):
    token_prm = load_prm(prm_paths[0], kind="token", device="cpu")
    head_prm = load_prm(prm_paths[1], kind="head", device="cpu")
    judge, orm = LLMJudge(gen_lm), load_orm(orm_paths[0], device="cpu")
    for prm, reduce in ((token_prm, "last"), (head_prm, "min"), (judge, "mean")):
        value = values.prm_value(prm, reduce)
        r = meta.stepwise_beam(PROMPT, meta.LMStepper(gen_lm, max_step_tokens=10), value,
                               beam_size=2, expansions=2, max_steps=3, seed=0)
        scored = [n for n in r.tree[1:] if n.value is not None]
        assert len(scored) >= 4 and r.text
        texts = [r.solution(n.id) for n in scored]
        steps = prm.step_scores(PROMPT, texts)
        red = {"last": lambda s: s[-1], "min": min, "mean": lambda s: sum(s) / len(s)}[reduce]
        assert [n.value for n in scored] == pytest.approx([red(s) for s in steps], abs=1e-6)
        assert r.cost.external_tokens == prm.step_cost(PROMPT, texts).external_tokens
        parts = [meta.Partial(t) for t in texts]
        assert value.cost_of(PROMPT, parts) == prm.step_cost(PROMPT, texts)
    both = values.terminal_value(values.verifier_value(orm), values.prm_value(head_prm))
    r = meta.stepwise_beam(PROMPT, meta.LMStepper(gen_lm, max_step_tokens=10), both,
                           beam_size=2, expansions=2, max_steps=3, seed=0,
                           budget=wb.Budget(external_tokens=10**6))
    assert r.text and r.cost.external_tokens > 0


# -- what must not change -----------------------------------------------------------------------

def old_step_scores(prm, prompt, texts):
    """`scoring.ProcessScorer.step_scores` before Hub PRMs (TinyWorld's TokenScorer path)."""
    rows = [prm.encode(prompt + t) for t in texts]
    probs = prm.position_probs(rows)
    n_prompt = len(prm.encode(prompt))
    out = []
    for ids, p in zip(rows, probs):
        ends = [i for i in range(n_prompt, len(ids))
                if prm.tokenizer.decode([ids[i]]).endswith("\n")]
        if not ends or ends[-1] != len(ids) - 1:
            ends.append(len(ids) - 1)
        out.append([p[i] for i in ends])
    return out


def test_tinyworld_prm_path_is_unchanged():
    prm = wb.load("tinyworld-prm", device="cpu")
    prompt = "Q: 2*3+4\n"
    texts = ["2*3=6\n6+4=10\nA: 10", "2*3=6\n6+4=11\nA: 11\n", "2*3=5\n", ""]
    old = old_step_scores(prm, prompt, texts)
    assert scoring.ProcessScorer(prm).step_scores(prompt, texts) == old  # bit for bit
    outs = [meta.TextOutput(t) for t in texts]
    for reduce, red in (("min", min), ("last", lambda s: s[-1]), ("prod", math.prod)):
        vals, cost = scoring.ProcessScorer(prm, reduce)(prompt, outs)
        assert vals == [red(s) for s in old]
        assert cost == prm.cost_of([prompt + t for t in texts])
    value = values.prm_value(prm)
    parts = [meta.Partial(t) for t in texts]
    assert value(prompt, parts)[0] == [s[-1] for s in old]
    assert value.cost_of(prompt, parts) == prm.cost_of([prompt + t for t in texts])


class _Recorder:
    """A reward model that records the prompts it is shown."""
    name = "recorder"

    def __init__(self):
        self.seen = []

    def reply_scores(self, prompt, replies):
        self.seen.append(prompt)
        return [0.5] * len(replies)

    def reply_cost(self, prompt, replies):
        return wb.Cost(external_tokens=len(replies))

    def step_scores(self, prompt, replies):
        self.seen.append(prompt)
        return [[0.5] for _ in replies]

    def step_cost(self, prompt, replies):
        return wb.Cost(external_tokens=len(replies))


def test_for_task_shows_the_question_not_the_policys_chat():
    """A policy's chat-templated prompt reaches the reward model as the bare question (no chat
    inside its own chat); the problem is found from the prompt by the task."""
    from workbench import meta, reward_models as rm, scoring, tasks
    task = tasks.load("gsm8k", source="local")
    p = task.problems[2]
    policy_prompt = f"<|system|>\nbe helpful\n<|user|>\n{task.user_message(p)}\n<|assistant|>\n"
    rec = _Recorder()
    wrapped = rm.for_task(rec, task)
    gen = meta.TextGenerator(lambda prompt, seed: "The answer is 3.")
    scores, cost = scoring.VerifierScorer(wrapped)(policy_prompt, gen.generate(policy_prompt, 2))
    assert scores == [0.5, 0.5] and cost.external_tokens == 2
    assert scoring.ProcessScorer(wrapped, "min").step_scores(policy_prompt, ["a\nb"]) == [[0.5]]
    assert rec.seen == [p.question + "\n"] * 2
    with pytest.raises(ValueError, match="prompt"):
        wrapped.reply_scores("a prompt that asks nothing of this task", ["x"])
