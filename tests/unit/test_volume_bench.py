"""python -m n2n.bench.volume: its cases measure what they say (tiny sizes here)."""
from n2n.bench.volume import denoise_case, main, train_case


def test_train_case_reports_speed_and_memory():
    result = train_case(crop=8, batch=1, steps=1, depth=2, features=2, device="cpu", bf16=False)
    assert result["steps_per_s"] > 0 and result["peak_mb"] > 0 and result["precision"] == "float32"


def test_denoise_case_extrapolates_from_the_tiles_run():
    result = denoise_case((8, 80, 80), "513M", tiles=1, depth=2, features=2, device="cpu")
    assert result["tiles_run"] == 1 and result["tiles"] > 1 and result["estimated"]
    assert result["seconds_total"] >= result["seconds_run"]


def test_one_case_in_this_process(capsys):
    [result] = main(["--case", "train:8", "--steps", "1", "--batch", "1", "--model-depth", "2",
                     "--model-features", "2"])
    assert result["case"] == "train 8^3 x 1" and '"steps_per_s"' in capsys.readouterr().out
