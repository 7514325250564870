{{/* Names, labels and the checks every template relies on. */}}

{{- define "vk-trio.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's objects are called <release> (or <release>-vk-trio when the release name
does not say vk-trio already). */}}
{{- define "vk-trio.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vk-trio.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vk-trio.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vk-trio.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "vk-trio.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "vk-trio.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vk-trio.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* True (non-empty) when apiKeys holds a key: the chart then creates the Secret itself. */}}
{{- define "vk-trio.ownSecret" -}}
{{- if or .Values.apiKeys.runpod .Values.apiKeys.vastai -}}true{{- end -}}
{{- end -}}

{{- define "vk-trio.secretName" -}}
{{- if include "vk-trio.ownSecret" . -}}
{{- printf "%s-api-keys" (include "vk-trio.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- required "existingSecret: name the Secret holding the provider's API key (or set apiKeys)" .Values.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* The environment variable (and Secret key) of the provider's API key; empty for fake. */}}
{{- define "vk-trio.apiKeyEnv" -}}
{{- get (dict "runpod" "RUNPOD_API_KEY" "vastai" "VAST_API_KEY") .Values.provider -}}
{{- end -}}

{{/* The leader-election Lease, in the release namespace (vk_trio/daemon.py names it). */}}
{{- define "vk-trio.leaderLease" -}}
{{- printf "vk-trio-%s" .Values.nodeName -}}
{{- end -}}

{{/* Settings that render but can never work fail the render, naming the value. */}}
{{- define "vk-trio.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElect) -}}
{{- fail "replicas > 1 needs leaderElect: true (two agents must never act on one node at once)" -}}
{{- end -}}
{{- if and (eq .Values.provider "runpod") (not .Values.apiKeys.runpod) .Values.apiKeys.vastai -}}
{{- fail "provider runpod reads apiKeys.runpod, which is empty (only apiKeys.vastai is set)" -}}
{{- end -}}
{{- if and (eq .Values.provider "vastai") (not .Values.apiKeys.vastai) .Values.apiKeys.runpod -}}
{{- fail "provider vastai reads apiKeys.vastai, which is empty (only apiKeys.runpod is set)" -}}
{{- end -}}
{{- end -}}
