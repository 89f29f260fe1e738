"""``cwpo train-annotator``: train the weak annotator on labeled pairs (thin wrapper)."""

from __future__ import annotations

HELP = (
    "Train the weak annotator on human-labeled pairs D_l: bt (Bradley-Terry scalar head, the paper's "
    "default), pairrm (joint encoding, BCE on both orders) or dpo (WS-DPO: SFT then DPO of a causal LM). "
    "Writes an annotator directory (model, tokenizer, annotator.json, metrics.json, manifest.json)."
)


def configure(parser) -> None:
    from cwpo.annotator.train import TrainAnnotatorConfig
    from cwpo.config import add_config_args

    add_config_args(parser, TrainAnnotatorConfig)


def run(args) -> int:
    from cwpo.annotator.train import TrainAnnotatorConfig, train_annotator
    from cwpo.config import config_from_args

    cfg = config_from_args(TrainAnnotatorConfig, args)
    metrics = train_annotator(cfg)
    print(f"annotator ({cfg.objective}, {cfg.backbone}) written to {cfg.output}")
    print(
        f"  {metrics['n_train']} training pairs, {metrics['train_steps']} steps, {metrics['train_time_s']:.1f} s"
    )
    if "eval" in metrics:
        ev = metrics["eval"]
        print(
            f"  held-out: accuracy {metrics['eval_accuracy']:.4f}, top-30% accuracy {metrics['eval_accuracy_top30']:.4f}, "
            f"ECE {ev['ece']:.4f} (temperature {metrics['temperature']:.3f}, n={ev['n']})"
        )
    return 0
