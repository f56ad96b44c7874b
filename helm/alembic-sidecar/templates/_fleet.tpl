{{/*
A fleet: many targets (tenant schemas or databases) from one list, mounted as a file and named by
MIGRATE_TARGETS_FILE. Each helper renders nothing without a fleet, so a single-database release is unchanged.
*/}}

{{/* True (non-empty) when the values name a targets list. */}}
{{- define "alembic-sidecar.fleet" -}}
{{- $fleet := .Values.fleet }}
{{- if or $fleet.targets $fleet.existingConfigMap $fleet.existingSecret }}true{{ end }}
{{- end }}

{{- define "alembic-sidecar.fleetMountPath" -}}/etc/alembic-sidecar/fleet{{- end }}

{{/* The inline list as the file the entrypoint reads: one target per line. */}}
{{- define "alembic-sidecar.fleetTargets" -}}
{{- range .Values.fleet.targets }}{{ . }}
{{ end }}
{{- end }}

{{/*
Fails the render for a fleet the chart cannot run: without the Job (every replica of an application would migrate
every tenant), or an inline line that carries a password (it would sit in a ConfigMap and Helm's release record).
*/}}
{{- define "alembic-sidecar.checkFleet" -}}
{{- if include "alembic-sidecar.fleet" . }}
{{- if not .Values.job.enabled }}
{{- fail "fleet: a fleet runs in the migration Job only; set job.enabled true (an initContainer would migrate every target from every replica)" }}
{{- end }}
{{- range $i, $line := .Values.fleet.targets }}
{{- if regexMatch "(://[^/?#@\\s]*:[^/?#@\\s]*@)|((?i)[?&]password=)" $line }}
{{- fail (printf "fleet.targets[%d] (line %d) carries a password: put the list in a Secret you create and name it in fleet.existingSecret" $i (add1 $i)) }}
{{- end }}
{{- end }}
{{- else if gt (int .Values.fleet.shards) 1 }}
{{- fail "fleet.shards needs a fleet: set fleet.targets, fleet.existingConfigMap or fleet.existingSecret" }}
{{- end }}
{{- end }}

{{/* The fleet's MIGRATE_* variables. */}}
{{- define "alembic-sidecar.fleetEnv" -}}
{{- if include "alembic-sidecar.fleet" . }}
{{- $fleet := .Values.fleet }}
- {name: MIGRATE_TARGETS_FILE, value: {{ printf "%s/targets" (include "alembic-sidecar.fleetMountPath" .) | quote }}}
- {name: MIGRATE_SHARDS, value: {{ $fleet.shards | int64 | toString | quote }}}
- {name: MIGRATE_PARALLEL, value: {{ $fleet.parallel | int64 | toString | quote }}}
- {name: MIGRATE_CANARY, value: {{ $fleet.canary | int64 | toString | quote }}}
- {name: MIGRATE_CONTINUE_ON_ERROR, value: {{ $fleet.continueOnError | toString | quote }}}
{{- end }}
{{- end }}

{{- define "alembic-sidecar.fleetMount" -}}
{{- if include "alembic-sidecar.fleet" . }}
- name: alembic-sidecar-fleet
  mountPath: {{ include "alembic-sidecar.fleetMountPath" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* The list's volume: the chart's ConfigMap, or the ConfigMap or Secret named in the values, as the file "targets". */}}
{{- define "alembic-sidecar.fleetVolume" -}}
{{- $fleet := .Values.fleet }}
{{- if $fleet.targets }}
- name: alembic-sidecar-fleet
  configMap:
    name: {{ include "alembic-sidecar.fleetConfigMapName" . }}
    items: [{key: targets, path: targets}]
{{- else if $fleet.existingConfigMap }}
- name: alembic-sidecar-fleet
  configMap:
    name: {{ tpl $fleet.existingConfigMap . }}
    items: [{key: {{ $fleet.key | quote }}, path: targets}]
{{- else if $fleet.existingSecret }}
- name: alembic-sidecar-fleet
  secret:
    secretName: {{ tpl $fleet.existingSecret . }}
    # As the database Secret: readable by the numeric UID even in a pod without fsGroup.
    defaultMode: 0444
    items: [{key: {{ $fleet.key | quote }}, path: targets}]
{{- end }}
{{- end }}

{{- define "alembic-sidecar.fleetConfigMapName" -}}
{{- printf "%s-fleet" (include "alembic-sidecar.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{/*
The Indexed Job's fields for shards > 1. From Kubernetes 1.33 (backoffLimitPerIndex is GA) each index has its own
retries, so one failing shard neither spends the others' retries nor stops them; below, the Job-wide backoffLimit.
*/}}
{{- define "alembic-sidecar.perIndex" -}}
{{- if and (include "alembic-sidecar.fleet" .) (gt (int .Values.fleet.shards) 1) (semverCompare ">=1.33.0-0" .Capabilities.KubeVersion.Version) }}true{{ end }}
{{- end }}

{{- define "alembic-sidecar.indexedJobFields" -}}
{{- $shards := int .Values.fleet.shards }}
{{- if and (include "alembic-sidecar.fleet" .) (gt $shards 1) }}
completionMode: Indexed
completions: {{ $shards }}
parallelism: {{ $shards }}
{{- if include "alembic-sidecar.perIndex" . }}
backoffLimitPerIndex: {{ .Values.job.backoffLimit }}
{{- if not (kindIs "invalid" .Values.fleet.maxFailedShards) }}
maxFailedIndexes: {{ .Values.fleet.maxFailedShards }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
