"""Which settings of a scenario depart from the paper's recipe (C2GR section 4.2): one line for every report.

Only settings that change what is learned are listed (how the generator is parameterised, kept and trained, how
much replay there is, the scale); execution settings (threads, device, chunking) are not.
"""

from __future__ import annotations

from .schema import NO_GENERATOR_METHODS, Scenario

PAPER_IMAGE_SIZE = 256
PAPER_SAMPLER = ("ddpm", 200)


def departures_from_paper(scenario: Scenario) -> list[str]:
    """Short phrases, one per departing setting, each naming its field; [] for the paper's own settings."""
    out: list[str] = []
    dc, tc = scenario.diffusion, scenario.training
    if scenario.method not in NO_GENERATOR_METHODS:
        if dc.generators == "bank":
            out.append(f"a frozen generator per task (diffusion.generators: bank, warm start "
                       f"{dc.bank_warm_start}) instead of one shared generator")
        if dc.replay_masks == "segmentor":
            out.append("replay masks are the received segmentor's predictions on the generated images "
                       "(diffusion.replay_masks), not the generated masks")
        if dc.replay_masks == "gated":
            out.append("replay masks are the received segmentor's predictions on the generated images where they "
                       f"agree with the generated masks (Dice >= {dc.replay_mask_gate}), else the generated masks "
                       "(diffusion.replay_masks: gated)")
        if dc.replay_masks == "resampled":
            out.append("replay masks are re-sampled given the clean generated images by BJD's mask-given-image "
                       "branch (diffusion.replay_masks: resampled), not the jointly generated masks")
        if dc.replay_filter:
            out.append(f"each replay pair is the best of {dc.replay_oversample} candidates by agreement with the "
                       "received segmentor (diffusion.replay_filter)")
        if tc.generator_distill:
            out.append(f"the generator also distils the received one on noised replay, weight "
                       f"{tc.generator_distill_weight:g} (training.generator_distill)")
        if dc.replay_current_images != "none":
            out.append(f"{dc.replay_current_per_task} of each department's own images per earlier task of the same "
                       "modality are replayed with the received segmentor's labels under that task's prompt "
                       "(diffusion.replay_current_images)")
        if dc.prediction_type != "epsilon":
            out.append(f"the generator predicts {dc.prediction_type} (diffusion.prediction_type), not the noise")
        if dc.ema is not None:
            out.append(f"EMA {dc.ema} of the generator weights samples replay (diffusion.ema"
                       + (", with warm-up)" if dc.ema_warmup else ")"))
        if dc.min_snr_gamma is not None:
            out.append(f"min-SNR-{dc.min_snr_gamma:g} loss weighting of the generator (diffusion.min_snr_gamma)")
        if dc.mask_loss_weight != 1.0:
            out.append(f"the generator's mask channels weigh {dc.mask_loss_weight:g}x in its loss "
                       "(diffusion.mask_loss_weight)")
        if tc.generator_extra_steps:
            out.append(f"{tc.generator_extra_steps} generator-only steps per round after the joint ones "
                       "(training.generator_extra_steps)")
        if dc.replay_per_task != "train_size":
            out.append(f"{dc.replay_per_task} replay pairs per earlier task (diffusion.replay_per_task), not its "
                       "training-set size")
        if (dc.sampler, dc.sampling_steps) != PAPER_SAMPLER:
            out.append(f"{dc.sampler}-{dc.sampling_steps} sampling (diffusion.sampler), not DDPM-200")
    if scenario.model.prompt.residual:
        out.append("each task's own node embedding is added to its relation prompt (model.prompt.residual)")
    if tc.replay_fraction is not None and scenario.method not in NO_GENERATOR_METHODS:
        out.append(f"batches {tc.replay_fraction:.0%} replay (training.replay_fraction)")
    if scenario.image_size != PAPER_IMAGE_SIZE or tc.max_steps is not None:
        steps = f", {tc.max_steps} joint steps per round (training.max_steps)" if tc.max_steps is not None else ""
        out.append(f"CPU scale: {scenario.image_size}x{scenario.image_size} images, small models{steps}")
    return out


def departures_line(scenario: Scenario) -> str:
    """'Departs from the paper in: ...' or 'The paper's settings.'"""
    parts = departures_from_paper(scenario)
    return "Departs from the paper in: " + "; ".join(parts) + "." if parts else "The paper's settings."
