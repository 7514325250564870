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

{{/* The provider value as vk-trio's --provider reads it: a comma list ("" when unset). */}}
{{- define "vk-trio.provider" -}}
{{- if kindIs "slice" .Values.provider -}}{{ join "," .Values.provider }}{{- else -}}{{ .Values.provider }}{{- end -}}
{{- end -}}

{{/* The clouds whose API key the agent gets: the named ones, or both while provider is empty
(the agent then fronts those whose key the Secret holds). */}}
{{- define "vk-trio.keyClouds" -}}
{{- $provider := include "vk-trio.provider" . -}}
{{- if eq $provider "" -}}runpod,vastai{{- else if ne $provider "fake" -}}{{ $provider }}{{- end -}}
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
{{- $provider := include "vk-trio.provider" . -}}
{{- if and (include "vk-trio.ownSecret" .) (ne $provider "") (ne $provider "fake") -}}
{{- range (splitList "," $provider) -}}
{{- if not (get $.Values.apiKeys .) -}}
{{- fail (printf "provider %s reads apiKeys.%s, which is empty (set it, or leave provider empty to use the clouds whose keys are set)" $provider .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
