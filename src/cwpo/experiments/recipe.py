"""YAML recipes: a whole pipeline (or a grid of them) in one validated file.

A recipe names the track (``pairs``: real preference data such as HH-RLHF; ``sentiment``: IMDb
prompts, pairs sampled from the SFT model, a gold reward and simulated humans), one section of
settings per stage (the fields of that stage's config, minus the file paths the runner wires
together), the methods to compare and a grid (``seeds`` and dotted paths to sweep, e.g.
``sentiment.human_temperature: [0.0, 0.1, 0.3]``). Every problem in a recipe is reported at once,
before any heavy work.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cwpo.config import coerce, load_yaml
from cwpo.data.prepare import DataConfig
from cwpo.errors import ConfigError, CWPOError
from cwpo.experiments.methods import Method, resolve_methods
from cwpo.experiments.sentiment import SentimentConfig
from cwpo.experiments.tracks import TRACKS

# fields the runner sets itself (paths between stages, the loss/weighting of a method, the seed)
MANAGED = {
    "data": {"output", "seed"},
    "annotator": {"train", "output", "eval", "seed"},
    "wsdpo_annotator": {"train", "output", "eval", "seed", "objective"},
    "annotate": {"annotator", "input", "output"},
    "sft": {"train", "model", "output", "seed", "resume"},
    "align": {"train", "policy", "output", "loss", "weighting", "seed", "resume"},
    "evaluate": {"policy", "reference", "prompts", "output", "pairs", "seed"},
    "sentiment": set(),
}
SECTIONS = tuple(MANAGED)


@dataclass
class Recipe:
    name: str = "experiment"
    description: str = ""
    track: str = "pairs"
    strong_model: str = "smollm2-135m-instruct"
    seeds: list = field(default_factory=lambda: [0])
    # other seeds for some methods (e.g. 5 for the headline comparison, ``seeds`` for the rest)
    method_seeds: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    methods: list | dict | None = None
    sft_data: str = "weak"  # pairs track: SFT on weak y_w of D_u (paper) or "labeled" (D_l chosen)
    annotator_only: bool = False  # data, annotator and annotate only: one row per grid point, no methods
    data: dict = field(default_factory=dict)
    sentiment: dict = field(default_factory=dict)
    annotator: dict = field(default_factory=dict)
    wsdpo_annotator: dict = field(default_factory=dict)
    annotate: dict = field(default_factory=dict)
    sft: dict = field(default_factory=dict)
    align: dict = field(default_factory=dict)
    evaluate: dict = field(default_factory=dict)
    paper: dict = field(default_factory=dict)  # the paper's numbers to print beside ours in the report

    def __post_init__(self):
        """Convert what converts (``lr: 1e-5`` is a string to YAML); :func:`validate` reports the rest."""
        values, _ = coerce(Recipe, {f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        classes = _config_classes()
        for name, value in values.items():
            if name in classes and isinstance(value, dict):
                value = coerce(classes[name], value)[0]
            setattr(self, name, value)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _config_classes() -> dict:
    from cwpo.align.align import AlignConfig
    from cwpo.align.sft import SFTConfig
    from cwpo.annotator.score import AnnotateConfig
    from cwpo.annotator.train import TrainAnnotatorConfig
    from cwpo.evaluate.evaluate import EvalConfig

    return {
        "data": DataConfig,
        "annotator": TrainAnnotatorConfig,
        "wsdpo_annotator": TrainAnnotatorConfig,
        "annotate": AnnotateConfig,
        "sft": SFTConfig,
        "align": AlignConfig,
        "evaluate": EvalConfig,
        "sentiment": SentimentConfig,
    }


def _placeholders(section: str, tmp: Path) -> dict:
    """Valid stand-ins for the managed fields, so that a section can be validated on its own."""
    f = str(tmp / "placeholder.jsonl")
    return {
        "data": {"output": str(tmp / "o"), "source": "placeholder"},
        "annotator": {"train": f, "output": str(tmp / "o")},
        "wsdpo_annotator": {"train": f, "output": str(tmp / "o"), "objective": "dpo"},
        "annotate": {"annotator": str(tmp), "input": f, "output": str(tmp / "o.jsonl")},
        "sft": {"train": f, "output": str(tmp / "o")},
        "align": {"train": f, "policy": "smollm2-135m-instruct", "output": str(tmp / "o")},
        "evaluate": {"policy": "p", "reference": "r", "prompts": f, "output": str(tmp / "o"), "pairs": f},
        "sentiment": {},
    }[section]


def settable(section: str, classes: dict) -> list[str]:
    """The settings a recipe may give in ``section`` (its config's fields minus the managed ones)."""
    return sorted({f.name for f in dataclasses.fields(classes[section]) if f.init} - MANAGED[section])


def _section_errors(section: str, values: dict, classes: dict, tmp: Path) -> list[str]:
    """Every problem of one section's settings, checked by building its stage config."""
    managed = sorted(set(values) & MANAGED[section])
    if managed:
        return [f"{section}: {managed} are set by the runner and cannot be given"]
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(classes[section])})
    if unknown:
        return [f"{section}: unknown setting(s) {unknown}; valid: {settable(section, classes)}"]
    if section == "evaluate" and values.get("judge_key"):
        return [
            "evaluate.judge_key: a recipe is saved with its run, so it cannot hold a key; "
            "set OPENAI_API_KEY in the environment"
        ]
    values, type_errors = coerce(classes[section], values)
    if type_errors:
        return [f"{section}.{e}" for e in type_errors]
    try:
        classes[section](**{**_placeholders(section, tmp), **values})
    except (ConfigError, TypeError) as e:
        return [f"{section}: {e}"]
    return []


