"""TinyWorld's tokenizer: byte-level BPE trained on the corpus with Hugging Face ``tokenizers``.

Digits are split one per token (as in Llama), so arithmetic is learnable by a small model, while
words get real multi-character subwords, so token-boundary effects such as the one token healing
fixes (survey Figure 3) exist.  ``[CALC]`` and ``[/CALC]`` are single tokens (the tool call).
"""
from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from .arithmetic import CALL_CLOSE, CALL_OPEN
from .corpus import documents

SPECIAL = ["<pad>", "<s>", "</s>"]
VOCAB_SIZE = 1024


def train_tokenizer(out_dir: Path, n_docs: int = 60_000, seed: int = 99, vocab_size=VOCAB_SIZE):
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL, min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    docs = documents(seed)
    tok.train_from_iterator((next(docs) for _ in range(n_docs)), trainer=trainer)
    tok.add_tokens([CALL_OPEN, CALL_CLOSE])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", padding_side="left",
                                   model_max_length=1024, clean_up_tokenization_spaces=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    return fast
