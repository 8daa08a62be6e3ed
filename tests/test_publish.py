"""The GitHub Pages workflow (.github/workflows/publish.yml), checked offline since it cannot run
here: valid against GitHub's workflow schema (check-jsonschema's vendored copy) and, where the
actionlint binary is installed, clean under actionlint; each validator is also shown to reject a
deliberately broken copy. Then what the workflow must do: render with the pinned Quarto through
`make site` (which checks the freeze) without installing any Python package, and deploy `_site`.
A validator whose tool is not installed is skipped, never failed."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "publish.yml"
QUARTO_VERSION = "1.10.18"  # the Quarto this repository renders with (see _freeze/, _site/)

# The first major of each action that runs on Node 24 (Node 20 left GitHub's runners in
# September 2026); upload-pages-artifact is composite, v5 is the first on upload-artifact@v7.
NODE24_MAJOR = {
    "actions/checkout": 5,
    "actions/setup-python": 6,
    "actions/configure-pages": 6,
    "actions/upload-pages-artifact": 5,
    "actions/deploy-pages": 5,
}

# Text edits that make the workflow invalid in ways both validators know about.
BREAKAGES = {
    "job without runs-on": ("runs-on: ubuntu-latest", "run-on: ubuntu-latest"),
    "bad permission level": ("pages: write", "pages: publish"),
}


def load_workflow() -> dict:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # YAML 1.1 reads the bare key `on` as the boolean True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def steps(job: str) -> list[dict]:
    return load_workflow()["jobs"][job]["steps"]


def step_using(job: str, action: str) -> dict:
    found = [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]
    assert len(found) == 1, f"job {job!r}: expected one step using {action}, found {len(found)}"
    return found[0]


def broken_copy(tmp_path: Path, breakage: str) -> Path:
    old, new = BREAKAGES[breakage]
    text = WORKFLOW.read_text(encoding="utf-8")
    assert old in text, f"the breakage {breakage!r} no longer applies to {WORKFLOW.name}"
    copy = tmp_path / "publish.yml"
    copy.write_text(text.replace(old, new), encoding="utf-8")
    return copy


# ---- validators ------------------------------------------------------------------------------

def schema_check(path: Path) -> subprocess.CompletedProcess:
    if importlib.util.find_spec("check_jsonschema") is None:
        pytest.skip("check-jsonschema is not installed (pip install check-jsonschema)")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
         str(path)],
        capture_output=True, text=True, timeout=120)


def actionlint_check(path: Path) -> subprocess.CompletedProcess:
    # The venv's bin/ first: pytest run as .venv/bin/python need not have it on PATH.
    beside = Path(sys.executable).with_name("actionlint")
    exe = str(beside) if beside.is_file() else shutil.which("actionlint")
    if exe is None:
        pytest.skip("the actionlint binary is not installed")
    # No shellcheck / pyflakes: the result must not depend on what else is on the machine.
    return subprocess.run([exe, "-no-color", "-shellcheck=", "-pyflakes=", str(path)],
                          capture_output=True, text=True, timeout=120, cwd=path.parent)


VALIDATORS = {"schema": schema_check, "actionlint": actionlint_check}


@pytest.mark.parametrize("validator", VALIDATORS)
def test_workflow_is_valid(validator):
    result = VALIDATORS[validator](WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("breakage", BREAKAGES)
@pytest.mark.parametrize("validator", VALIDATORS)
def test_validator_rejects_a_broken_workflow(validator, breakage, tmp_path):
    result = VALIDATORS[validator](broken_copy(tmp_path, breakage))
    assert result.returncode != 0, f"{validator} accepted a workflow with a {breakage}"


# ---- what the workflow does ------------------------------------------------------------------

def test_triggers_permissions_and_concurrency():
    workflow = load_workflow()
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in workflow["on"]
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    assert workflow["concurrency"] == {"group": "pages", "cancel-in-progress": False}


def test_quarto_version_is_pinned():
    setup = step_using("build", "quarto-dev/quarto-actions/setup")
    assert setup["uses"] == "quarto-dev/quarto-actions/setup@v2"
    # A string, compared exactly: not "release" (whatever is newest) nor a YAML float.
    assert setup.get("with", {}).get("version") == QUARTO_VERSION


def test_build_renders_with_make_site_and_installs_nothing():
    build = steps("build")
    python = step_using("build", "actions/setup-python")
    assert str(python["with"]["python-version"]) == "3.11"
    assert "cache" not in python["with"], "nothing is pip-installed, so there is nothing to cache"

    runs = [s for s in build if "run" in s]
    assert [s["run"].strip() for s in runs] == ["make site"], "the build's only command"
    env = runs[0].get("env", {})
    assert env.get("SITE_URL") == (
        "https://${{ github.repository_owner }}.github.io/${{ github.event.repository.name }}")
    assert env.get("REPO_URL") == "${{ github.server_url }}/${{ github.repository }}"
    for step in build:
        text = yaml.safe_dump(step).lower()
        for word in ("pip", "install", "jupyter", "requirements", "uv "):
            assert word not in text, f"the build must not install Python packages: {step}"

    # The order that matters: Quarto and Python before rendering, rendering before uploading.
    order = [s.get("uses", "").split("@")[0] or s["run"].strip() for s in build]
    assert order.index("quarto-dev/quarto-actions/setup") < order.index("make site")
    assert order.index("actions/setup-python") < order.index("make site")
    assert order.index("make site") < order.index("actions/upload-pages-artifact")


def test_make_site_checks_the_freeze():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^site:.*?\n((?:\t.*\n|ifn?eq.*\n|else\n|endif\n|#.*\n)+)", makefile,
                      re.MULTILINE)
    assert match, "the Makefile has no `site` target"
    assert "tests/freeze_status.py" in match.group(1), "`make site` must check the freeze first"


def test_artifact_is_the_rendered_site():
    upload = step_using("build", "actions/upload-pages-artifact")
    assert upload["with"]["path"] == "_site"
    quarto = yaml.safe_load((ROOT / "_quarto.yml").read_text(encoding="utf-8"))
    assert quarto["project"]["output-dir"] == upload["with"]["path"]
    step_using("build", "actions/configure-pages")


def test_deploy_uses_deploy_pages():
    deploy = load_workflow()["jobs"]["deploy"]
    assert deploy["needs"] in ("build", ["build"])
    assert deploy["environment"] == {"name": "github-pages",
                                     "url": "${{ steps.deployment.outputs.page_url }}"}
    step = step_using("deploy", "actions/deploy-pages")
    assert step.get("id") == "deployment"


def test_actions_run_on_node24():
    for job in load_workflow()["jobs"].values():
        for step in job["steps"]:
            if "uses" not in step:
                continue
            action, _, ref = step["uses"].partition("@")
            if action in NODE24_MAJOR:
                major = int(re.fullmatch(r"v(\d+)(\.\d+)*", ref).group(1))
                assert major >= NODE24_MAJOR[action], (
                    f"{step['uses']} runs on Node 20; use @v{NODE24_MAJOR[action]} or later")
