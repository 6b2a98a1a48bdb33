"""Checking a checkpoint before a run resumes from it.

A checkpoint to resume from is read with the weights-only unpickler and compared with the model being built
before Lightning touches it, so that a crafted file runs no code and a checkpoint of another architecture gets
a message instead of a traceback.
"""
from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch

from n2n.errors import CheckpointError
from n2n.inference.checkpoints import read_checkpoint, training_config

#: Options whose change between the checkpoint and the resumed run is expected and not worth a note.
_IGNORED = ("ckpt_path", "output_dir", "paths.", "print_config")


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def check_resume(path: str | Path, config: Mapping[str, Any], module: torch.nn.Module) -> list[str]:
    """Check, without running any code from the file, that `path` can resume the training of `module`.

    `config` is the resolved config of the run about to start (the checkpoint's own config is stored
    resolved). Returns notes on options that differ from those the checkpoint was trained with; raises
    `CheckpointError` for a crafted or corrupt file, a checkpoint of another model, or one without the
    training state a resume needs.
    """
    ckpt = read_checkpoint(path)  # weights-only unpickler: refuses anything that is not tensors and containers
    trained = training_config(ckpt, path)
    missing = [k for k in ("optimizer_states", "loops", "global_step") if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path} cannot resume training: it holds no {', '.join(missing)} "
                              f"(weights only?). Use it with eval.py, or resume from a last.ckpt written by train.py")
    expected = module.state_dict()
    state = ckpt["state_dict"]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"checkpoint {path}: state_dict is a {type(state).__name__}, not a mapping of tensors")
    network_first = lambda k: (k.startswith("_"), k)  # noqa: E731 - list the network's own tensors first
    absent = sorted(set(expected) - set(state), key=network_first)
    extra = sorted(set(state) - set(expected), key=network_first)
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(v.shape)]
    if absent or extra or shapes:
        details = []
        if shapes:
            details.append(f"{len(shapes)} tensor(s) of other shapes (checkpoint vs this model): "
                           f"{'; '.join(shapes[:3])}")
        if absent:
            details.append(f"{len(absent)} missing: {', '.join(absent[:3])}")
        if extra:
            details.append(f"{len(extra)} unexpected: {', '.join(extra[:3])}")
        model_then = flatten(trained.get("model", {}), "model.")
        model_now = flatten(dict(config).get("model", {}), "model.")
        differ = [f"{k}={model_then.get(k)!r} (now {model_now.get(k)!r})"
                  for k in sorted(set(model_then) | set(model_now)) if model_then.get(k) != model_now.get(k)]
        raise CheckpointError(
            f"checkpoint {path} was trained with another model and cannot resume this one: {'; '.join(details)}. "
            + (f"It was trained with {', '.join(differ[:5])}: resume with the same model options."
               if differ else "Resume with the options it was trained with (see config.yaml in its run folder)."))
    opt_then = (trained.get("optimizer") or {}).get("name")
    opt_now = (dict(config).get("optimizer") or {}).get("name")
    if opt_then != opt_now:
        raise CheckpointError(f"checkpoint {path} was trained with optimizer={opt_then}, not optimizer={opt_now}: "
                              f"its optimiser state cannot be resumed by another optimiser; resume with "
                              f"optimizer={opt_then}")
    then, now = flatten(trained), flatten(dict(config))
    notes = [f"{k}: {then.get(k, '(unset)')!r} -> {now.get(k, '(unset)')!r}"
             for k in sorted(set(then) | set(now))
             if not k.startswith(_IGNORED) and then.get(k) != now.get(k)
             and not (k not in then and _lightning_default(k, now.get(k)))]
    # Our train "loader" is a step counter: the batches come from the DataModule's generator, whose state
    # is in the checkpoint, so a mid-epoch resume draws exactly the batches an uninterrupted run would.
    warnings.filterwarnings("ignore", message=r".*resuming from a checkpoint that ended before the epoch ended.*")
    return notes


def _lightning_default(key: str, value: Any) -> bool:
    """Whether `key` is a lightning.Trainer argument at Lightning's default: a checkpoint written before
    conf/trainer/default.yaml listed every argument lacks them, and at their defaults they change nothing."""
    if not key.startswith("trainer."):
        return False
    import lightning

    param = inspect.signature(lightning.Trainer).parameters.get(key.removeprefix("trainer."))
    return param is not None and param.default == value and type(param.default) is type(value)
