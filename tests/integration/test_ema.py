"""callbacks.ema: the averaged weights are what validation, checkpoints, eval.py, `n2n export` and bundling use,
and a resumed run continues the same average (n2n/training/callbacks/ema.py)."""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from helpers.runs import ROOT, resolved, run_in_process, tiny
from n2n.cli import main as n2n_main
from n2n.config import resolve_ckpt_path
from n2n.data.datamodule import N2NDataModule
from n2n.errors import ConfigError
from n2n.image_files import as_float
from n2n.inference.checkpoints import load_trained, load_unet, read_checkpoint
from n2n.inference.weights import load_weights
from n2n.metrics import psnr, quantize8

DECAY = 0.9
EMA = [f"callbacks.ema={DECAY}"]


class RecordWeights(Callback):
    """The network's weights after every optimiser step, and the moving average computed here independently
    (the first update copies the weights; then the decay warmed up as min(decay, (1 + n) / (10 + n)))."""

    def __init__(self):
        self.raw: dict[int, dict[str, torch.Tensor]] = {}
        self.ema: dict[int, dict[str, torch.Tensor]] = {}
        self.val_psnr: dict[int, float] = {}

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        weights = {k: v.detach().clone() for k, v in pl_module.net.state_dict().items()}
        step = trainer.global_step
        self.raw[step] = weights
        previous = self.ema.get(step - 1)
        if previous is None:
            self.ema[step] = weights
        else:
            n = len(self.ema)
            decay = min(DECAY, (1 + n) / (10 + n))
            self.ema[step] = {k: previous[k] + (weights[k] - previous[k]) * (1 - decay) for k in weights}

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.val_psnr[trainer.global_step] = float(trainer.callback_metrics["val/psnr"])


def net_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}


def assert_weights(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], what: str) -> None:
    assert actual.keys() == expected.keys(), what
    for k in expected:
        torch.testing.assert_close(actual[k].float(), expected[k].float(), atol=1e-6, rtol=1e-5, msg=f"{what}: {k}")


