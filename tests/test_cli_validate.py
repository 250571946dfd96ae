"""`incidentio-operator validate`: a GitOps folder checked offline, line by line and by exit code."""

from __future__ import annotations

import base64
import json
import pathlib
import subprocess
import sys
import textwrap

import pytest

from incidentio_operator.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", *argv])
    code = exit_info.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().out.splitlines()


def write(folder: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


DESTINATION = textwrap.dedent("""
    apiVersion: alerting.armor.dev/v1alpha1
    kind: IncidentIoDestination
    metadata: {name: pager, namespace: team}
    spec:
      apiKeySecretRef: {name: api-key}
""").lstrip()

SECRET = textwrap.dedent("""
    apiVersion: v1
    kind: Secret
    metadata: {name: api-key, namespace: team}
    stringData: {apiKey: s3cret}
""").lstrip()


@pytest.fixture
def broken(tmp_path: pathlib.Path) -> pathlib.Path:
    """One of each kind of mistake, spread over nested folders and multi-document files."""
    write(
        tmp_path,
        "team/destinations.yaml",
        """
        apiVersion: alerting.armor.dev/v1alpha1
        kind: IncidentIoDestination
        metadata: {name: bad-enum, namespace: team}
        spec:
          apiKeySecretRef: {name: missing-secret}
          incident: {visibility: secret}
        ---
        apiVersion: alerting.armor.dev/v1alpha1
        kind: IncidentIoDestination
        metadata: {name: no-secret-ref, namespace: team}
        spec: {}
        """,
    )
    write(
        tmp_path,
        "team/rules.yml",
        """
        apiVersion: alerting.armor.dev/v1alpha1
        kind: AlertRule
        metadata: {name: dangling, namespace: team}
        spec:
          destinations: [{name: nowhere}]
        """,
    )
    write(tmp_path, "broken.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: k\n  bad: [\n")
    # Neither is a Kubernetes object: kustomize's file and a values file without apiVersion/kind.
    write(tmp_path, "kustomization.yaml", "resources: [team/destinations.yaml]\n")
    write(tmp_path, "values.yaml", "replicas: 3\n")
    return tmp_path


def test_the_examples_validate_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run(capsys, str(EXAMPLES))
    assert code == 0
    assert lines == ["18 objects checked, 0 errors, 0 warnings"]


def test_the_examples_are_complete_even_under_strict(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--strict", str(EXAMPLES))[0] == 0


def test_every_mistake_is_one_line_naming_file_object_and_field(
    broken: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run(capsys, str(broken))
    destinations, rules = broken / "team/destinations.yaml", broken / "team/rules.yml"
    assert lines == [
        f"error: {broken / 'broken.yaml'}: YAML syntax error at line 4, column 6: expected ',' or '}}', but got ':'",
        f"error: {destinations}: IncidentIoDestination team/bad-enum: spec.incident.visibility: "
        'Unsupported value: "secret": supported values: "public", "private"',
        f"error: {destinations}: IncidentIoDestination team/no-secret-ref: spec.apiKeySecretRef: Required value: "
        "the API key's Secret is required in delivery mode Incident",
        f"warning: {destinations}: IncidentIoDestination team/bad-enum: spec.apiKeySecretRef.name: "
        "Secret team/missing-secret is not declared in these files (external?)",
        f"warning: {rules}: AlertRule team/dangling: spec.destinations[0].name: "
        "IncidentIoDestination team/nowhere is not declared in these files (external?)",
        "3 objects checked, 3 errors, 2 warnings",
    ]
    assert code == 1


def test_strict_turns_external_references_into_errors(broken: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run(capsys, "--strict", str(broken))
    assert code == 1
    assert lines[-1] == "3 objects checked, 5 errors, 0 warnings"
    assert any(line.startswith("error:") and "team/nowhere is not declared" in line for line in lines)


def test_warnings_alone_exit_zero(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "destination.yaml", DESTINATION)
    code, lines = run(capsys, str(tmp_path))
    assert code == 0
    assert lines[0].startswith("warning: ") and "Secret team/api-key is not declared" in lines[0]
    assert lines[-1] == "1 object checked, 0 errors, 1 warning"
    assert run(capsys, "--strict", str(tmp_path))[0] == 1


def test_a_rule_resolves_its_destination_and_the_destination_its_secret(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "all.yaml", DESTINATION + "---\n" + SECRET)
    write(
        tmp_path,
        "rule.yaml",
        """
        apiVersion: alerting.armor.dev/v1alpha1
        kind: AlertRule
        metadata: {name: r, namespace: team}
        spec: {destinations: [{name: pager}]}
        """,
    )
    assert run(capsys, "--strict", str(tmp_path)) == (0, ["3 objects checked, 0 errors, 0 warnings"])


def test_objects_without_namespace_get_the_default_namespace(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "all.yaml", DESTINATION.replace(", namespace: team", "") + "---\n" + SECRET)
    code, lines = run(capsys, str(tmp_path))
    assert code == 0
    assert lines[0] == (
        f"warning: {tmp_path / 'all.yaml'}: IncidentIoDestination default/pager: spec.apiKeySecretRef.name: "
        "Secret default/api-key is not declared in these files (external?)"
    )
    # As `kubectl apply -n team` would place it: next to its Secret.
    assert run(capsys, "--strict", "--default-namespace", "team", str(tmp_path))[0] == 0


def test_a_secret_without_the_key_is_an_error(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "all.yaml", DESTINATION + "---\n" + SECRET.replace("apiKey: s3cret", "token: s3cret"))
    code, lines = run(capsys, str(tmp_path))
    assert code == 1
    assert lines[0] == (
        f"error: {tmp_path / 'all.yaml'}: IncidentIoDestination team/pager: spec.apiKeySecretRef.key: "
        "Secret team/api-key has no key 'apiKey' (it holds token): the destination would report NoAPIKey"
    )


def test_an_empty_key_in_data_is_an_error(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(
        tmp_path,
        "all.yaml",
        DESTINATION + "---\n" + SECRET.replace("stringData: {apiKey: s3cret}", 'data: {apiKey: ""}'),
    )
    code, lines = run(capsys, str(tmp_path))
    assert code == 1
    assert "holds an empty value for 'apiKey'" in lines[0]


@pytest.mark.parametrize(
    "secret",
    [
        """
        apiVersion: bitnami.com/v1alpha1
        kind: SealedSecret
        metadata: {name: api-key, namespace: team}
        spec: {encryptedData: {apiKey: AgBy3i4OJSWK+PiTySYZZA==}}
        """,
        """
        apiVersion: external-secrets.io/v1beta1
        kind: ExternalSecret
        metadata: {name: api-key, namespace: team}
        spec:
          secretStoreRef: {name: vault, kind: ClusterSecretStore}
          data: [{secretKey: apiKey, remoteRef: {key: incidentio}}]
        """,
        # SOPS encrypts values only; key names stay readable.
        """
        apiVersion: v1
        kind: Secret
        metadata: {name: api-key, namespace: team}
        stringData: {apiKey: "ENC[AES256_GCM,data:Zm9v,type:str]"}
        sops: {version: 3.8.1}
        """,
    ],
    ids=["sealed-secret", "external-secret", "sops"],
)
def test_encrypted_and_external_secrets_count_as_present(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], secret: str
) -> None:
    write(tmp_path, "destination.yaml", DESTINATION)
    write(tmp_path, "secret.yaml", secret)
    assert run(capsys, "--strict", str(tmp_path)) == (0, ["2 objects checked, 0 errors, 0 warnings"])


def test_cross_namespace_references_warn_unless_allowed(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "all.yaml", DESTINATION + "---\n" + SECRET)
    write(
        tmp_path,
        "rule.yaml",
        """
        apiVersion: alerting.armor.dev/v1alpha1
        kind: AlertRule
        metadata: {name: r, namespace: other}
        spec: {destinations: [{name: pager, namespace: team}]}
        """,
    )
    code, lines = run(capsys, str(tmp_path))
    assert code == 0
    assert lines[0] == (
        f"warning: {tmp_path / 'rule.yaml'}: AlertRule other/r: spec.destinations[0].namespace: "
        "IncidentIoDestination team/pager is in another namespace: the operator refuses it unless it runs with "
        "--allow-cross-namespace"
    )
    assert run(capsys, "--allow-cross-namespace", "--strict", str(tmp_path))[0] == 0


def test_unknown_fields_versions_and_names_are_errors(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        tmp_path,
        "rules.yaml",
        """
        apiVersion: alerting.armor.dev/v1alpha1
        kind: AlertRule
        metadata: {name: Typo_Name, namespace: team}
        spec: {destinaton: [{name: x}], destinations: [{name: x}]}
        ---
        apiVersion: alerting.armor.dev/v9
        kind: AlertRule
        metadata: {name: future, namespace: team}
        spec: {destinations: [{name: x}]}
        """,
    )
    code, lines = run(capsys, "--format", "text", str(tmp_path))
    assert code == 1
    assert any(
        line.endswith('AlertRule team/Typo_Name: spec.destinaton: unknown field "spec.destinaton"') for line in lines
    )
    assert any("AlertRule team/Typo_Name: metadata.name: Invalid value" in line for line in lines)
    assert any(
        line.endswith(
            "AlertRule team/future: apiVersion: no CRD of alerting.armor.dev serves kind AlertRule at "
            "alerting.armor.dev/v9"
        )
        for line in lines
    )


def test_cel_rules_are_checked_after_defaulting(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(
        tmp_path,
        "destination.yaml",
        DESTINATION + "  connectionTest: {interval: 10s}\n",
    )
    code, lines = run(capsys, str(tmp_path))
    assert code == 1
    assert lines[0].endswith(
        'IncidentIoDestination team/pager: spec.connectionTest.interval: Invalid value: "string": '
        "interval must be a duration such as 30m or 1h, and at least 1m"
    )


def test_json_output_carries_the_same_findings(broken: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run(capsys, "--format", "json", str(broken))
    report = json.loads("\n".join(lines))
    assert code == 1
    assert (report["objects"], report["errors"], report["warnings"]) == (3, 3, 2)
    assert {
        "level": "warning",
        "file": str(broken / "team/rules.yml"),
        "kind": "AlertRule",
        "namespace": "team",
        "name": "dangling",
        "field": "spec.destinations[0].name",
        "message": "IncidentIoDestination team/nowhere is not declared in these files (external?)",
    } in report["problems"]


def test_single_files_are_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run(capsys, str(EXAMPLES / "destination.yaml"), str(EXAMPLES / "secret.yaml"))
    assert (code, lines) == (0, ["2 objects checked, 0 errors, 0 warnings"])


def test_a_missing_path_is_a_usage_error(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(tmp_path / "nope")])
    assert exit_info.value.code == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert run(capsys)[0] == 2


def test_the_installed_command_runs_in_a_subprocess(broken: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "incidentio_operator", "validate", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[-1] == "3 objects checked, 3 errors, 2 warnings"


ALERT = textwrap.dedent("""
    apiVersion: alerting.armor.dev/v1alpha1
    kind: DataAlert
    metadata:
      name: orders-stale
      namespace: team
      labels: {team: data eng}
    spec:
      externalId: alert_1
      title: Orders are stale
      eventType: freshness_violation
      severity: critical
      asset: {qualifiedName: snowflake.prod.sales.orders, environment: production}
      detectedAt: "2026-11-26T10:05:00Z"
""").lstrip()

LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def test_a_label_the_api_server_refuses_is_an_error_and_a_selector_on_it_a_warning(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11 §11: `kubectl apply` refuses the alert, and accepts a rule that can never match it."""
    write(tmp_path, "alert.yaml", ALERT)
    write(tmp_path, "destination.yaml", DESTINATION + "---\n" + SECRET)
    write(
        tmp_path,
        "rule.yaml",
        """
        apiVersion: alerting.armor.dev/v1alpha1
        kind: AlertRule
        metadata: {name: data-eng, namespace: team}
        spec:
          scope: {assetSelector: {matchLabels: {team: data eng}}}
          destinations: [{name: pager}]
        """,
    )
    code, lines = run(capsys, str(tmp_path))
    assert lines == [
        f'error: {tmp_path / "alert.yaml"}: DataAlert team/orders-stale: metadata.labels: Invalid value: "data eng": '
        + LABEL_VALUE_RULE,
        f"warning: {tmp_path / 'rule.yaml'}: AlertRule team/data-eng: spec.scope.assetSelector.matchLabels[team]: "
        f'no label can have the value "data eng", so this selector never matches: {LABEL_VALUE_RULE}',
        "4 objects checked, 1 error, 1 warning",
    ]
    assert code == 1


def test_metadata_is_checked_on_every_kind_by_its_own_rules(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        tmp_path,
        "cluster.yaml",
        """
        apiVersion: v1
        kind: Namespace
        metadata: {name: data.platform}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: 9-api, namespace: team}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: "system:incidentio-operator"}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
          namespace: team
          annotations: {"example.com/owner/team": data}
        """,
    )
    code, lines = run(capsys, str(tmp_path))
    source = tmp_path / "cluster.yaml"
    assert [line.split(": Invalid value: ")[0] for line in lines[:-1]] == [
        f"error: {source}: Namespace data.platform: metadata.name",
        f"error: {source}: Service team/9-api: metadata.name",
        f"error: {source}: ConfigMap team/settings: metadata.annotations",
    ]
    assert lines[0].endswith('"data.platform": must not contain dots')
    assert "a DNS-1035 label must consist of lower case alphanumeric characters" in lines[1]
    assert "a valid label key must consist of" in lines[2]
    assert (code, lines[-1]) == (1, "4 objects checked, 3 errors, 0 warnings")


KEY = "inc_live_7fQk2LmZ9pR4xT"


@pytest.mark.parametrize(
    ("value", "description"),
    [
        ("\ufeff" + KEY, "a byte-order mark (U+FEFF) at position 0"),
        (KEY[:8] + "\u200b" + KEY[8:], "a zero-width formatting character (U+200B) at position 8"),
        (KEY[:8] + "ü" + KEY[8:], "a non-ASCII character at position 8"),
        (KEY[:8] + "\n" + KEY[8:], "a line break (U+000A) at position 8"),
    ],
    ids=["byte-order-mark", "zero-width-space", "non-ascii-letter", "line-break"],
)
@pytest.mark.parametrize("field", ["data", "stringData"])
def test_an_api_key_that_cannot_be_sent_is_an_error_that_never_shows_it(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], value: str, description: str, field: str
) -> None:
    """Issue 11 §6: the Secret, the key, the kind of character and where, and nothing of the value."""
    encoded = base64.b64encode(value.encode()).decode() if field == "data" else json.dumps(value)
    secret = SECRET.replace("stringData: {apiKey: s3cret}", f"{field}: {{apiKey: {encoded}}}")
    write(tmp_path, "all.yaml", DESTINATION + "---\n" + secret)
    code, lines = run(capsys, str(tmp_path))
    assert code == 1
    assert lines[0] == (
        f"error: {tmp_path / 'all.yaml'}: IncidentIoDestination team/pager: spec.apiKeySecretRef.key: Secret "
        f"team/api-key holds a value for 'apiKey' that cannot be sent in an HTTP Authorization header: it has "
        f"{description}"
    )
    _, json_lines = run(capsys, "--format", "json", str(tmp_path))
    for output in ("\n".join(lines), "\n".join(json_lines)):
        assert not any(KEY[start : start + 4] in output for start in range(len(KEY) - 3))


def test_whitespace_around_an_api_key_is_forgiven_as_the_operator_strips_it(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encoded = base64.b64encode(f"  {KEY}\r\n".encode()).decode()
    secret = SECRET.replace("stringData: {apiKey: s3cret}", f"data: {{apiKey: {encoded}}}")
    write(tmp_path, "all.yaml", DESTINATION + "---\n" + secret)
    assert run(capsys, str(tmp_path)) == (0, ["2 objects checked, 0 errors, 0 warnings"])
    write(tmp_path, "all.yaml", DESTINATION + "---\n" + SECRET.replace("apiKey: s3cret", 'apiKey: " \\n"'))
    code, lines = run(capsys, str(tmp_path))
    assert code == 1
    assert "holds an empty value for 'apiKey'" in lines[0]


def test_an_api_key_that_is_not_utf8_is_an_error(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    encoded = base64.b64encode(KEY.encode()[:6] + b"\xfc" + KEY.encode()[6:]).decode()
    write(
        tmp_path,
        "all.yaml",
        DESTINATION + "---\n" + SECRET.replace("stringData: {apiKey: s3cret}", f"data: {{apiKey: {encoded}}}"),
    )
    code, lines = run(capsys, str(tmp_path))
    assert code == 1
    assert lines[0].endswith("it has a byte that is not UTF-8 at byte 6")
