"""Model families: one package each, exposing ``load()`` and inference with no file I/O.

Families backed by ONNX graphs (Piper, hibari) wrap an onnxruntime session; PyTorch
families expose ``build(config) -> nn.Module`` as well.
"""
