#!/usr/bin/env bash
# asrkit on Wall Street Journal (LDC93S6B WSJ0 + LDC94S13B WSJ1): train on train_si284, tune on
# test_dev93, report test_eval92. Two families of systems:
#
#   (a) end to end: BPE tokens, Conformer-CTC and BLSTM-CTC, greedy and prefix-beam decoding of an
#       average of the last checkpoints, scored by `asrkit score` (the <NOISE> word filtered out).
#   (b) hybrid, for users who have a Kaldi GMM system (egs/wsj/s5 up to tri4b): a BLSTM trained with
#       frame cross-entropy on the GMM's pdf-id alignments is the teacher; its posteriors train a
#       small DNN (KL to the soft targets, mixed with CE), compared with the same DNN on the hard
#       alignments ("Transferring knowledge from a RNN to a DNN", Chan et al. 2015). Decoding uses
#       Kaldi: asrkit writes log-likelihoods, latgen-faster-mapped searches your HCLG, and
#       steps/score_kaldi.sh scores the lattices.
#
#   (c) word LMs for (a), as Kaldi decodes WSJ: the NIST 20k trigram pruned (tgpr) and the
#       trigram of the WSJ LM training text with the extended dictionary (bd_tgpr), each with a
#       lexicon spelling its words in the BPE tokens; CTC lexicon beam search with shallow fusion
#       (asrkit decode --lm), scored over LM weights (asrkit score's wer_<W>_<P>, best_wer).
#
#   ./run.sh --wsj0 /corpora/LDC93S6B --wsj1 /corpora/LDC94S13B              # (a) [+ (c) tgpr with IRSTLM]
#   ./run.sh --wsj0 ... --wsj1 ... --ali-dir ~/kaldi/egs/wsj/s5/exp/tri4b_ali_si284 \
#            --graph-dir ~/kaldi/egs/wsj/s5/exp/tri4b/graph_bd_tgpr          # (a) and (b)
#   ./run.sh ... --dict ~/kaldi/egs/wsj/s5/data/local/dict_nosp/lexicon.txt \
#            --bd-lm ~/kaldi/egs/wsj/s5/data/local/local_lm/3gram-mincount/lm_pr6.0.gz   # (c) as Kaldi's
#
# Stages (each one or a few `asrkit` commands; any stage re-runs alone from its files on disk):
#   0  data dirs: train_si284, test_dev93, test_eval92 (+ si84, 5k and eval93 sets) from the LDC disks
#   1  3-way speed perturbation of train_si284 (only with --speed-perturb true)
#   2  80-dim fbank (conf/fbank.conf, Kaldi's 10 ms frames) + per-speaker CMVN
#   3  BPE tokens (--bpe-size, default 200)
#   4  Conformer-CTC (conf/conformer_ctc.yaml)      5  BLSTM-CTC (conf/blstm_ctc.yaml)
#   6  average the last --avg checkpoints; greedy and beam decoding of test_dev93/test_eval92; score
#   --- hybrid (needs --ali-dir; stages 7, 9 and 10 need Kaldi: $KALDI_ROOT, or its binaries on PATH) ---
#   7  10% of the training speakers held out for validation; BLSTM teacher with objective ce on the
#      pdf-ids of --ali-dir (converted on the fly with Kaldi's ali-to-pdf)
#   8  the teacher's per-frame posteriors for the training and held-out sets (asrkit dump-posteriors)
#   9  small DNN student (kl to the posteriors + 0.2 ce), and the same DNN on the hard targets (ce)
#  10  log-likelihoods (posteriors / priors counted from the alignments) -> latgen-faster-mapped with
#      --graph-dir -> steps/score_kaldi.sh, for the teacher and both DNNs (local/decode_kaldi.sh)
#   --- word LMs (c) ---
#  11  LM dirs data/lang_bpe<N>_tgpr_lm and _bd_tgpr_lm (asrkit make-lm --arpa ... --words ...). tgpr:
#      --nist-lm DIR/lm_tgpr.arpa.gz (Kaldi's data/local/nist_lm), else made from the corpus as
#      Kaldi's wsj_data_prep.sh does (local/wsj_nist_lm.sh: disk 13-32.1's tcb20onp.z, pruned with
#      IRSTLM's prune-lm 1e-7); its lexicon keeps the words of --dict (a CMU dict or Kaldi lexicon),
#      as wsj_format_data.sh's G keeps only lexicon words. bd_tgpr: --bd-lm FILE (Kaldi's
#      wsj_train_lms.sh output, whose vocabulary is its extended dictionary's), skipped without it.
#      A full run without an LM source skips the LM stages (asking for stage 11 itself is an error).
#  12  decode test_dev93 / test_eval92 with each LM (--lm, --lm-beam, --nbest), score over LM weights
#  13  results table of every decode dir (asrkit results), also in exp/RESULTS.md
#
# Hybrid features must have the alignments' frame rate: the fbank here uses Kaldi's 25 ms / 10 ms
# frames with snip-edges, as Kaldi's MFCCs do, and the hybrid models never subsample.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. ./utils/recipe_functions.sh

