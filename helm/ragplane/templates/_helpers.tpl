{{/* The four services, in the order they are rendered. */}}
{{- define "ragplane.services" -}}
query embedding retrieval generation
{{- end }}

{{/* Environment variable prefix of a service: QUERY, EMBEDDING, ... */}}
{{- define "ragplane.prefix" -}}
{{ upper . }}
{{- end }}

{{- define "ragplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ragplane.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of a service's objects; context: dict root, name. */}}
{{- define "ragplane.componentName" -}}
{{- printf "%s-%s" (include "ragplane.fullname" .root | trunc 52 | trimSuffix "-") .name }}
{{- end }}

{{- define "ragplane.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of a service's pods; context: dict root, name. */}}
{{- define "ragplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ragplane.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Labels of every object of a service; context: dict root, name. */}}
{{- define "ragplane.labels" -}}
helm.sh/chart: {{ include "ragplane.chart" .root }}
{{ include "ragplane.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: ragplane
{{- end }}

{{/* Labels of objects that belong to no single service. */}}
{{- define "ragplane.releaseLabels" -}}
helm.sh/chart: {{ include "ragplane.chart" . }}
app.kubernetes.io/name: {{ include "ragplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ragplane
{{- end }}

{{- define "ragplane.serviceAccountName" -}}
{{- $svc := index .root.Values .name }}
{{- if $svc.serviceAccount.create }}
{{- default (include "ragplane.componentName" .) $svc.serviceAccount.name }}
{{- else }}
{{- default "default" $svc.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image of a service: <registry>/<prefix>/<name>:<tag>, -cuda for the GPU embedding. */}}
{{- define "ragplane.image" -}}
{{- $values := .root.Values }}
{{- $svc := index $values .name }}
{{- $repository := $svc.image.repository }}
{{- if not $repository }}
{{- $repository = printf "%s/%s" $values.image.prefix .name }}
{{- if $values.image.registry }}
{{- $repository = printf "%s/%s" $values.image.registry $repository }}
{{- end }}
{{- end }}
{{- $tag := $svc.image.tag }}
{{- if not $tag }}
{{- $tag = default .root.Chart.AppVersion $values.image.tag }}
{{- if and (eq .name "embedding") $svc.gpu.enabled }}
{{- $tag = printf "%s-cuda" $tag }}
{{- end }}
{{- end }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/* The query service's target of a service: its headless Service through DNS (one address per
ready pod, for round_robin); context: dict root, name. */}}
{{- define "ragplane.target" -}}
{{- $override := index .root.Values.query.targets .name }}
{{- if $override }}
{{- $override }}
{{- else }}
{{- printf "dns:///%s:%v" (include "ragplane.componentName" .) (index .root.Values .name).port }}
{{- end }}
{{- end }}

{{/* A settings value as a ConfigMap string: strings as they are, numbers and booleans as JSON. */}}
{{- define "ragplane.settingValue" -}}
{{- if kindIs "string" . }}{{ . | quote }}{{ else }}{{ toJson . | quote }}{{ end }}
{{- end }}

{{/* The settings of a service, as ConfigMap data; context: dict root, name. */}}
{{- define "ragplane.configData" -}}
{{- $values := .root.Values }}
{{- $svc := index $values .name }}
{{- $prefix := include "ragplane.prefix" .name }}
{{ $prefix }}_HOST: "0.0.0.0"
{{ $prefix }}_PORT: {{ $svc.port | quote }}
{{ $prefix }}_METRICS_PORT: {{ $svc.metricsPort | quote }}
{{ $prefix }}_LOG_LEVEL: {{ $values.logLevel | quote }}
{{ $prefix }}_DRAIN_DELAY_S: {{ $values.shutdown.drainDelaySeconds | quote }}
{{ $prefix }}_GRACE_PERIOD_S: {{ $values.shutdown.gracePeriodSeconds | quote }}
{{ $prefix }}_MAX_CONNECTION_AGE_S: {{ $values.channels.maxConnectionAgeSeconds | quote }}
{{ $prefix }}_MAX_CONNECTION_AGE_GRACE_S: {{ $values.channels.maxConnectionAgeGraceSeconds | quote }}
HF_HUB_OFFLINE: "1"
TRANSFORMERS_OFFLINE: "1"
{{- with $values.otlpEndpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
{{- end }}
{{- if eq .name "query" }}
{{- range $target := list "embedding" "retrieval" "generation" }}
QUERY_{{ upper $target }}_TARGET: {{ include "ragplane.target" (dict "root" $.root "name" $target) | quote }}
{{- end }}
{{- with $values.channels.retry }}
RAGPLANE_CHANNEL_RETRY_MAX_ATTEMPTS: {{ .maxAttempts | quote }}
RAGPLANE_CHANNEL_RETRY_INITIAL_BACKOFF_S: {{ .initialBackoffSeconds | quote }}
RAGPLANE_CHANNEL_RETRY_MAX_BACKOFF_S: {{ .maxBackoffSeconds | quote }}
{{- end }}
{{- /* The semantic answer cache lives in Weaviate, in a collection of its own. */}}
QUERY_WEAVIATE_HOST: {{ $values.weaviate.host | quote }}
QUERY_WEAVIATE_HTTP_PORT: {{ $values.weaviate.httpPort | quote }}
QUERY_WEAVIATE_GRPC_PORT: {{ $values.weaviate.grpcPort | quote }}
{{- with $svc.batch }}
QUERY_BATCH_WORKER_ENABLED: {{ .workerEnabled | toJson | quote }}
QUERY_BATCH_CONCURRENCY: {{ .concurrency | quote }}
QUERY_BATCH_YIELD_IN_FLIGHT: {{ .yieldInFlight | quote }}
QUERY_BATCH_RETRIES: {{ .retries | quote }}
QUERY_BATCH_RESULT_TTL_S: {{ .resultTtlSeconds | quote }}
QUERY_BATCH_PRICE_FACTOR: {{ .priceFactor | quote }}
{{- end }}
{{- with $svc.apiKeys.existingSecret }}
QUERY_API_KEYS_FILE: {{ printf "/etc/ragplane/api-keys/%s" $svc.apiKeys.key | quote }}
{{- end }}
{{- if $svc.flags }}
QUERY_FLAGS_FILE: "/etc/ragplane/flags/flags.yaml"
{{- end }}
{{- with $svc.shadow }}
{{- with .generationTarget }}
QUERY_SHADOW_GENERATION_TARGET: {{ . | quote }}
{{- end }}
QUERY_SHADOW_MAX_IN_FLIGHT: {{ .maxInFlight | quote }}
QUERY_SHADOW_TIMEOUT_S: {{ .timeoutSeconds | quote }}
{{- end }}
{{- else if eq .name "embedding" }}
EMBEDDING_DEVICE: {{ ternary "cuda" "cpu" $svc.gpu.enabled | quote }}
EMBEDDING_ONNX_CACHE_DIR: /var/cache/ragplane/onnx
HF_HOME: /var/cache/ragplane/huggingface
{{- else if eq .name "retrieval" }}
RETRIEVAL_WEAVIATE_HOST: {{ $values.weaviate.host | quote }}
RETRIEVAL_WEAVIATE_HTTP_PORT: {{ $values.weaviate.httpPort | quote }}
RETRIEVAL_WEAVIATE_GRPC_PORT: {{ $values.weaviate.grpcPort | quote }}
RETRIEVAL_REPLICATION_FACTOR: {{ $values.weaviate.replicationFactor | quote }}
RETRIEVAL_CONSISTENCY_LEVEL: {{ $values.weaviate.consistencyLevel | quote }}
{{- else if eq .name "generation" }}
GENERATION_PROVIDERS: {{ toJson $svc.providers | quote }}
{{- end }}
{{- range $key, $value := $svc.config }}
{{ $key }}: {{ include "ragplane.settingValue" $value }}
{{- end }}
{{- end }}

{{/* Environment variables that come from Secrets or refer to them; context: dict root, name. */}}
{{- define "ragplane.secretEnv" -}}
{{- $values := .root.Values }}
{{- $svc := index $values .name }}
{{- if has .name (list "embedding" "query" "generation" "retrieval") }}
{{- $redis := $values.redis }}
{{- $auth := "" }}
{{- if $redis.existingSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $redis.existingSecret }}
      key: {{ $redis.passwordKey }}
{{- $auth = ":$(REDIS_PASSWORD)@" }}
{{- end }}
- name: {{ include "ragplane.prefix" .name }}_REDIS_URL
  value: {{ printf "%s://%s%s:%v/%v" (ternary "rediss" "redis" $redis.tls) $auth $redis.host $redis.port $redis.db | quote }}
{{- end }}
{{- if eq .name "generation" }}
{{- range $provider := $svc.providers }}
{{- with $provider.api_key_env }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "generation.existingSecret must name the Secret that holds %s" .) $svc.existingSecret }}
      key: {{ . }}
{{- end }}
{{- end }}
{{- end }}
{{- with $svc.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
