"""Score a checkpoint: `python eval.py ckpt_path=PATH [data=folder data.val_dir=DIR] [noise=...]` (see README)."""
import time

import hydra
from omegaconf import DictConfig

STARTED = time.time()  # before Hydra makes the run folder: a refused run removes only a folder made after it


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    from n2n.errors import exit_on_error, imports_shielded

    with exit_on_error("eval.py"), imports_shielded("eval.py"):  # Ctrl-C while torch imports: one line too
        from n2n.config import run_context
        from n2n.inference.evaluate import evaluate
        from n2n.training.run_folder import discard_if_unused
    with exit_on_error("eval.py"):
        context = run_context(cfg)
        with discard_if_unused(context.run_dir, STARTED):  # a refused config leaves no empty folder
            evaluate(cfg, context)


if __name__ == "__main__":
    main()
