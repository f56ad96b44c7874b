{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "alembic-sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name: "<release>-<chart>", or the release name when it already contains the chart name. */}}
{{- define "alembic-sidecar.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "alembic-sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "alembic-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "alembic-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "alembic-sidecar.labels" -}}
helm.sh/chart: {{ include "alembic-sidecar.chart" . }}
{{ include "alembic-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: migration
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Metadata annotations every object gets; empty when there are none. */}}
{{- define "alembic-sidecar.annotations" -}}
{{- with .Values.commonAnnotations }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
"[registry/]repository:tag", or "@digest" when a digest pins it; the tag defaults to appVersion. As in Bitnami's
common.images.image, global.imageRegistry (set once by a parent chart, e.g. for a mirror) wins over image.registry.
*/}}
{{- define "alembic-sidecar.image" -}}
{{- $image := .Values.image }}
{{- $name := $image.repository }}
{{- with default $image.registry (.Values.global).imageRegistry }}
{{- $name = printf "%s/%s" . $name }}
{{- end }}
{{- if $image.digest }}
{{- printf "%s@%s" $name $image.digest }}
{{- else }}
{{- printf "%s:%s" $name (default .Chart.AppVersion $image.tag | toString) }}
{{- end }}
{{- end }}

{{/*
The Job's name. A Job's pod template is immutable, so a Job that is no hook carries the first 8 hex digits of its
spec's sha256: a release that changes what it runs creates a new Job (Helm deletes the previous one as no longer
rendered, Argo CD prunes it) instead of failing on the immutable field, and one that does not (a re-sync, an upgrade
of something else, Argo CD's every render as revision 1) finds the Job complete and runs nothing. A hook keeps one
name: its delete policy replaces it on every run.
*/}}
{{- define "alembic-sidecar.jobName" -}}
{{- $fullname := include "alembic-sidecar.fullname" . }}
{{- if include "alembic-sidecar.jobIsHook" . }}
{{- $fullname }}
{{- else }}
{{- $spec := include "alembic-sidecar.jobSpec" . }}
{{- printf "%s-%s" ($fullname | trunc 54 | trimSuffix "-") (sha256sum $spec | trunc 8) }}
{{- end }}
{{- end }}

{{- define "alembic-sidecar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "alembic-sidecar.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the chart must create a Secret from a literal URL or password. */}}
{{- define "alembic-sidecar.createsSecret" -}}
{{- if .Values.database.host }}{{ if .Values.database.password }}true{{ end }}
{{- else if .Values.database.url }}true{{ end }}
{{- end }}

{{/* Name of the Secret the database credential is read from: the chart's own, or the existing one. */}}
{{- define "alembic-sidecar.secretName" -}}
{{- if include "alembic-sidecar.createsSecret" . }}
{{- include "alembic-sidecar.fullname" . }}
{{- else }}
{{- tpl .Values.database.existingSecret . }}
{{- end }}
{{- end }}

{{/* Key of the credential inside that Secret. */}}
{{- define "alembic-sidecar.secretKey" -}}
{{- if include "alembic-sidecar.createsSecret" . }}
{{- ternary "password" "url" (not (empty .Values.database.host)) }}
{{- else }}
{{- ternary .Values.database.passwordKey .Values.database.urlKey (not (empty .Values.database.host)) }}
{{- end }}
{{- end }}
