"""The weak annotator: train it on D_l (BT, PairRM or WS-DPO) and label D_u with a confidence."""

from cwpo.annotator.calibration import calibration_report, fit_temperature
from cwpo.annotator.encoding import encode_pairs
from cwpo.annotator.model import Annotator, check_annotator_dir, load_annotator
from cwpo.annotator.reward_model_losses import bt_loss, pairrm_loss
from cwpo.annotator.score import AnnotateConfig, annotate
from cwpo.annotator.train import TrainAnnotatorConfig, train_annotator

__all__ = [
    "AnnotateConfig",
    "Annotator",
    "TrainAnnotatorConfig",
    "annotate",
    "bt_loss",
    "calibration_report",
    "check_annotator_dir",
    "encode_pairs",
    "fit_temperature",
    "load_annotator",
    "pairrm_loss",
    "train_annotator",
]
