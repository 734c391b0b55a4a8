#!/bin/sh
# Built by the demo's `clone` job from a fresh checkout.
set -e
echo "building $(basename "$PWD") at $(git rev-parse --short HEAD)"
ls
echo "build ok"
