"""Training and held-out evaluation of the AnyoneNet networks (landmark predictor, UNet renderer).

* :mod:`.predictor`: the audio-to-landmark predictor's trainer;
* :mod:`.renderer`: the sketch-to-face UNet with its PatchGAN;
* :mod:`.common`: what both share (run start, keep-best-on-held-out, checkpoints);
* :mod:`.evaluate`: D-LL, D-VL, D-A of a predictor on extracted items.
"""
