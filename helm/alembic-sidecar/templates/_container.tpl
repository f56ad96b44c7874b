{{/*
The migration container, the pod volumes it needs, and the init container list another chart includes.
Each takes this chart's scope: in the Job that is ".", in an application chart that depends on this one it is
".Subcharts.<name or alias>", so both render the very same container from the very same values:

  initContainers:
    {{- include "alembic-sidecar.initContainer" .Subcharts.migrations | nindent 4 }}
  volumes:
    {{- include "alembic-sidecar.volumes" .Subcharts.migrations | nindent 4 }}
*/}}

{{- define "alembic-sidecar.secretMountPath" -}}/var/run/secrets/alembic-sidecar{{- end }}

{{/* The container as a mapping (no list dash), shared by the Job and the initContainer. */}}
{{- define "alembic-sidecar.container" -}}
{{- $db := .Values.database }}
{{- $m := .Values.migration }}
{{- $secretFile := printf "%s/%s" (include "alembic-sidecar.secretMountPath" .) (ternary "password" "url" (not (empty $db.host))) -}}
name: migrate
image: {{ include "alembic-sidecar.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
args: [{{ .Values.command | quote }}]
env:
  {{- if $db.host }}
  - name: DB_DRIVER
    value: {{ $db.driver | quote }}
  - name: DB_HOST
    value: {{ $db.host | quote }}
  {{- with $db.port }}
  - name: DB_PORT
    value: {{ . | toString | quote }}
  {{- end }}
  - name: DB_NAME
    value: {{ $db.name | quote }}
  - name: DB_USER
    value: {{ $db.user | quote }}
  {{- with $db.sslmode }}
  - name: DB_SSLMODE
    value: {{ . | quote }}
  {{- end }}
  - name: DB_PASSWORD_FILE
    value: {{ $secretFile | quote }}
  {{- else }}
  - name: DATABASE_URL_FILE
    value: {{ $secretFile | quote }}
  {{- end }}
  - name: MIGRATE_VERSIONS_DIR
    value: {{ .Values.revisions.dir | quote }}
  - name: MIGRATE_TARGET
    value: {{ $m.target | quote }}
  - name: MIGRATE_WAIT_TIMEOUT
    value: {{ $m.waitTimeout | toString | quote }}
  - name: MIGRATE_LOCK_TIMEOUT
    value: {{ $m.lockTimeout | toString | quote }}
  {{- if not (kindIs "invalid" $m.statementTimeout) }}
  - name: MIGRATE_STATEMENT_TIMEOUT
    value: {{ $m.statementTimeout | toString | quote }}
  {{- end }}
  {{- if not (kindIs "invalid" $m.ddlLockTimeout) }}
  - name: MIGRATE_DDL_LOCK_TIMEOUT
    value: {{ $m.ddlLockTimeout | toString | quote }}
  {{- end }}
  - name: MIGRATE_ON_UNKNOWN_REVISION
    value: {{ $m.onUnknownRevision | quote }}
  - name: MIGRATE_LOG_FORMAT
    value: {{ .Values.logFormat | quote }}
  - name: MIGRATE_LOG_LEVEL
    value: {{ .Values.logLevel | quote }}
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
volumeMounts:
  - name: alembic-sidecar-secret
    mountPath: {{ include "alembic-sidecar.secretMountPath" . }}
    readOnly: true
  - name: alembic-sidecar-tmp
    mountPath: /tmp
  {{- if ne .Values.revisions.source "image" }}
  - name: alembic-sidecar-revisions
    mountPath: {{ .Values.revisions.dir }}
    readOnly: true
    {{- if eq .Values.revisions.source "imageVolume" }}
    subPath: {{ .Values.revisions.imageVolume.subPath }}
    {{- end }}
  {{- end }}
  {{- with .Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .Values.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.containerSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
terminationMessagePath: /dev/termination-log
terminationMessagePolicy: FallbackToLogsOnError
{{- end }}

{{/* Copies the revision files out of the application's image into the shared emptyDir (source copy). */}}
{{- define "alembic-sidecar.copyContainer" -}}
name: copy-revisions
image: {{ required "revisions.copy.image is required when revisions.source is copy" .Values.revisions.copy.image | quote }}
imagePullPolicy: {{ .Values.revisions.copy.pullPolicy }}
command: ["cp", "-R", {{ printf "%s/." (trimSuffix "/" .Values.revisions.copy.path) | quote }}, {{ .Values.revisions.dir | quote }}]
volumeMounts:
  - name: alembic-sidecar-revisions
    mountPath: {{ .Values.revisions.dir }}
{{- with .Values.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.containerSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
terminationMessagePolicy: FallbackToLogsOnError
{{- end }}

{{/* The init containers for an application pod: the copy step (source copy) then the migration. */}}
{{- define "alembic-sidecar.initContainer" -}}
{{- if eq .Values.revisions.source "copy" }}
- {{ include "alembic-sidecar.copyContainer" . | nindent 2 | trim }}
{{- end }}
- {{ include "alembic-sidecar.container" . | nindent 2 | trim }}
{{- end }}

{{/* The pod volumes the containers above mount. */}}
{{- define "alembic-sidecar.volumes" -}}
- name: alembic-sidecar-secret
  secret:
    secretName: {{ include "alembic-sidecar.secretName" . }}
    # World-readable inside the pod so the numeric UID reads it even in a pod without fsGroup.
    defaultMode: 0444
    items:
      - key: {{ include "alembic-sidecar.secretKey" . }}
        path: {{ ternary "password" "url" (not (empty .Values.database.host)) }}
- name: alembic-sidecar-tmp
  emptyDir:
    sizeLimit: 16Mi
{{- if eq .Values.revisions.source "configMap" }}
- name: alembic-sidecar-revisions
  configMap:
    name: {{ tpl (required "revisions.configMap is required when revisions.source is configMap" .Values.revisions.configMap) . }}
{{- else if eq .Values.revisions.source "copy" }}
- name: alembic-sidecar-revisions
  emptyDir:
    sizeLimit: 64Mi
{{- else if eq .Values.revisions.source "imageVolume" }}
- name: alembic-sidecar-revisions
  image:
    reference: {{ required "revisions.imageVolume.reference is required when revisions.source is imageVolume" .Values.revisions.imageVolume.reference | quote }}
    pullPolicy: {{ .Values.revisions.imageVolume.pullPolicy }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}
