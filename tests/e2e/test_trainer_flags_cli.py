"""train.py as a user runs it: any lightning.Trainer flag without `+` (here fast_dev_run, which turns Lightning's
logging and checkpointing off), and the config tree printed at the start and saved in the run folder."""
import json

from helpers.runs import run_entry


def test_fast_dev_run_without_plus_runs_one_step_and_prints_the_config_tree(tmp_path):
    run_dir = tmp_path / "run"
    result = run_entry(["train.py", "experiment=quick_cpu", "trainer.fast_dev_run=true",
                        "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"], env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    # the tree comes first, with its groups and their values
    assert out.lstrip().startswith("CONFIG") and out.index("CONFIG") < out.index("best val/psnr")
    for line in ("├── data", "├── trainer", "├── paths", "fast_dev_run: true", "crop_size: 32",
                 "output_dir: "):
        assert line in out, line
    saved = (run_dir / "config_tree.log").read_text()
    assert "fast_dev_run: true" in saved and f"output_dir: {run_dir}" in saved
    # n2n's own summary copes with a run that Lightning neither logs nor checkpoints
    assert "best val/psnr" in out and "after 1 steps" in out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["global_step"] == 1 and metrics["best_checkpoint"] == ""
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "tensorboard").exists()
