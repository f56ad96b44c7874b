{{/*
The migration container and the init container list another chart includes. Each takes this chart's scope: in the
Job that is ".", in an application chart that depends on this one it is ".Subcharts.<name or alias>", so both
render the very same container from the very same values:

  initContainers:
    {{- include "alembic-sidecar.initContainer" .Subcharts.migrations | nindent 4 }}
  volumes:
    {{- include "alembic-sidecar.volumes" .Subcharts.migrations | nindent 4 }}
*/}}

{{/* The container as a mapping (no list dash), shared by the Job and the initContainer. */}}
{{- define "alembic-sidecar.container" -}}
name: {{ ternary "ready" "migrate" (hasKey . "ReadyScope") }}
image: {{ include "alembic-sidecar.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
args: [{{ .Values.command | quote }}]
env:
  {{- include "alembic-sidecar.env" . | trim | nindent 2 }}
volumeMounts:
  - name: alembic-sidecar-secret
    mountPath: {{ include "alembic-sidecar.secretMountPath" . }}
    readOnly: true
  - name: alembic-sidecar-tmp
    mountPath: /tmp
  {{- if include "alembic-sidecar.tlsFiles" . }}
  - name: alembic-sidecar-tls
    mountPath: {{ include "alembic-sidecar.tlsMountPath" . }}
    readOnly: true
  {{- end }}
  {{- if ne .Values.revisions.source "image" }}
  - name: alembic-sidecar-revisions
    mountPath: {{ .Values.revisions.dir }}
    readOnly: true
    {{- if eq .Values.revisions.source "imageVolume" }}
    subPath: {{ .Values.revisions.imageVolume.subPath }}
    {{- end }}
  {{- end }}
  {{- include "alembic-sidecar.fleetMount" . | indent 2 }}
  {{- with .Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- include "alembic-sidecar.containerCommon" . }}
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
{{- include "alembic-sidecar.containerCommon" . }}
{{- end }}

{{/* Resources, the locked-down security context and the termination message, for both containers. */}}
{{- define "alembic-sidecar.containerCommon" -}}
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

{{/* The init containers for an application pod: the copy step (source copy) then the migration. */}}
{{- define "alembic-sidecar.initContainer" -}}
{{- if include "alembic-sidecar.fleet" . }}
{{- fail "fleet: a fleet runs in the migration Job only; leave alembic-sidecar.initContainer and alembic-sidecar.readyInitContainer out of your pod spec (every replica would run the whole fleet)" }}
{{- end }}
{{- if eq .Values.revisions.source "copy" -}}
- {{ include "alembic-sidecar.copyContainer" . | nindent 2 | trim }}
{{ end -}}
- {{ include "alembic-sidecar.container" . | nindent 2 | trim }}
{{- end }}

{{/*
The init containers that hold an application pod back until the migration Job has done its work: alembic-sidecar
ready with the application's own read-only credentials (ready.database) and MIGRATE_READY_TIMEOUT (ready.timeout),
the revision files from the same source as the Job. Its pod takes alembic-sidecar.readyVolumes, not .volumes.
*/}}
{{- define "alembic-sidecar.readyInitContainer" -}}
{{- include "alembic-sidecar.asReady" (list . "alembic-sidecar.initContainer") }}
{{- end }}

{{- define "alembic-sidecar.readyVolumes" -}}
{{- include "alembic-sidecar.asReady" (list . "alembic-sidecar.volumes") }}
{{- end }}

{{/*
Renders the template named second with the chart's scope (first) whose values run `ready` as the application: its
Secret and user instead of the migrator's, never the literal url or password the chart's own Secret holds.
*/}}
{{- define "alembic-sidecar.asReady" -}}
{{- $top := index . 0 }}
{{- $ready := $top.Values.ready }}
{{- $database := dict }}
{{- range $key, $value := $top.Values.database }}{{ $_ := set $database $key $value }}{{ end }}
{{- $_ := set $database "url" "" }}
{{- $_ = set $database "password" "" }}
{{- $_ = set $database "existingSecret" $ready.database.existingSecret }}
{{- $_ = set $database "urlKey" $ready.database.urlKey }}
{{- $_ = set $database "passwordKey" $ready.database.passwordKey }}
{{- $_ = set $database "user" (default $top.Values.database.user $ready.database.user) }}
{{- $values := dict }}
{{- range $key, $value := $top.Values }}{{ $_ := set $values $key $value }}{{ end }}
{{- $_ = set $values "command" "ready" }}
{{- $_ = set $values "database" $database }}
{{- $scope := dict "ReadyScope" true }}
{{- range $key, $value := $top }}{{ $_ := set $scope $key $value }}{{ end }}
{{- $_ = set $scope "Values" $values }}
{{- include (index . 1) $scope }}
{{- end }}
