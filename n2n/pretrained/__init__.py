"""The trained models that ship inside the package: `n2n denoise` and `n2n.load` use them without training.

Each model is a `NAME.safetensors` file of this folder (weights and the config that builds the network; see
n2n.inference.weights) and an entry of `models.json`: what it was trained on and how (the recipe and the
command), and its scores on the standard test sets, written by `scripts/model_card.py`. docs/pretrained.md is
the model card.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from n2n.errors import CheckpointError

#: File suffixes that name a model file rather than a bundled model.
MODEL_FILE_SUFFIXES = (".ckpt", ".safetensors", ".onnx")


@lru_cache(maxsize=1)
def cards() -> dict[str, dict[str, Any]]:
    """Every bundled model's entry of models.json, by name, in the order listed there."""
    text = resources.files(__name__).joinpath("models.json").read_text(encoding="utf-8")
    return json.loads(text)["models"]


def names() -> list[str]:
    return list(cards())


def card(name: str) -> dict[str, Any]:
    """The entry of a bundled model; CheckpointError listing the names if there is none."""
    try:
        return cards()[name]
    except KeyError:
        raise CheckpointError(f"no bundled model {name!r}; bundled: {', '.join(names())} "
                              f"(`n2n models` lists them)") from None


def weights_path(name: str) -> Path:
    """The weight file of a bundled model."""
    path = Path(str(resources.files(__name__).joinpath(card(name)["file"])))
    if not path.is_file():
        raise CheckpointError(f"the weight file of the bundled model {name!r} is missing from the installed "
                              f"package ({path}): reinstall n2n")
    return path


def default_model(channels: int) -> str:
    """The bundled model for images with this many colour channels (1: grey, else colour)."""
    wanted = 1 if channels == 1 else 3
    for name, entry in cards().items():
        if entry.get("default") and entry["channels"] == wanted:
            return name
    raise CheckpointError(f"no bundled default model for {wanted}-channel images")


def is_model_file(model: str | Path) -> bool:
    return Path(model).suffix.lower() in MODEL_FILE_SUFFIXES


def resolve(model: str | Path) -> Path:
    """The file behind a model argument: a bundled model's name, or a .ckpt / .safetensors / .onnx path."""
    if str(model) in cards():
        return weights_path(str(model))
    path = Path(model)
    if path.is_file():
        return path
    if is_model_file(path):
        raise CheckpointError(f"model file {path} does not exist")
    raise CheckpointError(f"unknown model {str(model)!r}: give a bundled model ({', '.join(names())}) or a "
                          f"{' / '.join(MODEL_FILE_SUFFIXES)} file")
