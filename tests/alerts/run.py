#!/usr/bin/env python3
"""`promtool test rules` for the chart's alerting rules, on series taken from the hooks' goldens.

The rules are the PrometheusRule the chart renders (real Helm, tests/helm/render.py's renderer,
case 11-both-features); the input series are the gauges the hooks emit in their golden outputs
(`testdata/<hook>/<case>/metrics.jsonl`, the adversarial testdata/hostile/ excepted): name and
labels exactly as a hook wrote them, the value as written or evolving the way the hook would keep
writing it (a failing fetch every run, seconds-since growing, a token nobody renews), absolute
timestamps rebased so that promtool's clock starts at the golden's `now`. For every alert:
a golden sample that must fire it (with the exact labels and annotations, which this script
renders the way Prometheus does) and, where the goldens have one, a healthy sample that must not.
Every alert must have a test and every description must point at an existing section of
docs/TROUBLESHOOTING.md.

    .venv/bin/python tests/alerts/run.py        # needs promtool (Debian package prometheus)
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "helm"))
import render as chart_render  # noqa: E402

OUT = ROOT / "out" / "alerts"
DEFAULT_NOW = "2026-11-22T00:00:00Z"  # tests/golden.rs
DAY = 86400


# ---------------------------------------------------------------- goldens


@dataclass
class Sample:
    case: str  # testdata/<hook>/<case>
    name: str
    labels: dict[str, str]
    value: float
    now: float  # the golden run's clock, Unix seconds


def golden_samples() -> list[Sample]:
    out = []
    for path in sorted(ROOT.glob("testdata/*/*/metrics.jsonl")):
        case_dir = path.parent
        if case_dir.parent.name == "hostile":
            continue
        now_file = case_dir / "now.txt"
        now_text = now_file.read_text().strip() if now_file.exists() else DEFAULT_NOW
        now = dt.datetime.fromisoformat(now_text.replace("Z", "+00:00")).timestamp()
        for line in path.read_text().splitlines():
            op = json.loads(line) if line.strip() else {}
            if op.get("action") == "set":
                out.append(Sample(str(case_dir.relative_to(ROOT)), op["name"], op.get("labels") or {}, float(op["value"]), now))
    return out


# ---------------------------------------------------------------- Prometheus' formatting


def go_float(v: float) -> str:
    """Go's %v of a float64 (what `{{ $value }}` prints): shortest digits, exponent form below
    1e-04 and from 1e+06 (strconv 'g' with precision -1)."""
    if v == 0:
        return "0"
    sign, digits, exp = Decimal(repr(float(v))).normalize().as_tuple()
    ds = "".join(map(str, digits))
    x = len(ds) + exp - 1  # decimal exponent of the first digit
    s = "-" if sign else ""
    if x < -4 or x >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{s}{mant}e{'+' if x >= 0 else '-'}{abs(x):02d}"
    if x >= len(ds) - 1:
        return s + ds + "0" * (x - len(ds) + 1)
    if x >= 0:
        return s + ds[: x + 1] + "." + ds[x + 1:]
    return s + "0." + "0" * (-x - 1) + ds


def humanize_duration(v: float) -> str:
    """Prometheus' humanizeDuration for |v| ≥ 1."""
    sign = "-" if v < 0 else ""
    n = int(abs(v))
    seconds, minutes, hours, days = n % 60, (n // 60) % 60, (n // 3600) % 24, n // DAY
    if days:
        return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
    if hours:
        return f"{sign}{hours}h {minutes}m {seconds}s"
    if minutes:
        return f"{sign}{minutes}m {seconds}s"
    return f"{sign}{float(abs(v)):.4g}s"


def expand(text: str, labels: dict[str, str], value: float) -> str:
    def one(m: re.Match) -> str:
        expr = m.group(1).strip()
        if expr.startswith("$labels."):
            return labels.get(expr[len("$labels."):], "")
        if expr == "$value":
            return go_float(value)
        if expr == "$value | humanizeDuration":
            return humanize_duration(value)
        raise ValueError(f"annotation template not supported by this test: {{{{ {expr} }}}}")
    return re.sub(r"{{\s*(.*?)\s*}}", one, text)


def num(v: float) -> str:
    """A number in promtool's series notation (plain decimal)."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def series_text(name: str, labels: dict[str, str]) -> str:
    esc = lambda s: s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")  # noqa: E731
    return name + "{" + ",".join(f'{k}="{esc(v)}"' for k, v in sorted(labels.items())) + "}"


# ---------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    """Series built from golden samples, evaluated at `eval_min`; `fires` lists (samples whose
    labels the alert carries, the alert's value at eval time)."""
    series: list[tuple[Sample, str]]  # (sample, promtool values notation)
    eval_min: int
    fires: list[tuple[Sample, float]] = field(default_factory=list)


@dataclass
class AlertTest:
    alert: str
    metric: str | tuple[str, ...]
    fire: Callable[[list[Sample]], Scenario | None]
    quiet: Callable[[list[Sample]], Scenario | None] | None = None
    interval: str = "1m"


def pick(samples: list[Sample], metric, pred=lambda s: True) -> Sample | None:
    names = (metric,) if isinstance(metric, str) else metric
    return next((s for s in samples if s.name in names and pred(s)), None)


def steady(metric, pred, eval_min=30):
    """The hook writes the golden value every run: a constant series."""
    def build(samples):
        s = pick(samples, metric, pred)
        if s is None:
            return None
        return Scenario([(s, f"{num(s.value)}x120")], eval_min, [(s, s.value)] if pred is not None else [])
    return build


def steady_quiet(metric, pred, eval_min=30):
    def build(samples):
        s = pick(samples, metric, pred)
        return None if s is None else Scenario([(s, f"{num(s.value)}x120")], eval_min)
    return build


def growing_age(samples):
    """Seconds since the last success, from the golden value on, while every fetch fails: +60 a
    minute; over an hour after 61 minutes, for 5 more."""
    s = pick(samples, "d8_istio_alliance_metadata_last_success_seconds")
    if s is None:
        return None
    return Scenario([(s, f"{num(s.value)}+60x120")], 90, [(s, s.value + 90 * 60)])


def fresh_age(samples):
    """The same series while fetches succeed: the age stays where the golden has it."""
    s = pick(samples, "d8_istio_alliance_metadata_last_success_seconds", lambda s: s.value < 3600)
    return None if s is None else Scenario([(s, f"{num(s.value)}x120")], 90)


def private_never(samples, missing: bool):
    """A peer of one golden run with a public age series and (missing=True) no private one."""
    by_peer: dict[tuple[str, str, str], dict[str, Sample]] = {}
    for s in samples:
        if s.name == "d8_istio_alliance_metadata_last_success_seconds":
            by_peer.setdefault((s.case, s.labels["kind"], s.labels["name"]), {})[s.labels["part"]] = s
    for parts in by_peer.values():
        if "public" in parts and (("private" not in parts) == missing):
            series = [(p, f"{num(p.value)}x60") for p in parts.values()]
            pub = parts["public"]
            return Scenario(series, 30, [(pub, pub.value)] if missing else [])
    return None


def root_expiry(days_left_pred):
    """A trusted root's notAfter rebased to promtool's clock (time() = 0 at the golden's now)."""
    def build(samples):
        s = pick(samples, "d8_istio_alliance_root_certificate_not_after_seconds",
                 lambda s: days_left_pred((s.value - s.now) / DAY))
        if s is None:
            return None
        rebased = s.value - s.now
        left_at_eval = rebased - 30 * 60
        fires = [(s, left_at_eval)] if left_at_eval < 30 * DAY else []
        return Scenario([(s, f"{num(rebased)}x60")], 30, fires)
    return build


def token_not_renewed(samples):
    """The remaining lifetime of an api token nobody renews: −3600 s an hour from the golden
    value; under 20 days after (value/3600 − 480) hours, for one more hour."""
    s = pick(samples, "d8_istio_multicluster_api_token_expiry_seconds")
    if s is None:
        return None
    steps = int(s.value // 3600) - 20 * 24 + 3
    return Scenario([(s, f"{num(s.value)}-3600x{steps + 5}")], steps * 60, [(s, s.value - steps * 3600)])


def token_fresh(samples):
    s = pick(samples, "d8_istio_multicluster_api_token_expiry_seconds", lambda s: s.value > 30 * DAY)
    return None if s is None else Scenario([(s, f"{num(s.value)}x120")], 90)


ONE = lambda s: s.value == 1  # noqa: E731
ZERO = lambda s: s.value == 0  # noqa: E731
POSITIVE = lambda s: s.value > 0  # noqa: E731
FED_ERR = "d8_istio_federation_metadata_endpoints_fetch_error_count"
MC_ERR = "d8_istio_multicluster_metadata_endpoints_fetch_error_count"
API_ERR = "d8_istio_multicluster_api_host_check_error_count"
UUID = ("d8_istio_federation_remote_cluster_uuid_mismatch", "d8_istio_multicluster_remote_cluster_uuid_mismatch")

TESTS = [
    AlertTest("D8IstioFederationMetadataEndpointDoesntWork", FED_ERR, steady(FED_ERR, ONE), steady_quiet(FED_ERR, ZERO)),
    AlertTest("D8IstioMulticlusterMetadataEndpointDoesntWork", MC_ERR, steady(MC_ERR, ONE), steady_quiet(MC_ERR, ZERO)),
    AlertTest("D8IstioAllianceMetadataStale", "d8_istio_alliance_metadata_last_success_seconds", growing_age, fresh_age),
    AlertTest("D8IstioAlliancePrivateMetadataNeverFetched", "d8_istio_alliance_metadata_last_success_seconds",
              lambda s: private_never(s, True), lambda s: private_never(s, False)),
    AlertTest("D8IstioAllianceRemoteClusterUUIDMismatch", UUID, steady(UUID, ONE)),
    AlertTest("D8IstioAlliancePeerWithoutIngressGateways", "d8_istio_alliance_peer_without_ingress_gateways",
              steady("d8_istio_alliance_peer_without_ingress_gateways", ONE)),
    AlertTest("D8IstioAllianceRemoteItemsDropped", "d8_istio_alliance_remote_items_dropped",
              steady("d8_istio_alliance_remote_items_dropped", POSITIVE)),
    AlertTest("D8IstioAllianceRemoteRootUntrusted", "d8_istio_alliance_untrusted_root_certificates",
              steady("d8_istio_alliance_untrusted_root_certificates", POSITIVE)),
    AlertTest("D8IstioAllianceRemoteRootExpiresSoon", "d8_istio_alliance_root_certificate_not_after_seconds",
              root_expiry(lambda d: 0 < d < 30), root_expiry(lambda d: d > 31)),
    AlertTest("D8IstioAlliancePublicMetadataIgnored", "d8_istio_alliance_ignored_public_metadata",
              steady("d8_istio_alliance_ignored_public_metadata", ONE)),
    AlertTest("D8IstioFederationInvalidCachedMetadata", "d8_istio_federation_invalid_cached_metadata",
              steady("d8_istio_federation_invalid_cached_metadata", ONE)),
    AlertTest("D8IstioFederationCachedItemsDropped", "d8_istio_federation_cached_items_dropped",
              steady("d8_istio_federation_cached_items_dropped", POSITIVE)),
    AlertTest("D8IstioFederationEndpointsWithdrawn", "d8_istio_federation_endpoints_withdrawn",
              steady("d8_istio_federation_endpoints_withdrawn", ONE)),
    AlertTest("D8IstioMulticlusterRemoteAPIHostDoesntWork", API_ERR, steady(API_ERR, ONE), steady_quiet(API_ERR, ZERO)),
    AlertTest("D8IstioMulticlusterAPITokenExpiresSoon", "d8_istio_multicluster_api_token_expiry_seconds",
              token_not_renewed, token_fresh, interval="1h"),
    AlertTest("D8IstioMulticlusterPeerSkipped", "d8_istio_multicluster_peer_skipped",
              steady("d8_istio_multicluster_peer_skipped", ONE)),
]


# ---------------------------------------------------------------- driver


def rendered_rules() -> dict:
    values = yaml.safe_load((chart_render.CASES / "11-both-features" / "values.yaml").read_text())
    docs = chart_render.documents(chart_render.render(chart_render.helm.Chart.load(str(ROOT)), values))
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    return rule["spec"]


def by_labels(expr: str) -> list[str]:
    m = re.match(r"^\s*(?:max|min|sum) by \(([^)]*)\)", expr)
    return [x.strip() for x in m.group(1).split(",")] if m else []


def expected_alert(rule: dict, sample: Sample, value: float) -> dict:
    labels = {k: sample.labels[k] for k in by_labels(rule["expr"]) if k in sample.labels}
    labels.update(rule.get("labels") or {})
    return {"exp_labels": labels,
            "exp_annotations": {k: expand(v, labels, value) for k, v in (rule.get("annotations") or {}).items()}}


def group(test: AlertTest, rule: dict, scenario: Scenario) -> dict:
    return {
        "interval": test.interval,
        "input_series": [{"series": series_text(s.name, s.labels), "values": values} for s, values in scenario.series],
        "alert_rule_test": [{"eval_time": f"{scenario.eval_min}m", "alertname": test.alert,
                             "exp_alerts": [expected_alert(rule, s, v) for s, v in scenario.fires]}],
    }


def anchors(markdown: str) -> set[str]:
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"^#+\s+(.*)$", line)
        if m:
            out.add(re.sub(r"[^a-z0-9 _-]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return out


def main() -> int:
    promtool = shutil.which("promtool")
    if promtool is None:
        print("FAIL promtool not found (apt-get install prometheus, or `make deps`)")
        return 1
    spec = rendered_rules()
    rules = {r["alert"]: r for g in spec["groups"] for r in g["rules"]}
    problems = []
    tested = {t.alert for t in TESTS}
    problems += [f"alert {a} has no test" for a in sorted(set(rules) - tested)]
    problems += [f"test for unknown alert {a}" for a in sorted(tested - set(rules))]
    known = anchors((ROOT / "docs" / "TROUBLESHOOTING.md").read_text())
    for name, rule in rules.items():
        links = re.findall(r"docs/TROUBLESHOOTING\.md#([a-z0-9_-]+)", rule["annotations"].get("description", ""))
        if not links:
            problems.append(f"{name}: description does not point at docs/TROUBLESHOOTING.md")
        problems += [f"{name}: docs/TROUBLESHOOTING.md has no section #{a}" for a in links if a not in known]

    samples = golden_samples()
    files: dict[str, dict] = {}
    report = []
    for t in TESTS:
        rule = rules.get(t.alert)
        if rule is None:
            continue
        fire = t.fire(samples)
        if fire is None or not fire.fires:
            problems.append(f"{t.alert}: no golden sample of {t.metric} fires it (add a golden case)")
            continue
        groups = [group(t, rule, fire)]
        quiet = t.quiet(samples) if t.quiet else None
        if quiet is not None:
            groups.append(group(t, rule, quiet))
        # promtool's evaluation_interval is per file: the slow (hourly) scenarios get their own
        f = files.setdefault(t.interval, {"rule_files": ["rules.yaml"], "evaluation_interval": t.interval, "tests": []})
        f["tests"] += groups
        report.append(f"{t.alert}: fires on {fire.fires[0][0].case} {fire.fires[0][0].name}"
                      + (f", quiet on {quiet.series[0][0].case}" if quiet else ""))

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    paths = []
    for interval, f in files.items():
        p = OUT / f"tests-{interval}.yaml"
        p.write_text(yaml.safe_dump(f, sort_keys=False, width=1000))
        paths.append(str(p))
    check = subprocess.run([promtool, "check", "rules", str(OUT / "rules.yaml")], capture_output=True, text=True)
    if check.returncode != 0:
        problems.append(f"promtool check rules: {check.stdout}{check.stderr}")
    result = subprocess.run([promtool, "test", "rules", *paths], capture_output=True, text=True, cwd=OUT)
    for line in report:
        print(f"  {line}")
    if result.returncode != 0:
        problems.append(f"promtool test rules:\n{result.stdout}{result.stderr}")
    if problems:
        print("FAIL alerts:\n  " + "\n  ".join(problems))
        return 1
    print(f"PASS alerts: {len(rules)} rules, promtool test rules on {sum(len(f['tests']) for f in files.values())} "
          f"scenarios from {len(samples)} golden samples ({', '.join(paths)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
