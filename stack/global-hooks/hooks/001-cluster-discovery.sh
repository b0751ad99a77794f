#!/bin/sh
# Global hook of the stack's addon-operator: publishes global.discovery.clusterUUID and
# global.discovery.clusterDomain, as Deckhouse's own global discovery hooks do in a real cluster
# (there they come from the d8-cluster-uuid ConfigMap and kube-dns; here the harness passes them
# as STACK_CLUSTER_UUID and STACK_CLUSTER_DOMAIN).
set -eu
if [ "${1:-}" = "--config" ]; then
  printf '{"configVersion":"v1","onStartup":1,"beforeAll":1}\n'
  exit 0
fi
printf '[{"op":"add","path":"/global/discovery","value":{"clusterUUID":"%s","clusterDomain":"%s"}}]\n' \
  "$STACK_CLUSTER_UUID" "$STACK_CLUSTER_DOMAIN" >"$VALUES_JSON_PATCH_PATH"