_GRID_TOP = {"strong_model": None, "sft_data": ("weak", "labeled")}  # recipe fields a grid may sweep


def _grid_errors(recipe: Recipe, classes: dict, tmp: Path) -> list[str]:
    """Every grid path names a setting a recipe may give, and each of its values is valid there
    (the section is built with that value, as a run would build it)."""
    errors = []
    for path, values in recipe.grid.items():
        head, _, name = path.partition(".")
        if head in _GRID_TOP and not name:
            allowed = _GRID_TOP[head]
            if isinstance(values, list) and allowed:
                errors += [
                    f"grid: {head} must be one of {list(allowed)}, got {v!r}"
                    for v in values
                    if v not in allowed
                ]
        elif head not in SECTIONS:
            errors.append(
                f"grid: {path!r} must start with a section name ({', '.join(SECTIONS)}) "
                f"or be one of {sorted(_GRID_TOP)}"
            )
            continue
        elif name.split(".")[0] not in settable(head, classes):
            why = "is set by the runner" if name in MANAGED[head] else f"names no setting of {head}"
            errors.append(f"grid: {path!r} {why}; valid {head} settings: {settable(head, classes)}")
            continue
        if not isinstance(values, list) or not values:
            errors.append(f"grid: {path!r} needs a non-empty list of values")
            continue
        if head in SECTIONS:
            for value in values:
                section = copy.deepcopy(getattr(recipe, head) or {})
                _set_dotted(section, name, value)
                for e in _section_errors(head, section, classes, tmp):  # a type error names the path
                    errors.append(
                        f"grid: {e}" if e.startswith(f"{path}:") else f"grid: {path}={value!r}: {e}"
                    )
    return errors


