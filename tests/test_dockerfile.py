"""The container image recipe, read without Docker: stages, user, entrypoint, what the final image holds."""

from __future__ import annotations

import json
import pathlib
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

import pytest

from incidentio_operator.cli import build_parser
from incidentio_operator.offline.schema import CRDS_ENV

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# What compiles or links code; none of it may be installed into the image that runs.
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|cc|make|build-essential|[\w.+-]+-dev|pkg-config|cargo|rustc)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arguments for name, arguments in self.instructions if name == keyword]

    def last(self, keyword: str) -> str:
        values = self.all(keyword)
        assert values, f"no {keyword} in the stage FROM {self.base}"
        return values[-1]

    def env(self) -> dict[str, str]:
        """ENV in its `KEY=value ...` form, which the Dockerfile uses throughout."""
        variables: dict[str, str] = {}
        for arguments in self.all("ENV"):
            for pair in arguments.split():
                key, separator, value = pair.partition("=")
                assert separator, f"ENV {arguments!r}: use the KEY=value form"
                variables[key] = value.strip('"')
        return variables


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical = (pending + line).strip()
        pending = ""
        keyword, _, arguments = logical.partition(" ")
        result.append((keyword.upper(), " ".join(arguments.split())))
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def stages() -> list[Stage]:
    parsed: list[Stage] = []
    for keyword, arguments in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if keyword == "FROM":
            words = arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            parsed.append(Stage(base=words[0], name=name))
        else:
            assert parsed, f"{keyword} before the first FROM"
            parsed[-1].instructions.append((keyword, arguments))
    return parsed


def exec_form(arguments: str) -> list[str]:
    """ENTRYPOINT/CMD must be JSON arrays: the shell form would make /bin/sh PID 1 and swallow SIGTERM."""
    value: Any = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(word, str) for word in value), arguments
    return value


def copy_parts(arguments: str) -> tuple[dict[str, str], list[str], str]:
    """The --flags, the sources and the destination of a COPY."""
    words = arguments.split()
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    return flags, words[:-1], words[-1]


def final() -> Stage:
    return stages()[-1]


def test_build_and_runtime_are_separate_stages() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    builder_names = {stage.name for stage in all_stages[:-1]}
    copied_from = {copy_parts(arguments)[0].get("from") for arguments in final().all("COPY")} - {None}
    # The final image takes only built artefacts from earlier stages, never from an outside image.
    assert copied_from and copied_from <= builder_names


def test_final_stage_is_python_slim() -> None:
    image, _, tag = final().base.partition(":")
    assert image == "python"
    assert tag.startswith("3.11") and "slim" in tag


def test_final_stage_installs_no_build_tools() -> None:
    for command in final().all("RUN"):
        assert not BUILD_TOOLS.search(command), command
    # Nothing from the sources either: the venv and the CRDs are all the final image needs.
    sources = [source for arguments in final().all("COPY") for source in copy_parts(arguments)[1]]
    assert sorted(sources) == ["/opt/venv", "crds/"]


def test_runs_as_a_numeric_non_root_user() -> None:
    user, _, group = final().last("USER").partition(":")
    # Numeric: kubelet's runAsNonRoot check cannot resolve names, and refuses to start such a pod.
    assert user.isdigit() and int(user) != 0
    assert not group or (group.isdigit() and int(group) != 0)
    # The same uid the Deployment sets, so the image and the manifests agree.
    assert int(user) == 10001


def test_entrypoint_is_the_operator_cli() -> None:
    entrypoint = exec_form(final().last("ENTRYPOINT"))
    command = exec_form(final().last("CMD"))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert entrypoint == ["incidentio-operator"]
    assert scripts["incidentio-operator"] == "incidentio_operator.cli:main"
    args = build_parser().parse_args([*entrypoint[1:], *command])
    assert args.command == "run"
    assert args.all_namespaces is True


def test_exposes_the_ports_the_operator_listens_on() -> None:
    exposed = {int(port.partition("/")[0]) for arguments in final().all("EXPOSE") for port in arguments.split()}
    defaults = build_parser().parse_args(["run"])
    liveness = re.fullmatch(r"http://[^:/]+:(\d+)/.*", defaults.liveness)
    assert liveness is not None, defaults.liveness
    assert exposed == {int(liveness.group(1)), defaults.metrics_port} == {8080, 9090}


def test_crds_are_copied_where_the_operator_looks_for_them() -> None:
    env = final().env()
    destinations = [copy_parts(arguments)[2] for arguments in final().all("COPY") if "crds/" in arguments.split()]
    assert len(destinations) == 1
    assert env[CRDS_ENV].rstrip("/") == destinations[0].rstrip("/") == "/app/crds"


def test_the_venv_is_on_path_where_the_builder_put_it() -> None:
    (builder,) = [stage for stage in stages()[:-1] if stage.name == "builder"]
    assert any("venv /opt/venv" in command for command in builder.all("RUN"))
    venv_copies = [
        copy_parts(arguments) for arguments in final().all("COPY") if copy_parts(arguments)[0].get("from") == "builder"
    ]
    assert [(sources, destination) for _, sources, destination in venv_copies] == [(["/opt/venv"], "/opt/venv")]
    assert final().env()["PATH"].split(":")[0] == "/opt/venv/bin"
    # The venv links to the base image's interpreter: both stages must use the same one.
    assert builder.base == final().base


# ------------------------------------------------------------------ build context


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go's filepath.Match plus `**`) as a regular expression."""
    parts: list[str] = []
    index = 0
    cleaned = pattern.strip().strip("/")
    while index < len(cleaned):
        if cleaned.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif cleaned.startswith("**", index):
            parts.append(".*")
            index += 2
        elif cleaned[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif cleaned[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(cleaned[index]))
            index += 1
    return re.compile("".join(parts) + r"\Z")


def in_context(path: str) -> bool:
    """Whether `path` reaches the build: the last matching rule wins, a match on a parent folder counts."""
    rules = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    prefixes = ["/".join(path.split("/")[: depth + 1]) for depth in range(path.count("/") + 1)]
    included = True
    for rule in rules:
        negated = rule.startswith("!")
        pattern = _pattern(rule.lstrip("!"))
        if any(pattern.match(prefix) for prefix in prefixes):
            included = negated
    return included


@pytest.mark.parametrize(
    "path",
    ["pyproject.toml", "README.md", "operator/incidentio_operator/cli.py", "crds/dataalerts.yaml"],
)
def test_build_inputs_are_in_the_context(path: str) -> None:
    assert (ROOT / path).exists()
    assert in_context(path)


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/test_dockerfile.py",
        "operator/incidentio_operator/__pycache__/cli.cpython-311.pyc",
        "operator/incidentio_operator.egg-info/PKG-INFO",
        "manifests/base/rbac.yaml",
    ],
)
def test_everything_else_stays_out_of_the_context(path: str) -> None:
    assert not in_context(path)


def test_every_source_the_builder_copies_is_in_the_context() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    copied: list[str] = []
    for stage in stages():
        for arguments in stage.all("COPY"):
            flags, sources, _ = copy_parts(arguments)
            if "from" not in flags:
                copied.extend(source.rstrip("/") for source in sources)
    for source in copied:
        assert (ROOT / source).exists(), source
        assert in_context(source), source
    # The wheel build reads the readme pyproject names and the package folder setuptools is pointed at.
    assert pyproject["project"]["readme"] in copied
    assert set(pyproject["tool"]["setuptools"]["packages"]["find"]["where"]) <= set(copied)
