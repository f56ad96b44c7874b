{{/*
The Job's spec: job.yaml applies it, and alembic-sidecar.jobName names the Job after its hash. It holds all that
the Job runs (image, revisions source, settings, pod), so a change to any of it is a new Job, never an in-place
patch of a pod template the API server holds immutable.
*/}}
{{- define "alembic-sidecar.jobSpec" -}}
{{- $perIndex := include "alembic-sidecar.perIndex" . }}
{{- if not $perIndex }}
backoffLimit: {{ .Values.job.backoffLimit }}
{{- end }}
{{- include "alembic-sidecar.indexedJobFields" . }}
{{- with .Values.job.activeDeadlineSeconds }}
activeDeadlineSeconds: {{ . }}
{{- end }}
{{- if not (kindIs "invalid" .Values.job.ttlSecondsAfterFinished) }}
ttlSecondsAfterFinished: {{ .Values.job.ttlSecondsAfterFinished }}
{{- end }}
podFailurePolicy:
  rules:
    {{- with .Values.job.failFastExitCodes }}
    # With one backoffLimit per shard, a code a retry cannot fix fails that shard only; the others finish.
    - action: {{ ternary "FailIndex" "FailJob" (not (empty $perIndex)) }}
      onExitCodes:
        containerName: migrate
        operator: In
        values: {{ toJson . }}
      # Empty, which the API server accepts beside onExitCodes: the schemas before 1.29 require the field.
      onPodConditions: []
    {{- end }}
    # An evicted or preempted pod did not fail on its own: retry it without spending backoffLimit.
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          # The server's default, spelled out: the schemas before 1.35 require it.
          status: "True"
template:
  metadata:
    labels:
      {{- include "alembic-sidecar.labels" . | nindent 6 }}
      {{- with .Values.podLabels }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- $checksum := dict }}
    {{- if .Values.fleet.targets }}
    {{- /* A changed inline list changes the pod, so a hash-named Job reruns for it. */}}
    {{- $_ := set $checksum "checksum/fleet-targets" (include "alembic-sidecar.fleetTargets" . | sha256sum) }}
    {{- end }}
    {{- with merge $checksum .Values.podAnnotations .Values.commonAnnotations }}
    annotations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  spec:
    restartPolicy: Never
    serviceAccountName: {{ include "alembic-sidecar.serviceAccountName" . }}
    automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
    {{- with .Values.image.pullSecrets }}
    imagePullSecrets:
      {{- range . }}
      - name: {{ . }}
      {{- end }}
    {{- end }}
    {{- with .Values.podSecurityContext }}
    securityContext:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- if eq .Values.revisions.source "copy" }}
    initContainers:
      - {{ include "alembic-sidecar.copyContainer" . | nindent 8 | trim }}
    {{- end }}
    containers:
      - {{ include "alembic-sidecar.container" . | nindent 8 | trim }}
    volumes:
      {{- include "alembic-sidecar.volumes" . | nindent 6 }}
    {{- with .Values.nodeSelector }}
    nodeSelector:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.affinity }}
    affinity:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
