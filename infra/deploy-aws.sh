#!/usr/bin/env bash
# `make deploy-aws`: deploy the packaged template (`make package`) as one CloudFormation
# stack, with nothing but the AWS CLI and credentials. See docs/aws.md.
#   STACK          stack name (default shipyard)
#   DEPLOY_BUCKET  S3 bucket for the code and template (default shipyard-deploy-<account>-<region>,
#                  created private if missing)
#   PARAMS         more parameter overrides, e.g. "AlarmEmail=ops@example.com LogRetentionDays=90"
# A new stack gets a random CursorSecret (and BuildsConcurrency=0 if the account's Lambda
# concurrency limit leaves nothing to reserve); an update keeps every parameter not in PARAMS.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${STACK:-shipyard}
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region || true)}}
region=${region:-us-east-1}
account=$(aws sts get-caller-identity --query Account --output text)
bucket=${DEPLOY_BUCKET:-shipyard-deploy-$account-$region}
aws=(aws --region "$region")

if ! "${aws[@]}" s3api head-bucket --bucket "$bucket" 2>/dev/null; then
  if [ "$region" = us-east-1 ]; then
    "${aws[@]}" s3api create-bucket --bucket "$bucket" >/dev/null
  else
    "${aws[@]}" s3api create-bucket --bucket "$bucket" \
      --create-bucket-configuration "LocationConstraint=$region" >/dev/null
  fi
  "${aws[@]}" s3api put-public-access-block --bucket "$bucket" --public-access-block-configuration \
    BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
fi

"${aws[@]}" cloudformation package --template-file infra/build/out/sam.json \
  --s3-bucket "$bucket" --s3-prefix "$stack" --output-template-file infra/build/packaged.yaml
# Over 51,200 bytes, a template is validated from S3.
"${aws[@]}" s3 cp --quiet infra/build/packaged.yaml "s3://$bucket/$stack/packaged.yaml"
"${aws[@]}" cloudformation validate-template \
  --template-url "https://$bucket.s3.$region.amazonaws.com/$stack/packaged.yaml" >/dev/null
echo "validate-template: ok"

overrides=()
if ! "${aws[@]}" cloudformation describe-stacks --stack-name "$stack" >/dev/null 2>&1; then
  overrides+=("CursorSecret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')")
  # Lambda keeps 100 of an account's concurrency unreserved: a new account's limit (often
  # 10) leaves none to reserve for the builds consumer.
  limit=$("${aws[@]}" lambda get-account-settings \
    --query AccountLimit.ConcurrentExecutions --output text)
  if [[ "${PARAMS:-}" != *BuildsConcurrency=* ]] && [ "$limit" -lt 110 ]; then
    echo "Lambda concurrency limit $limit: no concurrency reserved for builds (BuildsConcurrency=0)"
    overrides+=("BuildsConcurrency=0")
  fi
fi
read -r -a extra <<<"${PARAMS:-}"
overrides+=("${extra[@]}")
"${aws[@]}" cloudformation deploy --template-file infra/build/packaged.yaml --stack-name "$stack" \
  --s3-bucket "$bucket" --s3-prefix "$stack" \
  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset \
  ${overrides[@]:+--parameter-overrides "${overrides[@]}"}
"${aws[@]}" cloudformation describe-stacks --stack-name "$stack" \
  --query "Stacks[0].Outputs[?OutputKey=='EndpointURL'].OutputValue" --output text