stage=0
stop_stage=13
nj=8                 # parallel jobs for data prep, features, posteriors, decoding and lattice generation
device=auto          # auto|cpu|cuda: training, posteriors and decoding
ngpu=1               # >1: data-parallel training over this many GPUs (asrkit train --ngpu)
wsj0=                # folder holding the WSJ0 disks (11-1.1/, 11-13.1/, ...)
wsj1=                # folder holding the WSJ1 disks (13-34.1/, 13-16.1/, ...)
sph2pipe=sph2pipe    # for the shorten-compressed .wv1 files
speed_perturb=false  # true: train the end-to-end models on 0.9/1.0/1.1 speed copies
bpe_size=200
avg=5                # checkpoints averaged for decoding (at most training.keep_last of the configs)
beam=8
ali_dir=             # Kaldi alignment dir of train_si284 (final.mdl, tree, ali.*.gz), e.g. exp/tri4b_ali_si284
graph_dir=           # Kaldi decoding graph (HCLG.fst, words.txt) of the same tree, e.g. exp/tri4b/graph_bd_tgpr
kaldi_egs=           # Kaldi egs dir with steps/ and utils/ for scoring [default: $KALDI_ROOT/egs/wsj/s5]
nist_lm=             # folder with lm_tgpr.arpa.gz (Kaldi's data/local/nist_lm) [default: made from --wsj1 into data/local/nist_lm]
bd_lm=               # the bd_tgpr ARPA (Kaldi's data/local/local_lm/3gram-mincount/lm_pr6.0.gz); none: no bd_tgpr
dict=                # CMU dict / Kaldi lexicon.txt: tgpr's lexicon keeps only its words (none: every LM word)
lm_weight=0.5        # decoding LM weight (stage 12); the scoring sweep tries others on the n-best lists
lm_beam=50           # hypotheses per frame of the LM search
nbest=10             # hypotheses per utterance kept for the LM-weight sweep
help_message="Usage: $0 [options]
  --stage N --stop-stage N   run stages N..M (default 0..13; see the top of this script)
  --wsj0 DIR --wsj1 DIR      folders holding the LDC WSJ0 / WSJ1 disks (stage 0)
  --nj N                     parallel jobs (default 8)
  --device auto|cpu|cuda     (default auto)       --ngpu N   GPUs for training (default 1)
  --speed-perturb true|false (default false)      --bpe-size N (default 200)
  --avg N                    checkpoints to average for decoding (default 5)
  --ali-dir DIR              Kaldi exp/tri4b_ali_si284: enables the hybrid stages 7-10
  --graph-dir DIR            Kaldi graph (HCLG.fst, words.txt) for stage 10, e.g. exp/tri4b/graph_bd_tgpr
  --kaldi-egs DIR            where steps/score_kaldi.sh is (default \$KALDI_ROOT/egs/wsj/s5)
  --nist-lm DIR              folder with lm_tgpr.arpa.gz (default: made from --wsj1 into data/local/nist_lm)
  --bd-lm FILE               bd_tgpr ARPA, e.g. Kaldi's data/local/local_lm/3gram-mincount/lm_pr6.0.gz
  --dict FILE                CMU dict or Kaldi lexicon.txt whose words tgpr's lexicon keeps
  --lm-weight W --lm-beam N --nbest N   LM decoding (stage 12; default 0.5, 50, 10)"
