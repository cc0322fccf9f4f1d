{{/*
Names and labels, in the shape `helm create` uses so that tools and people find them.
*/}}
{{- define "snapworker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "snapworker.fullname" -}}
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

{{- define "snapworker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "snapworker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "snapworker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "snapworker.labels" -}}
helm.sh/chart: {{ include "snapworker.chart" . }}
{{ include "snapworker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: worker
app.kubernetes.io/part-of: snapworker
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "snapworker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "snapworker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "snapworker.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the kubelet kills the container this long after SIGTERM, so it must
outlast the worker's own shutdown grace (during which running jobs finish) or jobs die mid-transfer.
Derived as grace + margin; an explicit value not above the grace is refused.
*/}}
{{- define "snapworker.terminationGracePeriodSeconds" -}}
{{- $grace := int .Values.worker.shutdownGraceSeconds }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $grace (int .Values.terminationGraceMarginSeconds) }}
{{- else }}
{{- $explicit := int .Values.terminationGracePeriodSeconds }}
{{- if le $explicit $grace }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than worker.shutdownGraceSeconds (%d): the kubelet would kill workers while their jobs are still finishing; raise it or leave it empty to derive it" $explicit $grace) }}
{{- end }}
{{- $explicit }}
{{- end }}
{{- end }}

{{/*
BullMQ's key namespace for the queue, "<prefix>:<queue>". A hash-tag prefix such as "{snapworker}"
stays as it is, which is what puts every key of the queue in one Redis Cluster slot.
*/}}
{{- define "snapworker.queueKeyBase" -}}
{{- printf "%s:%s" .Values.worker.prefix .Values.worker.queue }}
{{- end }}

{{/* Jobs one replica should carry: autoscaling.keda.jobsPerReplica, default worker.concurrency. */}}
{{- define "snapworker.jobsPerReplica" -}}
{{- if kindIs "invalid" .Values.autoscaling.keda.jobsPerReplica }}
{{- int .Values.worker.concurrency }}
{{- else }}
{{- int .Values.autoscaling.keda.jobsPerReplica }}
{{- end }}
{{- end }}

{{/* The Secret with the Redis connection: redis.existingSecret, default "<fullname>-redis". */}}
{{- define "snapworker.redisSecret" -}}
{{- default (printf "%s-redis" (include "snapworker.fullname" .)) .Values.redis.existingSecret }}
{{- end }}

{{/*
Refuses values that would put a credential into a ConfigMap or a plain env value.
*/}}
{{- define "snapworker.rejectInlineSecrets" -}}
{{- range $name, $value := .Values.worker.extraEnv }}
{{- if regexMatch "(?i)(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|_KEY$|_KEY_|^KEY$|_URL$)" $name }}
{{- fail (printf "worker.extraEnv.%s looks like a secret: put it in a Secret and reference it with worker.extraEnvFrom (secretRef)" $name) }}
{{- end }}
{{- end }}
{{- if regexMatch "://[^/@]*@" .Values.worker.natsUrl }}
{{- fail "worker.natsUrl carries credentials: put the URL in a Secret and set nats.existingSecret" }}
{{- end }}
{{- range $name, $uri := .Values.worker.repositories }}
{{- if regexMatch "://[^/@]*@" $uri }}
{{- fail (printf "worker.repositories.%s carries credentials in its URI: S3 credentials come from the AWS SDK chain (serviceAccount annotations or s3.existingSecret)" $name) }}
{{- end }}
{{- if regexMatch "(?i)[?&](secret|password|token|accesskey|access_key|credentials)" $uri }}
{{- fail (printf "worker.repositories.%s carries a credential parameter: S3 credentials come from the AWS SDK chain (serviceAccount annotations or s3.existingSecret)" $name) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The worker refuses to start unless SNAPWORKER_DEFAULT_REPOSITORY names one of
SNAPWORKER_REPOSITORIES (shared/config.ts), and jobs can only name repositories configured there.
Failing here names the value to set instead of rendering pods that crash-loop. The name rule
itself lives in values.schema.json (the same pattern as the worker's; test/helm.test.ts checks
that they agree).
*/}}
{{- define "snapworker.requireRepositories" -}}
{{- $repositories := .Values.worker.repositories | default dict }}
{{- if not $repositories }}
{{- fail "worker.repositories is empty: set at least one repository, e.g. --set worker.repositories.default=s3://BUCKET/PREFIX?region=REGION (or file:///PATH on a volume); workers refuse to start without one" }}
{{- end }}
{{- if not (hasKey $repositories .Values.worker.defaultRepository) }}
{{- fail (printf "worker.defaultRepository %q is not one of worker.repositories (%s): set worker.defaultRepository to one of them or add it" .Values.worker.defaultRepository (keys $repositories | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}

{{/*
On a Redis Cluster the workers refuse a prefix without a hash tag (jobs/redis-connection.ts,
clusterPrefixProblem): failing here says so before pods crash-loop. The chart knows the queue is
on a cluster when KEDA's redis-cluster scaler is chosen; the URL itself is in a Secret.
*/}}
{{- define "snapworker.requireClusterHashTag" -}}
{{- if and .Values.autoscaling.keda.enabled .Values.autoscaling.keda.redis.cluster (not (regexMatch "\\{[^}]+\\}" .Values.worker.prefix)) }}
{{- fail (printf "worker.prefix %q has no hash tag: on a Redis Cluster (autoscaling.keda.redis.cluster) set it to one such as \"{snapworker}\", so that all of the queue's keys live in one slot (BullMQ's scripts touch several keys at once; a cluster refuses that across slots)" .Values.worker.prefix) }}
{{- end }}
{{- end }}

{{/*
KEDA's scaler for the Redis the queue lives on: "redis-cluster" (autoscaling.keda.redis.cluster),
"redis-sentinel" (autoscaling.keda.redis.sentinelMaster set) or "redis". The two are exclusive: a
master behind Sentinels is one server, not a cluster, and naming both fails the render.
*/}}
{{- define "snapworker.kedaRedisScaler" -}}
{{- $redis := .Values.autoscaling.keda.redis }}
{{- if and $redis.cluster $redis.sentinelMaster }}
{{- fail (printf "autoscaling.keda.redis.cluster and autoscaling.keda.redis.sentinelMaster (%q) are both set: a Redis Cluster has no Sentinels; keep the one your workers' REDIS_URL names (redis+cluster:// or redis+sentinel://)" $redis.sentinelMaster) }}
{{- end }}
{{- if $redis.cluster }}redis-cluster{{ else if $redis.sentinelMaster }}redis-sentinel{{ else }}redis{{ end }}
{{- end }}

{{/* An IntOrString value: numbers as integers (YAML numbers arrive as floats), strings quoted. */}}
{{- define "snapworker.intOrString" -}}
{{- if kindIs "string" . }}{{ quote . }}{{ else }}{{ int . }}{{ end }}
{{- end }}

{{/*
Credentials profiles by kind: SNAPWORKER_<KIND>_PROFILES from the Secret profiles.<kind>.existingSecret
(key profiles.<kind>.key, default "profiles"), kinds in name order. nats.profilesSecret and
nats.profilesKey, the spelling from before other kinds had profiles, still give the NATS one.
An empty existingSecret renders nothing, so a kind can be switched off with --set.
*/}}
{{- define "snapworker.profilesEnv" -}}
{{- $profiles := dict }}
{{- range $kind, $profile := .Values.profiles }}
{{- if $profile.existingSecret }}
{{- $_ := set $profiles $kind $profile }}
{{- end }}
{{- end }}
{{- with .Values.nats.profilesSecret }}
{{- if hasKey $profiles "nats" }}
{{- fail "the NATS profiles Secret is given twice: set profiles.nats or nats.profilesSecret, not both" }}
{{- end }}
{{- $_ := set $profiles "nats" (dict "existingSecret" . "key" $.Values.nats.profilesKey) }}
{{- end }}
{{- range $kind := keys $profiles | sortAlpha }}
{{- $profile := get $profiles $kind }}
- name: SNAPWORKER_{{ upper $kind }}_PROFILES
  valueFrom:
    secretKeyRef:
      name: {{ $profile.existingSecret }}
      key: {{ default "profiles" $profile.key }}
{{- end }}
{{- end }}

{{/*
Encrypted repositories' key sources (values.encryption.repositories): each secretRef becomes a
Secret volume mounted read-only under /etc/snapworker/keys/, each kmsKeyId a kms: source. Yields
{"secrets": [{volume, secret, key, dir}]} as JSON (a dict: fromJson takes no bare list), and the
SNAPWORKER_REPOSITORY_KEYS JSON.
*/}}
{{- define "snapworker.keySecrets" -}}
{{- $secrets := list }}
{{- range $repo, $sources := .Values.encryption.repositories }}
{{- range $i, $source := $sources }}
{{- with $source.secretRef }}
{{- $id := printf "%s-%d" $repo $i | sha256sum | trunc 10 }}
{{- $secrets = append $secrets (dict "volume" (printf "key-%s" $id) "secret" .name "key" .key "dir" (printf "/etc/snapworker/keys/%s" $id)) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson (dict "secrets" $secrets) }}
{{- end }}

{{- define "snapworker.repositoryKeys" -}}
{{- $out := dict }}
{{- range $repo, $sources := .Values.encryption.repositories }}
{{- if not (hasKey $.Values.worker.repositories $repo) }}
{{- fail (printf "encryption.repositories.%s is not one of worker.repositories" $repo) }}
{{- end }}
{{- $specs := list }}
{{- range $i, $source := $sources }}
{{- if and $source.secretRef $source.kmsKeyId }}
{{- fail (printf "encryption.repositories.%s[%d]: give secretRef or kmsKeyId, not both" $repo $i) }}
{{- else if $source.secretRef }}
{{- $id := printf "%s-%d" $repo $i | sha256sum | trunc 10 }}
{{- $specs = append $specs (printf "file:/etc/snapworker/keys/%s/%s" $id $source.secretRef.key) }}
{{- else if $source.kmsKeyId }}
{{- $specs = append $specs (printf "kms:%s" $source.kmsKeyId) }}
{{- else }}
{{- fail (printf "encryption.repositories.%s[%d]: give secretRef { name, key } or kmsKeyId" $repo $i) }}
{{- end }}
{{- end }}
{{- if not $specs }}
{{- fail (printf "encryption.repositories.%s: list at least one key source" $repo) }}
{{- end }}
{{- $_ := set $out $repo $specs }}
{{- end }}
{{- toJson $out }}
{{- end }}
