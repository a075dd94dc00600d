#!/bin/bash
# Runs one experiment on one CPU core (core 1, niced), as the research did:
#   benchmarks/quality_experiments/rexp.sh EXPERIMENT SEEDS [run.py options]
# e.g. benchmarks/quality_experiments/rexp.sh seeds-pooled 0,1,2
cd "$(dirname "$0")/../.." || exit 1
export PYTHONPATH=$PWD KMLC_COREL5K=${KMLC_COREL5K:-$PWD/../shared/data/corel5k}
export TF_CPP_MIN_LOG_LEVEL=2 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1
exp=$1; seeds=$2; shift 2
taskset -c 1 nice -n 5 python -m benchmarks.quality_experiments.run \
    --experiment "$exp" --seeds "$seeds" "$@" 2>&1 |
    grep --line-buffered -v "^WARNING: All log\|^I0000\|^E0000\|cpu_feature_guard\|To enable the following"
