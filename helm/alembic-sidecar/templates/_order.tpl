{{/*
How the Job is ordered before a rollout (job.mode), as annotations. Each helper renders YAML for fromYaml and
renders nothing when there is nothing to order (job.enabled false, or mode plain).
*/}}

{{/* True (non-empty) when the Job is a hook, which its tool replaces on every run: then it keeps one name. */}}
{{- define "alembic-sidecar.jobIsHook" -}}
{{- if or (eq .Values.job.mode "helm-hook") (and (eq .Values.job.mode "argocd") .Values.job.argocd.hook) }}true{{ end }}
{{- end }}

{{/* The Job's own ordering annotations. */}}
{{- define "alembic-sidecar.jobOrderAnnotations" -}}
{{- $job := .Values.job }}
{{- if eq $job.mode "helm-hook" }}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ int $job.hookWeight | quote }}
helm.sh/hook-delete-policy: {{ $job.hookDeletePolicy | quote }}
{{- else if eq $job.mode "argocd" }}
argocd.argoproj.io/sync-wave: {{ int $job.argocd.syncWave | quote }}
{{- with $job.argocd.hook }}
argocd.argoproj.io/hook: {{ . }}
argocd.argoproj.io/hook-delete-policy: {{ $job.argocd.hookDeletePolicy | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The annotations of the chart's other objects (its Secret, its ServiceAccount): one step before the Job in the same
phase, so they exist when its pod starts. A Helm pre-install hook or an Argo CD PreSync hook runs before ordinary
objects exist, so there they are hooks too (formbricks/hub#27: a PreSync Job before a non-hook Secret).
*/}}
{{- define "alembic-sidecar.prerequisiteAnnotations" -}}
{{- $job := .Values.job }}
{{- if and $job.enabled (eq $job.mode "helm-hook") }}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ sub (int $job.hookWeight) 1 | quote }}
helm.sh/hook-delete-policy: before-hook-creation
{{- else if and $job.enabled (eq $job.mode "argocd") }}
argocd.argoproj.io/sync-wave: {{ sub (int $job.argocd.syncWave) 1 | quote }}
{{- if eq $job.argocd.hook "PreSync" }}
argocd.argoproj.io/hook: PreSync
argocd.argoproj.io/hook-delete-policy: BeforeHookCreation
{{- end }}
{{- end }}
{{- end }}
