"""``cwpo annotate``: label pairs with a trained weak annotator and a confidence (thin wrapper)."""

from __future__ import annotations

HELP = (
    "Label pairs with a weak annotator: chosen = the higher-scored response, margin = |score difference|, "
    "confidence = tanh(margin/2). Resumable (chunks written atomically), works under accelerate launch."
)
ON_INTERRUPT = "completed chunks are kept and a re-run resumes"


def configure(parser) -> None:
    from cwpo.annotator.score import AnnotateConfig
    from cwpo.config import add_config_args

    add_config_args(parser, AnnotateConfig)


def run(args) -> int:
    from cwpo.annotator.score import AnnotateConfig, annotate
    from cwpo.config import config_from_args

    cfg = config_from_args(AnnotateConfig, args)
    if cfg.llm_url:
        return _run_llm(cfg)
    stats = annotate(
        cfg.annotator,
        cfg.input,
        cfg.output,
        batch_size=cfg.batch_size,
        chunk_size=cfg.chunk_size,
        too_long=cfg.too_long,
        dtype=cfg.dtype,
        progress=cfg.progress,
        overwrite=cfg.overwrite,
    )
    if "n_output" in stats:
        line = f"{stats['n_output']} of {stats['n_input']} pairs labeled into {stats['output']}"
        line += f" ({stats['truncated']} truncated, {stats['dropped_too_long']} dropped as too long)"
        details = []
        if stats.get("resumed_chunks") and not stats.get("cached"):
            details.append(
                f"  resumed: {stats['resumed_chunks']} of {stats['n_chunks']} chunks reused from an interrupted run"
            )
        _print_result(line, details, stats)
    return 0


def _print_result(line: str, details: list[str], stats: dict) -> None:
    """The result line, its details, and (when known) the agreement with the input's human labels."""
    print(line + (" [already up to date]" if stats.get("cached") else ""))
    for detail in details:
        print(detail)
    if stats.get("human_agreement") is not None:
        print(f"  agreement with the {stats['n_human_labels']} human labels: {stats['human_agreement']:.4f}")


def _run_llm(cfg) -> int:
    from cwpo.annotator.llm import LLMAnnotatorConfig, annotate_llm
    from cwpo.models.registry import cache_dir

    llm = LLMAnnotatorConfig(
        url=cfg.llm_url,
        model=cfg.llm_model,
        template=cfg.llm_template,
        probability=cfg.llm_probability,
        samples=cfg.llm_samples,
        sample_temperature=cfg.llm_sample_temperature,
        timeout=cfg.llm_timeout,
        retries=cfg.llm_retries,
        rate_limit=cfg.llm_rate_limit,
    )
    stats = annotate_llm(
        llm,
        cfg.input,
        cfg.output,
        calibration=cfg.calibration or None,
        key=cfg.llm_key,
        cache_dir=cache_dir() / "llm-annotator",
        overwrite=cfg.overwrite,
        progress=cfg.progress,
    )
    line = f"{stats['n_output']} of {stats['n_input']} pairs labeled by {stats['annotator']} into {stats['output']}"
    line += f" (P(A) from {stats['probability_source']}; {stats['n_unparsed']} without a verdict left out)"
    details = []
    if stats["calibration"]:
        before, after = stats["calibration"]["before"], stats["calibration"]["after"]
        details.append(
            f"  temperature {stats['temperature']:.3g} fitted on {stats['n_calibration']} labelled pairs: "
            f"ECE {before['ece']:.3f} -> {after['ece']:.3f}, accuracy {after['accuracy']:.3f}"
        )
    _print_result(line, details, stats)
    return 0
