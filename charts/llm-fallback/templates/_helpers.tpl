{{/*
Names. Kubernetes names and label values are at most 63 characters: every helper truncates,
and suffixed names truncate the prefix so the suffix always survives.
*/}}

{{- define "llm-fallback.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llm-fallback.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<suffix>" in 63 characters: (list . "suffix") */}}
{{- define "llm-fallback.suffixed" -}}
{{- $root := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- $prefix := include "llm-fallback.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" -}}
{{- printf "%s-%s" $prefix $suffix -}}
{{- end -}}

{{- define "llm-fallback.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llm-fallback.controllerName" -}}
{{- include "llm-fallback.suffixed" (list . "controller") -}}
{{- end -}}

{{- define "llm-fallback.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "llm-fallback.controllerName" .) .Values.serviceAccount.name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "llm-fallback.leaseName" -}}
{{- default (include "llm-fallback.controllerName" .) .Values.controller.leaseName | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llm-fallback.webhookServiceName" -}}
{{- include "llm-fallback.suffixed" (list . "webhook") -}}
{{- end -}}

{{- define "llm-fallback.webhookSecretName" -}}
{{- include "llm-fallback.suffixed" (list . "webhook-tls") -}}
{{- end -}}

{{- define "llm-fallback.webhookCertificateName" -}}
{{- include "llm-fallback.suffixed" (list . "webhook") -}}
{{- end -}}

{{- define "llm-fallback.sidecarDefaultsName" -}}
{{- include "llm-fallback.suffixed" (list . "sidecar-defaults") -}}
{{- end -}}

{{/* The ClusterRole the controller binds by name in each namespace (src/k8s/rbac.ts CHAIN_READER). */}}
{{- define "llm-fallback.chainReaderName" -}}
llm-fallback-chain-reader
{{- end -}}

{{/* Labels */}}

{{- define "llm-fallback.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llm-fallback.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "llm-fallback.labels" -}}
helm.sh/chart: {{ include "llm-fallback.chart" . }}
{{ include "llm-fallback.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: llm-fallback
{{- end -}}

{{- define "llm-fallback.controllerSelectorLabels" -}}
{{ include "llm-fallback.selectorLabels" . }}
app.kubernetes.io/component: controller
{{- end -}}

{{/* Pods carrying this label are never sent to the webhook (objectSelector). */}}
{{- define "llm-fallback.webhookIgnoreLabel" -}}
llmfallback.io/webhook: ignore
{{- end -}}

{{/* Images */}}

{{- define "llm-fallback.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "llm-fallback.sidecarImage" -}}
{{- $repository := .Values.sidecar.image.repository | default .Values.image.repository -}}
{{- $tag := .Values.sidecar.image.tag | default .Values.image.tag | default .Chart.AppVersion -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}

{{/* Pod and container security: non-root, read-only root filesystem, no capabilities. */}}

{{- define "llm-fallback.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "llm-fallback.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The sidecar defaults file (src/k8s/sidecar-settings.ts format) the injector reads. */}}
{{- define "llm-fallback.sidecarDefaults" -}}
image: {{ include "llm-fallback.sidecarImage" . }}
imagePullPolicy: {{ .Values.sidecar.image.pullPolicy }}
resources:
  {{- toYaml .Values.sidecar.resources | nindent 2 }}
ports:
  api: {{ .Values.sidecar.ports.api }}
  admin: {{ .Values.sidecar.ports.admin }}
logLevel: {{ .Values.sidecar.logLevel }}
allowLocalCredentials: {{ .Values.sidecar.allowLocalCredentials }}
{{- with .Values.sidecar.tracing }}
{{- if .enabled }}
otelEnv:
  OTEL_EXPORTER_OTLP_ENDPOINT: {{ required "sidecar.tracing.endpoint is required when sidecar.tracing.enabled" .endpoint | quote }}
  OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf
  OTEL_TRACES_SAMPLER: {{ .sampler | quote }}
  OTEL_TRACES_SAMPLER_ARG: {{ .samplerArg | toString | quote }}
  {{- range $name, $value := .extraEnv }}
  {{ $name }}: {{ $value | toString | quote }}
  {{- end }}
{{- end }}
{{- end }}
{{- end -}}
