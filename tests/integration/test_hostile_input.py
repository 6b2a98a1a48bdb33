"""Hostile and broken input: crafted pickles and checkpoints run no code, checkpoints of other models, broken
or odd images and out-of-range pickles each get one clear message; configs never name Python objects."""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from helpers.files import Exploit
from helpers.images import smooth_image, write_images
from helpers.runs import ROOT, resolved, run_entry, run_in_process, tiny
from n2n.data.sources import check_min_size, load_image_folder, load_tensor_pair
from n2n.errors import CheckpointError, DataError
from n2n.inference.checkpoints import load_unet, read_checkpoint
from n2n.training.module import N2NModule
from n2n.training.resume import check_resume


def _crafted(kind: str, path: Path, target: Path) -> Path:
    if kind == "torch_zip":  # what torch.save writes: a zip holding a pickle
        torch.save({"state_dict": {"net.x": torch.zeros(1)}, "hyper_parameters": Exploit(str(target))}, path)
    elif kind == "raw_pickle":
        with open(path, "wb") as f:
            pickle.dump({"state_dict": Exploit(str(target))}, f, protocol=2)
    else:
        raise AssertionError(kind)
    return path


def _config(*overrides: str) -> dict:
    return resolved(["data=folder", "data.train_dir=x", "data.val_dir=x", *overrides])


def _checkpoint(config: dict, path: Path, *, state_dict=None, full: bool = True) -> Path:
    """A checkpoint as train.py writes one (the parts n2n and Lightning read)."""
    module = N2NModule(config)
    ckpt = {"state_dict": state_dict if state_dict is not None else module.state_dict(),
            "hyper_parameters": {"config": config}, "epoch": 0}
    if full:
        ckpt.update(global_step=0, loops={}, optimizer_states=[], lr_schedulers=[])
    torch.save(ckpt, path)
    return path


# ------------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("kind", ["torch_zip", "raw_pickle"])
def test_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path, kind):
    target = tmp_path / "pwned.txt"
    path = _crafted(kind, tmp_path / "evil.ckpt", target)
    with pytest.raises(CheckpointError, match="evil.ckpt was refused: .*could run code"):  # both: before unpickling
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="evil.ckpt was refused"):
        check_resume(path, _config(), N2NModule(_config()))
    assert not target.exists()


@pytest.mark.parametrize("script", ["eval.py", "train.py"])
def test_crafted_checkpoint_on_the_command_line(tmp_path, script):
    target = tmp_path / "pwned.txt"
    path = _crafted("torch_zip", tmp_path / "evil.ckpt", target)
    run_dir = tmp_path / "run"
    result = run_entry([script, f"ckpt_path={path}", f"hydra.run.dir={run_dir}"])
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    assert f"{script}: error: checkpoint {path} was refused" in result.stderr
    assert not target.exists()
    assert not (run_dir / "checkpoints").exists()  # stopped before any training


def test_checkpoint_of_another_architecture(tmp_path):
    grey = _config("data.channels=1")
    path = _checkpoint(grey, tmp_path / "grey.ckpt")
    rgb = _config()
    with pytest.raises(CheckpointError, match=r"trained with another model .*other shapes.*"
                                              r"model.in_channels=1 \(now 3\).*resume with the same model options"):
        check_resume(path, rgb, N2NModule(rgb))
    # the same model with batch norm has extra tensors
    with pytest.raises(CheckpointError, match=r"another model.*unexpected: .*model.norm.name='batch' \(now 'none'\)"):
        check_resume(_checkpoint(_config("norm=batch"), tmp_path / "bn.ckpt"), rgb, N2NModule(rgb))
    # a checkpoint whose tensors do not fit its own config (eval.py rebuilds the model from the config)
    mismatched = _checkpoint(rgb, tmp_path / "mismatched.ckpt", state_dict=N2NModule(grey).state_dict())
    with pytest.raises(CheckpointError, match="does not match the n2n U-Net built from its own config"):
        load_unet(mismatched)


