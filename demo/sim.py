"""A small, protocol-faithful simulation of one cluster's operator side, for the demo and the
end-to-end test: an object store standing in for the apiserver, and an addon-operator stand-in
that builds binding contexts exactly as addon-operator does for batch hooks (snapshots of every
kubernetes binding, each item the output of the binding's jqFilter run by the real `jq`), runs
`istio-hooks hook run N` with the env files, applies the values patch in strict mode, applies
status merge patches to the stored objects, and renders the chart with real Helm (helm-python-sdk).

It knows the protocol, not the product: everything product-specific is in demo.py."""

import base64
import copy
import json
import os
import subprocess
import tempfile

import helm_python as helm
import jsonpatch
import yaml


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


class Store:
    """Objects by (kind, namespace, name)."""

    def __init__(self):
        self.objects = {}

    def put(self, obj):
        md = obj["metadata"]
        self.objects[(obj["kind"], md.get("namespace", ""), md["name"])] = copy.deepcopy(obj)

    def get(self, kind, name, namespace=""):
        return self.objects.get((kind, namespace, name))

    def delete(self, kind, name, namespace=""):
        self.objects.pop((kind, namespace, name), None)

    def select(self, binding):
        """Objects matching a kubernetes binding, sorted by namespace then name (as snapshots)."""
        kind = binding["kind"]
        names = (binding.get("nameSelector") or {}).get("matchNames")
        namespaces = ((binding.get("namespace") or {}).get("nameSelector") or {}).get("matchNames")
        labels = (binding.get("labelSelector") or {}).get("matchLabels") or {}
        out = []
        for (k, ns, name), obj in sorted(self.objects.items(), key=lambda kv: (kv[0][1], kv[0][2])):
            if k != kind or (names and name not in names) or (namespaces and ns not in namespaces):
                continue
            have = obj["metadata"].get("labels") or {}
            if all(have.get(lk) == lv for lk, lv in labels.items()):
                out.append(obj)
        return out


