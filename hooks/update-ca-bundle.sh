#!/bin/sh
# shell-operator/addon-operator hook "update-ca-bundle": hands over to the istio-hooks binary
# ($ISTIO_HOOKS_BIN, else istio-hooks on PATH), passing --config and every other argument on.
exec "${ISTIO_HOOKS_BIN:-istio-hooks}" update-ca-bundle "$@"
