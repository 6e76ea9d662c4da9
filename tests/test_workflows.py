"""The GitHub Actions workflows, read as data: they cannot run here, so their shape is checked.

Triggers, the test matrix (three systems x Python 3.11-3.13), the test command (the README's),
lint, the build and its inspection, and a publish job that runs on ``v*`` tags only, through
PyPI's trusted publishing (an OIDC token, no stored secret).
"""

from __future__ import annotations

import importlib.util
import io
import re
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
DOCS = WORKFLOWS / "docs.yml"

pytestmark = pytest.mark.skipif(not CI.is_file(), reason="not a source checkout")


def _load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the bare key `on` as the boolean True
    if True in data:
        data["on"] = data.pop(True)
    return data


def _runs(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def _uses(job: dict) -> list[str]:
    return [step["uses"] for step in job["steps"] if "uses" in step]


def _steps_using(job: dict, action: str) -> list[dict]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(f"{action}@")]


@pytest.fixture(scope="module")
def ci() -> dict:
    return _load(CI)


def _readme_test_command() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    commands = [b.strip() for b in blocks if "pytest" in b]
    assert commands, "the README gives no test command"
    return commands[0]


def test_every_workflow_parses_and_names_its_jobs():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert CI in files
    for path in files:
        data = _load(path)
        assert data.get("name"), path
        assert data.get("on"), path
        for name, job in data["jobs"].items():
            assert "runs-on" in job, f"{path.name}: job {name}"
            assert job["steps"], f"{path.name}: job {name}"


def test_triggers(ci):
    on = ci["on"]
    assert "pull_request" in on
    assert on["push"]["branches"] == ["main"]
    assert on["push"]["tags"] == ["v*"]


def test_default_permissions_are_read_only(ci):
    assert ci["permissions"] == {"contents": "read"}
    for name, job in ci["jobs"].items():
        if name != "publish":
            assert "id-token" not in job.get("permissions", {}), name


def test_matrix_three_systems_three_pythons(ci):
    matrix = ci["jobs"]["test"]["strategy"]["matrix"]
    assert sorted(matrix["os"]) == ["macos-latest", "ubuntu-latest", "windows-latest"]
    assert matrix["python-version"] == ["3.11", "3.12", "3.13"]
    assert ci["jobs"]["test"]["strategy"]["fail-fast"] is False