def differs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def ema_run(images, one_thread, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ema")
    recorder = RecordWeights()
    run_in_process([*tiny(*images), *EMA], run_dir, recorder)
    return run_dir, recorder


def test_checkpoints_hold_the_average_and_the_trained_weights_beside_it(ema_run):
    run_dir, rec = ema_run
    final = max(rec.raw)
    assert differs(rec.ema[final], rec.raw[final]) > 1e-4  # the average is not the trained weights
    last = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert last["global_step"] == final
    assert_weights(net_state(last["state_dict"]), rec.ema[final], "last.ckpt state_dict")
    assert_weights(net_state(last["current_model_state"]), rec.raw[final], "last.ckpt current_model_state")
    (best,) = (run_dir / "checkpoints").glob("best-*.ckpt")
    step = int(best.stem.removeprefix("best-"))
    assert_weights(net_state(read_checkpoint(best)["state_dict"]), rec.ema[step], best.name)


def test_validation_scores_the_average(ema_run, images):
    """val/psnr at the last step is the PSNR of the averaged weights on the validation inputs, not of the
    trained ones."""
    run_dir, rec = ema_run
    final = max(rec.raw)
    datamodule = N2NDataModule(resolved([*tiny(*images), *EMA], run_dir))
    datamodule.setup("validate")
    net = load_unet(run_dir / "checkpoints" / "last.ckpt")

    def mean_psnr(weights):
        net.load_state_dict(weights)
        with torch.no_grad():
            return sum(psnr(quantize8(net(as_float(p["noisy"][None]))), as_float(p["clean"][None]))
                       for p in datamodule.val_pairs) / len(datamodule.val_pairs)

    averaged, trained = mean_psnr(rec.ema[final]), mean_psnr(rec.raw[final])
    assert abs(averaged - trained) > 1e-3  # the two can be told apart here
    assert rec.val_psnr[final] == pytest.approx(averaged, abs=1e-3)


def test_eval_export_and_bundle_use_the_average(ema_run, tmp_path, monkeypatch):
    run_dir, rec = ema_run
    expected = rec.ema[max(rec.raw)]
    last = run_dir / "checkpoints" / "last.ckpt"
    assert_weights(load_unet(last).state_dict(), expected, "eval.py's network (load_unet)")
    exported = tmp_path / "model.safetensors"
    assert n2n_main(["export", str(last), str(exported)]) == 0
    assert_weights(load_weights(exported).state_dict(), expected, "n2n export")
    # scripts/model_card.py bundle, into a registry of its own
    spec = importlib.util.spec_from_file_location("model_card", ROOT / "scripts" / "model_card.py")
    model_card = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model_card)
    monkeypatch.setattr(model_card, "REGISTRY", tmp_path / "pretrained" / "models.json")
    (tmp_path / "pretrained").mkdir()
    (run_dir / ".hydra").mkdir(exist_ok=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text("- callbacks.ema=0.9\n")
    model_card.bundle(argparse.Namespace(run_dir=str(run_dir), name="averaged", summary="x", default=False,
                                         machine=None))
    bundled = load_weights(tmp_path / "pretrained" / "averaged.safetensors")
    assert_weights(bundled.state_dict(), expected, "model_card.py bundle")
    assert bundled.declip == load_trained(last).declip == "gaussian"  # the declipping rule is bundled too
    entry = json.loads((tmp_path / "pretrained" / "models.json").read_text())["models"]["averaged"]
    assert entry["training"]["steps"] == max(rec.raw)


class SignalAt(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("step", [3, 6])
def test_a_resumed_run_continues_the_average(ema_run, images, tmp_path, step):
    """Interrupted at `step` and resumed with ckpt_path=last: the same average at the end as the uninterrupted
    run (an average started afresh on resume would copy the weights of the resumed step and differ)."""
    reference_dir, rec = ema_run
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit):
        run_in_process([*tiny(*images), *EMA], run_dir, SignalAt(step))
    interrupted = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert interrupted["global_step"] == step
    assert_weights(net_state(interrupted["state_dict"]), rec.ema[step], "the interrupt checkpoint")
    run_in_process([*tiny(*images), *EMA, "ckpt_path=last"], run_dir)
    final = read_checkpoint(resolve_ckpt_path("last", run_dir))
    assert_weights(net_state(final["state_dict"]), rec.ema[max(rec.raw)], "the resumed run's average")
    assert_weights(net_state(final["current_model_state"]), rec.raw[max(rec.raw)], "the resumed run's weights")


def test_without_ema_checkpoints_hold_the_trained_weights(images, one_thread, tmp_path):
    recorder = RecordWeights()
    run_in_process(tiny(*images, steps=2, epochs=1), tmp_path, recorder)
    last = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert "current_model_state" not in last
    assert_weights(net_state(last["state_dict"]), recorder.raw[max(recorder.raw)], "last.ckpt without ema")


@pytest.mark.parametrize("value", [0, 1, 1.5, True, "high"])
def test_a_bad_decay_is_one_line_naming_the_option(images, tmp_path, value):
    with pytest.raises(ConfigError, match="callbacks.ema"):
        run_in_process([*tiny(*images), f"callbacks.ema={value}"], tmp_path)


class FirstWeights(Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        self.weights = {k: v.detach().clone() for k, v in pl_module.net.state_dict().items()}


def test_resumed_without_ema_training_goes_on_from_the_average(ema_run, images, tmp_path):
    """What docs/configuration.md says of `ckpt_path=last` with `callbacks.ema=null`."""
    reference_dir, rec = ema_run
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes((reference_dir / "checkpoints" / "last.ckpt").read_bytes())
    first = FirstWeights()
    run_in_process([*tiny(*images, epochs=3), "ckpt_path=last"], run_dir, first)
    assert_weights(first.weights, rec.ema[max(rec.raw)], "the weights a run without EMA resumes from")
