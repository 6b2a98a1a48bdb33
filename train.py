"""Train a Noise2Noise U-Net: `python train.py [group=choice ...] [key=value ...]` (see README)."""
import time

import hydra
from omegaconf import DictConfig

STARTED = time.time()  # before Hydra makes the run folder: a refused run removes only a folder made after it


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from n2n.errors import exit_on_error, imports_shielded

    with exit_on_error("train.py"), imports_shielded("train.py"):  # Ctrl-C while torch imports: one line too
        from n2n.config import resolve_train_config, run_context
        from n2n.training.run import train
        from n2n.training.run_folder import discard_if_unused
    with exit_on_error("train.py"):
        context = run_context(cfg)
        with discard_if_unused(context.run_dir, STARTED):  # a refused config leaves no empty run folder
            return train(resolve_train_config(cfg, context), context)


if __name__ == "__main__":
    main()
