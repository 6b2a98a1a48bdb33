"""An optional package that is not installed is one line naming the extra to install, exit code 2
(n2n.extras.require_extra), for `n2n export ... OUT.onnx` and `n2n report` as for any feature that needs one."""
from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

import pytest

from n2n.errors import N2NError
from n2n.extras import EXTRA_OF, MissingExtra, require_extra, requirements


def run_without(module: str, argv: list[str]) -> subprocess.CompletedProcess:
    """`n2n ARGV` in a fresh interpreter where importing `module` fails as if it were not installed."""
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            f"from n2n.cli import main\nsys.exit(main({argv!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})


def assert_one_line(result: subprocess.CompletedProcess, program: str, module: str, extra: str):
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert lines[0].startswith(f"{program}: error: ") and f"needs {module}, which is not installed" in lines[0]
    assert f'pip install -e ".[{extra}]"' in lines[0]


def test_export_to_onnx_without_onnx(tmp_path):
    out = tmp_path / "model.onnx"
    assert_one_line(run_without("onnx", ["export", "gaussian-blind", str(out)]), "n2n export", "onnx", "export")
    assert not out.exists()


def test_report_without_matplotlib(tmp_path):
    result = run_without("matplotlib", ["report", str(tmp_path)])
    assert_one_line(result, "n2n", "matplotlib", "report")
    assert not (tmp_path / "report.md").exists()


def test_the_message_names_the_extra_and_its_requirements(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtra) as err:
        require_extra("onnxruntime", for_what="running an ONNX model")
    assert isinstance(err.value, N2NError)
    assert str(err.value) == ('running an ONNX model needs onnxruntime, which is not installed: pip install -e '
                              '".[export]" in the n2n folder, or pip install "onnx>=1.15" "onnxruntime>=1.17"')


def test_a_broken_install_is_not_called_missing(tmp_path, monkeypatch):
    (tmp_path / "n2n_fake_optional").mkdir()
    (tmp_path / "n2n_fake_optional" / "__init__.py").write_text("import n2n_dependency_that_is_not_there\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingExtra, match=r"needs n2n_fake_optional, which is installed but cannot be imported "
                                           r"\(No module named 'n2n_dependency_that_is_not_there'\)"):
        require_extra("n2n_fake_optional", "report", "a test")


def test_an_installed_package_is_returned():
    import yaml

    assert require_extra("yaml", "report", "a test") is yaml


def test_each_optional_module_is_in_its_extra():
    """EXTRA_OF agrees with pyproject.toml: the distribution that provides each module is a requirement of
    its extra (as n2n's installed metadata lists them)."""
    providers = metadata.packages_distributions()
    installed = [m for m in EXTRA_OF if m in providers]
    if not installed:
        pytest.skip("no optional package is installed here")
    for module in installed:
        extra = EXTRA_OF[module]
        listed = {r.strip('"').split("<")[0].split(">")[0].split("=")[0].lower() for r in requirements(extra)}
        assert {d.lower() for d in providers[module]} & listed, (module, extra, providers[module], listed)
