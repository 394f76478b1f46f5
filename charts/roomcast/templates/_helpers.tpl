{{/*
Names and labels.
*/}}
{{- define "roomcast.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "roomcast.fullname" -}}
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

{{- define "roomcast.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: they never change across upgrades (a Deployment's
selector is immutable).
*/}}
{{- define "roomcast.selectorLabels" -}}
app.kubernetes.io/name: {{ include "roomcast.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "roomcast.labels" -}}
helm.sh/chart: {{ include "roomcast.chart" . }}
{{ include "roomcast.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: edge
app.kubernetes.io/part-of: roomcast
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The admin port's own Service (service-admin.yaml).
*/}}
{{- define "roomcast.adminServiceName" -}}
{{- printf "%s-admin" (include "roomcast.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{/*
The browser origins the node accepts (ROOMCAST_ALLOWED_ORIGINS), comma-
separated: config.allowedOrigins, and the origin of every ingress host
(https://<host> when an ingress.tls entry lists the host, else
http://<host>), since the dashboard and browser clients behind the Ingress
reach the node by that name, which the default policy refuses (DNS
rebinding). Empty: the node's default (loopback and its own IP address).
*/}}
{{- define "roomcast.allowedOrigins" -}}
{{- $origins := list }}
{{- range .Values.config.allowedOrigins }}
{{- $origins = append $origins . }}
{{- end }}
{{- if .Values.ingress.enabled }}
{{- $tlsHosts := list }}
{{- range .Values.ingress.tls }}
{{- $tlsHosts = concat $tlsHosts (.hosts | default list) }}
{{- end }}
{{- range .Values.ingress.hosts }}
{{- $origins = append $origins (printf "%s://%s" (ternary "https" "http" (has . $tlsHosts)) (lower .)) }}
{{- end }}
{{- end }}
{{- join "," ($origins | uniq) }}
{{- end }}

{{- define "roomcast.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "roomcast.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "roomcast.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
A listen address: bindAddress and a port, IPv6 addresses in brackets.
*/}}
{{- define "roomcast.listen" -}}
{{- $host := .host }}
{{- if contains ":" $host }}
{{- printf "[%s]:%v" $host .port }}
{{- else }}
{{- printf "%s:%v" $host .port }}
{{- end }}
{{- end }}

{{/*
The NATS URLs as one comma-separated string (nats.url may be a string or a
list).
*/}}
{{- define "roomcast.natsURL" -}}
{{- $url := .Values.nats.url }}
{{- if kindIs "slice" $url }}
{{- join "," $url }}
{{- else }}
{{- $url }}
{{- end }}
{{- end }}

{{/*
Mount points of the files the node reads.
*/}}
{{- define "roomcast.paths.tls" -}}/etc/roomcast/tls{{- end }}
{{- define "roomcast.paths.clientCA" -}}/etc/roomcast/client-ca{{- end }}
{{- define "roomcast.paths.adminTLS" -}}/etc/roomcast/admin-tls{{- end }}
{{- define "roomcast.paths.adminToken" -}}/etc/roomcast/admin-token{{- end }}
{{- define "roomcast.paths.jwtSecret" -}}/etc/roomcast/jwt-secret{{- end }}
{{- define "roomcast.paths.publicKeys" -}}/etc/roomcast/jwt-public-keys{{- end }}
{{- define "roomcast.paths.jwks" -}}/etc/roomcast/jwks{{- end }}
{{- define "roomcast.paths.jwksCA" -}}/etc/roomcast/jwks-ca{{- end }}
{{- define "roomcast.paths.natsCredentials" -}}/etc/roomcast/nats-credentials{{- end }}
{{- define "roomcast.paths.natsTLS" -}}/etc/roomcast/nats-tls{{- end }}

{{/*
The chart's own ConfigMap of JWT keys given inline (public keys and a JWKS
document), and whether there is one.
*/}}
{{- define "roomcast.inlineKeysName" -}}
{{- printf "%s-jwt-keys" (include "roomcast.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "roomcast.hasInlineKeys" -}}
{{- if or .Values.auth.publicKeys.inline .Values.auth.jwks.inline }}true{{- end }}
{{- end }}

{{/*
The NATS credential's key in its Secret.
*/}}
{{- define "roomcast.natsCredentialsKey" -}}
{{- $c := .Values.nats.credentials }}
{{- if $c.key }}
{{- $c.key }}
{{- else }}
{{- get (dict "creds" "nats.creds" "nkey" "nkey.seed" "userPassword" "password" "token" "token") $c.type }}
{{- end }}
{{- end }}

{{/*
Whether any client authentication key is configured.
*/}}
{{- define "roomcast.authConfigured" -}}
{{- $a := .Values.auth }}
{{- if or $a.jwtSecret.secretName $a.publicKeys.inline $a.publicKeys.configMapName $a.publicKeys.secretName $a.jwks.url $a.jwks.inline $a.jwks.configMapName $a.jwks.secretName }}true{{- end }}
{{- end }}

{{/*
Checks that JSON Schema cannot express: each fails the render with the
reason and the value to set.
*/}}
{{- define "roomcast.validate" -}}
{{- if not (include "roomcast.natsURL" .) }}
{{- fail "roomcast: nats.url is required: the URL(s) of an existing NATS cluster with JetStream, e.g. --set nats.url=nats://nats.nats.svc.cluster.local:4222. The chart never runs serve's embedded NATS (edges are stateless and share one stream); the chart's README says how to install the official NATS chart next to it." }}
{{- end }}
{{- if and (not (include "roomcast.authConfigured" .)) (not .Values.allowAnonymous) }}
{{- fail "roomcast: no client authentication is configured: set a JWT key (auth.jwtSecret.secretName, auth.publicKeys.*, or auth.jwks.*), or set allowAnonymous=true to let anyone who reaches the Service read every room (for example behind an authenticating proxy)." }}
{{- end }}
{{- $pk := .Values.auth.publicKeys }}
{{- if gt (len (compact (list (ternary "inline" "" (not (empty $pk.inline))) $pk.configMapName $pk.secretName))) 1 }}
{{- fail "roomcast: auth.publicKeys: set one of inline, configMapName or secretName." }}
{{- end }}
{{- if and (or $pk.configMapName $pk.secretName) (not $pk.items) }}
{{- fail "roomcast: auth.publicKeys.items must list the keys of the ConfigMap or Secret that hold PEM public keys, e.g. [current.pem, next.pem]." }}
{{- end }}
{{- if and $pk.items (not (or $pk.configMapName $pk.secretName)) }}
{{- fail "roomcast: auth.publicKeys.items is set but neither auth.publicKeys.configMapName nor auth.publicKeys.secretName names where they are." }}
{{- end }}
{{- $j := .Values.auth.jwks }}
{{- $jwksSources := 0 }}
{{- range list $j.url $j.inline $j.configMapName $j.secretName }}
{{- if . }}{{ $jwksSources = add1 $jwksSources }}{{ end }}
{{- end }}
{{- if gt $jwksSources 1 }}
{{- fail "roomcast: auth.jwks: set one of url, inline, configMapName or secretName." }}
{{- end }}
{{- if and $j.caConfigMapName (not $j.url) }}
{{- fail "roomcast: auth.jwks.caConfigMapName is the CA of an https JWKS endpoint: set auth.jwks.url too." }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) }}
{{- fail "roomcast: tls.enabled needs tls.secretName, an existing kubernetes.io/tls Secret (tls.crt, tls.key)." }}
{{- end }}
{{- $ca := .Values.tls.clientCA }}
{{- if and $ca.secretName $ca.configMapName }}
{{- fail "roomcast: tls.clientCA: set secretName or configMapName, not both." }}
{{- end }}
{{- if and (or $ca.secretName $ca.configMapName) (not .Values.tls.enabled) }}
{{- fail "roomcast: tls.clientCA verifies client certificates, which needs TLS: set tls.enabled and tls.secretName too." }}
{{- end }}
{{- $nc := .Values.nats.credentials }}
{{- if and $nc.secretName (eq $nc.type "userPassword") (not $nc.user) }}
{{- fail "roomcast: nats.credentials.type userPassword needs nats.credentials.user (the password comes from the Secret)." }}
{{- end }}
{{- if and $nc.user (not (and $nc.secretName (eq $nc.type "userPassword"))) }}
{{- fail "roomcast: nats.credentials.user is only used with type userPassword and a secretName holding the password." }}
{{- end }}
{{- if and .Values.nats.tls.clientCertificate (not .Values.nats.tls.secretName) }}
{{- fail "roomcast: nats.tls.clientCertificate needs nats.tls.secretName (a Secret with ca.crt, tls.crt and tls.key)." }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "roomcast: autoscaling.minReplicas is larger than autoscaling.maxReplicas." }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: preStop sleep + drain delay + drain timeout
+ margin (values.yaml, shutdown).
*/}}
{{- define "roomcast.terminationGracePeriodSeconds" -}}
{{- $s := .Values.shutdown }}
{{- add (int $s.preStopSleepSeconds) (int $s.drainDelaySeconds) (int $s.drainTimeoutSeconds) (int $s.marginSeconds) }}
{{- end }}
