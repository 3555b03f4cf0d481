"""Which engine runs the network for eval.py and scripts/infer.py (``--backend``).

* ``mindspore`` (default): ``model_path`` is a checkpoint; the network it records is built and
  loaded strictly (:func:`src.model.model_files.open_network`).
* ``onnx``: ``model_path`` is an ONNX file written by export.py, run with onnxruntime
  (:func:`src.model.onnx_model.onnx_forward`); its metadata gives the normalisation.

Both give the same forward function to :class:`src.evaluate.inference.Predictor`, so preprocessing,
decoding and outputs are the same code.
"""
from src.config_checks import RULES

BACKENDS = RULES["backend"].allowed  # stated once, in the checks table


def open_forward(cfg, path=None):
    """The network of ``cfg.model_path`` (or ``path``) on ``cfg.backend``.

    Args:
        cfg: Config with ``backend`` and ``model_path``; explicitly set network keys
            (num_stages, width_mult, vgg_with_bn) must agree with the model file.

    Returns:
        ``(forward, spec, lines)``: the numpy forward function, the
        :class:`src.model.network_spec.NetworkSpec` (with the input normalisation) and lines that say
        what was loaded.

    Raises:
        src.model.checkpoint.CheckpointError: the file does not fit (src.model.onnx_model.OnnxModelError for
        ONNX files), or an unknown backend.
    """
    from src.model.checkpoint import CheckpointError
    from src.model.network_spec import check_against_config
    path = str(path or cfg.model_path)
    backend = str(cfg.backend)
    if backend == "onnx":
        from src.model.onnx_model import onnx_forward
        forward, spec, session = onnx_forward(path)
        check_against_config(spec, cfg, path)
        lines = [f"{path}: ONNX model on onnxruntime ({', '.join(session.get_providers())})"]
    elif backend == "mindspore":
        from src.evaluate.inference import mindspore_forward
        from src.model.model_files import open_network
        network, spec, report = open_network(path, cfg)
        forward = mindspore_forward(network)
        lines = [report.summary()]
    else:
        raise CheckpointError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    return forward, spec, lines + [f"network: {spec.describe()}"]
