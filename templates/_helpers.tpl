{{- /*
Shared helpers of the istio-hooks chart: feature switches, common labels, public hosts, image.
Values are the module values {global, istio}; missing keys never fail a render (`dig`), so a
chart rendered before the hooks ran still renders the always-present objects only.
*/ -}}

{{- /* "true" when federation is enabled, "" otherwise. */ -}}
{{- define "istio.federationEnabled" -}}
{{- if dig "federation" "enabled" false (.Values.istio | default dict) -}}true{{- end -}}
{{- end -}}

{{- /* "true" when multicluster (or its deprecated alias multicloud) is enabled. */ -}}
{{- define "istio.multiclusterEnabled" -}}
{{- $istio := .Values.istio | default dict -}}
{{- if or (dig "multicluster" "enabled" false $istio) (dig "multicloud" "enabled" false $istio) -}}true{{- end -}}
{{- end -}}

{{- /* "true" when either alliance feature is enabled. */ -}}
{{- define "istio.allianceEnabled" -}}
{{- if or (include "istio.federationEnabled" .) (include "istio.multiclusterEnabled" .) -}}true{{- end -}}
{{- end -}}

{{- /* Labels every object carries. Call with the root context. */ -}}
{{- define "istio.labels" -}}
heritage: deckhouse
module: istio
{{- end -}}

{{- /* global.discovery.clusterDomain, defaulting like the hooks do. */ -}}
{{- define "istio.clusterDomain" -}}
{{- dig "discovery" "clusterDomain" "cluster.local" (.Values.global | default dict) -}}
{{- end -}}

{{- /* Public host of a component: (list $ "istio-metadata") → istio-metadata.example.com. */ -}}
{{- define "istio.publicHost" -}}
{{- $root := index . 0 -}}
{{- $template := dig "modules" "publicDomainTemplate" "" ($root.Values.global | default dict) -}}
{{- if not (contains "%s" $template) -}}
{{- fail "global.modules.publicDomainTemplate must be set and contain %s (e.g. %s.example.com)" -}}
{{- end -}}
{{- replace "%s" (index . 1) $template -}}
{{- end -}}

{{- /* Image of the istio-hooks binary (metadata-exporter and api-proxy). */ -}}
{{- define "istio.image" -}}
{{- dig "modulesImages" "istioHooks" "istio-hooks:latest" (.Values.global | default dict) -}}
{{- end -}}

{{- /* Pod/containers security settings shared by both servers. */ -}}
{{- define "istio.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65534
runAsGroup: 65534
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "istio.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
