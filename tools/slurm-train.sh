#!/bin/bash
# Train zoo checkpoints under a Slurm time limit: the job requeues itself until they are done.
#
#   sbatch tools/slurm-train.sh --paper --run dncnn-plain-s25 dncnn-wne-s25
#
# The arguments are `wne zoo`'s. Slurm sends SIGUSR1 to this script 120 s before the limit;
# it is passed on to `wne zoo --run`, which saves its state (weights, optimizer, random
# state, step) and exits with status 75; the requeued job resumes from runs/<key> and ends
# with the same checkpoints as one long run.
#SBATCH --job-name=wne-train
#SBATCH --time=04:00:00
#SBATCH --gres=gpu:1
#SBATCH --signal=B:USR1@120
#SBATCH --requeue
#SBATCH --open-mode=append
set -u
python -m wne zoo "$@" &
pid=$!
trap 'kill -USR1 "$pid"' USR1
wait "$pid"
status=$?
if ((status > 128)); then  # the trapped signal ended `wait`: wait for the saved state
    wait "$pid"
    status=$?
fi
if ((status == 75)) && [[ -n ${SLURM_JOB_ID:-} ]]; then scontrol requeue "$SLURM_JOB_ID"; fi
exit "$status"
