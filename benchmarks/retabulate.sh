#!/usr/bin/env bash
# Rebuild the committed benchmark tables from the exported runs under benchmarks/results/*-runs (no training).
# Usage: benchmarks/retabulate.sh [OUT_DIR]   (default benchmarks/results; give another folder to compare)
# Each line is the --tabulate-only command of one table; the run directories it reads were written by
# `c2gr-fed export` (results only, no weights). Wall time = the sum of each run's round times.
# Rows named after a former method variant are a method with settings (--arm 'LABEL=METHOD KEY=VALUE ...', see
# docs/methods.md); those runs' stored scenarios name the former variant and read as the same method and settings.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-benchmarks/results}"
R=benchmarks/results
V=diffusion.prediction_type=v_prediction
C2GR_V=(--arm "c2gr-v=c2gr $V")
GR_V=(--arm "gr-v=gr $V")
C2GR_VS=(--arm "c2gr-vs=c2gr $V diffusion.replay_masks=segmentor")
C2GR_VSP=(--arm "c2gr-vsp=c2gr-norups $V diffusion.replay_masks=segmentor")
C2GR_VR=(--arm "c2gr-vr=c2gr $V diffusion.replay_masks=resampled")
C2GR_VF=(--arm "c2gr-vf=c2gr $V diffusion.replay_filter=true")
C2GR_VD=(--arm "c2gr-vd=c2gr $V training.generator_distill=true")
B5=(scenarios/bench-5tasks.yaml --tabulate-only --runs "$R/bench-5tasks-runs")
c2gr-fed bench "${B5[@]}" --methods c2gr "${C2GR_V[@]}" --methods c2gr-njd,c2gr-norups,gr,lwf,ewc,finetune,individual,joint \
  --seeds 0,1 --out "$OUT/bench-5tasks"
c2gr-fed bench "${B5[@]}" --run-name '{method}-genx400-seed{seed}' \
  "${C2GR_V[@]}" "${GR_V[@]}" "${C2GR_VS[@]}" "${C2GR_VSP[@]}" "${C2GR_VR[@]}" "${C2GR_VF[@]}" "${C2GR_VD[@]}" --methods c2gr \
  --seeds 0,1,2,3,4 --set training.generator_extra_steps=400 --out "$OUT/bench-5tasks-genx400"
c2gr-fed bench "${B5[@]}" --run-name '{method}-genx800-seed{seed}' "${C2GR_V[@]}" "${C2GR_VS[@]}" --seeds 0 \
  --set training.generator_extra_steps=800 --out "$OUT/bench-5tasks-genx800"
c2gr-fed bench "${B5[@]}" --run-name '{method}-genx400-ema0995-seed{seed}' "${C2GR_V[@]}" --seeds 0 \
  --set training.generator_extra_steps=400 --set diffusion.ema=0.995 --out "$OUT/bench-5tasks-genx400-ema0995"
c2gr-fed bench "${B5[@]}" --run-name '{method}-genx400-rfnull-seed{seed}' "${C2GR_VSP[@]}" --seeds 0,2 \
  --set training.generator_extra_steps=400 --set training.replay_fraction=null --out "$OUT/bench-5tasks-genx400-rfnull"
c2gr-fed bench "${B5[@]}" --run-name '{method}-genx400-rp192-seed{seed}' "${C2GR_VSP[@]}" --seeds 0,2 \
  --set training.generator_extra_steps=400 --set diffusion.replay_per_task=192 --out "$OUT/bench-5tasks-genx400-rp192"
c2gr-fed bench "${B5[@]}" --run-name '{method}-genx400-gd10-seed{seed}' "${C2GR_VD[@]}" --seeds 0 \
  --set training.generator_extra_steps=400 --set training.generator_distill_weight=10 --out "$OUT/bench-5tasks-genx400-gd10"
RL=(scenarios/real-7tasks.yaml --tabulate-only --runs "$R/bench-real-7tasks-runs" --set training.threads=1)
c2gr-fed bench "${RL[@]}" --methods c2gr,finetune,joint,c2gr-njd,c2gr-norups,gr,ewc --seeds 0 --out "$OUT/bench-real-7tasks"
c2gr-fed bench "${RL[@]}" --run-name '{method}-genx400-seed{seed}' "${GR_V[@]}" "${C2GR_V[@]}" "${C2GR_VS[@]}" --seeds 0 \
  --set training.generator_extra_steps=400 --out "$OUT/bench-real-7tasks-genx400"
# the 20-task comparison was run with the paper's generator settings, which scenarios/20tasks.yaml no longer holds:
# tabulate it against the scenario stored in its runs
c2gr-fed bench "$R/bench-20tasks-runs/c2gr-seed0/scenario.yaml" --tabulate-only --runs "$R/bench-20tasks-runs" \
  --methods c2gr,finetune,joint,ewc,gr,c2gr-njd,c2gr-norups --seeds 0 --out "$OUT/bench-20tasks"
