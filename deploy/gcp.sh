#!/usr/bin/env bash
# Deploy imggo-functions to Google Cloud Functions (gen2). See docs/deploy-gcp.md.
#
#   bash deploy/gcp.sh --project my-project --region europe-west1 [--dry-run]
#
# Creates (when missing) the Firestore database, its composite indexes and TTL policies,
# the work, dead-letter and reconcile Pub/Sub topics, the uploads bucket, a runtime and a
# trigger service account with the roles they need (on the resources, not the project,
# wherever Google allows it), then deploys the four functions, bounds the work
# subscription's redelivery, and creates or updates the Cloud Scheduler job.
#
# Safe to run again: every create first looks, or takes ALREADY_EXISTS / 409 as "done";
# functions and the scheduler job are updated to what this script says. Read-only checks
# (gcloud logged in? do the secrets exist? what is there already?) always run; with
# --dry-run every change is printed instead of made.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bash deploy/gcp.sh --project PROJECT --region REGION [options]

  --project ID            Google Cloud project (required)
  --region REGION         functions, bucket, scheduler region, e.g. europe-west1 (required)
  --name NAME             resource name prefix (default: imggo)
  --prefix PREFIX         Firestore collection prefix: firestore://PREFIX (default: imggo)
  --bucket NAME           uploads bucket (default: PROJECT-imggo-uploads)
  --firestore-location L  location if the Firestore database must be created (default: REGION)
  --service-account EMAIL run the functions as this account (default: NAME-fn@PROJECT...)
  --secrets-mode MODE     env: inject secrets as env vars (--set-secrets, default)
                          ref: pass NAME_SECRET_REF; read from Secret Manager with a TTL cache
  --api-key-secret S      Secret Manager secret with the ImgGo API key (default: imggo-api-key)
  --webhook-secret S      secret with the ImgGo webhook secret (default: imggo-webhook-secret)
  --api-keys-secret S     secret with tenant=sha256 API-key hashes (default: imggo-fn-api-keys)
  --imggo-base-url URL    ImgGo API base URL (default: the core's default)
  --schedule CRON         reconcile schedule, every N minutes: "*/N * * * *" (default: */5)
  --runtime RUNTIME       Cloud Functions runtime (default: python312)
  --api-concurrency N     requests one API instance serves at once; its threads (default: 8)
  --api-max-instances N   at most N API instances (default: 20)
  --work-max-instances N  at most N work instances: keeps within ImgGo's rate (default: 5)
  --uploads-max-instances N  at most N upload-trigger instances (default: 5)
  --max-delivery-attempts N  work messages dead-lettered after N deliveries (default: 10)
  --dry-run               check inputs, then print the plan without changing anything
  -h, --help              this text
EOF
}

die() { echo "error: $*" >&2; exit 2; }

PROJECT="" REGION="" NAME="imggo" PREFIX="imggo" BUCKET="" FIRESTORE_LOCATION=""
SERVICE_ACCOUNT="" SECRETS_MODE="env" RUNTIME="python312" SCHEDULE="*/5 * * * *"
API_KEY_SECRET="imggo-api-key" WEBHOOK_SECRET="imggo-webhook-secret"
API_KEYS_SECRET="imggo-fn-api-keys" IMGGO_BASE_URL="" DRY_RUN=0
# The API's concurrency is also its gunicorn thread count (THREADS): functions-framework
# would otherwise run 4 threads per CPU whatever Cloud Run sends it. The tests read this
# default (tests/gcp/ffserver.py) so they run the deployed setting.
API_CONCURRENCY=8
API_MAX_INSTANCES=20 WORK_MAX_INSTANCES=5 UPLOADS_MAX_INSTANCES=5 MAX_DELIVERY_ATTEMPTS=10
# Reconcile: one instance, never two runs at once, and it ends before the next tick.
RECONCILE_TIMEOUT_S=240

