{{/* Where the database credential file appears in the container: .../url, or .../password in host mode. */}}
{{- define "alembic-sidecar.secretFileName" -}}
{{- ternary "password" "url" (not (empty .Values.database.host)) }}
{{- end }}

{{- define "alembic-sidecar.secretMountPath" -}}/var/run/secrets/alembic-sidecar{{- end }}

{{/* A number of seconds as a string; whole numbers without Go's exponent form (2147483, not 2.147483e+06). */}}
{{- define "alembic-sidecar.seconds" -}}
{{- if eq (float64 .) (floor .) }}{{ printf "%.0f" (float64 .) }}{{ else }}{{ toString . }}{{ end }}
{{- end }}

{{/* The container's environment: how to reach the database (secrets by file only), then the MIGRATE_* settings. */}}
{{- define "alembic-sidecar.env" -}}
{{- $db := .Values.database }}
{{- $m := .Values.migration }}
{{- $secretFile := printf "%s/%s" (include "alembic-sidecar.secretMountPath" .) (include "alembic-sidecar.secretFileName" .) }}
{{- if $db.host }}
- {name: DB_DRIVER, value: {{ $db.driver | quote }}}
- {name: DB_HOST, value: {{ $db.host | quote }}}
{{- with $db.port }}
- {name: DB_PORT, value: {{ . | toString | quote }}}
{{- end }}
- {name: DB_NAME, value: {{ $db.name | quote }}}
- {name: DB_USER, value: {{ $db.user | quote }}}
- {name: DB_PASSWORD_FILE, value: {{ $secretFile | quote }}}
{{- else }}
- {name: DATABASE_URL_FILE, value: {{ $secretFile | quote }}}
{{- end }}
{{- include "alembic-sidecar.tlsEnv" . }}
- {name: MIGRATE_VERSIONS_DIR, value: {{ .Values.revisions.dir | quote }}}
- {name: MIGRATE_TARGET, value: {{ $m.target | quote }}}
{{- if not (kindIs "invalid" $m.timeout) }}
- {name: MIGRATE_TIMEOUT, value: {{ include "alembic-sidecar.seconds" $m.timeout | quote }}}
{{- end }}
- {name: MIGRATE_WAIT_TIMEOUT, value: {{ include "alembic-sidecar.seconds" $m.waitTimeout | quote }}}
- {name: MIGRATE_LOCK_TIMEOUT, value: {{ include "alembic-sidecar.seconds" $m.lockTimeout | quote }}}
{{- if not (kindIs "invalid" $m.statementTimeout) }}
- {name: MIGRATE_STATEMENT_TIMEOUT, value: {{ include "alembic-sidecar.seconds" $m.statementTimeout | quote }}}
{{- end }}
{{- if not (kindIs "invalid" $m.ddlLockTimeout) }}
- {name: MIGRATE_DDL_LOCK_TIMEOUT, value: {{ include "alembic-sidecar.seconds" $m.ddlLockTimeout | quote }}}
{{- end }}
- {name: MIGRATE_DDL_LOCK_RETRIES, value: {{ $m.ddlLockRetries | int64 | toString | quote }}}
{{- if eq .Values.command "ready" }}
- {name: MIGRATE_READY_TIMEOUT, value: {{ include "alembic-sidecar.seconds" .Values.ready.timeout | quote }}}
{{- end }}
- {name: MIGRATE_ON_UNKNOWN_REVISION, value: {{ $m.onUnknownRevision | quote }}}
- {name: MIGRATE_VERIFY_HISTORY, value: {{ $m.verifyHistory | quote }}}
- {name: MIGRATE_LOG_FORMAT, value: {{ .Values.logFormat | quote }}}
- {name: MIGRATE_LOG_LEVEL, value: {{ .Values.logLevel | quote }}}
{{- include "alembic-sidecar.fleetEnv" . }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
