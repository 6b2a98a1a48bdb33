"""The benchmark's short mode runs both loops and reports consistent figures (not a speed assertion)."""
import json

import pytest

from n2n.bench.training import PRESETS, main


@pytest.mark.slow  # a benchmark subprocess of ~15 s: the suite must stay well under 10 minutes
def test_short_benchmark_times_both_loops_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    results = main(["--short", "--device", "cpu", "--steps", "2", "--batch-sizes", "4", "--images", "64",
                    "--workers", "0", "--presets", "fp32", "graph", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["mode"] == "short" and saved["machine"].startswith("CPU")
    naive = saved["naive_bs8"]["images_per_s"]
    assert saved["presets"] == {"fp32": list(PRESETS["fp32"]), "graph": list(PRESETS["graph"])}
    for name in ("fp32", "graph"):
        project = saved[f"project_{name}_bs4"]
        assert naive > 0 and project["images_per_s"] > 0
        assert project["ratio_to_naive"] == pytest.approx(project["images_per_s"] / naive)
        assert project["peak_gpu_mib"] is None
        assert results[f"project_{name}_bs4"] == project


def test_bad_project_override_is_refused(tmp_path):
    from n2n.errors import ConfigError

    with pytest.raises(ConfigError, match="perf.compile"):
        main(["--short", "--device", "cpu", "--steps", "1", "--batch-sizes", "4", "--images", "32",
              "--project", "perf.compile=fastest"])


def test_a_failing_preset_is_reported_and_the_others_still_measured(tmp_path, monkeypatch):
    import n2n.bench.training as bench

    original = bench.project_loop

    def flaky(config, *args):
        if config["perf"]["cuda_graph"]:
            raise RuntimeError("no compiler here")
        return original(config, *args)

    monkeypatch.setattr(bench, "project_loop", flaky)
    out = tmp_path / "bench.json"
    results = main(["--short", "--device", "cpu", "--steps", "2", "--batch-sizes", "4", "--images", "64",
                    "--workers", "0", "--presets", "graph", "fp32", "--json", str(out)])
    assert bench.failed(results) == ["project_graph_bs4"]
    assert "no compiler here" in results["project_graph_bs4"]["error"]
    assert results["project_fp32_bs4"]["images_per_s"] > 0
    assert json.loads(out.read_text()) == results