. ./utils/parse_options.sh
[ $# -eq 0 ] || { echo "$0: unexpected argument '$1' (see --help)" >&2; exit 1; }

wsj0=$(abspath "$wsj0"); wsj1=$(abspath "$wsj1"); ali_dir=$(abspath "$ali_dir")
graph_dir=$(abspath "$graph_dir"); kaldi_egs=$(abspath "$kaldi_egs")
nist_lm=$(abspath "$nist_lm"); bd_lm=$(abspath "$bd_lm"); dict=$(abspath "$dict")

# On a GPU one decoding/posterior job uses it whole; on CPU, --nj processes share the cores.
[ "$device" = cuda ] && job_nj=1 || job_nj=$nj
train_set=train_si284
e2e_train=$train_set
[ "$speed_perturb" = true ] && e2e_train=${train_set}_sp
test_sets="test_dev93 test_eval92"
lang=data/lang_bpe$bpe_size

if stage_on 0; then
  log "stage 0: WSJ data dirs"
  [ -n "$wsj0" ] && [ -n "$wsj1" ] || die "stage 0 needs --wsj0 DIR and --wsj1 DIR (the folders holding the LDC disks)"
  asrkit prepare wsj --wsj0 "$wsj0" --wsj1 "$wsj1" --sph2pipe "$sph2pipe" --nj "$nj" data
  for d in $train_set $test_sets; do asrkit data info "data/$d"; done
fi

if stage_on 1; then
  if [ "$speed_perturb" = true ]; then
    log "stage 1: speed perturbation 0.9/1.0/1.1"
    asrkit data perturb-speed --factors 0.9,1.0,1.1 "data/$train_set" "data/${train_set}_sp"
  else
    log "stage 1: skipped (--speed-perturb false)"
  fi
fi

if stage_on 2; then
  log "stage 2: fbank features and CMVN"
  sets="$train_set $test_sets"
  [ "$e2e_train" != "$train_set" ] && sets="$e2e_train $sets"
  for d in $sets; do
    make_fbank_cmvn "data/$d" --compress
  done
fi

if stage_on 3; then
  log "stage 3: BPE tokens"
  asrkit make-lang --type bpe --vocab-size "$bpe_size" "data/$train_set" "$lang"
fi

if stage_on 4; then
  train conformer_ctc conf/conformer_ctc.yaml --train-data "data/$e2e_train" --valid-data data/test_dev93 --lang "$lang"
fi

if stage_on 5; then
  train blstm_ctc conf/blstm_ctc.yaml --train-data "data/$e2e_train" --valid-data data/test_dev93 --lang "$lang"
fi

if stage_on 6; then
  log "stage 6: average the last $avg checkpoints, decode and score"
  for exp in exp/conformer_ctc exp/blstm_ctc; do
    [ -f "$exp/final.pt" ] || { log "$exp/final.pt not found: skipped"; continue; }
    asrkit average-checkpoints --last "$avg" --out "$exp/avg$avg.pt" "$exp"
    for set in $test_sets; do
      for search in greedy beam; do
        tag=$search; [ "$search" = beam ] && tag=beam$beam
        dir=$exp/decode_avg${avg}_${tag}_${set#test_}
        $decode_cmd asrkit decode --model "$exp/avg$avg.pt" --data "data/$set" --out-dir "$dir" \
          --search "$search" --beam "$beam" --nj "$job_nj" --device "$device"
        asrkit score --data "data/$set" --decode-dir "$dir" --filter local/wer_output_filter
      done
    done
  done
fi

# --- hybrid stages ---------------------------------------------------------------------------------
hybrid_ready=false
hybrid_setup() {  # checks --ali-dir and Kaldi once; sets num_pdfs and ali_rspec
  $hybrid_ready && return 0
  [ -n "$ali_dir" ] || die "the hybrid stages need --ali-dir (a Kaldi alignment dir of train_si284, e.g. exp/tri4b_ali_si284)"
  for f in final.mdl tree ali.1.gz; do
    [ -f "$ali_dir/$f" ] || die "$ali_dir/$f not found: --ali-dir must be a Kaldi alignment dir (steps/align_fmllr.sh output)"
  done
  . ./local/kaldi_env.sh
  num_pdfs=$(tree-info "$ali_dir/tree" | awk '$1 == "num-pdfs" {print $2}')
  [ -n "$num_pdfs" ] || die "could not read num-pdfs from 'tree-info $ali_dir/tree'"
  # Kaldi's transition-id alignments become pdf-ids when read (the glob is expanded by the inner shell).
  ali_rspec="ark:ali-to-pdf $ali_dir/final.mdl 'ark:gunzip -c $ali_dir/ali.*.gz|' ark:-|"
  hybrid_ready=true
  log "hybrid: $num_pdfs pdfs, alignments from $ali_dir"
}
tr_set=${train_set}_tr90
cv_set=${train_set}_cv10
teacher=exp/hybrid_blstm_ce
stage_hybrid=true
if [ -z "$ali_dir" ]; then
  # Asking for hybrid stages only without --ali-dir is a mistake; a full run just leaves them out.
  if [ "$stage" -ge 7 ] && [ "$stop_stage" -le 10 ]; then hybrid_setup; fi
  stage_hybrid=false
  if [ "$stage" -le 10 ] && [ "$stop_stage" -ge 7 ]; then log "stages 7-10 (hybrid) skipped: no --ali-dir"; fi
fi

if $stage_hybrid && stage_on 7; then
  hybrid_setup
  log "stage 7: held-out speakers and the BLSTM teacher (ce on pdf-ids)"
  # Kaldi's nnet recipes validate on about 10% of the training speakers (subset_data_dir_tr_cv.sh).
  num_cv=$(( $(wc -l < "data/$train_set/utt2spk") / 10 ))
  [ "$num_cv" -ge 1 ] || num_cv=1
  asrkit data subset --speakers "$num_cv" --seed 1 "data/$train_set" "data/$cv_set"
  mkdir -p data/local
  awk 'NR == FNR {cv[$1]; next} !($1 in cv) {print $1}' "data/$cv_set/spk2utt" "data/$train_set/spk2utt" \
    > data/local/${tr_set}.spk
  asrkit data subset --spk-list data/local/${tr_set}.spk "data/$train_set" "data/$tr_set"
  train hybrid_blstm_ce conf/hybrid_blstm_ce.yaml --train-data "data/$tr_set" --valid-data "data/$cv_set" \
    --set "model.head.num_classes=$num_pdfs" --set "objective.targets=$ali_rspec" \
    --set "objective.valid_targets=$ali_rspec"
fi

if $stage_hybrid && stage_on 8; then
  log "stage 8: teacher posteriors"
  [ -f "$teacher/final.pt" ] || die "$teacher/final.pt not found: run stage 7 first"
  for d in $tr_set $cv_set; do
    asrkit dump-posteriors --model "$teacher/final.pt" --data "data/$d" --out-dir "$teacher/post_$d" \
      --frame-rate-of conf/hybrid_dnn_kl.yaml --nj "$job_nj" --device "$device"
  done
fi

if $stage_hybrid && stage_on 9; then
  hybrid_setup
  log "stage 9: DNN student on soft targets, and the same DNN on hard targets"
  train hybrid_dnn_kl conf/hybrid_dnn_kl.yaml --train-data "data/$tr_set" --valid-data "data/$cv_set" \
    --set "model.head.num_classes=$num_pdfs" \
    --set "objective.targets=$teacher/post_$tr_set/post.scp" \
    --set "objective.valid_targets=$teacher/post_$cv_set/post.scp" \
    --set "objective.mix.targets=$ali_rspec" --set "objective.mix.valid_targets=$ali_rspec"
  train hybrid_dnn_ce conf/hybrid_dnn_ce.yaml --train-data "data/$tr_set" --valid-data "data/$cv_set" \
    --set "model.head.num_classes=$num_pdfs" --set "objective.targets=$ali_rspec" \
    --set "objective.valid_targets=$ali_rspec"
fi

if $stage_hybrid && stage_on 10; then
  hybrid_setup
  [ -n "$graph_dir" ] || die "stage 10 needs --graph-dir (a Kaldi graph of the --ali-dir tree, e.g. exp/tri4b/graph_bd_tgpr)"
  graph_name=$(basename "$graph_dir"); graph_name=${graph_name#graph_}
  log "stage 10: Kaldi decoding with $graph_dir"
  for exp in $teacher exp/hybrid_dnn_ce exp/hybrid_dnn_kl; do
    [ -f "$exp/final.pt" ] || { log "$exp/final.pt not found: skipped"; continue; }
    for set in $test_sets; do
      ./local/decode_kaldi.sh --nj "$nj" --device "$device" --kaldi-egs "$kaldi_egs" \
        "$exp/final.pt" "data/$set" "$graph_dir" "$ali_dir" "$exp/decode_${graph_name}_${set#test_}"
    done
  done
fi

if stage_on 11; then
  log "stage 11: word LMs tgpr and bd_tgpr in the tokens of $lang"
  [ -d "$lang" ] || die "$lang not found: run stage 3 first"
  tgpr_arpa=${nist_lm:-data/local/nist_lm}/lm_tgpr.arpa.gz
  [ -z "$nist_lm" ] || [ -f "$tgpr_arpa" ] || die "$tgpr_arpa not found (--nist-lm must hold Kaldi's lm_tgpr.arpa.gz)"
  if [ ! -f "$tgpr_arpa" ] && [ -n "$wsj1" ]; then
    ./local/wsj_nist_lm.sh "$wsj1" data/local/nist_lm
  fi
  if [ -f "$tgpr_arpa" ]; then
    words_opts=()
    if [ -n "$dict" ]; then
      mkdir -p data/local
      ./local/lm_words.sh "$tgpr_arpa" "$dict" data/local/lm_tgpr_words.txt
      words_opts=(--words data/local/lm_tgpr_words.txt)
    fi
    asrkit make-lm --arpa "$tgpr_arpa" "${words_opts[@]}" "$lang" "${lang}_tgpr_lm"
  else
    why="stage 11 needs --nist-lm DIR (Kaldi's data/local/nist_lm) or --wsj1 DIR (the LMs on disk 13-32.1)"
    [ -z "$wsj1" ] || why="no $tgpr_arpa: install IRSTLM (prune-lm) or give --nist-lm DIR from a Kaldi WSJ setup"
    # Asking for the LM stages without an LM source is a mistake; a full run goes on to the results.
    [ "$stage" -lt 11 ] || die "$why"
    log "tgpr skipped: $why"
  fi
  if [ -n "$bd_lm" ]; then
    asrkit make-lm --arpa "$bd_lm" "$lang" "${lang}_bd_tgpr_lm"
  else
    log "no --bd-lm: bd_tgpr skipped (Kaldi's local/wsj_train_lms.sh makes data/local/local_lm/3gram-mincount/lm_pr6.0.gz)"
  fi
fi

if stage_on 12; then
  log "stage 12: decode with the word LMs, score over LM weights"
  for exp in exp/conformer_ctc exp/blstm_ctc; do
    [ -f "$exp/avg$avg.pt" ] || { log "$exp/avg$avg.pt not found (stage 6 makes it): skipped"; continue; }
    for lm in tgpr bd_tgpr; do
      [ -f "${lang}_${lm}_lm/lm.yaml" ] || { log "${lang}_${lm}_lm not found (stage 11): $lm skipped"; continue; }
      for set in $test_sets; do
        dir=$exp/decode_avg${avg}_${lm}_${set#test_}
        $decode_cmd asrkit decode --model "$exp/avg$avg.pt" --data "data/$set" --out-dir "$dir" \
          --lm "${lang}_${lm}_lm" --lm-weight "$lm_weight" --beam "$lm_beam" --nbest "$nbest" \
          --nj "$job_nj" --device "$device"
        asrkit score --data "data/$set" --decode-dir "$dir" --filter local/wer_output_filter
      done
    done
  done
fi

if stage_on 13; then
  log "stage 13: results"
  asrkit results exp --markdown | tee exp/RESULTS.md
fi
