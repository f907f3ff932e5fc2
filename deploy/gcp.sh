#!/usr/bin/env bash
# Deploy imggo-functions to Google Cloud Functions (gen2). See docs/deploy-gcp.md.
#
#   bash deploy/gcp.sh --project my-project --region europe-west1 [--dry-run]
#
# Creates (when missing) the Firestore database, its composite indexes and TTL policies,
# the work and reconcile Pub/Sub topics, the uploads bucket, a service account with the
# roles the functions need, then deploys the four functions and the Cloud Scheduler job
# that triggers reconcile. Read-only checks (do the secrets exist? what is there already?)
# always run; with --dry-run every change is printed instead of made.
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
  --schedule CRON         reconcile schedule (default: "*/5 * * * *")
  --runtime RUNTIME       Cloud Functions runtime (default: python312)
  --dry-run               check inputs, then print the plan without changing anything
  -h, --help              this text
EOF
}

die() { echo "error: $*" >&2; exit 2; }

PROJECT="" REGION="" NAME="imggo" PREFIX="imggo" BUCKET="" FIRESTORE_LOCATION=""
SERVICE_ACCOUNT="" SECRETS_MODE="env" RUNTIME="python312" SCHEDULE="*/5 * * * *"
API_KEY_SECRET="imggo-api-key" WEBHOOK_SECRET="imggo-webhook-secret"
API_KEYS_SECRET="imggo-fn-api-keys" IMGGO_BASE_URL="" DRY_RUN=0

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

WORK_TOPIC="$NAME-work"
RECONCILE_TOPIC="$NAME-reconcile"
SA_NAME="${SERVICE_ACCOUNT%%@*}"
G=(gcloud --project "$PROJECT" --quiet)

# Read-only calls run even in a dry run: the plan must reflect what is already there.
exists() { "${G[@]}" "$@" >/dev/null 2>&1; }

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
PROJECT_NUMBER="$("${G[@]}" projects describe "$PROJECT" --format='value(projectNumber)')" \
  || die "cannot read project $PROJECT (gcloud auth login? right project?)"
[[ "$PROJECT_NUMBER" =~ ^[0-9]+$ ]] || die "unexpected project number: $PROJECT_NUMBER"

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
if exists firestore databases describe --database='(default)'; then
  echo "  database (default) exists"
else
  gc firestore databases create --database='(default)' --location="$FIRESTORE_LOCATION" \
    --type=firestore-native
fi
JOBS="${PREFIX}_jobs"
# list_jobs: tenant, newest first; with a status filter; list_pending: oldest first.
gc firestore indexes composite create --collection-group="$JOBS" --query-scope=collection \
  --field-config=field-path=tenant,order=ascending \
  --field-config=field-path=created_at,order=descending \
  --field-config=field-path=id,order=descending --async
gc firestore indexes composite create --collection-group="$JOBS" --query-scope=collection \
  --field-config=field-path=tenant,order=ascending \
  --field-config=field-path=status,order=ascending \
  --field-config=field-path=created_at,order=descending \
  --field-config=field-path=id,order=descending --async
gc firestore indexes composite create --collection-group="$JOBS" --query-scope=collection \
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

step "Pub/Sub topics"
for topic in "$WORK_TOPIC" "$RECONCILE_TOPIC"; do
  if exists pubsub topics describe "$topic"; then
    echo "  topic $topic exists"
  else
    gc pubsub topics create "$topic"
  fi
done

step "Uploads bucket"
if exists storage buckets describe "gs://$BUCKET"; then
  echo "  bucket gs://$BUCKET exists"
else
  gc storage buckets create "gs://$BUCKET" --location="$REGION" --uniform-bucket-level-access
fi

step "Service account and roles"
if exists iam service-accounts describe "$SERVICE_ACCOUNT"; then
  echo "  $SERVICE_ACCOUNT exists"
else
  gc iam service-accounts create "$SA_NAME" --display-name="imggo-functions"
fi
MEMBER="serviceAccount:$SERVICE_ACCOUNT"
for role in roles/datastore.user roles/pubsub.publisher roles/eventarc.eventReceiver \
  roles/run.invoker; do
  gc projects add-iam-policy-binding "$PROJECT" --member="$MEMBER" --role="$role" \
    --condition=None
done
gc storage buckets add-iam-policy-binding "gs://$BUCKET" --member="$MEMBER" \
  --role=roles/storage.objectAdmin
# Signing V4 URLs without a key file: signBlob as itself.
gc iam service-accounts add-iam-policy-binding "$SERVICE_ACCOUNT" --member="$MEMBER" \
  --role=roles/iam.serviceAccountTokenCreator
for secret in "$API_KEY_SECRET" "$WEBHOOK_SECRET" "$API_KEYS_SECRET"; do
  gc secrets add-iam-policy-binding "$secret" --member="$MEMBER" \
    --role=roles/secretmanager.secretAccessor
done
# Cloud Storage triggers: the GCS service agent publishes the bucket's events.
gc projects add-iam-policy-binding "$PROJECT" \
  --member="serviceAccount:service-$PROJECT_NUMBER@gs-project-accounts.iam.gserviceaccount.com" \
  --role=roles/pubsub.publisher --condition=None

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
SOURCE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMMON=(--gen2 --runtime="$RUNTIME" --region="$REGION" --source="$SOURCE_DIR"
  --service-account="$SERVICE_ACCOUNT" --memory=512Mi --set-env-vars="$ENV_VARS"
  "${SECRET_FLAGS[@]}")

gc functions deploy "$NAME-api" "${COMMON[@]}" --entry-point=http_api --trigger-http \
  --allow-unauthenticated --timeout=60s --concurrency=16 --cpu=1
gc functions deploy "$NAME-work" "${COMMON[@]}" --entry-point=pubsub_work \
  --trigger-topic="$WORK_TOPIC" --trigger-service-account="$SERVICE_ACCOUNT" --retry \
  --timeout=120s
gc functions deploy "$NAME-uploads" "${COMMON[@]}" --entry-point=storage_finalized \
  --trigger-bucket="$BUCKET" --trigger-service-account="$SERVICE_ACCOUNT" --retry \
  --timeout=120s
gc functions deploy "$NAME-reconcile" "${COMMON[@]}" --entry-point=pubsub_reconcile \
  --trigger-topic="$RECONCILE_TOPIC" --trigger-service-account="$SERVICE_ACCOUNT" \
  --timeout=540s

step "Cloud Scheduler: reconcile ($SCHEDULE)"
if exists scheduler jobs describe "$NAME-reconcile" --location="$REGION"; then
  VERB=update
else
  VERB=create
fi
gc scheduler jobs "$VERB" pubsub "$NAME-reconcile" --location="$REGION" \
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
