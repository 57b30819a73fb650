"""Face-conditioned voice: a face photo → a speaker embedding (AnyoneNet's face encoder idea).

A *student* maps dlib's 128-d face descriptor (:meth:`avtool.models.face.FaceDetector.descriptor`)
through an MLP to the 256-d GE2E speaker embedding that the *teacher* (resemblyzer's speaker
encoder) gives the same person's speech; trained with a cosine loss on talking-face videos
(:mod:`.train`), evaluated by the held-out cosine similarity against the mean-voice baseline.

No trained mapping ships with avtool: a face alone does not pick a voice, so without trained
weights ``tts --face`` speaks with the chosen ``--voice``. Train one with
``make -f recipes/talkinghead.mk face-voice DATA=...`` (many speakers needed: VoxCeleb2-style).

* :mod:`.teacher`: :func:`~.teacher.speaker_embedding` (resemblyzer, offline, 16 kHz);
* :mod:`.student`: :class:`~.student.FaceVoiceConfig`, :func:`~.student.build`,
  :func:`~.student.load`, :func:`~.student.infer`;
* :mod:`.train`: extraction of (descriptor, embedding) pairs, training and evaluation.
"""
