"""AnyoneNet (Wang et al. 2021): audio-driven landmarks and a landmark-to-image renderer.

* :mod:`.config`: architecture configs (``paper`` / ``tiny``) and the 80 Hz mel contract;
* :mod:`.predictor`: the landmark predictor; :mod:`.unet` and :mod:`.discriminator`: the
  renderer and its patch discriminator; :mod:`.losses`; :mod:`.sketch`;
* :mod:`.data`: training items from talking-face videos; :mod:`.train_predictor` and
  :mod:`.train_renderer`: resumable, seeded training scripts;
* :mod:`.infer`: :func:`~.infer.predict_track` (the warping renderer's hook) and
  :func:`~.infer.render_frames`; :mod:`.checkpoint`: ``NAME.pt`` + ``NAME.json``.

* :mod:`.evaluate`: a predictor's lip-sync measures on extracted clips, without rendering.

One trained predictor ships: ``anyonenet-predictor-grid-s1`` (``PredictorConfig.reduced()``,
speaker-dependent, GRID speaker s1), which ``avtool talkinghead --model anyonenet`` runs through
the warping renderer. No renderer (UNet) weights ship; ``recipes/talkinghead.mk`` trains both.
"""