def jq(filter_, obj):
    res = subprocess.run(["jq", "-c", filter_], input=json.dumps(obj), capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


class Cluster:
    """One simulated cluster: its objects, its module values, and the hooks run against them."""

    def __init__(self, name, binary, chart_dir, workdir, global_values, config):
        self.name = name
        self.binary = binary
        self.chart_dir = chart_dir
        self.workdir = workdir
        self.store = Store()
        self.values = {"global": global_values, "istio": copy.deepcopy(config)}
        self.values["istio"].setdefault("internal", {})
        self.metrics = {}
        self.log = []
        cfg = subprocess.run([binary, "hook", "config"], capture_output=True, text=True, check=True)
        self.hooks = json.loads(cfg.stdout)["hooks"]
        self.index = {h["metadata"]["name"]: i for i, h in enumerate(self.hooks)}
        os.makedirs(workdir, exist_ok=True)

    def binding_context(self, hook_name, binding):
        hook = self.hooks[self.index[hook_name]]
        snaps = {}
        for b in hook.get("kubernetes", []):
            snaps[b["name"]] = [{"filterResult": jq(b["jqFilter"], o)} for o in self.store.select(b)]
        if binding == "beforeHelm":
            return [{"binding": "beforeHelm", "snapshots": snaps}]
        return [{"binding": binding, "type": "Group", "groupName": "main", "snapshots": snaps}]

    def run_hook(self, hook_name, binding="beforeHelm"):
        """Runs one hook as addon-operator would; returns the parsed outputs."""
        ctx = self.binding_context(hook_name, binding)
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            paths = {k: os.path.join(tmp, k) for k in ["bc", "values", "config", "vpatch", "cvpatch", "kube", "metrics"]}
            json.dump(ctx, open(paths["bc"], "w"))
            json.dump(self.values, open(paths["values"], "w"))
            json.dump({"global": self.values["global"], "istio": {k: v for k, v in self.values["istio"].items() if k != "internal"}}, open(paths["config"], "w"))
            for k in ["vpatch", "cvpatch", "kube", "metrics"]:
                open(paths[k], "w").close()
            env = dict(os.environ, BINDING_CONTEXT_PATH=paths["bc"], VALUES_PATH=paths["values"], CONFIG_VALUES_PATH=paths["config"],
                       VALUES_JSON_PATCH_PATH=paths["vpatch"], CONFIG_VALUES_JSON_PATCH_PATH=paths["cvpatch"],
                       KUBERNETES_PATCH_PATH=paths["kube"], METRICS_PATH=paths["metrics"], MODULE_NAME="istio")
            res = subprocess.run([self.binary, "hook", "run", str(self.index[hook_name])], env=env, capture_output=True, text=True)
            self.log.extend(line for line in res.stderr.splitlines() if line.strip())
            if res.returncode != 0:
                raise RuntimeError(f"cluster {self.name}: hook {hook_name} failed: {res.stderr.strip().splitlines()[-1:]}")
            vpatch = open(paths["vpatch"]).read().strip()
            kube = [json.loads(l) for l in open(paths["kube"]).read().splitlines() if l.strip()]
            metrics = [json.loads(l) for l in open(paths["metrics"]).read().splitlines() if l.strip()]
        if vpatch:
            ops = json.loads(vpatch)
            for op in ops:
                assert op["op"] in ("add", "remove") and op["path"].startswith("/istio/"), op
            self.values = jsonpatch.apply_patch(self.values, ops)
        for op in kube:
            assert op["operation"] == "MergePatch" and op["subresource"] == "status", op
            obj = self.store.get(op["kind"], op["name"], op.get("namespace", ""))
            if obj is not None:
                self.store.put(merge_patch(obj, op["mergePatch"]))
        if metrics:
            group = metrics[0].get("group")
            self.metrics[group] = [m for m in metrics if m.get("action") == "set"]
        return {"values_patch": json.loads(vpatch) if vpatch else [], "object_ops": kube, "metrics": metrics}

    def render(self):
        """Renders the chart with the current values; returns parsed manifests."""
        chart = helm.Chart.load(self.chart_dir)
        rendered = chart.render(copy.deepcopy(self.values), name="istio", namespace="d8-istio")
        docs = []
        for path in sorted(rendered):
            for doc in yaml.safe_load_all(rendered[path]):
                if doc:
                    docs.append(doc)
        return docs

    def write_rendered(self, docs, path):
        with open(path, "w") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False)

    @staticmethod
    def secret_files(docs, keys):
        """Data files carried by rendered Secrets, decoded, for the keys asked for."""
        out = {}
        for d in docs:
            if d.get("kind") != "Secret":
                continue
            for k, v in (d.get("data") or {}).items():
                if k in keys:
                    out[k] = base64.b64decode(v).decode()
            for k, v in (d.get("stringData") or {}).items():
                if k in keys:
                    out[k] = v
        return out


def publish_kubelet_style(data_dir, files):
    """Writes files the way the kubelet updates a mounted Secret: a new timestamped dir, then an
    atomic swap of the `..data` symlink; the visible names are symlinks through `..data`."""
    os.makedirs(data_dir, exist_ok=True)
    stamp = tempfile.mkdtemp(prefix="..ts-", dir=data_dir)
    for name, data in files.items():
        with open(os.path.join(stamp, name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
    tmp_link = os.path.join(data_dir, "..data_tmp")
    if os.path.lexists(tmp_link):
        os.remove(tmp_link)
    os.symlink(os.path.basename(stamp), tmp_link)
    os.replace(tmp_link, os.path.join(data_dir, "..data"))
    for name in files:
        link = os.path.join(data_dir, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join("..data", name), link)
    for entry in os.listdir(data_dir):
        if entry.startswith("..ts-") and entry != os.path.basename(stamp):
            subprocess.run(["rm", "-rf", os.path.join(data_dir, entry)], check=False)