def test_matrix_pythons_match_the_package(ci):
    meta = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert meta["requires-python"] == ">=3.11"
    listed = {
        c.rsplit(" :: ", 1)[1]
        for c in meta["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert listed == set(ci["jobs"]["test"]["strategy"]["matrix"]["python-version"])


def test_tests_run_the_readme_command_headless_with_cpu_torch(ci):
    job = ci["jobs"]["test"]
    runs = "\n".join(_runs(job))
    command = _readme_test_command()
    assert command == "xvfb-run -a python -m pytest -q"
    assert command in runs  # exactly the README's command on Linux
    assert any(u.startswith("pyvista/setup-headless-display-action@") for u in _uses(job))
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs
    assert 'pip install -e ".[testing' in runs
    (checkout,) = _steps_using(job, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0  # the version needs the tags


def test_ci_script_runs_the_readme_command():
    text = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert _readme_test_command() in text


def test_lint_runs_ruff_check_and_format(ci):
    runs = _runs(ci["jobs"]["lint"])
    assert any(r.startswith("ruff check") for r in runs)
    assert any(r.startswith("ruff format --check") for r in runs)


def test_build_checks_and_inspects_the_distributions(ci):
    job = ci["jobs"]["build"]
    runs = "\n".join(_runs(job))
    assert "python -m build" in runs
    assert "twine check" in runs
    assert "python .ci/inspect_dist.py dist" in runs
    assert "npe2 validate napari-zssr" in runs
    assert "napari-zssr --version" in runs
    (upload,) = _steps_using(job, "actions/upload-artifact")
    assert upload["with"]["name"] == "dist"


def test_publish_only_on_tags_through_trusted_publishing(ci):
    job = ci["jobs"]["publish"]
    assert set(job["needs"]) == {"lint", "test", "build"}
    condition = job["if"]
    assert "startsWith(github.ref, 'refs/tags/v')" in condition
    assert "github.event_name == 'push'" in condition
    assert job["permissions"] == {"id-token": "write"}
    assert job["environment"]["name"] == "pypi"
    (publish,) = _steps_using(job, "pypa/gh-action-pypi-publish")
    # trusted publishing: no password or token handed to the action
    assert not {"password", "user"} & set(publish.get("with", {}))
    text = CI.read_text(encoding="utf-8")
    assert "secrets." not in text
    assert "PYPI_API_TOKEN" not in text


def test_only_the_publish_job_may_mint_tokens():
    for path in sorted(WORKFLOWS.glob("*.yml")):
        data = _load(path)
        for name, job in data["jobs"].items():
            if job.get("permissions", {}).get("id-token") == "write":
                assert (path, name) in {(CI, "publish"), (DOCS, "deploy")}, (path, name)


def test_docs_workflow_builds_strict_and_deploys_from_main_only():
    data = _load(DOCS)
    runs = "\n".join(r for job in data["jobs"].values() for r in _runs(job))
    assert "mkdocs build --strict" in runs
    deploy = data["jobs"]["deploy"]
    assert "refs/heads/main" in deploy["if"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}


def test_dependabot_keeps_the_actions_current():
    data = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    ecosystems = {u["package-ecosystem"] for u in data["updates"]}
    assert "github-actions" in ecosystems


def test_actions_are_pinned_to_a_version():
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in _load(path)["jobs"].values():
            for uses in _uses(job):
                assert "@" in uses and not uses.endswith(("@main", "@master")), (path, uses)


def test_pre_commit_runs_ruff():
    data = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {h["id"] for repo in data["repos"] for h in repo["hooks"]}
    assert {"ruff-check", "ruff-format"} <= hooks


def _inspector():
    spec = importlib.util.spec_from_file_location("inspect_dist", REPO / ".ci" / "inspect_dist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_dist(folder: Path, wheel_names: list[str], sdist_names: list[str]) -> None:
    entry = "napari_zssr-1.0.dist-info/entry_points.txt"
    with zipfile.ZipFile(folder / "napari_zssr-1.0-py3-none-any.whl", "w") as zf:
        for name in wheel_names:
            zf.writestr(name, "x")
        zf.writestr(
            entry,
            "[console_scripts]\nnapari-zssr = napari_zssr.cli:main\n\n"
            "[napari.manifest]\nnapari-zssr = napari_zssr:napari.yaml\n",
        )
    with tarfile.open(folder / "napari_zssr-1.0.tar.gz", "w:gz") as tf:
        for name in sdist_names:
            data = b"x"
            info = tarfile.TarInfo(f"napari_zssr-1.0/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_dist_inspection_fails_on_a_missing_data_file_or_stray_tests(tmp_path):
    inspector = _inspector()
    data = list(inspector.PACKAGE_DATA)
    sdist = [*inspector.SDIST_TOP, *(f"src/{n}" for n in data), "tests/test_x.py"]
    good = tmp_path / "good"
    good.mkdir()
    _fake_dist(good, [*data, "napari_zssr/__init__.py"], sdist)
    assert inspector.problems(good) == []
    bad = tmp_path / "bad"
    bad.mkdir()
    wheel = [n for n in data if not n.endswith(".tif")] + ["tests/test_x.py"]
    _fake_dist(bad, wheel, [*sdist, "benchmarks/natural.py"])
    found = inspector.problems(bad)
    assert "wheel lacks napari_zssr/data/membrane_2d.tif" in found
    assert "wheel holds tests/test_x.py" in found
    assert "sdist holds benchmarks/natural.py" in found
    assert inspector.main([str(bad)]) == 1