while [[ $# -gt 0 ]]; do
  case "$1" in
    --project) PROJECT="${2:-}"; shift 2 ;;
    --region) REGION="${2:-}"; shift 2 ;;
    --name) NAME="${2:-}"; shift 2 ;;
    --prefix) PREFIX="${2:-}"; shift 2 ;;
    --bucket) BUCKET="${2:-}"; shift 2 ;;
    --firestore-location) FIRESTORE_LOCATION="${2:-}"; shift 2 ;;
    --service-account) SERVICE_ACCOUNT="${2:-}"; shift 2 ;;
    --secrets-mode) SECRETS_MODE="${2:-}"; shift 2 ;;
    --api-key-secret) API_KEY_SECRET="${2:-}"; shift 2 ;;
    --webhook-secret) WEBHOOK_SECRET="${2:-}"; shift 2 ;;
    --api-keys-secret) API_KEYS_SECRET="${2:-}"; shift 2 ;;
    --imggo-base-url) IMGGO_BASE_URL="${2:-}"; shift 2 ;;
    --schedule) SCHEDULE="${2:-}"; shift 2 ;;
    --runtime) RUNTIME="${2:-}"; shift 2 ;;
    --api-concurrency) API_CONCURRENCY="${2:-}"; shift 2 ;;
    --api-max-instances) API_MAX_INSTANCES="${2:-}"; shift 2 ;;
    --work-max-instances) WORK_MAX_INSTANCES="${2:-}"; shift 2 ;;
    --uploads-max-instances) UPLOADS_MAX_INSTANCES="${2:-}"; shift 2 ;;
    --max-delivery-attempts) MAX_DELIVERY_ATTEMPTS="${2:-}"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

