#!/usr/bin/env bash
# One study on many GPUs: every task of a Slurm array is one `ablate run` worker on the
# shared servers. From the repository, with its .venv activated:
#
#   export ABLATE_STORAGE=postgresql+psycopg://ablate:PASSWORD@DB_HOST/optuna
#   export ABLATE_TRACKING_URI=http://DB_HOST:5000
#   sbatch --array=0-7 studies/slurm/run_array.sh studies/depth_decay.yaml
#
# A trial on the N GPUs of a node (the `nproc` setting; further arguments go to `ablate run`):
#
#   sbatch --array=0-3 --gres=gpu:8 --cpus-per-task=32 studies/slurm/run_array.sh STUDY.yaml --set nproc=8
#
# sbatch passes the environment on. A task that dies leaves its trial to the others
# (they take it over once its heartbeat is 2 minutes old); submit again to add workers.
#SBATCH --job-name=ablate
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=4
#SBATCH --time=24:00:00
#SBATCH --output=ablate-%A_%a.out
set -euo pipefail
study=${1:?usage: sbatch --array=0-N studies/slurm/run_array.sh STUDY.yaml [ablate run options]}
: "${ABLATE_STORAGE:?export ABLATE_STORAGE=postgresql+psycopg://USER:PASSWORD@HOST/DATABASE before sbatch}"
: "${ABLATE_TRACKING_URI:?export ABLATE_TRACKING_URI=http://HOST:5000 before sbatch}"
exec ablate run "$study" --quiet "${@:2}"
