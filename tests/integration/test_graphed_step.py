"""`perf.cuda_graph`: the step whose forward and backward a CUDA graph replays.

On a CPU the same body runs eagerly, so these tests train through the whole path (Lightning's optimiser step
around it, the schedule, clipping, checkpoints, resume, the divergence guard) and check that it gives the
numbers of the ordinary step. Only the capture itself needs a CUDA device (tested there when one is present).
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from helpers.runs import run_in_process, tiny
from n2n.errors import ConfigError, DivergenceError
from n2n.losses import build_loss
from n2n.methods import build_method
from n2n.models.unet import UNet
from n2n.training.graphed_step import GraphedStep
from n2n.training.module import check_graph_trainer, check_perf

N2N = build_method({"name": "n2n"}).bind(build_loss({"name": "l2"}))  # the step computes its loss

def train_twice(tmp_path, overrides):
    """Final metrics and weights of the same run without and with perf.cuda_graph."""
    out = []
    for graph in (False, True):
        run_dir = tmp_path / f"graph_{graph}"
        run_in_process([*overrides, f"perf.cuda_graph={str(graph).lower()}"], run_dir)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        weights = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
        out.append((metrics, weights))
    return out


@pytest.mark.parametrize("extra", [
    ["optimizer=sgd", "optimizer.lr=0.005", "optimizer.momentum=0.9", "scheduler=rampdown"],
    ["optimizer=adam", "scheduler=cosine", "trainer.gradient_clip_val=0.01", "loss=l0"],
], ids=["sgd-rampdown", "adam-cosine-clip-l0"])
def test_graph_path_trains_like_the_ordinary_step(images, one_thread, tmp_path, extra):  # noqa: F811
    (plain, plain_ckpt), (graphed, graphed_ckpt) = train_twice(tmp_path, [*tiny(*images), *extra])
    assert graphed["global_step"] == plain["global_step"] == 8
    for key in ("val_psnr", "train_loss", "val_ssim"):
        assert graphed[key] == pytest.approx(plain[key], rel=1e-5, abs=1e-6), key
    a, b = plain_ckpt["state_dict"], graphed_ckpt["state_dict"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6, rtol=1e-5) for k in a)
    # (the ordinary step certainly trains, so equal weights mean the graphed path trains too)
    # the schedule advanced the same way: Lightning still steps it around the graphed step
    group_a = plain_ckpt["optimizer_states"][0]["param_groups"][0]
    lr_b = graphed_ckpt["optimizer_states"][0]["param_groups"][0]["lr"]
    assert lr_b == pytest.approx(group_a["lr"]) and group_a["lr"] < 0.9 * group_a["initial_lr"]


def test_divergence_is_caught_on_the_graph_path(images, one_thread, tmp_path):  # noqa: F811
    run_dir = tmp_path / "run"
    with pytest.raises(DivergenceError, match="diverged"):
        run_in_process([*tiny(*images), "perf.cuda_graph=true", "optimizer=sgd", "optimizer.lr=1e6"], run_dir)
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "diverged"


def test_body_leaves_the_gradients_of_a_fresh_backward():
    """Gradients are zeroed in place, not accumulated across steps."""
    torch.manual_seed(0)
    net = UNet()
    step = GraphedStep(net, N2N.loss, list(net.parameters()))
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    for _ in range(3):
        loss = step({"noisy": x, "other": y})
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    reference = torch.nn.functional.mse_loss(net(x), y)
    reference.backward()
    assert loss.item() == pytest.approx(reference.item())
    assert all(torch.allclose(g, p.grad) for g, p in zip(grads, net.parameters()))


@pytest.mark.parametrize("perf, message", [
    ({"cuda_graph": "yes"}, "perf.cuda_graph='yes' must be true or false"),
    ({"cuda_graph": True, "compile": "reduce-overhead"}, "captures CUDA graphs of its own"),
    ({"cuda_graph": True, "compile": "max-autotune"}, "captures CUDA graphs of its own"),
])
def test_bad_perf_options_are_refused(perf, message):
    with pytest.raises(ConfigError, match=message):
        check_perf(perf)
    assert check_perf({"cuda_graph": True, "compile": "max-autotune-no-cudagraphs"})["cuda_graph"] is True


def test_gradient_accumulation_is_refused_before_training(images, one_thread, tmp_path):  # noqa: F811
    with pytest.raises(ConfigError, match="cannot accumulate gradients"):
        run_in_process([*tiny(*images), "perf.cuda_graph=true", "trainer.accumulate_grad_batches=2"], tmp_path / "run")


@pytest.mark.parametrize("settings, answer", [
    ({"world_size": 2}, "trains on one device"),
    ({"precision": "16-mixed"}, "does not support trainer.precision=16-mixed"),  # Lightning makes it bf16 on a CPU
    ({"precision": "bf16-mixed"}, torch.bfloat16),
    ({"precision": "32-true"}, None),
    ({"precision": "bf16-true"}, None),  # the weights themselves are bfloat16: nothing to autocast
])
def test_trainer_settings_decide_the_graph_autocast(settings, answer):
    trainer = SimpleNamespace(**{"world_size": 1, "accumulate_grad_batches": 1, "precision": "32-true", **settings})
    if isinstance(answer, str):
        with pytest.raises(ConfigError, match=answer):
            check_graph_trainer(trainer)
    else:
        assert check_graph_trainer(trainer) == answer


@pytest.mark.cuda  # the capture needs a CUDA device
def test_captured_graph_matches_eager_steps_on_cuda():
    torch.manual_seed(0)
    dev = torch.device("cuda")
    nets = [UNet().to(dev) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [torch.optim.SGD(n.parameters(), lr=0.01, momentum=0.9, fused=True) for n in nets]
    graphed = GraphedStep(nets[1], N2N.loss, list(nets[1].parameters()))
    for i in range(8):
        x, y = torch.rand(4, 3, 32, 32, device=dev), torch.rand(4, 3, 32, 32, device=dev)
        opts[0].zero_grad()
        ref = torch.nn.functional.mse_loss(nets[0](x), y)
        ref.backward()
        opts[0].step()
        loss = graphed({"noisy": x, "other": y})
        opts[1].step()
        assert loss.item() == pytest.approx(ref.item(), rel=1e-4)
    assert graphed.captured
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("graph, progress_bar", [(False, False), (True, False), (True, True)],
                         ids=["ordinary", "graphed", "graphed-progress-bar"])
def test_no_host_sync_between_logging_steps(images, one_thread, tmp_path, monkeypatch, graph, progress_bar):  # noqa: F811
    """Drawing the batch, the step and n2n's callbacks read nothing back from the device, except on the
    steps where logs are written (every trainer.log_every_n_steps): a GPU then never waits for Python."""
    import lightning as L

    steps_seen: list[int] = []
    trainer_ref: list[L.Trainer] = []

    class Watch(L.Callback):
        def on_train_start(self, trainer, pl_module):
            trainer_ref.append(trainer)

    def spy(name):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            if trainer_ref and trainer_ref[0].training and not trainer_ref[0].sanity_checking:
                steps_seen.append(trainer_ref[0].global_step)
            return original(self, *args, **kwargs)
        return wrapper

    for name in ("item", "__bool__", "__float__", "__int__", "tolist", "cpu", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, spy(name))
    every = 5
    # SGD: PyTorch's CPU Adam reads its step counter with .item() (a CPU tensor: no device sync; on a GPU
    # the fused Adam keeps it on the device)
    run_in_process([*tiny(*images, steps=20, epochs=1), f"trainer.log_every_n_steps={every}", "optimizer=sgd",
                    "optimizer.lr=0.001", f"perf.cuda_graph={str(graph).lower()}",
                    f"trainer.enable_progress_bar={str(progress_bar).lower()}"], tmp_path / "run", Watch())
    assert steps_seen, "the spy saw nothing: it would not see a sync either"
    assert {s for s in steps_seen if s % every} == set(), sorted(set(steps_seen))


@pytest.mark.cuda  # the capture needs a CUDA device
@pytest.mark.parametrize("extra", [[], ["trainer.precision=bf16-mixed", "perf.channels_last=true"]],
                         ids=["fp32", "bf16-channels-last"])
def test_graph_path_trains_like_the_ordinary_step_on_cuda(images, tmp_path, extra):  # noqa: F811
    """The whole Lightning path on a GPU: warm-up steps, the capture, replays, validation in between."""
    overrides = [*tiny(*images), "trainer.accelerator=gpu", "data.steps_per_epoch=8", "optimizer=adam", *extra]
    (plain, _), (graphed, _) = train_twice(tmp_path, overrides)
    assert graphed["global_step"] == plain["global_step"] == 16
    tolerance = 0.05 if extra else 1e-3  # dB; bf16 and cuDNN's algorithm choices differ slightly between runs
    assert graphed["val_psnr"] == pytest.approx(plain["val_psnr"], abs=tolerance)


def test_a_failed_capture_says_how_to_train_without_the_graph(monkeypatch):
    from n2n.errors import N2NError

    torch.manual_seed(0)
    net = UNet()
    step = GraphedStep(net, N2N.loss, list(net.parameters()))
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    step({"noisy": x, "other": y})  # the gradients exist, as after the warm-up steps

    class RefusedCapture:
        def __init__(self, graph):
            pass

        def __enter__(self):
            raise RuntimeError("operation not permitted when stream is capturing\nCUDA kernel errors ...")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: object())
    monkeypatch.setattr(torch.cuda, "graph", RefusedCapture)
    with pytest.raises(N2NError, match=r"capturing the training step as a CUDA graph failed "
                                       r"\(operation not permitted when stream is capturing\); "
                                       r"train without it: perf.cuda_graph=false"):
        step._capture({"noisy": x, "other": y})
    assert not step.captured
