"""Build TinyWorld and train its model zoo on this machine (CPU), then evaluate and write cards.

    python scripts/train_zoo.py              # everything missing, resumably
    python scripts/train_zoo.py --evaluate   # only (re)write metrics.json and the model cards
    python scripts/train_zoo.py --evaluate-verifiers   # after retraining the verifier and PRM
    python scripts/train_zoo.py --smoke      # a few steps of every stage into a temp dir (CI)

Stages: tokenizer and task sets -> target and draft LMs -> positive/negative experts ->
attribute classifier -> the target's own solutions -> verifier and PRM -> evaluation.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build_world(data: Path):
    from workbench.tinyworld.tasks import write_tasks
    from workbench.tinyworld.tokenizer import train_tokenizer
    if not (data / "tokenizer" / "tokenizer.json").exists():
        train_tokenizer(data / "tokenizer")
    write_tasks(data / "tasks")
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(data / "tokenizer")


def smoke(tmp: Path):
    """Every training stage for a few steps on tiny models: proves the code runs (CI)."""
    os.environ["WORKBENCH_DATA"] = str(tmp)
    from workbench.tinyworld import zoo
    from workbench.tinyworld.train import ModelSpec, TrainSpec
    (tmp / "tokenizer").mkdir(parents=True, exist_ok=True)
    import shutil
    shutil.copytree(ROOT / "data" / "tokenizer", tmp / "tokenizer", dirs_exist_ok=True)
    tok = build_world(tmp)
    zoo.TARGET = zoo.DRAFT = ModelSpec(32, 1, 2, 64, max_position_embeddings=256)
    for name in zoo.PLAN:
        zoo.PLAN[name] = TrainSpec(steps=3, batch_size=4, lr=1e-3, warmup=1, seed=0)
    zoo.SAMPLE_PROBLEMS, zoo.SAMPLES_PER_TEMP = 4, 1
    # a 3-step model solves nothing: add a right and a wrong solution so that the verifier
    # and the PRM see both classes
    sample = zoo.sample_solutions
    extra = [{"expression": "2+3", "prompt": "Q: 2+3\n", "text": t, "temperature": 1.0}
             for t in ("2+3=5\nA: 5", "2+3=6\nA: 6")]
    zoo.sample_solutions = lambda path: sample(path) + extra
    os.chdir(tmp)
    zoo.train_language_models(tok)
    zoo.train_experts(tok)
    zoo.train_classifier(tok)
    zoo.train_verifiers(tok)
    return sorted(p.name for p in (tmp / "models").iterdir())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--evaluate", action="store_true", help="only evaluate and write cards")
    ap.add_argument("--evaluate-verifiers", action="store_true",
                    help="only re-evaluate what the verifier and PRM change")
    ap.add_argument("--smoke", metavar="DIR", help="run every stage briefly in DIR")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.smoke:
        print("smoke-trained:", smoke(Path(args.smoke)))
        return
    from workbench.paths import data_dir
    from workbench.tinyworld import zoo
    from workbench.tinyworld.cards import evaluate_verifiers, evaluate_zoo
    if args.evaluate_verifiers:
        evaluate_verifiers()
        return
    tok = build_world(data_dir())
    t0 = time.time()
    if not args.evaluate:
        zoo.train_language_models(tok)
        zoo.train_experts(tok)
        zoo.train_classifier(tok)
        zoo.train_verifiers(tok)
    print(f"training stages done in {time.time() - t0:.0f} s")
    evaluate_zoo()
    (zoo.models_dir() / "ZOO_READY").write_text("all models trained and evaluated\n")


if __name__ == "__main__":
    main()
