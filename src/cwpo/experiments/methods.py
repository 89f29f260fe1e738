"""A method is data: (label source, weighting, loss). Adding one never adds code.

Label sources:
* ``human``: the human labels of D_u (hidden from the annotator, used by the Human baseline).
* ``human_all``: human labels of D_l ∪ D_u (the "Human 100%" comparison, paper Table 3).
* ``human_labeled``: human labels of D_l alone (DPO on the labelled share, paper Fig. 3).
* ``weak``: the labels (and confidences) of the weak BT/PairRM annotator on D_u.
* ``weak_dpo``: labels of a WS-DPO annotator (Tao & Li: the weak LM trained with SFT+DPO on D_l).

Weightings are names understood by :func:`cwpo.weighting.get_weighting` (``none``,
``confidence``, ``top-30`` ...). Losses are the names of :data:`cwpo.losses.LOSS_REGISTRY`
(``dpo``, ``ipo``, ``rdpo``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cwpo.errors import ConfigError
from cwpo.losses import LOSS_NAMES
from cwpo.weighting import get_weighting

LABEL_SOURCES = ("human", "human_all", "human_labeled", "weak", "weak_dpo")
LOSSES = LOSS_NAMES


@dataclass(frozen=True)
class Method:
    labels: str
    weighting: str = "none"
    loss: str = "dpo"
    title: str = ""

    def validate(self, name: str) -> None:
        errors = []
        if self.labels not in LABEL_SOURCES:
            errors.append(f"labels must be one of {LABEL_SOURCES}, got {self.labels!r}")
        if self.loss not in LOSSES:
            errors.append(f"loss must be one of {LOSSES}, got {self.loss!r}")
        try:
            get_weighting(self.weighting)
        except Exception as e:  # noqa: BLE001 - report every problem as a config error
            errors.append(str(e))
        if errors:
            raise ConfigError(f"method {name!r}: " + "; ".join(errors))

    def to_dict(self) -> dict:
        return asdict(self)


# The paper's methods and baselines, by the names used in results and benchmark keys.
METHODS: dict[str, Method] = {
    "human": Method("human", "none", "dpo", "Human-DPO"),
    "ws": Method("weak", "none", "dpo", "WS-DPO (weak labels, weight 1)"),
    "cw": Method("weak", "confidence", "dpo", "CW-DPO"),
    "human100": Method("human_all", "none", "dpo", "Human-DPO on 100%"),
    "human_dl": Method("human_labeled", "none", "dpo", "Human-DPO on D_l alone"),
    "top30": Method("weak", "top-30", "dpo", "Top-30% confident, DPO"),
    "top40": Method("weak", "top-40", "dpo", "Top-40% confident, DPO"),
    "top50": Method("weak", "top-50", "dpo", "Top-50% confident, DPO"),
    "top75": Method("weak", "top-75", "dpo", "Top-75% confident, DPO"),
    "wsdpo": Method("weak_dpo", "none", "dpo", "WS-DPO (Tao & Li annotator)"),
    "human_ipo": Method("human", "none", "ipo", "Human-IPO"),
    "ws_ipo": Method("weak", "none", "ipo", "WS-IPO"),
    "cw_ipo": Method("weak", "confidence", "ipo", "CW-IPO"),
    "human_rdpo": Method("human", "none", "rdpo", "Human-rDPO"),
    "ws_rdpo": Method("weak", "none", "rdpo", "WS-rDPO"),
    "cw_rdpo": Method("weak", "confidence", "rdpo", "CW-rDPO"),
}


def resolve_methods(spec) -> dict[str, Method]:
    """A list of known names, or a mapping name -> known name or {labels, weighting, loss}."""
    if spec is None:
        spec = ["human", "ws", "cw"]
    if not isinstance(spec, list | dict):
        raise ConfigError(
            f"methods: expected a list of method names or a mapping name -> method, got "
            f"{type(spec).__name__} {spec!r} (write methods: [{spec}] for one method)"
        )
    out: dict[str, Method] = {}
    items = [(n, n) for n in spec] if isinstance(spec, list) else list(spec.items())
    for name, value in items:
        if isinstance(value, str):
            if value not in METHODS:
                raise ConfigError(
                    f"unknown method {value!r}; known: {sorted(METHODS)} (or give labels/weighting/loss)"
                )
            method = METHODS[value]
        elif isinstance(value, dict):
            unknown = set(value) - {"labels", "weighting", "loss", "title"}
            if unknown:
                raise ConfigError(f"method {name!r}: unknown key(s) {sorted(unknown)}")
            method = Method(**value)
        else:
            raise ConfigError(f"method {name!r}: expected a name or a mapping, got {value!r}")
        method.validate(name)
        out[str(name)] = method
    return out
