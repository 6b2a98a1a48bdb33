"""n2n/training/lightning_compat.py holds every private Lightning API n2n uses. These tests fail, naming the
function, when a Lightning release moves one of them: the runtime would then quietly take a fallback."""
from __future__ import annotations

from lightning.pytorch.callbacks import Callback

from helpers.runs import run_in_process, tiny
from n2n.training import lightning_compat


class Probe(Callback):
    """Calls the compatibility functions where n2n's callbacks call them, and records what they said."""

    def __init__(self):
        self.follows: dict[int, bool] = {}
        self.validated_after: list[int] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.follows[trainer.global_step] = lightning_compat.validation_follows(trainer)
        lightning_compat.flush_step_logs(trainer)
        lightning_compat.relaunches_command_line(trainer)
        for config in trainer.lr_scheduler_configs:
            lightning_compat.set_scheduler_lrs(config.scheduler, config.scheduler.get_last_lr())

    def on_validation_start(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.validated_after.append(trainer.global_step)


def test_private_apis_are_where_n2n_expects_them(images, one_thread, tmp_path):
    lightning_compat.FALLBACKS.clear()
    probe = Probe()
    # validation every 3 steps inside 4-step epochs: "a validation follows" must be told step by step
    run_in_process([*tiny(*images, steps=4, epochs=2), "trainer.val_check_interval=3"], tmp_path, probe)
    assert lightning_compat.FALLBACKS == set(), f"Lightning moved: {sorted(lightning_compat.FALLBACKS)}"
    # every 3rd step of each 4-step epoch, then the final step (asked for by ValidateFinalStep, which runs after
    # the probe: the probe saw no validation due there)
    assert probe.validated_after == [3, 7, 8], probe.validated_after
    assert [s for s, follows in probe.follows.items() if follows] == [3, 7]