def test_checkpoint_that_is_not_from_n2n(tmp_path):
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(4, 4)}, "hyper_parameters": {"lr": 0.1},
                "epoch": 3, "global_step": 10, "loops": {}, "optimizer_states": []}, other)
    with pytest.raises(CheckpointError, match="holds no n2n training config"):
        load_unet(other)
    with pytest.raises(CheckpointError, match="holds no n2n training config"):
        check_resume(other, _config(), N2NModule(_config()))
    plain = tmp_path / "weights.pt"
    torch.save(N2NModule(_config()).net.state_dict(), plain)  # a bare state_dict
    with pytest.raises(CheckpointError, match="has no 'state_dict': it was not written by n2n's train.py"):
        load_unet(plain)
    truncated = tmp_path / "truncated.ckpt"
    _checkpoint(_config(), tmp_path / "good.ckpt")
    truncated.write_bytes((tmp_path / "good.ckpt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated.ckpt is not a readable torch file"):
        load_unet(truncated)
    for garbage in (b"", b"abc", b"\x80\x02", b"PK\x03\x04" + bytes(60)):
        truncated.write_bytes(garbage)
        with pytest.raises(CheckpointError, match="truncated.ckpt is not a readable torch file"):
            load_unet(truncated)
        with pytest.raises(DataError, match="truncated.ckpt is not a readable torch"):
            load_tensor_pair(truncated, "data.train_path", ("a", "b"))


def test_resume_needs_training_state_and_the_same_optimizer(tmp_path):
    config = _config()
    with pytest.raises(CheckpointError, match="cannot resume training: it holds no optimizer_states"):
        check_resume(_checkpoint(config, tmp_path / "w.ckpt", full=False), config, N2NModule(config))
    sgd = _config("optimizer=sgd")
    with pytest.raises(CheckpointError, match="trained with optimizer=adam, not optimizer=sgd"):
        check_resume(_checkpoint(config, tmp_path / "a.ckpt"), sgd, N2NModule(sgd))
    notes = check_resume(_checkpoint(config, tmp_path / "b.ckpt"), _config("optimizer.lr=0.0001"), N2NModule(config))
    assert notes == ["optimizer.lr: 0.001 -> 0.0001"]


def test_config_in_a_checkpoint_cannot_name_objects(tmp_path):
    """A checkpoint's stored config is only read for names in registries: `_target_` is an unknown option."""
    config = _config()
    config["model"]["activation"] = {"name": "leaky_relu", "_target_": "os.system", "command": "touch pwned"}
    path = _checkpoint(_config(), tmp_path / "target.ckpt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["hyper_parameters"]["config"] = config
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"target.ckpt holds a model config that n2n cannot build: "
                                              r"model.activation._target_ is not an option of model.activation "
                                              r"'leaky_relu'; it takes: negative_slope"):
        load_unet(path)
    assert not (ROOT / "pwned").exists()


@pytest.mark.parametrize("section,key,value", [
    ("model", "in_channels", 10**9), ("model", "activation", {"name": "leaky_relu", "negative_slope": "abc"}),
    ("data", "val_limit", -5), ("data", "channels", "abc"), ("noise", "sigma", -3), ("data", "val_batch_size", 0),
])
def test_out_of_range_values_in_a_checkpoints_config_are_refused(tmp_path, section, key, value):
    """eval.py and n2n denoise read a checkpoint's config as untrusted input: the command line's checks apply."""
    config = _config()
    path = _checkpoint(_config(), tmp_path / "bad.ckpt")
    ckpt = torch.load(path, weights_only=True)
    config[section][key] = value
    ckpt["hyper_parameters"]["config"] = config
    torch.save(ckpt, path)
    if section == "model":
        with pytest.raises(CheckpointError, match=f"bad.ckpt holds a model config that n2n cannot build: model.{key}"):
            load_unet(path)
        return
    from omegaconf import OmegaConf

    from n2n.config import RunContext
    from n2n.errors import ConfigError
    from n2n.inference.evaluate import evaluate

    cfg = OmegaConf.create({"ckpt_path": str(path), "model": None, "device": "cpu", "tile": None,
                            "save_images": False, "num_comparisons": 0, "data": None, "noise": None})
    with pytest.raises(ConfigError, match=f"{section}.{key}="):
        evaluate(cfg, RunContext(tmp_path / "eval"))


def test_configs_never_name_python_objects():
    """n2n's config groups never use `_target_` (only Hydra's own sweeper plugin settings do, under `hydra:`),
    and n2n's code never instantiates from config nor unpickles outside the weights-only loader."""
    offenders = []
    for path in sorted((ROOT / "conf").rglob("*.yaml")):
        def walk(node, keys):
            if isinstance(node, dict):
                for key, value in node.items():
                    # conf/hydra/ is Hydra's own package (hydra:), never stored in a checkpoint
                    if key == "_target_" and keys[:1] != ["hydra"] and path.parent.name != "hydra":
                        offenders.append(f"{path.relative_to(ROOT)}: {'.'.join(keys)}")
                    walk(value, [*keys, str(key)])
            elif isinstance(node, list):
                for item in node:
                    walk(item, keys)
        walk(OmegaConf.to_container(OmegaConf.load(path)), [])
    assert offenders == []
    unsafe = re.compile(r"\binstantiate\(|\bget_class\(|\bget_method\(|(?<![.\w])eval\(|(?<![.\w])exec\(|"
                        r"pickle\.loads?\(|torch\.load\(|load_from_checkpoint\(|"
                        r"(load|fit|validate|test|predict)\(.*weights_only\s*=\s*False|"
                        r"yaml\.load\(|yaml\.unsafe_load")
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
             for p in sorted((ROOT / "n2n").rglob("*.py")) + [ROOT / "train.py", ROOT / "eval.py"]
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if unsafe.search(line) and not line.lstrip().startswith("#")
             and not (p.name == "safeload.py" and "weights_only=True" in line)]
    assert found == [], "use n2n.safeload.safe_torch_load (weights-only) and name lookups instead"


