"""Conda environments (envs/*.yaml) agree with the pip pins and every rule uses one.

Conda channels are not reachable on the CI machines, so the environments are not
solved here; what is checked: each file parses, every pinned package is pinned to the
same version as in requirements.txt (conda-forge names mapped to PyPI names), and every
rule that runs code has a ``conda:`` directive pointing at an existing env file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS = sorted((ROOT / "envs").glob("*.yaml"))
#: conda-forge name -> PyPI name where they differ
CONDA_TO_PIP = {"pytorch": "torch", "matplotlib-base": "matplotlib"}
#: rule actions that can run inside a conda environment
ACTIONS = ("shell:", "script:", "notebook:", "wrapper:")


def pip_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert m, f"requirements.txt: not an exact pin: {line!r}"
        pins[m.group(1).lower()] = m.group(2)
    return pins


def env_pins(env: dict) -> dict[str, str]:
    """{pip name: version} of every dependency of a conda env dict, pip section included."""
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for spec in dep.get("pip", []):
                name, _, version = spec.partition("==")
                pins[name.strip().lower()] = version.strip()
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(?:=+\s*([^\s=]+))?", dep.strip())
        assert m, f"unparsable conda dependency {dep!r}"
        name = m.group(1).lower()
        pins[CONDA_TO_PIP.get(name, name)] = m.group(2) or ""
    return pins


def test_three_env_files_exist():
    assert {p.name for p in ENVS} >= {"geo.yaml", "torch.yaml", "report.yaml"}


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_parses_and_pins_agree_with_requirements(path):
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict) and env.get("name"), f"{path.name}: no name"
    assert "conda-forge" in env["channels"]
    pins, want = env_pins(env), pip_pins()
    assert "python" in pins and pins["python"], f"{path.name}: python is not pinned"
    for name, version in pins.items():
        if name in ("python", "pip"):
            continue
        assert name in want, f"{path.name}: {name} is not in requirements.txt"
        assert version, f"{path.name}: {name} is not pinned"
        assert version == want[name], f"{path.name}: {name}={version} but requirements.txt has {want[name]}"


def test_env_pin_parser_detects_disagreement():
    """The comparison above can fail: a wrong pin and a renamed package are both seen."""
    env = {"dependencies": ["python=3.11", "pytorch=2.0.0", {"pip": ["liblinear-official==1.0"]}]}
    pins = env_pins(env)
    assert pins["torch"] == "2.0.0" != pip_pins()["torch"]
    assert pins["liblinear-official"] == "1.0" != pip_pins()["liblinear-official"]


def test_every_runtime_dependency_is_in_some_env():
    """Each pinned library the package imports is provided by at least one env."""
    covered = set()
    for path in ENVS:
        covered |= set(env_pins(yaml.safe_load(path.read_text())))
    tooling = {"snakemake", "snakemake-executor-plugin-slurm", "pytest", "pytest-xdist", "jsonschema"}
    missing = set(pip_pins()) - tooling - covered
    assert not missing, f"not in any envs/*.yaml: {sorted(missing)}"


def rule_blocks(text: str) -> list[tuple[str, str]]:
    """(name, body) of every ``rule``/``checkpoint`` block of a Snakefile text."""
    blocks = []
    heads = list(re.finditer(r"^(?:rule|checkpoint)\s+([A-Za-z_]\w*)\s*:", text, flags=re.M))
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = text[m.end():end]
        # the block ends at the next non-indented, non-comment line
        stop = re.search(r"^(?=[^\s#])", body, flags=re.M)
        blocks.append((m.group(1), body[: stop.start()] if stop else body))
    return blocks


def all_rules() -> list[tuple[Path, str, str]]:
    files = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    return [(f, name, body) for f in files for name, body in rule_blocks(f.read_text())]


def test_rule_parser_sees_rules():
    names = {name for _, name, _ in all_rules()}
    assert "all" in names and "benchmarks_table" in names and "provenance" in names


def test_every_rule_with_an_action_has_a_conda_env():
    problems = []
    for path, name, body in all_rules():
        if re.search(r"^\s+run\s*:", body, flags=re.M):
            problems.append(f"{path.name}:{name} uses run: (no conda env possible; use script:)")
            continue
        if not any(re.search(rf"^\s+{a}", body, flags=re.M) for a in ACTIONS):
            continue  # pure target rule (e.g. all)
        m = re.search(r"^\s+conda\s*:\s*\n?\s*[\"']([^\"']+)[\"']", body, flags=re.M)
        if not m:
            problems.append(f"{path.name}:{name} has no conda: directive")
            continue
        # conda paths are relative to the file that defines the rule
        target = (path.parent / m.group(1)).resolve()
        if not target.is_file() or target.parent != (ROOT / "envs").resolve():
            problems.append(f"{path.name}:{name}: conda: {m.group(1)} is not a file in envs/")
    assert not problems, "\n".join(problems)


def test_rule_block_parser_catches_a_missing_conda():
    text = 'rule a:\n    output: "x"\n    shell: "touch {output}"\n\nrule b:\n    output: "y"\n    conda: "../../envs/geo.yaml"\n    shell: "touch {output}"\n'
    blocks = dict(rule_blocks(text))
    assert "conda" not in blocks["a"] and "conda" in blocks["b"]
