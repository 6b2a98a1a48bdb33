"""The training methods through the real configs: each lowers its own loss, trains and checkpoints end to end,
is refused in one line where the data cannot meet its needs, and is applied at inference as its rule says."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from helpers.runs import compose_train, resolved, run_in_process, tiny
from n2n.data.datamodule import N2NDataModule
from n2n.errors import ConfigError
from n2n.training.module import N2NModule

TRAINED = ["n2n", "n2c", "nb2nb", "n2v", "n2s", "r2r", "sure"]


def plain(overrides: list[str]) -> dict:
    return resolved(overrides)


@pytest.mark.parametrize("method", TRAINED)
def test_each_method_lowers_its_loss(images, one_thread, method):
    config = plain([*tiny(*images), f"method={method}", "data.noise_draws=fixed"])
    torch.manual_seed(0)
    dm, module = N2NDataModule(config), N2NModule(config)
    dm.setup("fit")
    batch = dm.draw_train_batch(torch.device("cpu"))
    optimizer = torch.optim.Adam(module.net.parameters(), lr=3e-4)
    losses = []
    for _ in range(12):
        optimizer.zero_grad()
        loss = module.method.loss(module.net, batch)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0], losses


def test_fixed_noise_draws_keep_one_noisy_copy_per_image(tmp_path, one_thread):
    train, val = tmp_path / "train", tmp_path / "val"
    for folder in (train, val):
        folder.mkdir()
        Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(folder / "a.png")
    base = [*tiny(train, val), "data.crop_size=64", "aug=none", "method=nb2nb"]  # one crop position only

    def two_batches(draws: str):
        dm = N2NDataModule(plain([*base, f"data.noise_draws={draws}"]))
        dm.setup("fit")
        return [dm.draw_train_batch(torch.device("cpu"))["noisy"] for _ in range(2)]

    fixed, fresh = two_batches("fixed"), two_batches("fresh")
    assert torch.allclose(fixed[0], fixed[1], atol=1e-3)  # the stored copy (float16), every step
    assert (fixed[0] - fixed[0].round(decimals=2)).abs().max() > 0  # noisy, not the clean 8-bit image
    assert not torch.allclose(fresh[0], fresh[1], atol=0.05)


REFUSED = [
    (["method=n2c", "data=pairs", "data.dir_a=a", "data.dir_b=b", "data.val_fraction=0.5"],
     "needs clean training images"),
    (["method=n2n", "data=singles", "data.dir=a", "data.val_fraction=0.5"], "needs two noisy captures"),
    (["method=r2r", "noise.sigma=[0,50]"], "noise.sigma=\\[0, 50\\] is a range"),
    (["method=sure", "loss=l1"], "use loss=l2"),
    (["method=r2r", "noise=poisson"], "derived for Gaussian noise"),
    (["method=sure", "data=singles", "data.dir=a", "data.val_fraction=0.5"], "set method.sigma=S"),
    (["method=zsn2n"], "n2n denoise --zero-shot"),
    (["method=nb2nb", "target=clean"], "cannot be combined with method=nb2nb"),
    (["data=pairs", "data.dir_a=a", "data.dir_b=b", "data.val_fraction=0.5", "+data.noise_draws=fixed"],
     "data.noise_draws is not an option|unknown option"),
    (["method=n2v", "method.window=4"], "method.window=4 must be odd"),
    (["method=nb2nb", "+method.beta=1"], "method.beta is not an option of method 'nb2nb'"),
]


@pytest.mark.parametrize("overrides,message", REFUSED, ids=lambda x: x[0] if isinstance(x, list) else "")
def test_a_method_the_data_cannot_serve_is_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        N2NDataModule(plain(overrides))
        N2NModule(plain(overrides))
    assert "\n" not in str(info.value)


def test_target_is_an_alias_of_the_method():
    assert plain(["target=clean"])["method"] == {"name": "n2c"}
    assert plain(["target=noisy"])["method"] == {"name": "n2n"}
    assert plain([])["target"] is None and plain([])["method"] == {"name": "n2n"}


def test_single_captures_train_with_the_self_supervised_validation_loss(tmp_path, one_thread):
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray((rng.random((70, 66)) * 255).astype(np.uint8)).save(noisy / f"{i}.png")
    run = tmp_path / "run"
    run_in_process([*tiny(noisy, noisy, steps=2, epochs=1)[3:], "data=singles", f"data.dir={noisy}",
                    "data.val_fraction=0.5", "method=n2v"], run)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["monitor"] == "val/self_loss" and np.isfinite(metrics["best_score"])
    assert (run / "checkpoints" / "last.ckpt").is_file()
    saved = OmegaConf.load(run / "config.yaml")
    assert saved.callbacks.checkpoint.monitor == "val/self_loss" and saved.method.name == "n2v"


@pytest.mark.parametrize("method,rule", [("r2r", "Recorrupted"), ("n2s", "JInvariant")])
def test_eval_and_the_api_apply_the_methods_inference_rule(images, tmp_path, one_thread, method, rule):
    import n2n
    from n2n.inference.checkpoints import load_trained, read_checkpoint, unet_from_checkpoint

    extra = ["method.samples=2"] if method == "r2r" else ["method.inference=jinv", "method.grid=2"]
    run = tmp_path / "run"
    run_in_process([*tiny(*images, steps=2, epochs=1), f"method={method}", *extra], run)
    ckpt = run / "checkpoints" / "last.ckpt"
    net = load_trained(ckpt)
    assert type(net).__name__ == rule
    x = torch.rand(1, 3, 64, 64)
    plain_net = unet_from_checkpoint(read_checkpoint(ckpt), ckpt)
    with torch.no_grad():
        expected = net(x)
        assert not torch.allclose(expected, plain_net(x), atol=1e-4)  # not one plain pass
    # (declip=False: the network's output as the rule computes it, without the correction for clipped noise)
    assert torch.allclose(n2n.load(ckpt, precision="fp32", declip=False)(x[0]), expected[0].clamp(0, 1), atol=1e-4)
    out = tmp_path / "model.safetensors"  # exported weights keep the rule
    from n2n.inference.weights import load_weights, save_weights

    save_weights(net, plain_net.config, out)
    with torch.no_grad():
        assert torch.allclose(load_weights(out)(x), expected, atol=1e-6)


def test_the_hparams_view_names_the_method():
    from n2n.training.hparams import flat_hparams

    assert flat_hparams(plain(["method=n2v"]))["method"] == "n2v"
    assert flat_hparams(plain(["target=clean"]))["method"] == "n2c"


def test_every_method_yaml_builds_its_registered_class():
    from n2n.methods import METHODS, build_method

    for name in METHODS:
        cfg = OmegaConf.to_container(compose_train([f"method={name}"]).method)
        assert type(build_method(cfg)) is METHODS[name]


def test_the_method_tables_rows_compose(tmp_path):
    """Every row of scripts/method_table.py is a valid run of the real configs (the table's protocol)."""
    import importlib.util

    from helpers.runs import ROOT

    spec = importlib.util.spec_from_file_location("method_table", ROOT / "scripts" / "method_table.py")
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    for _, draws, overrides in table.RUNS:
        config = plain(["data=folder", f"data.train_dir={tmp_path}", f"data.val_dir={tmp_path}",
                        f"data.noise_draws={draws}", "noise=gaussian", "noise.sigma=25", *overrides])
        N2NModule(config)  # builds the method with its loss and sigma
        N2NDataModule(config)
