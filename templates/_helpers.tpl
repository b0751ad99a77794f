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

{{- /*
"true" when the ingress gateway (Service, workload, PodMonitor) is rendered: federation, or
multicluster when some peer is reached through gateways (internal.multiclustersNeedIngressGateway).
*/ -}}
{{- define "istio.ingressGatewayEnabled" -}}
{{- $internal := dig "internal" dict (.Values.istio | default dict) -}}
{{- if or (include "istio.federationEnabled" .) (and (include "istio.multiclusterEnabled" .) $internal.multiclustersNeedIngressGateway) -}}true{{- end -}}
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

{{- /*
apiVersion of Istio's networking objects: networking.istio.io/v1 where the cluster serves it
(Istio ≥ 1.22), networking.istio.io/v1beta1 otherwise (same schema for what this chart renders).
*/ -}}
{{- define "istio.networkingAPIVersion" -}}
{{- if .Capabilities.APIVersions.Has "networking.istio.io/v1" -}}
networking.istio.io/v1
{{- else -}}
networking.istio.io/v1beta1
{{- end -}}
{{- end -}}

{{- /* Whether the legacy host istio.<public domain> also serves the metadata ("true" or ""). */ -}}
{{- define "istio.legacyMetadataHost" -}}
{{- if dig "alliance" "legacyMetadataHost" true (.Values.istio | default dict) -}}true{{- end -}}
{{- end -}}

{{- /* Public hosts of the metadata-exporter Ingress, as a JSON list (new host first). */ -}}
{{- define "istio.metadataHosts" -}}
{{- $hosts := list (include "istio.publicHost" (list . "istio-metadata")) -}}
{{- if include "istio.legacyMetadataHost" . -}}
{{- $hosts = append $hosts (include "istio.publicHost" (list . "istio")) -}}
{{- end -}}
{{- $hosts | toJson -}}
{{- end -}}

{{- /*
Ingress TLS of the metadata-exporter and the api-proxy, as JSON {mode, issuer, secret}, after
checking it: peers only speak https://, so a render without a usable certificate source fails
instead of leaving the ingress controller's default certificate in front of the peers.
Resolution follows Deckhouse: istio.https.mode, else global.modules.https.mode; the ClusterIssuer
likewise; the custom certificate is a kubernetes.io/tls Secret in d8-istio
(istio.https.customCertificate.secretName).
*/ -}}
{{- define "istio.https" -}}
{{- $module := dig "https" dict (.Values.istio | default dict) -}}
{{- $global := dig "modules" "https" dict (.Values.global | default dict) -}}
{{- $mode := $module.mode | default $global.mode | default "" -}}
{{- $issuer := dig "certManager" "clusterIssuerName" "" $module | default (dig "certManager" "clusterIssuerName" "" $global) -}}
{{- $secret := dig "customCertificate" "secretName" "" $module -}}
{{- $hint := "set istio.https.mode: CertManager with istio.https.certManager.clusterIssuerName (or global.modules.https), or istio.https.mode: CustomCertificate with istio.https.customCertificate.secretName (a kubernetes.io/tls Secret in d8-istio covering the metadata and api-proxy hosts)" -}}
{{- if not $mode -}}
{{- fail (printf "HTTPS is mandatory for the metadata-exporter and api-proxy Ingresses (peers only use https://), but no TLS mode is configured: %s" $hint) -}}
{{- else if eq $mode "Disabled" -}}
{{- fail (printf "HTTPS mode Disabled is not supported: peers only use https:// for the metadata-exporter and api-proxy; %s" $hint) -}}
{{- else if eq $mode "CertManager" -}}
{{- if not $issuer -}}
{{- fail (printf "HTTPS mode CertManager needs a ClusterIssuer name: %s" $hint) -}}
{{- end -}}
{{- if not (.Capabilities.APIVersions.Has "cert-manager.io/v1") -}}
{{- fail (printf "HTTPS mode CertManager, but the cluster does not serve cert-manager.io/v1: install cert-manager, or %s" $hint) -}}
{{- end -}}
{{- else if eq $mode "CustomCertificate" -}}
{{- if not $secret -}}
{{- fail (printf "HTTPS mode CustomCertificate needs istio.https.customCertificate.secretName: %s" $hint) -}}
{{- end -}}
{{- else if ne $mode "OnlyInURI" -}}
{{- fail (printf "unknown HTTPS mode %q: %s" $mode $hint) -}}
{{- end -}}
{{- dict "mode" $mode "issuer" $issuer "secret" $secret | toJson -}}
{{- end -}}

{{- /*
The local cluster ID, as the discovery hook derives it (src/domain/names.rs `cluster_id`, Deckhouse's
istioClusterID): `<clusterDomain with "." → "-">-<decimal Adler-32 of global.discovery.clusterUUID>`.
The hook's published value (internal.localMetadata.multicluster.clusterID, present when multicluster
is on) is preferred; otherwise it is computed here with sprig's adler32sum, which gives the same
number. Fails without a cluster UUID (the hook refuses to run without one as well).
*/ -}}
{{- define "istio.clusterID" -}}
{{- $published := dig "internal" "localMetadata" "multicluster" "clusterID" "" (.Values.istio | default dict) -}}
{{- if $published -}}
{{- $published -}}
{{- else -}}
{{- $uuid := dig "discovery" "clusterUUID" "" (.Values.global | default dict) -}}
{{- if not $uuid -}}
{{- fail "global.discovery.clusterUUID must be set: the ingress gateway's cluster ID and network are derived from it" -}}
{{- end -}}
{{- printf "%s-%s" (include "istio.clusterDomain" . | replace "." "-") (adler32sum $uuid) -}}
{{- end -}}
{{- end -}}

{{- /* The local network name: `network-<clusterID>` (src/domain/names.rs `network_name`); the hook's published value first. */ -}}
{{- define "istio.networkName" -}}
{{- $published := dig "internal" "localMetadata" "multicluster" "networkName" "" (.Values.istio | default dict) -}}
{{- $published | default (printf "network-%s" (include "istio.clusterID" .)) -}}
{{- end -}}
