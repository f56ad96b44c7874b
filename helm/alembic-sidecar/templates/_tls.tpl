{{/* TLS to the database: the CA bundle, client certificate, key and key password as files in one directory. */}}
{{- define "alembic-sidecar.tlsMountPath" -}}/etc/alembic-sidecar/tls{{- end }}

{{/* True (non-empty) when any TLS file is mounted. */}}
{{- define "alembic-sidecar.tlsFiles" -}}
{{- $tls := .Values.database.tls }}
{{- if or $tls.ca.existingSecret $tls.ca.existingConfigMap $tls.clientCertificate.existingSecret $tls.keyPassword.existingSecret }}true{{ end }}
{{- end }}

{{/* DB_SSL* variables: the mode, and the path of each mounted file. */}}
{{- define "alembic-sidecar.tlsEnv" -}}
{{- $tls := .Values.database.tls }}
{{- $dir := include "alembic-sidecar.tlsMountPath" . }}
{{- with $tls.mode }}
- {name: DB_SSLMODE, value: {{ . | quote }}}
{{- end }}
{{- if or $tls.ca.existingSecret $tls.ca.existingConfigMap }}
- {name: DB_SSLROOTCERT, value: {{ printf "%s/ca.crt" $dir | quote }}}
{{- end }}
{{- if $tls.clientCertificate.existingSecret }}
- {name: DB_SSLCERT, value: {{ printf "%s/client.crt" $dir | quote }}}
- {name: DB_SSLKEY, value: {{ printf "%s/client.key" $dir | quote }}}
{{- end }}
{{- if $tls.keyPassword.existingSecret }}
- {name: DB_SSLPASSWORD_FILE, value: {{ printf "%s/client.key-password" $dir | quote }}}
{{- end }}
{{- end }}

{{/* One projected volume for every TLS file, so they share the directory the DB_SSL* variables name. */}}
{{- define "alembic-sidecar.tlsVolume" -}}
{{- $tls := .Values.database.tls }}
- name: alembic-sidecar-tls
  projected:
    # Owner and group only (libpq refuses a key others can read): the kubelet gives the files the pod's fsGroup,
    # which it also adds to every container's groups.
    defaultMode: 0440
    sources:
      {{- with $tls.ca.existingSecret }}
      - secret:
          name: {{ tpl . $ }}
          items: [{key: {{ $tls.ca.key | quote }}, path: ca.crt}]
      {{- end }}
      {{- with $tls.ca.existingConfigMap }}
      - configMap:
          name: {{ tpl . $ }}
          items: [{key: {{ $tls.ca.key | quote }}, path: ca.crt}]
      {{- end }}
      {{- with $tls.clientCertificate.existingSecret }}
      - secret:
          name: {{ tpl . $ }}
          items:
            - {key: {{ $tls.clientCertificate.certKey | quote }}, path: client.crt}
            - {key: {{ $tls.clientCertificate.keyKey | quote }}, path: client.key}
      {{- end }}
      {{- with $tls.keyPassword.existingSecret }}
      - secret:
          name: {{ tpl . $ }}
          items: [{key: {{ $tls.keyPassword.key | quote }}, path: client.key-password}]
      {{- end }}
{{- end }}