# ------------------------------------------------------------------------------------------ pickles
@pytest.mark.parametrize("tensor,needle", [
    (torch.linspace(0.5, 297.0, 4 * 3 * 32 * 32).reshape(4, 3, 32, 32),
     r"torch.float32 and values from 0.5 to 297; expected uint8 .*"
     r"Values outside 0..255 are not 8-bit pixels.*refused"),
    (torch.rand(4, 3, 32, 32), r"look like \[0, 1\] floats: save \(x \* 255\).round\(\).to\(torch.uint8\)"),
    (torch.full((4, 3, 32, 32), float("nan")), "NaN or infinite values"),
    (torch.randint(0, 256, (4, 3, 32, 32)), r"torch.int64 .*Convert with x.round\(\).to\(torch.uint8\)"),
])
def test_pickle_with_other_dtypes_or_ranges_asks_for_uint8(tmp_path, tensor, needle):
    path = tmp_path / "train_data.pkl"
    torch.save((tensor, tensor.clone()), path)
    with pytest.raises(DataError, match=f"data.train_path file {path}: noisy_imgs_1 has dtype .*{needle}"):
        load_tensor_pair(path, "data.train_path", ("noisy_imgs_1", "noisy_imgs_2"))


def test_float_pickle_through_train_py(tmp_path):
    path = tmp_path / "train_data.pkl"
    torch.save((torch.rand(8, 3, 32, 32) * 400, torch.rand(8, 3, 32, 32) * 400), path)
    result = run_entry(["train.py", "data=ee559", f"data.train_path={path}", f"data.val_path={path}",
                        f"hydra.run.dir={tmp_path / 'run'}"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.search(r"train.py: error: data.train_path file .*train_data.pkl: noisy_imgs_1 has dtype "
                     r"torch.float32 and values from .*; expected uint8", result.stderr), result.stderr[-2000:]


# ------------------------------------------------------------------------------------------- images
def test_truncated_image_is_named(tmp_path):
    folder = tmp_path / "train"
    paths = write_images(folder, [(64, 64), (64, 64)], suffix=".png")
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cannot read image .*img01.png: image file is truncated: it is "
                                        r"truncated, corrupt .*replace it or remove it"):
        load_image_folder(folder, 3, "data.train_dir")


def test_images_smaller_than_the_crop_are_named(tmp_path):
    folder = tmp_path / "train"
    write_images(folder, [(64, 64), (20, 70), (40, 31)])
    names, loaded = load_image_folder(folder, 3, "data.train_dir")
    with pytest.raises(DataError, match=r"data.train_dir: 2 image\(s\) are smaller than data.crop_size=32: "
                                        r"img01.png \(70x20\), img02.png \(31x40\); lower data.crop_size"):
        check_min_size(loaded, names, 32, "data.train_dir")


def _mixed_folder(folder: Path) -> Path:
    """Greyscale, RGB, RGBA, palette, greyscale+alpha and 16-bit greyscale images in one folder."""
    folder.mkdir(parents=True)
    rgb = smooth_image(72, 80, 1)
    Image.fromarray(rgb[:, :, 0]).save(folder / "grey.png")
    Image.fromarray(rgb).save(folder / "rgb.jpg")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray(rgb).convert("P").save(folder / "palette.png")
    Image.fromarray(rgb[:, :, 1]).convert("LA").save(folder / "grey_alpha.png")
    Image.fromarray(rgb[:, :, 2].astype(np.uint16) * 257).save(folder / "grey16.png")
    return folder


@pytest.mark.parametrize("channels", [1, 3])
def test_mixed_channel_folder_is_converted_to_the_model_channels(tmp_path, channels):
    names, loaded = load_image_folder(_mixed_folder(tmp_path / "mixed"), channels, "data.train_dir")
    assert len(names) == 6
    assert {tuple(t.shape) for t in loaded} == {(channels, 72, 80)}
    assert all(t.dtype == torch.uint8 for t in loaded)
    grey16 = loaded[names.index("grey16.png")]
    assert grey16.float().mean() > 20  # 16-bit values scaled to 8 bits, not clipped to white or black


def test_training_on_a_mixed_channel_folder(tmp_path, one_thread):  # noqa: F811
    mixed = _mixed_folder(tmp_path / "mixed")
    run_dir = tmp_path / "run"
    run_in_process([*tiny(mixed, mixed, epochs=1), "data.val_limit=2"], run_dir)
    metrics = (run_dir / "metrics.json").read_text()
    assert '"global_step": 4' in metrics and (run_dir / "checkpoints" / "last.ckpt").is_file()
