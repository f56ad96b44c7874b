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
name: migrate
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
{{- if eq .Values.revisions.source "copy" -}}
- {{ include "alembic-sidecar.copyContainer" . | nindent 2 | trim }}
{{ end -}}
- {{ include "alembic-sidecar.container" . | nindent 2 | trim }}
{{- end }}
