# Where parallel jobs run: "local" (utils/run.pl) or "slurm" (utils/slurm.pl, settings in conf/slurm.conf).
# Override per run with --cmd, or for a shell with: export SPECENH_CMD=slurm
export SPECENH_CMD=${SPECENH_CMD:-local}
