"""Knowledge distillation: teacher posteriors dumped as Kaldi tables, read back as soft targets.

`asrkit.distill.posteriors` writes a teacher's per-frame output distributions at a student's frame
rate (float-matrix ark/scp, or Kaldi's Posterior format for top-k) and opens them for `asrkit train`
(`objective: kl`).
"""
