#!/usr/bin/env sh
# One night on Kubernetes: start the shard Job, wait for every index, then the commit Job.
#   deploy/kubernetes/run-night.sh 2026-11-14 8
set -eu
DATE=${1:?YYYY-MM-DD}
N=${2:-8}
NAME=pulso-$(echo "$DATE" | tr -d -)
HERE=$(dirname "$0")
sed -e "s/pulso-20261114/$NAME/g" -e "s/2026-11-14/$DATE/g" \
    -e "s/completions: 8/completions: $N/" -e "s/parallelism: 8/parallelism: $N/" \
    -e "/PULSO_SHARD_COUNT/{n;s/value: \"8\"/value: \"$N\"/}" "$HERE/job-shards.yaml" | kubectl apply -f -
kubectl wait --for=condition=complete --timeout=6h "job/$NAME"
sed -e "s/pulso-20261114/$NAME/g" -e "s/2026-11-14/$DATE/g" \
    -e "s/{name: PULSO_SHARD_COUNT, value: \"8\"}/{name: PULSO_SHARD_COUNT, value: \"$N\"}/" \
    "$HERE/job-commit.yaml" | kubectl apply -f -
kubectl wait --for=condition=complete --timeout=1h "job/$NAME-commit"
