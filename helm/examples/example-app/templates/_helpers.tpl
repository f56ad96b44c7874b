{{/* The app's image, by the same convention as alembic-sidecar.image: global.imageRegistry wins over image.registry. */}}
{{- define "example-app.image" -}}
{{- $registry := default .Values.image.registry (.Values.global).imageRegistry }}
{{- $name := printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- ternary (printf "%s/%s" $registry $name) $name (not (empty $registry)) }}
{{- end }}
