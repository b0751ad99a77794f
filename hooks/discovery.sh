#!/bin/sh
# shell-operator/addon-operator hook "discovery": hands over to the istio-hooks binary
# ($ISTIO_HOOKS_BIN, else istio-hooks on PATH), passing --config and every other argument on.
exec "${ISTIO_HOOKS_BIN:-istio-hooks}" discovery "$@"
