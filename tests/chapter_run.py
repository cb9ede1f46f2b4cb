"""Run a chapter's code cells in this process with other parameters (``MODEL``, ``TASK``, ...),
and build the small foreign models that stand in for a learner's Hub model in those runs."""
from __future__ import annotations

import re
from pathlib import Path

import torch

from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


def run_chapter(chapter: str, monkeypatch, **params) -> dict:
    """Execute ``notebooks/src/<chapter>.py``'s code cells top to bottom (the Colab set-up
    cell skipped) with each ``NAME = ...`` parameter line replaced by ``params[NAME]``; returns
    the namespace."""
    build = load_script("build_notebooks")
    src = ROOT / "notebooks" / "src" / f"{chapter}.py"
    monkeypatch.chdir(ROOT / "notebooks")
    ns, seen = {}, set()
    for cell in build.parse(src.read_text(), src.stem):
        if cell.cell_type != "code" or "google.colab" in cell.source:
            continue
        code = cell.source
        for name, value in params.items():
            code, n = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", code, flags=re.M)
            seen |= {name} if n else set()
        exec(compile(code, src.name, "exec"), ns)
    assert seen == set(params), f"{chapter} has no parameter line for {set(params) - seen}"
    return ns


def train_foreign(path: Path, text: str, chat: bool = False, steps: int = 150):
    """A GPT-2 with its own byte-level BPE (not TinyWorld's vocabulary) that memorises
    ``text``, saved with save_pretrained at ``path`` (with a chat template when ``chat``).
    Its vocabulary has " Yes" and " No" as single tokens, as every Hub model's does, so the
    chapters can ask it as a judge (`reward_models.LLMJudge`)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([text] * 4 + [" Yes No"] * 64, vocab_size=400,
                            special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>",
                                  pad_token="<|endoftext|>")
    for word in (" Yes", " No"):
        assert len(tok(word, add_special_tokens=False)["input_ids"]) == 1, word
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=2048, n_embd=64,
                                       n_layer=2, n_head=4, bos_token_id=tok.eos_token_id,
                                       eos_token_id=tok.eos_token_id))
    x = torch.tensor([tok(text)["input_ids"]])
    loss = fit(model, x, x, steps, lr=3e-3)
    assert loss < 0.1, loss
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def fit(model, input_ids, labels, steps: int, lr: float) -> float:
    """Train ``model`` on one batch for ``steps`` AdamW steps; the last loss."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = model(input_ids=input_ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()
