{{/*
Fails the render when a value needs a newer Kubernetes than the target's (.Capabilities.KubeVersion: the cluster's
under helm install and Argo CD, --kube-version under helm template). Without it an older API server drops the
unknown volume source and rejects the pod with an unrelated message. Called from alembic-sidecar.volumes, so an
application chart that includes the initContainer gets the same check.
*/}}
{{- define "alembic-sidecar.checkCapabilities" -}}
{{- $needs := list }}
{{- if eq .Values.revisions.source "imageVolume" }}
{{- $needs = append $needs (list "revisions.source: imageVolume" "1.33") }}
{{- end }}
{{- if not (kindIs "invalid" .Values.fleet.maxFailedShards) }}
{{- $needs = append $needs (list "fleet.maxFailedShards" "1.33") }}
{{- end }}
{{- $kube := .Capabilities.KubeVersion.Version }}
{{- range $needs }}
{{- if not (semverCompare (printf ">=%s.0-0" (index . 1)) $kube) }}
{{- fail (printf "%s needs Kubernetes %s or newer; the target is %s" (index . 0) (index . 1) $kube) }}
{{- end }}
{{- end }}
{{- end }}
