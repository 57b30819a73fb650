"""AnyoneNet (Wang et al. 2021): audio-driven landmarks and a landmark-to-image renderer.

* :mod:`.config`: architecture configs (``paper`` / ``tiny``) and the 80 Hz mel contract;
* :mod:`.predictor`: the landmark predictor; :mod:`.unet` and :mod:`.discriminator`: the
  renderer and its patch discriminator; :mod:`.losses`; :mod:`.sketch`;
* :mod:`.data`: training items from talking-face videos; :mod:`.train_predictor` and
  :mod:`.train_renderer`: resumable, seeded training scripts;
* :mod:`.infer`: :func:`~.infer.predict_track` (the warping renderer's hook) and
  :func:`~.infer.render_frames`; :mod:`.checkpoint`: ``NAME.pt`` + ``NAME.json``.

No trained AnyoneNet weights ship with avtool; ``recipes/talkinghead.mk`` trains them.
"""
