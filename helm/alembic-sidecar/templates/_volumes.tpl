{{/* The pod volumes the containers mount, all named alembic-sidecar-* so they sit beside an app's own. */}}
{{- define "alembic-sidecar.volumes" -}}
{{- include "alembic-sidecar.checkCapabilities" . }}
- name: alembic-sidecar-secret
  secret:
    secretName: {{ include "alembic-sidecar.secretName" . }}
    # World-readable inside the pod so the numeric UID reads it even in a pod without fsGroup.
    defaultMode: 0444
    items:
      - key: {{ include "alembic-sidecar.secretKey" . }}
        path: {{ include "alembic-sidecar.secretFileName" . }}
- name: alembic-sidecar-tmp
  emptyDir:
    sizeLimit: 16Mi
{{- if include "alembic-sidecar.tlsFiles" . }}
{{ include "alembic-sidecar.tlsVolume" . }}
{{- end }}
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
{{- include "alembic-sidecar.fleetVolume" . }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}
