{{- define "slipway.labels" -}}
app.kubernetes.io/name: slipway
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "slipway.image" -}}
{{- $root := index . 0 -}}{{- $name := index . 1 -}}
{{- printf "%s/%s:%s" $root.Values.image.registry (index $root.Values.image $name) (default $root.Chart.AppVersion $root.Values.image.tag) -}}
{{- end -}}

{{/* A map of labels as k=v,k2=v2 (sorted by key). */}}
{{- define "slipway.selectorText" -}}
{{- $pairs := list -}}
{{- range $k, $v := . }}{{ $pairs = append $pairs (printf "%s=%s" $k $v) }}{{ end -}}
{{- join "," $pairs -}}
{{- end -}}

{{- define "slipway.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "slipway.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}

{{/* The integrated registry as pods push to it and kubelets pull from it: HOST:PORT. */}}
{{- define "slipway.registryHost" -}}
{{- if .Values.registry.host -}}
{{ .Values.registry.host }}
{{- else if .Values.registry.service.clusterIP -}}
{{ .Values.registry.service.clusterIP }}:5000
{{- else -}}
slipway-registry.{{ .Release.Namespace }}.svc:5000
{{- end -}}
{{- end -}}

{{/* The registry's host name or address, without the port. */}}
{{- define "slipway.registryHostname" -}}
{{- regexReplaceAll ":[0-9]+$" (include "slipway.registryHost" .) "" -}}
{{- end -}}