# ------------------------------------------------------------------ inputs
command -v gcloud >/dev/null 2>&1 || die "gcloud is not on PATH (install the Google Cloud SDK)"
[[ -n "$PROJECT" ]] || die "--project is required"
[[ -n "$REGION" ]] || die "--region is required"
[[ "$PROJECT" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || die "invalid project id: $PROJECT"
[[ "$REGION" =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "invalid region: $REGION (e.g. europe-west1)"
[[ "$NAME" =~ ^[a-z][a-z0-9-]{0,20}$ ]] || die "invalid --name: $NAME"
[[ "$PREFIX" =~ ^[A-Za-z][A-Za-z0-9_-]{0,99}$ ]] || die "invalid Firestore --prefix: $PREFIX"
[[ "$SECRETS_MODE" == env || "$SECRETS_MODE" == ref ]] || die "--secrets-mode is env or ref"
[[ "$RUNTIME" =~ ^python3[0-9]+$ ]] || die "invalid --runtime: $RUNTIME"
BUCKET="${BUCKET:-$PROJECT-$NAME-uploads}"
[[ "$BUCKET" =~ ^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$ ]] || die "invalid bucket name: $BUCKET"
FIRESTORE_LOCATION="${FIRESTORE_LOCATION:-$REGION}"
SERVICE_ACCOUNT="${SERVICE_ACCOUNT:-$NAME-fn@$PROJECT.iam.gserviceaccount.com}"
[[ "$SERVICE_ACCOUNT" == *@*.iam.gserviceaccount.com ]] || die "invalid --service-account"
if [[ -n "$IMGGO_BASE_URL" && ! "$IMGGO_BASE_URL" =~ ^https?://[^[:space:],]+$ ]]; then
  die "invalid --imggo-base-url: $IMGGO_BASE_URL"
fi
for number in "$API_CONCURRENCY" "$API_MAX_INSTANCES" "$WORK_MAX_INSTANCES" \
  "$UPLOADS_MAX_INSTANCES" "$MAX_DELIVERY_ATTEMPTS"; do
  [[ "$number" =~ ^[1-9][0-9]{0,3}$ ]] || die "not a positive number: $number"
done
(( MAX_DELIVERY_ATTEMPTS >= 5 && MAX_DELIVERY_ATTEMPTS <= 100 )) \
  || die "--max-delivery-attempts must be 5..100 (Pub/Sub's bounds)"
[[ "$SCHEDULE" =~ ^\*/([0-9]+)\ \*\ \*\ \*\ \*$ ]] \
  || die "--schedule must be \"*/N * * * *\" (every N minutes), got: $SCHEDULE"
(( BASH_REMATCH[1] * 60 > RECONCILE_TIMEOUT_S )) \
  || die "--schedule every ${BASH_REMATCH[1]} min is shorter than reconcile's ${RECONCILE_TIMEOUT_S}s timeout"

WORK_TOPIC="$NAME-work"
DEAD_LETTER_TOPIC="$NAME-work-dead-letter"
RECONCILE_TOPIC="$NAME-reconcile"
SA_NAME="${SERVICE_ACCOUNT%%@*}"
# Eventarc invokes the event functions as this account; the functions run as the other.
TRIGGER_SA_NAME="$NAME-trigger"
TRIGGER_ACCOUNT="$TRIGGER_SA_NAME@$PROJECT.iam.gserviceaccount.com"
G=(gcloud --project "$PROJECT" --quiet)

# Read-only calls run even in a dry run: the plan must reflect what is already there.
exists() { "${G[@]}" "$@" >/dev/null 2>&1; }

# In the order a user meets them: gcloud logged in (and the project readable), then the
# secrets (reading them needs the login).
PROJECT_NUMBER="$("${G[@]}" projects describe "$PROJECT" --format='value(projectNumber)' 2>/dev/null)" \
  || die "cannot read project $PROJECT: run \`gcloud auth login\` (and check the project id)"
[[ "$PROJECT_NUMBER" =~ ^[0-9]+$ ]] || die "unexpected project number: $PROJECT_NUMBER"

missing=()
for secret in "$API_KEY_SECRET" "$WEBHOOK_SECRET" "$API_KEYS_SECRET"; do
  exists secrets describe "$secret" --format='value(name)' || missing+=("$secret")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  {
    echo "error: these Secret Manager secrets do not exist in project $PROJECT:"
    for secret in "${missing[@]}"; do
      echo "  $secret    create it: printf '%s' VALUE | gcloud secrets create $secret --project $PROJECT --data-file=-"
    done
    echo "see docs/deploy-gcp.md (Secrets)"
  } >&2
  exit 3
fi
# An existing database must be in native mode: Datastore mode cannot serve our queries.
DB_TYPE="$("${G[@]}" firestore databases describe --database='(default)' \
  --format='value(type)' 2>/dev/null || true)"
if [[ -n "$DB_TYPE" && "$DB_TYPE" != FIRESTORE_NATIVE ]]; then
  die "the (default) database of $PROJECT is $DB_TYPE; imggo-functions needs Firestore in native mode (see docs/deploy-gcp.md)"
fi

# ------------------------------------------------------------------ how changes are made
step() { echo; echo "== $*"; }
run() {
  if [[ $DRY_RUN -eq 1 ]]; then
    printf '  would run:'
    printf ' %q' "$@"
    printf '\n'
  else
    echo "  + $*"
    "$@"
  fi
}
gc() { run "${G[@]}" "$@"; }
# A create whose resource is already there has nothing to do: ALREADY_EXISTS (or HTTP
# 409) is success, any other failure stops the script.
gc_create() {
  if [[ $DRY_RUN -eq 1 ]]; then run "${G[@]}" "$@"; return; fi
  echo "  + ${G[*]} $*"
  local err
  if err="$("${G[@]}" "$@" 2>&1 >/dev/null)"; then return 0; fi
  if [[ "$err" == *ALREADY_EXISTS* || "$err" == *"already exists"* || "$err" == *409* ]]; then
    echo "    already there"
    return 0
  fi
  echo "$err" >&2
  return 1
}

if [[ $DRY_RUN -eq 1 ]]; then
  echo "DRY RUN: nothing will be changed in project $PROJECT ($PROJECT_NUMBER), region $REGION"
else
  echo "deploying to project $PROJECT ($PROJECT_NUMBER), region $REGION"
fi
echo "secrets found: $API_KEY_SECRET, $WEBHOOK_SECRET, $API_KEYS_SECRET (mode: $SECRETS_MODE)"

step "APIs"
gc services enable cloudfunctions.googleapis.com run.googleapis.com \
  cloudbuild.googleapis.com artifactregistry.googleapis.com eventarc.googleapis.com \
  pubsub.googleapis.com firestore.googleapis.com secretmanager.googleapis.com \
  cloudscheduler.googleapis.com storage.googleapis.com iamcredentials.googleapis.com

step "Firestore (native mode), indexes and TTL policies (firestore.indexes.json)"
if [[ -n "$DB_TYPE" ]]; then
  echo "  database (default) exists ($DB_TYPE)"
else
  gc_create firestore databases create --database='(default)' --location="$FIRESTORE_LOCATION" \
    --type=firestore-native
fi
JOBS="${PREFIX}_jobs"
# list_jobs: tenant, newest first; with a status filter; list_pending: oldest first.
gc_create firestore indexes composite create --collection-group="$JOBS" --query-scope=collection \
  --field-config=field-path=tenant,order=ascending \
  --field-config=field-path=created_at,order=descending \
  --field-config=field-path=id,order=descending --async
gc_create firestore indexes composite create --collection-group="$JOBS" --query-scope=collection \
  --field-config=field-path=tenant,order=ascending \
  --field-config=field-path=status,order=ascending \
  --field-config=field-path=created_at,order=descending \
  --field-config=field-path=id,order=descending --async
gc_create firestore indexes composite create --collection-group="$JOBS" --query-scope=collection \
  --field-config=field-path=pending,order=ascending \
  --field-config=field-path=updated_at,order=ascending \
  --field-config=field-path=id,order=ascending --async
# Field overrides: the JSON document (large, never queried) and the TTL timestamps (a
# monotonically rising value would make a hot index) get no single-field indexes; this
# waits for each, because a TTL policy cannot change while its field's indexes do.
for group_field in "${PREFIX}_jobs doc" "${PREFIX}_batches doc" "${PREFIX}_jobs expires_at" \
  "${PREFIX}_keys expires_at" "${PREFIX}_batches expires_at"; do
  read -r group field <<<"$group_field"
  gc firestore indexes fields update "$field" --collection-group="$group" --disable-indexes
done
for group in "${PREFIX}_jobs" "${PREFIX}_keys" "${PREFIX}_batches"; do
  gc firestore fields ttls update expires_at --collection-group="$group" --enable-ttl --async
done

step "Pub/Sub topics (work, its dead letters, reconcile)"
for topic in "$WORK_TOPIC" "$DEAD_LETTER_TOPIC" "$RECONCILE_TOPIC"; do
  if exists pubsub topics describe "$topic"; then
    echo "  topic $topic exists"
  else
    gc_create pubsub topics create "$topic"
  fi
done

step "Uploads bucket"
if exists storage buckets describe "gs://$BUCKET"; then
  echo "  bucket gs://$BUCKET exists"
else
  gc_create storage buckets create "gs://$BUCKET" --location="$REGION" --uniform-bucket-level-access
fi

step "Service accounts and roles"
for account in "$SERVICE_ACCOUNT:$SA_NAME:imggo-functions" \
  "$TRIGGER_ACCOUNT:$TRIGGER_SA_NAME:imggo-functions triggers"; do
  IFS=: read -r email name display <<<"$account"
  if exists iam service-accounts describe "$email"; then
    echo "  $email exists"
  else
    gc_create iam service-accounts create "$name" --display-name="$display"
  fi
done
MEMBER="serviceAccount:$SERVICE_ACCOUNT"
TRIGGER_MEMBER="serviceAccount:$TRIGGER_ACCOUNT"
# Firestore has no narrower grant than the project's databases.
gc projects add-iam-policy-binding "$PROJECT" --member="$MEMBER" --role=roles/datastore.user \
  --condition=None
# Batch items are published to the work topic only.
gc pubsub topics add-iam-policy-binding "$WORK_TOPIC" --member="$MEMBER" \
  --role=roles/pubsub.publisher
# Eventarc requires its event receiver role on the project (there is no trigger-level
# grant); run.invoker is granted on each event function after its deploy, below.
gc projects add-iam-policy-binding "$PROJECT" --member="$TRIGGER_MEMBER" \
  --role=roles/eventarc.eventReceiver --condition=None
gc storage buckets add-iam-policy-binding "gs://$BUCKET" --member="$MEMBER" \
  --role=roles/storage.objectAdmin
# Signing V4 URLs without a key file: signBlob as itself.
gc iam service-accounts add-iam-policy-binding "$SERVICE_ACCOUNT" --member="$MEMBER" \
  --role=roles/iam.serviceAccountTokenCreator
for secret in "$API_KEY_SECRET" "$WEBHOOK_SECRET" "$API_KEYS_SECRET"; do
  gc secrets add-iam-policy-binding "$secret" --member="$MEMBER" \
    --role=roles/secretmanager.secretAccessor
done
# Cloud Storage triggers: the GCS service agent publishes the bucket's events to a topic
# Eventarc creates (and names) itself, so this grant can only be on the project.
gc projects add-iam-policy-binding "$PROJECT" \
  --member="serviceAccount:service-$PROJECT_NUMBER@gs-project-accounts.iam.gserviceaccount.com" \
  --role=roles/pubsub.publisher --condition=None
# Dead-lettering: the Pub/Sub service agent publishes to the dead-letter topic and acks the
# original on the work subscription (granted on the subscription once it exists, below).
PUBSUB_AGENT="serviceAccount:service-$PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
gc pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" --member="$PUBSUB_AGENT" \
  --role=roles/pubsub.publisher

step "Functions (gen2, $RUNTIME)"
ENV_VARS="GOOGLE_CLOUD_PROJECT=$PROJECT,IMGGO_FN_STORE_URL=firestore://$PREFIX"
ENV_VARS+=",IMGGO_FN_BLOB_URL=gs://$BUCKET,IMGGO_FN_QUEUE_URL=pubsub://projects/$PROJECT/topics/$WORK_TOPIC"
ENV_VARS+=",IMGGO_FN_GCS_SIGNER_EMAIL=$SERVICE_ACCOUNT,IMGGO_FN_DATA_DIR=/tmp/imggo-fn"
[[ -z "$IMGGO_BASE_URL" ]] || ENV_VARS+=",IMGGO_BASE_URL=$IMGGO_BASE_URL"
SECRET_FLAGS=()
if [[ "$SECRETS_MODE" == env ]]; then
  SECRET_FLAGS=(--set-secrets="IMGGO_API_KEY=$API_KEY_SECRET:latest,IMGGO_WEBHOOK_SECRET=$WEBHOOK_SECRET:latest,IMGGO_FN_API_KEYS=$API_KEYS_SECRET:latest")
else
  ENV_VARS+=",IMGGO_API_KEY_SECRET_REF=$API_KEY_SECRET"
  ENV_VARS+=",IMGGO_WEBHOOK_SECRET_SECRET_REF=$WEBHOOK_SECRET"
  ENV_VARS+=",IMGGO_FN_API_KEYS_SECRET_REF=$API_KEYS_SECRET"
fi
# functions-framework reads THREADS; only the API serves more than one request at once.
API_ENV_VARS="$ENV_VARS,THREADS=$API_CONCURRENCY"
# The worker acknowledges a deferred message on the delivery Pub/Sub would dead-letter
# (sent again instead): it needs the subscription's bound.
WORK_ENV_VARS="$ENV_VARS,IMGGO_FN_MAX_DELIVERY_ATTEMPTS=$MAX_DELIVERY_ATTEMPTS"
SOURCE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMMON=(--gen2 --runtime="$RUNTIME" --region="$REGION" --source="$SOURCE_DIR"
  --service-account="$SERVICE_ACCOUNT" --memory=512Mi "${SECRET_FLAGS[@]}")
EVENTS=(--trigger-service-account="$TRIGGER_ACCOUNT")

gc functions deploy "$NAME-api" "${COMMON[@]}" --set-env-vars="$API_ENV_VARS" \
  --entry-point=http_api --trigger-http --allow-unauthenticated --timeout=60s \
  --concurrency="$API_CONCURRENCY" --cpu=1 --max-instances="$API_MAX_INSTANCES"
gc functions deploy "$NAME-work" "${COMMON[@]}" --set-env-vars="$WORK_ENV_VARS" "${EVENTS[@]}" \
  --entry-point=pubsub_work --trigger-topic="$WORK_TOPIC" --retry --timeout=120s \
  --max-instances="$WORK_MAX_INSTANCES"
gc functions deploy "$NAME-uploads" "${COMMON[@]}" --set-env-vars="$ENV_VARS" "${EVENTS[@]}" \
  --entry-point=storage_finalized --trigger-bucket="$BUCKET" --retry --timeout=120s \
  --max-instances="$UPLOADS_MAX_INSTANCES"
gc functions deploy "$NAME-reconcile" "${COMMON[@]}" --set-env-vars="$ENV_VARS" "${EVENTS[@]}" \
  --entry-point=pubsub_reconcile --trigger-topic="$RECONCILE_TOPIC" \
  --timeout="${RECONCILE_TIMEOUT_S}s" --max-instances=1
for fn in "$NAME-work" "$NAME-uploads" "$NAME-reconcile"; do
  gc functions add-invoker-policy-binding "$fn" --region="$REGION" --member="$TRIGGER_MEMBER"
done

step "Work subscription: bounded redelivery, dead letters"
# Eventarc made (and named) the subscription of the work trigger; bound it after each
# deploy, as a redeploy may recreate it.
if [[ $DRY_RUN -eq 1 ]]; then
  WORK_SUBSCRIPTION="<the subscription of $NAME-work's trigger>"
else
  TRIGGER="$("${G[@]}" functions describe "$NAME-work" --gen2 --region="$REGION" \
    --format='value(eventTrigger.trigger)')"
  WORK_SUBSCRIPTION="$("${G[@]}" eventarc triggers describe "${TRIGGER##*/}" \
    --location="$REGION" --format='value(transport.pubsub.subscription)')"
  [[ -n "$WORK_SUBSCRIPTION" ]] || die "no subscription found for the trigger of $NAME-work"
fi
gc pubsub subscriptions update "$WORK_SUBSCRIPTION" \
  --dead-letter-topic="$DEAD_LETTER_TOPIC" --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS" \
  --min-retry-delay=10s --max-retry-delay=600s
gc pubsub subscriptions add-iam-policy-binding "$WORK_SUBSCRIPTION" --member="$PUBSUB_AGENT" \
  --role=roles/pubsub.subscriber

step "Cloud Scheduler: reconcile ($SCHEDULE)"
if exists scheduler jobs describe "$NAME-reconcile" --location="$REGION"; then
  VERB=update
else
  VERB=create
fi
# A create racing another run may still meet ALREADY_EXISTS: gc_create takes it as done.
gc_create scheduler jobs "$VERB" pubsub "$NAME-reconcile" --location="$REGION" \
  --schedule="$SCHEDULE" --topic="$RECONCILE_TOPIC" \
  --message-body='{"source":"cloud-scheduler"}' --time-zone=Etc/UTC

step "Next: register the webhook at ImgGo"
if [[ $DRY_RUN -eq 1 ]]; then
  URL="<the URL of $NAME-api>"
else
  URL="$("${G[@]}" functions describe "$NAME-api" --gen2 --region="$REGION" \
    --format='value(serviceConfig.uri)')"
fi
cat <<EOF
  API: $URL   (health: $URL/health)
  Register $URL/v1/webhooks/imggo for job.succeeded and job.failed, signed with the
  value of the $WEBHOOK_SECRET secret (docs/deploy-gcp.md, "Register the webhook").
EOF