def validate(recipe: Recipe) -> list[str]:
    """Every problem of a recipe (an empty list when it is fine)."""
    _, errors = coerce(Recipe, {f.name: getattr(recipe, f.name) for f in dataclasses.fields(Recipe)})
    if errors:  # a field of the wrong type (``data: hh``, ``methods: human``): nothing else is checkable
        return errors
    track = TRACKS.get(recipe.track)
    if track is None:
        errors.append(f"track must be {' or '.join(map(repr, TRACKS))}, got {recipe.track!r}")
    if recipe.sft_data not in ("weak", "labeled"):
        errors.append(f"sft_data must be 'weak' or 'labeled', got {recipe.sft_data!r}")
    if not _int_list(recipe.seeds):
        errors.append(f"seeds must be a non-empty list of integers, got {recipe.seeds!r}")
    if track is not None:
        errors += track.recipe_errors(recipe)
    try:
        errors += _method_seed_errors(recipe, set(resolve_methods(recipe.methods)))
    except ConfigError as e:
        errors.append(str(e))
    classes = _config_classes()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "placeholder.jsonl").write_text("")
        (tmp / "annotator.json").write_text("{}")
        for section in SECTIONS:
            errors += _section_errors(section, getattr(recipe, section) or {}, classes, tmp)
        errors += _grid_errors(recipe, classes, tmp)
    return errors + _chat_template_errors(recipe)


def _chat_template_errors(recipe: Recipe) -> list[str]:
    """SFT, alignment and evaluation must render prompts alike: one chat_template for all three."""
    settings = {
        s: bool((getattr(recipe, s) or {}).get("chat_template", False)) for s in ("sft", "align", "evaluate")
    }
    if len(set(settings.values())) > 1:
        given = ", ".join(f"{s}: {str(v).lower()}" for s, v in settings.items())
        return [f"chat_template must be the same in sft, align and evaluate (got {given})"]
    return []


def _int_list(value) -> bool:
    """A non-empty list of integers (``True``/``False`` are not seeds)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(x, int) and not isinstance(x, bool) for x in value)
    )


def _method_seed_errors(recipe: Recipe, names: set[str]) -> list[str]:
    errors = []
    for name, seeds in recipe.method_seeds.items():
        if name not in names:
            errors.append(f"method_seeds: {name!r} is not one of the recipe's methods {sorted(names)}")
        elif not _int_list(seeds):
            errors.append(f"method_seeds.{name} must be a non-empty list of integers, got {seeds!r}")
    return errors


def seeds_of(recipe: Recipe, method: str) -> list[int]:
    """The seeds ``method`` runs on: its ``method_seeds`` entry, else the recipe's ``seeds``."""
    return list(recipe.method_seeds.get(method, recipe.seeds))


def all_seeds(recipe: Recipe) -> list[int]:
    """Every seed some method of the recipe runs on, in order of first mention."""
    return list(dict.fromkeys([*recipe.seeds, *(s for v in recipe.method_seeds.values() for s in v)]))


def restrict_seeds(recipe: Recipe, seeds: list[int]) -> None:
    """Keep only ``seeds`` (a part of a long run): every method runs on its seeds among them.

    A method left with none of them is dropped from this part (e.g. ``--seeds 3 4`` where only the
    headline methods have seeds 3 and 4); the recipe's ``seeds`` then become the kept ones (every
    method that remains has its own ``method_seeds``), so the part is still a valid recipe.
    """
    keep = set(seeds)
    base = [s for s in recipe.seeds if s in keep]
    own = {m: [s for s in v if s in keep] for m, v in recipe.method_seeds.items()}
    try:
        names = list(resolve_methods(recipe.methods))
    except ConfigError:
        names = []  # validate() reports it
    running = [m for m in names if own.get(m, base)]
    if len(running) < len(names):
        if isinstance(recipe.methods, dict):
            recipe.methods = {m: v for m, v in recipe.methods.items() if m in running}
        else:
            recipe.methods = running
    recipe.method_seeds = {m: v for m, v in own.items() if v}
    recipe.seeds = base or [s for s in dict.fromkeys(seeds) if any(s in v for v in own.values())]


def _input_errors(recipe: Recipe) -> list[str]:
    """Inputs a run reads that do not exist (checked without reading them)."""
    return TRACKS[recipe.track].input_errors(recipe) + _model_errors(recipe)


