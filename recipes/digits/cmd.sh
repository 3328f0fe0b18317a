# How recipe stages run their jobs. asrkit parallelises itself (--nj, --nproc, --ngpu), so by
# default every stage runs directly on this machine.
export train_cmd=""
export decode_cmd=""
# On a Slurm cluster, put each stage on a node of its own, e.g.:
# export train_cmd="srun --partition=gpu --gres=gpu:1 --cpus-per-task=8 --mem=32G --time=24:00:00"
# export decode_cmd="srun --partition=cpu --cpus-per-task=8 --mem=16G --time=2:00:00"
