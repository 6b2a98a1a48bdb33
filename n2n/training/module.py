"""The LightningModule: the U-Net trained by a method (n2n/methods/), PSNR/SSIM on validation (on 8-bit-rounded
outputs). The module knows no method in particular: the method turns each batch into its loss and says how the
trained network is applied."""
from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torchmetrics import MeanMetric
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from n2n.config import require, section
from n2n.errors import ConfigError
from n2n.methods import method_for_config
from n2n.metrics import psnr, quantize8
from n2n.models.unet import build_unet
from n2n.optim import build_optimizer, build_scheduler, lr_factor
from n2n.training.graphed_step import GraphedStep
from n2n.visualize import COLUMNS, TENSORBOARD_CARD_WIDTH, comparison_grid, psnr_caption

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
COMPILE_MODES_WITH_GRAPHS = ("reduce-overhead", "max-autotune")  # these capture CUDA graphs of their own
PERF_KEYS = {"channels_last", "compile", "cuda_graph"}


def check_perf(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """The `perf` section: speed switches that change no numbers beyond rounding."""
    perf = dict(cfg or {})
    unknown = sorted(set(perf) - PERF_KEYS)
    if unknown:
        raise ConfigError(f"perf: unknown option(s) {unknown}; allowed: {sorted(PERF_KEYS)}")
    mode = perf.get("compile", False)
    if mode is True:
        mode = "default"
    if mode not in (False, None, *COMPILE_MODES):
        raise ConfigError(f"perf.compile={mode!r} must be false or one of {', '.join(COMPILE_MODES)}")
    flags = {}
    for key in ("channels_last", "cuda_graph"):
        flags[key] = perf.get(key, False)
        if flags[key] == "auto" and key == "channels_last":
            raise ConfigError("perf.channels_last=auto reached the model unresolved: resolve the config first "
                              "(n2n.config.resolve_train_config, as train.py does)")
        if not isinstance(flags[key], bool):
            allowed = "true, false or auto" if key == "channels_last" else "true or false"
            raise ConfigError(f"perf.{key}={flags[key]!r} must be {allowed}")
    if flags["cuda_graph"] and mode in COMPILE_MODES_WITH_GRAPHS:
        raise ConfigError(f"perf.cuda_graph=true with perf.compile={mode}: that compile mode captures CUDA graphs "
                          f"of its own; use perf.compile=default or max-autotune-no-cudagraphs with perf.cuda_graph")
    return {**flags, "compile": mode or False}


def check_graph_trainer(trainer: L.Trainer) -> torch.dtype | None:
    """The autocast dtype of a `perf.cuda_graph` run; refuses the Trainer settings a replayed step cannot honour."""
    if trainer.world_size > 1:
        raise ConfigError(f"perf.cuda_graph=true trains on one device (this run has {trainer.world_size} "
                          f"processes); set perf.cuda_graph=false for data-parallel training")
    if trainer.accumulate_grad_batches != 1:
        raise ConfigError(f"perf.cuda_graph=true cannot accumulate gradients (trainer.accumulate_grad_batches="
                          f"{trainer.accumulate_grad_batches}): the graph zeroes them every step; use a larger "
                          f"data.batch_size, or perf.cuda_graph=false")
    precision = str(trainer.precision)
    if precision.startswith("16"):
        raise ConfigError(f"perf.cuda_graph=true does not support trainer.precision={precision} (float16 needs "
                          f"gradient scaling outside the graph); use trainer.precision=bf16-mixed or 32-true")
    return torch.bfloat16 if precision == "bf16-mixed" else None


class N2NModule(L.LightningModule):
    """`config` is the whole resolved training config (plain dicts, see n2n.config); it is saved in every
    checkpoint so that eval.py and `n2n denoise` rebuild the model from the checkpoint alone. Each part is
    built from its own section: model, method (with the loss), optimizer, scheduler, perf."""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.optimizer_cfg = section(config, "optimizer")
        self.scheduler_cfg = section(config, "scheduler")
        self.net = build_unet(section(config, "model"))
        self.method = method_for_config(config)
        # Refuse bad optimiser/scheduler options now, not after data loading and the first epoch.
        build_optimizer(self.optimizer_cfg, [torch.nn.Parameter(torch.zeros(1))])
        lr_factor(self.scheduler_cfg)
        self.perf = check_perf(section(config, "perf"))
        # a plain attribute, not a submodule: registering the alias would store every weight twice
        object.__setattr__(self, "_train_forward", self.net)  # the compiled network after on_fit_start
        self._graphed_step: GraphedStep | None = None
        self._pending_loss: torch.Tensor | None = None  # read back once, by the progress bar (below)
        self._shown_loss: float | None = None
        self.num_logged_images = int(require(config, "log_images", "config"))
        self.val_psnr = PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))
        self.val_psnr_noisy = PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))
        self.val_ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
        self.val_n2n_loss = MeanMetric()
        self.val_self_loss = MeanMetric()
        self.loss_name = section(config, "loss").get("name")
        self.val_seed = int(section(config, "data").get("val_seed", 0))
        self._grid_rows: list[list[torch.Tensor]] = []
        self._grid_captions: list[list[str]] = []
        self._grid_labels: tuple[str, ...] = COLUMNS
        self._total_steps = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def inference_network(self) -> torch.nn.Module:
        """The network as the method applies it (one pass, or an average over masks or re-corruptions)."""
        return self.method.inference_network(self.net)

    def _forward_train(self, x: torch.Tensor) -> torch.Tensor:
        if self.perf["channels_last"]:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._train_forward(x)

    # ------------------------------------------------------------------------------------ training
    def on_fit_start(self) -> None:
        if self.perf["channels_last"]:
            self.net.to(memory_format=torch.channels_last)
        if self.perf["compile"]:
            # kept out of the module tree so that checkpoints hold the plain network's parameter names;
            # validation runs eagerly because its image sizes vary (each would trigger a recompile)
            object.__setattr__(self, "_train_forward", torch.compile(self.net, mode=self.perf["compile"]))
        self._graphed_step = None
        if self.perf["cuda_graph"]:
            dtype = check_graph_trainer(self.trainer)
            self._graphed_step = GraphedStep(self._forward_train, self.method.loss, list(self.net.parameters()), dtype)
            if self.device.type != "cuda" and self.trainer.is_global_zero:
                print(f"perf.cuda_graph=true: the training device is {self.device.type}, not CUDA, so the step "
                      f"runs eagerly (same code, no graph)", flush=True)

    def on_train_start(self) -> None:
        self._total_steps = float(self.trainer.estimated_stepping_batches)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if math.isfinite(self._total_steps) and self._total_steps > 0:
            self.method.set_progress(min(1.0, self.global_step / self._total_steps))
        if self._graphed_step is not None:
            loss = self._graphed_step(batch)  # forward and backward done; Lightning steps the optimiser
        else:
            loss = self.method.loss(self._forward_train, batch)
        if self._logs_this_step():
            # not prog_bar=True: Lightning would then copy the last logged value to the host after every step,
            # a device synchronisation per step; the progress bar reads it once per logging step instead
            self.log("train/loss", loss, batch_size=batch["noisy"].shape[0])
            self._pending_loss = loss.detach()
        return loss

    def progress_bar_loss(self) -> float | None:
        """The training loss of the last logging step, as a float (one read-back per logging step)."""
        if self._pending_loss is not None:
            self._shown_loss, self._pending_loss = float(self._pending_loss), None
        return self._shown_loss

    def _logs_this_step(self) -> bool:
        """`self.log` costs more CPU time than a whole graphed step at batch 8; Lightning writes step metrics only
        every `log_every_n_steps` anyway, so log then, and at the last step of each epoch and of the run."""
        trainer = self.trainer
        step = self.global_step + 1
        return (step % max(1, trainer.log_every_n_steps) == 0 or trainer.is_last_batch
                or (trainer.max_steps > 0 and step >= trainer.max_steps))

    # With perf.cuda_graph the graph zeroes the gradients and runs backward itself: Lightning must neither
    # (setting the gradients to None would detach them from the memory the graph writes to).
    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        if self._graphed_step is None:
            super().backward(loss, *args, **kwargs)

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: torch.optim.Optimizer) -> None:
        if self._graphed_step is None:
            super().optimizer_zero_grad(epoch, batch_idx, optimizer)

    def configure_optimizers(self):
        optimizer = build_optimizer(self.optimizer_cfg, self.net.parameters())
        total = self.trainer.estimated_stepping_batches
        if lr_factor(self.scheduler_cfg) is not None and not math.isfinite(total):
            raise ConfigError("the scheduler needs a known training length: set trainer.max_steps or "
                              "trainer.max_epochs, or use scheduler=none")
        scheduler = build_scheduler(self.scheduler_cfg, optimizer, int(total) if math.isfinite(total) else 1)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ---------------------------------------------------------------------------------- validation
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """`noisy` is the input, denoised as the method's inference rule says; against `clean` (where the data has
        it): val/psnr, val/ssim, val/psnr_noisy; against `other`, an independent noisy copy (data without clean
        images): val/n2n_loss, whose expectation is the loss against the clean image plus a constant (the noise's
        variance for l2), so it ranks checkpoints as the clean loss would (docs/own-data.md). With neither (one
        capture per scene): val/self_loss, the method's own training loss on the held-out images."""
        if batch["noisy"].dim() == 5:  # volumes (data=volumes): normalised, scored in 3D, not rounded to 8 bits
            from n2n.volumes.validation import volume_validation_step
            return volume_validation_step(self, batch)
        noisy = batch["noisy"]
        n = noisy.shape[0]
        # The network and the metrics in float32 even under mixed precision: then val/psnr is what eval.py
        # reports for the same checkpoint (a bf16 forward scored ~0.015 dB lower), bfloat16 cannot hold the
        # 8-bit levels k/255 exactly, and SSIM's Gaussian filter is a convolution that autocast would run in
        # bfloat16. (Weights stored in half precision, trainer.precision=bf16-true, keep their dtype.)
        with torch.autocast(self.device.type, enabled=False):
            noisy = noisy.to(next(self.net.parameters()).dtype)
            output = self.inference_network()(noisy)
            denoised = quantize8(output.float())
            reference = batch.get("clean")
            if reference is None and "other" not in batch:
                self.val_self_loss(self._self_loss(noisy, batch_idx), weight=n)
            if reference is not None:
                self.val_psnr(denoised, reference)
                self.val_psnr_noisy(quantize8(noisy), reference)
                self.val_ssim(denoised, reference)
            if "other" in batch:
                reference = batch["other"] if reference is None else reference
                self.val_n2n_loss(self._n2n_loss(output.float().clamp(0, 1), batch["other"]), weight=n)
        if "clean" in batch:
            self.log("val/psnr", self.val_psnr, prog_bar=True, batch_size=n)
            self.log("val/psnr_noisy", self.val_psnr_noisy, batch_size=n)
            self.log("val/ssim", self.val_ssim, batch_size=n)
        if "other" in batch:
            self.log("val/n2n_loss", self.val_n2n_loss, prog_bar="clean" not in batch, batch_size=n)
        if reference is None:
            self.log("val/self_loss", self.val_self_loss, prog_bar=True, batch_size=n)
        for i in range(min(n, self.num_logged_images - len(self._grid_rows))):
            row = [quantize8(noisy[i].float()).cpu(), denoised[i].cpu()]
            if reference is not None:
                row.append(reference[i].float().clamp(0, 1).cpu())
            self._grid_rows.append(row)
            # PSNR against a clean image only: against a noisy copy it would not mean "quality"
            self._grid_captions.append([psnr_caption(psnr(im, row[2])) if "clean" in batch else "" for im in row[:2]])
            self._grid_labels = (COLUMNS if "clean" in batch else ("noisy", "denoised", "other noisy copy")
                                 if reference is not None else ("noisy", "denoised"))

    def _self_loss(self, noisy: torch.Tensor, batch_idx: int) -> torch.Tensor:
        """The method's training loss on a held-out image, with its random draws seeded by the image's place:
        the same masks in every validation, so the curve moves only with the network. Cropped to even sides
        (methods that sub-sample 2 x 2 cells)."""
        noisy = noisy[..., : noisy.shape[-2] // 2 * 2, : noisy.shape[-1] // 2 * 2]
        generator = torch.Generator(device=noisy.device).manual_seed(self.val_seed * 1_000_003 + batch_idx)
        return self.method.loss(self.net, self.method.prepare({"noisy": noisy}, generator)).float()

    def _n2n_loss(self, output: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """Mean absolute error for loss=l1 (median-preserving noise), else mean squared error."""
        if self.loss_name == "l1":
            return (output - other).abs().mean()
        return ((output - other) ** 2).mean()

    def on_validation_epoch_end(self) -> None:
        rows, captions, self._grid_rows, self._grid_captions = self._grid_rows, self._grid_captions, [], []
        if not rows or self.trainer.sanity_checking:
            return
        experiment = getattr(self.logger, "experiment", None)
        if hasattr(experiment, "add_image"):  # TensorBoard
            # one card per image: TensorBoard fits each image into a card about 400 x 200 px, where a grid of
            # several rows would shrink until its captions could not be read
            for i, (row, caption) in enumerate(zip(rows, captions), 1):
                grid = comparison_grid([row], max_side=256, min_side=192, labels=self._grid_labels,
                                       captions=[caption], shown_width=TENSORBOARD_CARD_WIDTH)
                experiment.add_image(f"val/noisy|denoised|clean/{i}", grid, self.global_step)
