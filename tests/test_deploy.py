"""deploy/: Kubernetes manifests, the Grafana dashboard and the Prometheus rules, checked offline.

The manifests are validated against the API schemas that ``kubernetes-validate`` bundles, their
references (ConfigMaps, selectors, ports, the kustomization's files) are resolved here, their
settings are fed to the services' own settings classes, and every metric the dashboard and the
alert rules use is looked up in the ``/metrics`` output of the real services, started as
processes for this test.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_validate
import orjson
import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ValidationError

from ingest.settings import IngestSettings
from projector.settings import ProjectorSettings
from query_api.settings import ApiSettings
from tests.factories import acceptance, new_secret, sign
from tests.support.ports import free_port
from tests.support.stack import KAFKA, REDIS_URL

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
DASHBOARD = ROOT / "deploy" / "grafana" / "msgstatus.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"

# The oldest and the newest minor release the Kubernetes project still supports.
KUBERNETES_VERSIONS = ("1.35", "1.37")

SETTINGS: dict[str, type[BaseModel]] = {
    "ingest": IngestSettings,
    "projector": ProjectorSettings,
    "api": ApiSettings,
}
"""The settings class of each ``msgstatus <command>`` a Deployment runs."""

Doc = dict[str, Any]


def load_manifests() -> list[tuple[str, Doc]]:
    """Every object of every manifest file with its file name (the kustomization excluded)."""
    found = []
    for path in sorted(KUBE.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                found.append((path.name, doc))
    return found


def objects(kind: str) -> list[Doc]:
    """The manifests' objects of one kind."""
    return [doc for _, doc in load_manifests() if doc["kind"] == kind]


def by_name(kind: str) -> dict[str, Doc]:
    """The manifests' objects of one kind by name."""
    return {doc["metadata"]["name"]: doc for doc in objects(kind)}


def container(deployment: Doc) -> Doc:
    """The one container of a msgstatus Deployment."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    return dict(containers[0])


def command_of(deployment: Doc) -> str:
    """The ``msgstatus`` command a Deployment runs (``ingest``, ``projector``, ``api``)."""
    return str(container(deployment)["args"][0])


def config_of(deployment: Doc) -> dict[str, str]:
    """The MSGSTATUS_* values a Deployment's container gets from its ConfigMaps and literals."""
    maps = by_name("ConfigMap")
    values: dict[str, str] = {}
    for source in container(deployment).get("envFrom", []):
        values.update(maps[source["configMapRef"]["name"]]["data"])
    for var in container(deployment).get("env", []):
        if "value" in var:
            values[var["name"]] = var["value"]
    return values


def secret_envs(deployment: Doc) -> list[Doc]:
    """The env entries of a Deployment's container that come from a Secret."""
    return [
        var
        for var in container(deployment).get("env", [])
        if "secretKeyRef" in var.get("valueFrom", {})
    ]


def env_name(field: str) -> str:
    """The environment variable of a settings field."""
    return f"MSGSTATUS_{field.upper()}"


# --- Kubernetes manifests -----------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_validate_against_the_kubernetes_api_schemas(version: str) -> None:
    """Every object validates strictly (no unknown fields) against that release's API schemas."""
    manifests = load_manifests()
    assert {doc["kind"] for _, doc in manifests} >= {
        "Deployment",
        "Service",
        "ConfigMap",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
    for name, doc in manifests:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message}")