def _model_errors(recipe: Recipe) -> list[str]:
    """Models the recipe names that cannot be found (nothing is converted or downloaded)."""
    from cwpo.models.registry import check_model

    named = {"strong_model": [] if recipe.annotator_only else [recipe.strong_model]}
    for section in ("annotator", "wsdpo_annotator"):
        if "backbone" in getattr(recipe, section):
            named[f"{section}.backbone"] = [getattr(recipe, section)["backbone"]]
    errors = []
    for where, refs in named.items():
        for ref in dict.fromkeys([*refs, *recipe.grid.get(where, [])]):
            try:
                check_model(ref)
            except CWPOError as e:
                errors.append(f"{where}: {e}")
    return errors


def check_run(recipe: Recipe, only_methods: list[str] | None = None) -> dict[str, Method]:
    """Everything ``cwpo run`` checks before it writes anything; return the methods to run.

    The recipe (:func:`validate`), the ``--methods`` selection and the inputs the run reads; every
    problem is reported at once in one :class:`ConfigError`.
    """
    errors = validate(recipe)
    methods: dict[str, Method] = {}
    if not errors:
        methods = resolve_methods(recipe.methods)
        unknown = [m for m in only_methods or [] if m not in methods]
        if unknown:
            errors.append(f"--methods {unknown} are not in the recipe's methods {sorted(methods)}")
        errors += _input_errors(recipe)
    if len(errors) == 1:
        raise ConfigError(errors[0])
    if errors:
        raise ConfigError(f"{len(errors)} problem(s):\n  - " + "\n  - ".join(errors))
    return {k: v for k, v in methods.items() if not only_methods or k in only_methods}


_WHOLE = ("grid", "methods", "method_seeds", "paper")  # a recipe's own replace the base's


def _merge(base: dict, over: dict, top: bool = True) -> dict:
    """``over`` on top of ``base``: sections merge key by key (except grid, methods, paper), values replace."""
    out = dict(base)
    for k, v in over.items():
        whole = top and k in _WHOLE
        out[k] = (
            _merge(out[k], v, False)
            if isinstance(v, dict) and isinstance(out.get(k), dict) and not whole
            else v
        )
    return out


def _load_with_base(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The recipe's mapping, on top of the recipe named by its ``extends:`` (relative to it)."""
    data = load_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends: expected the path of another recipe, got {parent!r}")
    base = (path.parent / parent).resolve()
    if base in seen or base == path.resolve():
        raise ConfigError(f"{path}: extends: {parent} leads back to itself")
    if not base.exists():
        raise ConfigError(f"{path}: extends: recipe not found: {base}")
    return _merge(_load_with_base(base, (*seen, path.resolve())), data)


def load_recipe(path: str | Path) -> Recipe:
    data = _load_with_base(Path(path))
    names = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {unknown}; valid: {sorted(names)}")
    recipe = Recipe(**data)
    errors = validate(recipe)
    if len(errors) == 1:
        raise ConfigError(f"{path}: {errors[0]}")
    if errors:
        raise ConfigError(f"{path}: {len(errors)} problem(s):\n  - " + "\n  - ".join(errors))
    return recipe


def _set_dotted(d: dict, path: str, value) -> None:
    keys = path.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def expand(recipe: Recipe) -> list[tuple[dict, Recipe]]:
    """All grid points: ``({"seed": s, **grid values}, recipe with them applied)``."""
    paths = list(recipe.grid)
    points = []
    for seed in all_seeds(recipe):
        for values in itertools.product(*(recipe.grid[p] for p in paths)):
            d = copy.deepcopy(recipe.to_dict())
            d["grid"] = {}
            d["seeds"] = [seed]
            for p, v in zip(paths, values, strict=True):
                _set_dotted(d, p, v)
            points.append(({"seed": seed, **dict(zip(paths, values, strict=True))}, Recipe(**d)))
    return points
