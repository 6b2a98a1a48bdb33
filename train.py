"""Train a Noise2Noise U-Net: `python train.py [group=choice ...] [key=value ...]` (see README)."""
import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from n2n.errors import exit_on_error
    from n2n.train import run

    with exit_on_error("train.py"):
        return run(cfg)


if __name__ == "__main__":
    main()