def test_the_schema_check_rejects_a_wrong_manifest() -> None:
    """A misspelt field fails validation: the check above would notice one."""
    deployment = by_name("Deployment")["msgstatus-api"]
    broken = orjson.loads(orjson.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest_and_nothing_else() -> None:
    """The kustomization's resources are exactly the manifest files, and its image is theirs."""
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    on_disk = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == on_disk
    images = {image["name"] for image in kustomization["images"]}
    used = {container(d)["image"].split(":")[0] for d in objects("Deployment")}
    assert used == images
    namespace = kustomization["namespace"]
    for _, doc in load_manifests():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["metadata"]["name"]


def test_references_between_objects_resolve() -> None:
    """ConfigMaps, service accounts, selectors, scale targets and named ports all exist."""
    deployments = by_name("Deployment")
    maps = by_name("ConfigMap")
    accounts = by_name("ServiceAccount")
    assert set(deployments) == {"msgstatus-ingest", "msgstatus-api", "msgstatus-projector"}
    pod_labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        assert spec["selector"]["matchLabels"].items() <= pod_labels[name].items(), name
        assert spec["template"]["spec"]["serviceAccountName"] in accounts, name
        box = container(deployment)
        for source in box.get("envFrom", []):
            assert source["configMapRef"]["name"] in maps, name
        ports = {p["name"]: p["containerPort"] for p in box["ports"]}
        annotations = spec["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) in ports.values(), name
        for probe in ("readinessProbe", "livenessProbe"):
            if probe in box:
                assert box[probe]["httpGet"]["port"] in ports, (name, probe)

    def matched(selector: dict[str, str]) -> list[str]:
        return [n for n, labels in pod_labels.items() if selector.items() <= labels.items()]

    for service in objects("Service"):
        target = matched(service["spec"]["selector"])
        assert len(target) == 1, service["metadata"]["name"]
        names = {p["name"] for p in container(deployments[target[0]])["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names, service["metadata"]["name"]
    for pdb in objects("PodDisruptionBudget"):
        assert len(matched(pdb["spec"]["selector"]["matchLabels"])) == 1, pdb["metadata"]["name"]
    for hpa in objects("HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment"
        assert ref["name"] in deployments
        assert command_of(deployments[ref["name"]]) != "projector", "partitions bound it"


def test_every_configmap_setting_is_one_the_services_accept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each MSGSTATUS_* key a Deployment loads is a field of its service's settings, and valid."""
    for deployment in objects("Deployment"):
        command = command_of(deployment)
        model = SETTINGS[command]
        accepted = {env_name(field) for field in model.model_fields}
        values = config_of(deployment)
        unknown = sorted(set(values) - accepted)
        assert not unknown, f"{command} ignores {unknown}"
        from_secrets = {var["name"] for var in secret_envs(deployment)}
        assert not from_secrets - accepted, f"{command} ignores {from_secrets - accepted}"
        for name in list(os.environ):
            if name.startswith("MSGSTATUS_"):
                monkeypatch.delenv(name)
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        # Made-up stand-ins for the Secrets' values (their names are checked above).
        monkeypatch.setenv("MSGSTATUS_REDIS_URL", "redis://redis:6379/0")
        if command == "ingest":
            monkeypatch.setenv("MSGSTATUS_WEBHOOK_SECRET", new_secret())
        try:
            settings = model()
        except ValidationError as exc:
            pytest.fail(f"{command}: the ConfigMap's values are refused: {exc}")
        assert getattr(settings, "host", None) == "0.0.0.0"  # noqa: S104 - the pod's address


def test_manifests_hold_no_secret_values() -> None:
    """No Secret object and no literal credential: keys come from secretKeyRef only."""
    assert not objects("Secret")
    credential = ("KEY", "SECRET", "TOKEN", "PASSWORD", "USERNAME", "REDIS_URL")
    for deployment in objects("Deployment"):
        for var in container(deployment).get("env", []):
            assert "value" not in var or not any(w in var["name"] for w in credential), var
    for config in objects("ConfigMap"):
        for name in config["data"]:
            assert not any(w in name for w in credential), name
    webhook = [v["name"] for v in secret_envs(by_name("Deployment")["msgstatus-ingest"])]
    assert "MSGSTATUS_WEBHOOK_SECRET" in webhook
    keys = [v["name"] for v in secret_envs(by_name("Deployment")["msgstatus-api"])]
    assert "MSGSTATUS_API_KEYS" in keys


def test_projector_replicas_never_exceed_the_topic_partitions() -> None:
    """Extra consumers would sit idle: replicas (and a rollout's surge) stay within partitions."""
    projector = by_name("Deployment")["msgstatus-projector"]
    partitions = int(config_of(projector)["MSGSTATUS_TOPIC_PARTITIONS"])
    assert 1 <= projector["spec"]["replicas"] <= partitions
    assert projector["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0


def test_termination_grace_outlasts_the_services_drain() -> None:
    """The kubelet waits longer than the preStop pause plus the service's shutdown timeout."""
    for deployment in objects("Deployment"):
        command = command_of(deployment)
        model = SETTINGS[command]
        default = model.model_fields["shutdown_timeout_s"].default
        drain = float(config_of(deployment).get("MSGSTATUS_SHUTDOWN_TIMEOUT_S", default))
        pause = 0.0
        pre_stop = container(deployment).get("lifecycle", {}).get("preStop")
        if pre_stop is not None:
            assert pre_stop["exec"]["command"][0] == "sleep"
            pause = float(pre_stop["exec"]["command"][1])
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= pause + drain + 5, command


def test_pods_run_hardened_with_requests_and_probes() -> None:
    """Non-root, read-only root filesystem, no capabilities, requests set, probes on HTTP."""
    for deployment in objects("Deployment"):
        command = command_of(deployment)
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        box = container(deployment)
        security = box["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(box["resources"]["requests"]), command
        assert "memory" in box["resources"]["limits"], command
        if command != "projector":
            assert box["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert box["livenessProbe"]["httpGet"]["path"] == "/healthz"
            hpa = by_name("HorizontalPodAutoscaler")[deployment["metadata"]["name"]]
            assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        assert deployment["metadata"]["name"] in by_name("PodDisruptionBudget")


# --- Grafana dashboard and Prometheus rules ----------------------------------------------


def dashboard_panels() -> list[Doc]:
    """The dashboard's panels other than rows."""
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def alert_rules() -> list[Doc]:
    """Every rule of every group of the alert rules file."""
    return [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]


def queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every dashboard target and alert rule, Grafana's variables filled in."""
    for panel in dashboard_panels():
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "1m")
            yield f"panel {panel['title']!r}", expr
    for rule in alert_rules():
        yield f"alert {rule['alert']}", rule["expr"]


def test_dashboard_panels_are_well_formed() -> None:
    """Unique ids, no overlapping panels, one Prometheus data source variable for all targets."""
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(box["x"], box["x"] + box["w"])
            for y in range(box["y"], box["y"] + box["h"])
        }
        assert not mine & cells, f"{panel['title']!r} overlaps another panel"
        cells |= mine
    for panel in dashboard_panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_alert_rules_are_well_formed() -> None:
    """Each rule has a unique name, a severity, a summary, a description and runbook text."""
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        if "for" in rule:
            assert promql_parser.parse_duration(rule["for"]).total_seconds() > 0


def test_every_query_parses_as_promql() -> None:
    """Every dashboard and alert expression is valid PromQL."""
    for where, expr in queries():
        try:
            promql_parser.parse(expr)
        except ValueError as exc:
            pytest.fail(f"{where}: {exc}")


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    """The vector selectors (metric names with their label matchers) of a PromQL expression."""
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def served_metrics(expositions: dict[str, str]) -> dict[str, dict[str, set[str]]]:
    """Sample name -> label name -> values seen, over the services' ``/metrics`` texts.

    A family without samples yet (a counter with labels that never counted) still names its
    series: ``<name>_total`` for counters, ``_bucket``/``_count``/``_sum`` for histograms.
    """
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
        "summary": ("", "_count", "_sum", "_created"),
        "info": ("_info",),
    }
    served: dict[str, dict[str, set[str]]] = {}
    for text in expositions.values():
        for family in text_string_to_metric_families(text):
            for suffix in suffixes.get(family.type, ("",)):
                served.setdefault(family.name + suffix, {})
            for sample in family.samples:
                labels = served.setdefault(sample.name, {})
                for label, value in sample.labels.items():
                    labels.setdefault(label, set()).add(value)
    return served


async def spawn(command: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """Start ``msgstatus <command>`` with ``MSGSTATUS_*`` settings (its log to a file)."""
    with tempfile.TemporaryFile() as log:  # the child keeps its own descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "msgstatus",
            command,
            env={**os.environ, "MSGSTATUS_LOG_FORMAT": "text", **env},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )


async def poll(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> int:
    """GET ``url`` until it answers 200 (30 s deadline); returns the status."""
    deadline = time.monotonic() + 30
    status = 0
    while status != 200:
        assert time.monotonic() < deadline, f"no 200 from {url} (last {status})"
        try:
            async with http.get(url, headers=headers) as resp:
                status = resp.status
        except aiohttp.ClientError:
            status = 0
        if status != 200:
            await asyncio.sleep(0.1)
    return status


@pytest.fixture
async def scraped() -> AsyncIterator[dict[str, str]]:
    """The ``/metrics`` texts of real ingest, projector and api processes after some traffic."""
    tag = uuid.uuid4().hex[:10]
    secret, key = new_secret(), f"key-{tag}"
    ports = {"ingest": free_port(), "api": free_port(), "projector": free_port()}
    common = {
        "MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "MSGSTATUS_REDIS_URL": REDIS_URL,
        "MSGSTATUS_TOPIC": f"test-deploy-{tag}",
        "MSGSTATUS_TOPIC_PARTITIONS": "2",
        "MSGSTATUS_GENERATION": f"t{tag}",
    }
    procs = [
        await spawn(
            "ingest",
            {
                **common,
                "MSGSTATUS_INGEST_PORT": str(ports["ingest"]),
                "MSGSTATUS_WEBHOOK_SECRET": secret,
            },
        ),
        await spawn(
            "projector",
            {
                **common,
                "MSGSTATUS_GROUP_ID": f"test-deploy-{tag}",
                "MSGSTATUS_METRICS_PORT": str(ports["projector"]),
                "MSGSTATUS_POLL_TIMEOUT_MS": "50",
            },
        ),
        await spawn(
            "api", {**common, "MSGSTATUS_API_PORT": str(ports["api"]), "MSGSTATUS_API_KEYS": key}
        ),
    ]
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    try:
        async with aiohttp.ClientSession() as http:
            await poll(http, urls["ingest"] + "/readyz")
            await poll(http, urls["api"] + "/readyz")
            message_id = str(uuid.uuid4())
            body = orjson.dumps(acceptance(message_id))
            async with http.post(
                urls["ingest"] + "/webhooks/events", data=body, headers=sign(secret, body)
            ) as resp:
                assert resp.status == 202
            async with http.post(urls["ingest"] + "/webhooks/events", data=b"{}") as resp:
                assert resp.status == 401
            # Readable through the api: the projector applied it and recorded its lag.
            await poll(http, f"{urls['api']}/api/messagestatus/{message_id}", {"X-Api-Key": key})
            texts = {}
            for name, url in urls.items():
                async with http.get(url + "/metrics") as resp:
                    assert resp.status == 200
                    texts[name] = await resp.text()
        yield texts
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            await asyncio.wait_for(proc.wait(), 30)


async def test_dashboard_and_alerts_use_only_metrics_the_services_serve(
    scraped: dict[str, str],
) -> None:
    """Every metric in a query is in a real service's /metrics, with the labels it matches on."""
    served = served_metrics(scraped)
    assert "msgstatus_projector_lag" in served  # the projector's own endpoint was scraped
    problems = []
    used = set()
    for where, expr in queries():
        for selector in selectors(expr):
            name = selector.name
            if name is None:
                problems.append(f"{where}: a selector without a metric name")
                continue
            used.add(name)
            if name not in served:
                problems.append(f"{where}: {name} is not served")
                continue
            labels = served[name]
            for matcher in selector.matchers.matchers:
                # Services and routes are fixed names: an exact match on a typo matches nothing.
                fixed = matcher.op == promql_parser.MatchOp.Equal and matcher.name in {
                    "service",
                    "route",
                }
                if matcher.name not in labels:
                    problems.append(f"{where}: {name} has no label {matcher.name!r} (yet)")
                elif fixed and matcher.value not in labels[matcher.name]:
                    problems.append(f"{where}: {name}{{{matcher.name}={matcher.value!r}}}")
    assert not problems, "\n".join(problems)
    assert {
        "msgstatus_webhooks_total",
        "msgstatus_projector_lag",
        "msgstatus_projector_failing",
        "msgstatus_http_request_duration_seconds_bucket",
        "msgstatus_events_dead_lettered_total",
    } <= used
