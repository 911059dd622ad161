{{/* Names and labels shared by every template of the kbt chart. */}}

{{- define "kbt.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kbt.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kbt.labels" -}}
{{ include "kbt.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: kbt
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kbt.serviceAccountName" -}}
{{- default (include "kbt.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "kbt.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* The namespaces the operator watches in namespaced mode. */}}
{{- define "kbt.watchNamespaces" -}}
{{- $namespaces := .Values.rbac.watchNamespaces | default (list .Release.Namespace) -}}
{{- join "," $namespaces -}}
{{- end -}}

{{- define "kbt.validateScope" -}}
{{- if not (has .Values.rbac.scope (list "cluster" "namespaced")) -}}
{{- fail (printf "rbac.scope must be cluster or namespaced, not %q" .Values.rbac.scope) -}}
{{- end -}}
{{- end -}}
